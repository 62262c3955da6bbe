"""Weight averaging, paired: the trained and the averaged weights of one run on the same images.

    python examples/train.py --defense=pgd_at --steps=3 --step_size=3/255 --epochs=5 \
        --noaugment --weight_decay=0 --schedule=constant --ema=0.995 --report=quick \
        --output_dir=runs/pgd_at_ema_constant_5ep
    python bench/averaging.py --run=runs/pgd_at_ema_constant_5ep \
        --output=bench/results/averaging_pgd_at_constant.json

`--run` is an `examples/train.py --ema=TAU` output folder: its `model.keras`
holds the averaged weights in the backbone and the trained ones beside them
(`RobustModel.swap_averaged_weights`). Both weight sets are evaluated by
`keras_robust.evaluate.robustness_report` with the same suite, seeds and
images (the first `--limit` test images), BatchNorm on the trained run's
statistics for both (as the leaderboard code evaluates its EMA). Then, image
by image:

- clean: b = images the trained weights classify correctly and the averaged
  ones do not, c = the reverse;
- worst case: the images robust to every attack of the suite at once (the
  per-image masks of the reports, AutoAttack's cascade included); b, c as
  above;

each with McNemar's exact two-sided p-value (`evaluate.mcnemar_p_value`).
Printed: both figures, the differences and the tests. Written: JSON to
`--output` (both reports' figures, b, c, p).
"""
from __future__ import annotations

import json
import os
import sys

from absl import app, flags

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

FLAGS = flags.FLAGS
flags.DEFINE_string("run", None, "An examples/train.py --ema output folder (with model.keras).")
flags.DEFINE_string("data", "auto", "The CIFAR-10 source (auto: the local copy).")
flags.DEFINE_integer("limit", 1000, "Evaluate on the first N test images.")
flags.DEFINE_string("attacks", "quick", "The report's suite (or comma-separated attack keys).")
flags.DEFINE_string("output", "bench/results/averaging.json", "JSON output path.")
flags.mark_flag_as_required("run")


def robust_to_all(report):
    """Per image: robust to every attack of the report at once (its masks, AutoAttack's too)."""
    import numpy as np

    from keras_robust.evaluate import checks

    entries = list(report.results.get("attacks", {}).values())
    if report.results.get("autoattack"):
        entries.append(report.results["autoattack"])
    return np.logical_and.reduce([checks.decode_mask(e[checks.ROBUST_MASK]) for e in entries])


def paired(trained, averaged) -> dict:
    """Accuracies of both, and McNemar's b (trained only), c (averaged only) and p."""
    from keras_robust.evaluate import mcnemar_p_value

    b, c = int((trained & ~averaged).sum()), int((averaged & ~trained).sum())
    return {"trained": float(trained.mean()), "averaged": float(averaged.mean()),
            "difference": float(averaged.mean() - trained.mean()), "b": b, "c": c,
            "p_value": mcnemar_p_value(b, c)}


def evaluate_both(model, x, y) -> dict:
    """{"averaged" | "trained": (report, per-image clean correctness)} of one model's two weight sets."""
    import numpy as np

    from keras_robust import evaluate

    attacks = FLAGS.attacks if "," not in FLAGS.attacks else FLAGS.attacks.split(",")
    results = {}
    for name in ("averaged", "trained"):  # model.keras holds the averages in the backbone
        report = evaluate.robustness_report(model, (x, y), attacks=attacks, name=name)
        correct = np.argmax(model.predict(x, batch_size=500, verbose=0), axis=1) == y
        results[name] = (report, correct)
        print(report.summary(), flush=True)
        model.swap_averaged_weights()  # the second pass sees the trained weights
    model.swap_averaged_weights()  # back to the averages, as loaded
    return results


def main(argv):
    del argv
    import keras
    import numpy as np

    import keras_robust  # noqa: F401  (registers the defences for loading)
    from keras_robust import data, experiment

    model = keras.saving.load_model(os.path.join(FLAGS.run, "model.keras"))
    if getattr(model, "weight_averaging", None) is None:
        raise ValueError(f"{FLAGS.run}/model.keras was trained without weight averaging: "
                         "train it with examples/train.py --ema=0.995.")
    x, y = data.load_arrays(experiment.resolve_source(FLAGS.data), "test", limit=FLAGS.limit)
    x, y = data.to_float(x), np.asarray(y)
    results = evaluate_both(model, x, y)
    (avg_report, avg_clean), (raw_report, raw_clean) = results["averaged"], results["trained"]
    out = {
        "run": FLAGS.run, "limit": FLAGS.limit, "attacks": FLAGS.attacks,
        "averaging": model.weight_averaging.get_config(),
        "clean": paired(raw_clean, avg_clean),
        "worst_case_per_image": paired(robust_to_all(raw_report), robust_to_all(avg_report)),
        "worst_case": {"trained": raw_report.worst_case, "averaged": avg_report.worst_case},
        "checks": {"trained": raw_report.checks_status, "averaged": avg_report.checks_status},
    }
    for key in ("clean", "worst_case_per_image"):
        r = out[key]
        print(f"{key}: trained {100 * r['trained']:.1f}, averaged {100 * r['averaged']:.1f} "
              f"({100 * r['difference']:+.1f}); b={r['b']} (trained only), c={r['c']} "
              f"(averaged only), McNemar p={r['p_value']:.3g}")
    os.makedirs(os.path.dirname(os.path.abspath(FLAGS.output)), exist_ok=True)
    with open(FLAGS.output, "w") as f:
        json.dump(out, f, indent=2)
    print(f"wrote {FLAGS.output}")


if __name__ == "__main__":
    app.run(main)
