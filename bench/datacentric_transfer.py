#!/usr/bin/env python3
"""Which part of eq. 6 helps or hurts transfer: an ablation on a data-centric run.

Loads the test ensemble of a `examples/cifar10_datacentric.py` run and one or
more held-out target models (default: the run's original-trained model),
crafts the L-inf part of eq. 6 on the ensemble with each component switched
off in turn (Gaussian gradient smoothing, input diversity, momentum), at
several iteration counts and, beside eq. 6's logit loss, with cross-entropy
(`Eq6Config().replace(loss="ce")`, with and without TI); and prints each target's
accuracy next to plain PGD-10 from each single surrogate at the same budget.
Every attack is crafted once and evaluated on every target.

    python bench/datacentric_transfer.py --run_dir=runs/cifar10_datacentric --images=500
    python bench/datacentric_transfer.py --run_dir=runs/cifar10_datacentric \
        --targets='surrogates_enhance_*/*.keras'   # the enhancement ensemble's members
    python bench/datacentric_transfer.py --run_dir=runs/cifar10_datacentric_transfer --images=500 \
        --skip_components --more_iterations=300 --targets='surrogates_enhance_*/*.keras'
        # TI on/off and 300 iterations only (the run dir may hold only the trained surrogates)
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
    parser.add_argument("--skip_components", action="store_true",
                        help="Only eq. 6 and eq. 6 without TI: skip the DI and MI ablations.")
    parser.add_argument("--targets", default="model_original_*.keras",
                        help="Held-out models attacked: comma list of globs under --run_dir "
                             "(never the test ensemble itself).")
    parser.add_argument("--no_progress", dest="progress", action="store_false",
                        help="no bar on stderr (shown on a terminal, or with "
                             "KERAS_ROBUST_PROGRESS=1)")
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

    surrogate_dir = only("surrogates_test_*")
    surrogate_paths = sorted(glob.glob(f"{surrogate_dir}/*.keras"))
    target_paths = sorted({p for pattern in args.targets.split(",")
                           for p in glob.glob(os.path.join(args.run_dir, pattern))})
    if not target_paths:
        raise SystemExit(f"--targets={args.targets} matches nothing under {args.run_dir}.")
    if set(map(os.path.abspath, target_paths)) & set(map(os.path.abspath, surrogate_paths)):
        raise SystemExit("A target is a member of the test ensemble: transfer needs held-out models.")
    surrogates = [keras.saving.load_model(p) for p in surrogate_paths]
    targets = {os.path.relpath(p, args.run_dir): keras.saving.load_model(p) for p in target_paths}
    x, y = kr.data.load_arrays(args.data, "test", limit=args.images)
    images = x.astype("float32") / 255.0
    crafted = {}  # row name -> adversarial images, evaluated on every target at the end
    surrogate_clean = {f"{model.name} (surrogate) clean": kr.evaluate.accuracy(model, images, y)
                       for model in surrogates}
    ablations = [(f"eq. 6 (DI 0.7, TI 5x5, MI 1), {args.iterations} it", {}),
                 ("no TI", dict(smoothing_kernel=0))]
    if not args.skip_components:
        ablations += [("no DI", dict(input_diversity=0.0)),
                      ("no TI, no DI", dict(smoothing_kernel=0, input_diversity=0.0)),
                      ("no TI, no DI, no MI",
                       dict(smoothing_kernel=0, input_diversity=0.0, momentum=None))]
    ablations += [(f"no TI, {n} it", dict(smoothing_kernel=0, steps=int(n)))
                  for n in filter(None, args.more_iterations.split(","))]
    # Not eq. 6: cross-entropy instead of the logit loss (the configs' `loss`).
    ablations += [("CE instead of the logit loss", dict(loss="ce")),
                  ("CE, no TI", dict(loss="ce", smoothing_kernel=0))]
    from keras_robust import progress as _progress

    bar = _progress.bar("[bench datacentric_transfer] ", len(ablations), args.progress,
                        unit="attack")
    for name, overrides in ablations:
        bar.update(0)
        start = time.time()
        settings = dc.Eq6Config(l2=None).replace(**{"steps": args.iterations, **overrides})
        delta, _ = dc.perturbations(surrogates, x, y, settings, seed=1)
        crafted[f"ensemble L-inf, {name}"] = np.clip(images + delta, 0, 1)
        bar.update()
        print(f"{name}: {time.time() - start:.0f} s", flush=True)
    for model in surrogates:
        adversarial = kr.attacks.pgd(model, images, y, epsilon=8 / 255, step_size=2 / 255, steps=10, seed=0)
        crafted[f"PGD-10 {model.name} L-inf"] = np.asarray(adversarial)
    results = {"surrogates": surrogate_clean, "targets": {}}
    for target_name, target in targets.items():
        rows = {"clean": kr.evaluate.accuracy(target, images, y)}
        rows.update({name: kr.evaluate.accuracy(target, adv, y) for name, adv in crafted.items()})
        results["targets"][target_name] = rows
        print(f"\n{target_name}: target accuracy (%), {args.images} test images, eps 8/255:")
        for name, value in {**surrogate_clean, **rows}.items():
            print(f"  {name:60s} {100 * value:5.1f}")
    with open(os.path.join(args.run_dir, "transfer_ablation.json"), "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
