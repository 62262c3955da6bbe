"""Evaluates a saved model on CIFAR-10 and writes the robustness report.

    python examples/evaluate.py --model=runs/bat/model.keras --attacks=standard
    python examples/evaluate.py --model=runs/bat/savedmodel --corruptions=all \
        --output_dir=runs/bat/report

`--model` is a `.keras` file (any keras_robust defence or Keras model) or a
SavedModel directory (its `serve` endpoint). The report (JSON, Markdown, PNG
plots) lists clean accuracy, FGSM, PGD with CE and CW losses, AutoAttack
(the standard version: APGD-CE, APGD-T, FAB-T, Square), accuracy against the budget and the
number of steps, optional corruptions and transfer attacks, and the
gradient-masking checks, each PASS or FAIL with its numbers. The printed
summary's headline is the worst case with the attack that reached it; a FAIL
of check 5 means the CE figures are masked (trust the margin-loss ones), and a
custom `--attacks` list without a margin-loss attack (pgd20_cw, autoattack)
gets a WARNING that its CE figures are unchecked.

    python examples/evaluate.py --model=runs/bat/model.keras --norm=l2   # L2, eps 0.5

`--norm=l2` evaluates in the L2 ball: every attack, the cascade and the
curves (see `keras_robust.evaluate.robustness_report`); there `--epsilon` is
the L2 budget on the [0, 1] scale (default 0.5), while in L-inf it is in
pixel levels (default 8, i.e. 8/255).

    python examples/evaluate.py --model=runs/bat/model.keras --start=5000 --limit=500

evaluates test images 5000-5499 only (disjoint sets for repeated checks).

    python examples/evaluate.py --recheck=runs/bat/report

re-judges a saved report with the current gradient-masking checks, without
attacking the model again, and rewrites it (or writes to `--output_dir`).
"""
from __future__ import annotations

from absl import app, flags

import _quiet  # examples/_quiet.py: the --verbose flag

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, "A .keras file or a SavedModel directory.")
flags.DEFINE_string("recheck", None,
                    "A saved report.json (or its folder) to re-judge with the current checks "
                    "instead of evaluating --model.")
flags.DEFINE_string("data", "auto", "auto, a TFDS name, a JPEG .npz copy or an image folder.")
flags.DEFINE_integer("start", 0, "Skip the first N test images (with --limit: disjoint sets, "
                     "e.g. --start=5000 --limit=500).")
flags.DEFINE_integer("limit", 1000, "Evaluate on N test images (from --start).")
flags.DEFINE_enum("norm", "linf", ["linf", "l2"], "The threat model: linf or l2.")
flags.DEFINE_float("epsilon", None, "The budget: with --norm=linf in pixel levels (/255, default "
                   "8); with --norm=l2 on the [0, 1] scale (default 0.5).")
flags.DEFINE_string("attacks", "standard", "standard, quick, none, or comma-separated keys.")
flags.DEFINE_string("corruptions", None, "None, all, mtlat, datacentric or comma-separated names.")
flags.DEFINE_string("surrogate", None, "A model (.keras or SavedModel) for the transfer attack.")
flags.DEFINE_string("baseline_report", None, "report.json of a reference model (corruption +/-).")
flags.DEFINE_string("output_dir", None, "Where to write report.json, report.md and plots.")
flags.DEFINE_integer("batch_size", 250, "Images per attack batch.")


def report_epsilon(norm: str, epsilon: float | None) -> float:
    """The report's budget on the [0, 1] scale from the `--norm` and `--epsilon` flags.

    Args:
        norm: "linf" or "l2".
        epsilon: the `--epsilon` flag: pixel levels in L-inf, the [0, 1] scale
            in L2; None for the default (8/255 in L-inf, 0.5 in L2).

    Returns:
        The budget to pass to `robustness_report`.
    """
    if epsilon is None:
        return 8 / 255 if norm == "linf" else 0.5
    return epsilon / 255 if norm == "linf" else float(epsilon)


def test_images(source: str, start: int, limit: int):
    """Test images `start` to `start + limit - 1` of `source` (the `--start` and `--limit` flags).

    Args:
        source: what `keras_robust.data.load_arrays` reads (a JPEG .npz copy,
            an image folder or a TFDS name).
        start: how many test images to skip (>= 0).
        limit: how many to keep (> 0).

    Returns:
        `(images, labels)` arrays.

    Raises:
        ValueError: a negative `start`, or a split with `start` images or fewer.
    """
    import keras_robust as kr

    if isinstance(start, bool) or not isinstance(start, int) or start < 0:
        raise ValueError(f"--start must be a whole number >= 0, got {start!r}.")
    x, y = kr.data.load_arrays(source, "test", limit=start + limit)
    if len(x) <= start:
        raise ValueError(f"--start={start} skips every test image: {source} has {len(x)}; "
                         f"give a smaller --start.")
    return x[start:], y[start:]


def main(argv):
    del argv
    _quiet.start()  # before keras or TensorFlow is imported
    import json
    import os

    import keras_robust as kr
    from keras_robust import experiment

    if (FLAGS.model is None) == (FLAGS.recheck is None):
        raise app.UsageError("give exactly one of --model (evaluate a model) and --recheck "
                             "(re-judge a saved report.json)")
    if FLAGS.recheck:
        report = kr.evaluate.RobustnessReport.load(FLAGS.recheck)
        print(report.summary())
        output_dir = FLAGS.output_dir or (
            FLAGS.recheck if os.path.isdir(FLAGS.recheck)
            else os.path.dirname(os.path.abspath(FLAGS.recheck)))  # "report.json" alone: cwd
        report.save(output_dir)
        print("wrote", output_dir)
        return
    model = experiment.load_model(FLAGS.model)
    source = experiment.resolve_source(FLAGS.data)
    x_test, y_test = test_images(source, FLAGS.start, FLAGS.limit)
    attacks = FLAGS.attacks
    if attacks == "none":
        attacks = None
    elif attacks not in kr.evaluate.SUITES:
        attacks = attacks.split(",")
    corruptions = FLAGS.corruptions
    if corruptions and corruptions not in ("all", "mtlat", "datacentric"):
        corruptions = corruptions.split(",")
    baseline = None
    if FLAGS.baseline_report:
        with open(FLAGS.baseline_report) as f:
            baseline = json.load(f)
    kr.evaluate.robustness_report(  # prints its summary, FAILs included
        model, (x_test, y_test), epsilon=report_epsilon(FLAGS.norm, FLAGS.epsilon),
        norm=FLAGS.norm, attacks=attacks,
        corruptions=corruptions, output_dir=FLAGS.output_dir, batch_size=FLAGS.batch_size,
        surrogate=experiment.load_model(FLAGS.surrogate) if FLAGS.surrogate else None,
        baseline=baseline, progress=True,
    )


if __name__ == "__main__":
    app.run(main)
