#!/usr/bin/env python3
"""Which part of eq. 6 helps or hurts transfer: an ablation on a data-centric run.

Loads the test ensemble and the original-trained model of a
`examples/cifar10_datacentric.py` run (or, with `--prepare`, trains just those
into `--run_dir` under the example's file names, so a later example run in the
same folder reuses them), crafts the L-inf part of eq. 6 on the ensemble with
each component switched off in turn (Gaussian gradient smoothing, input
diversity, momentum), at several iteration counts and, as a diagnostic beside
eq. 6's logit loss, with cross-entropy; and prints the target's accuracy next
to plain PGD-10 from each single surrogate at the same budget.

    python bench/datacentric_transfer.py --run_dir=runs/cifar10_datacentric --images=500
    python bench/datacentric_transfer.py --prepare --run_dir=runs/transfer --images=1000
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import time


def prepare(args) -> None:
    """Trains the test ensemble and the target as `examples/cifar10_datacentric.py` would."""
    import keras

    import keras_robust as kr
    from keras_robust import datacentric as dc
    from keras_robust import experiment

    info = kr.data.info(args.data)
    x_all, y_all = kr.data.load_arrays(args.data, "train")
    n = args.subset
    tag = f"small_e{args.surrogate_epochs}_n{n}_s0"
    loader = lambda x, y: kr.data.from_arrays(x, y, batch_size=128, shuffle=True, augment=True,
                                              seed=0)
    start = time.time()
    dc.surrogates.train_surrogates(
        ["vgg", "wide_resnet", "resnet"], loader(x_all[25000:25000 + n], y_all[25000:25000 + n]),
        args.surrogate_epochs, directory=os.path.join(args.run_dir, f"surrogates_test_{tag}"),
        seed=100, name_suffix="_test", preset="small", num_classes=info.num_classes,
        normalization=info.normalization)
    print(f"test surrogates: {time.time() - start:.0f} s", flush=True)
    path = os.path.join(args.run_dir,
                        f"model_original_small_cnn_e{args.target_epochs}_lr0.05_b128_s0.keras")
    if not os.path.isfile(path):
        start = time.time()
        keras.utils.set_random_seed(0)
        backbone = kr.backbones.get("small_cnn", input_shape=info.image_shape,
                                    num_classes=info.num_classes, normalization=info.normalization)
        model = kr.RobustModel(backbone, seed=0)
        steps = -(-n // 128)
        model.compile(optimizer=experiment.sgd(args.target_epochs, steps, 0.05, "cosine"),
                      metrics=["accuracy"])
        model.fit(loader(x_all[:n], y_all[:n]), epochs=args.target_epochs, verbose=2)
        backbone.save(path)
        print(f"target: {time.time() - start:.0f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run_dir", default="runs/cifar10_datacentric")
    parser.add_argument("--data", default="../shared/datasets/cifar10_jpeg.npz")
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--more_iterations", default="10,300",
                        help="Extra iteration counts for eq. 6 without TI (comma list, empty: none).")
    parser.add_argument("--prepare", action="store_true",
                        help="Train the test ensemble and the target first when missing.")
    parser.add_argument("--subset", type=int, default=10000, help="(--prepare) training images.")
    parser.add_argument("--surrogate_epochs", type=int, default=15, help="(--prepare)")
    parser.add_argument("--target_epochs", type=int, default=30, help="(--prepare)")
    args = parser.parse_args()
    if args.prepare:
        prepare(args)

    import keras
    import numpy as np

    import keras_robust as kr
    from keras_robust import datacentric as dc

    def only(pattern: str) -> str:
        found = sorted(glob.glob(os.path.join(args.run_dir, pattern)))
        if not found:
            raise SystemExit(f"{args.run_dir} has no {pattern}: run examples/cifar10_datacentric.py "
                             "(or this script with --prepare) first.")
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
