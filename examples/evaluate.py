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
curves (see `keras_robust.evaluate.robustness_report`). `--epsilon` is on the
[0, 1] scale of the images under both norms, pixel levels written as a
fraction (`--epsilon=4/255`); without it the report's default for the norm
(`keras_robust.evaluate.suites.DEFAULT_EPSILON`: 8/255 in L-inf, 0.5 in L2).

    python examples/evaluate.py --model=runs/bat/model.keras --start=5000 --limit=500

evaluates test images 5000-5499 only (disjoint sets for repeated checks;
`keras_robust.data.load_arrays(..., start=5000, limit=500)`).

    python examples/evaluate.py --recheck=runs/bat/report

re-judges a saved report with the current gradient-masking checks, without
attacking the model again, and rewrites it (or writes to `--output_dir`).
"""
from __future__ import annotations

from absl import app, flags

import _flags  # examples/_flags.py: the shared flags

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, "A .keras file or a SavedModel directory.")
flags.DEFINE_string("recheck", None,
                    "A saved report.json (or its folder) to re-judge with the current checks "
                    "instead of evaluating --model.")
_flags.define_data()
flags.DEFINE_integer("start", 0, "Skip the first N test images (with --limit: disjoint sets, "
                     "e.g. --start=5000 --limit=500).")
flags.DEFINE_integer("limit", 1000, "Evaluate on N test images (from --start).")
flags.DEFINE_enum("norm", "linf", ["linf", "l2"], "The threat model: linf or l2.")
flags.DEFINE_string("epsilon", None, "The budget on the [0, 1] scale, e.g. 8/255 (default: "
                    "8/255 with --norm=linf, 0.5 with --norm=l2).")
flags.DEFINE_string("attacks", "standard", "standard, quick, none, or comma-separated keys.")
flags.DEFINE_string("corruptions", None, "None, all, mtlat, datacentric or comma-separated names.")
flags.DEFINE_string("surrogate", None, "A model (.keras or SavedModel) for the transfer attack.")
flags.DEFINE_string("baseline_report", None, "report.json of a reference model (corruption +/-).")
flags.DEFINE_string("output_dir", None, "Where to write report.json, report.md and plots.")
flags.DEFINE_integer("batch_size", 250, "Images per attack batch.")


def main(argv):
    del argv
    _flags.start()  # before keras or TensorFlow is imported
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
    x_test, y_test = kr.data.load_arrays(source, "test", start=FLAGS.start, limit=FLAGS.limit)
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
        model, (x_test, y_test), epsilon=FLAGS.epsilon and experiment.budget(FLAGS.epsilon, FLAGS.norm),
        norm=FLAGS.norm, attacks=attacks,
        corruptions=corruptions, output_dir=FLAGS.output_dir, batch_size=FLAGS.batch_size,
        surrogate=experiment.load_model(FLAGS.surrogate) if FLAGS.surrogate else None,
        baseline=baseline, progress=True,
    )


if __name__ == "__main__":
    app.run(main)
