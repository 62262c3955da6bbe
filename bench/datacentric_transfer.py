#!/usr/bin/env python3
"""Which part of eq. 6 helps or hurts transfer: an ablation on a data-centric run.

Loads the test ensemble and the original-trained model of a
`examples/cifar10_datacentric.py` run, crafts the L-inf part of eq. 6 on the ensemble with
each component switched off in turn (Gaussian gradient smoothing, input
diversity, momentum), at several iteration counts and, as a diagnostic beside
eq. 6's logit loss, with cross-entropy; and prints the target's accuracy next
to plain PGD-10 from each single surrogate at the same budget.

    python bench/datacentric_transfer.py --run_dir=runs/cifar10_datacentric --images=500
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run_dir", default="runs/cifar10_datacentric")
    parser.add_argument("--data", default="../shared/datasets/cifar10_jpeg.npz")
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--more_iterations", default="10,300",
                        help="Extra iteration counts for eq. 6 without TI (comma list, empty: none).")
    args = parser.parse_args()

    import keras
    import numpy as np

    import keras_robust as kr
    from keras_robust import datacentric as dc

    def only(pattern: str) -> str:
        found = sorted(glob.glob(os.path.join(args.run_dir, pattern)))
        if not found:
            raise SystemExit(f"{args.run_dir} has no {pattern}: run examples/cifar10_datacentric.py "
                             "first.")
        return found[0]

    target = keras.saving.load_model(only("model_original_*.keras"))
    surrogate_dir = only("surrogates_test_*")
    surrogates = [keras.saving.load_model(p) for p in sorted(glob.glob(f"{surrogate_dir}/*.keras"))]
    x, y = kr.data.load_arrays(args.data, "test", limit=args.images)
    images = x.astype("float32") / 255.0
    rows = {"clean": kr.evaluate.accuracy(target, images, y)}
    for model in surrogates:
        rows[f"{model.name} (surrogate) clean"] = kr.evaluate.accuracy(model, images, y)
    ablations = [(f"eq. 6 (DI 0.7, TI 5x5, MI 1), {args.iterations} it", {}),
                 ("no TI", dict(smoothing_kernel=0)),
                 ("no DI", dict(diversity_prob=0.0)),
                 ("no TI, no DI", dict(smoothing_kernel=0, diversity_prob=0.0)),
                 ("no TI, no DI, no MI", dict(smoothing_kernel=0, diversity_prob=0.0, decay=0.0))]
    ablations += [(f"no TI, {n} it", dict(smoothing_kernel=0, iterations=int(n)))
                  for n in filter(None, args.more_iterations.split(","))]
    for name, overrides in ablations:
        start = time.time()
        settings = dc.AttackSettings(**{"iterations": args.iterations, "l2_epsilon": 0, **overrides})
        delta, _ = dc.perturbations(surrogates, x, y, settings, seed=1)
        rows[f"ensemble L-inf, {name}"] = kr.evaluate.accuracy(target, np.clip(images + delta, 0, 1), y)
        print(f"{name}: {time.time() - start:.0f} s", flush=True)
    # Diagnostic, not eq. 6: the same ensemble attack with cross-entropy instead of the logit loss.
    ce = np.concatenate([np.asarray(kr.attacks.mi_fgsm(
        surrogates, images[i:i + 250], y[i:i + 250], 8 / 255, 2 / 255, args.iterations,
        loss="ce", input_diversity=0.7, seed=1)) for i in range(0, len(images), 250)])
    rows[f"ensemble L-inf, MI + DI with CE (not eq. 6), {args.iterations} it"] = (
        kr.evaluate.accuracy(target, ce, y))
    for model in surrogates:
        adversarial = kr.attacks.pgd(model, images, y, epsilon=8 / 255, step_size=2 / 255, steps=10, seed=0)
        rows[f"PGD-10 {model.name} L-inf"] = kr.evaluate.accuracy(target, np.asarray(adversarial), y)
    print(f"target accuracy (%), {args.images} test images, eps 8/255:")
    for name, value in rows.items():
        print(f"  {name:60s} {100 * value:5.1f}")
    with open(os.path.join(args.run_dir, "transfer_ablation.json"), "w") as f:
        json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
