"""A behaviour fingerprint: fixed-seed outputs of every attack, defence and
pipeline, saved to compare two versions of the library bit for bit.

A refactor that claims "behaviour unchanged" runs this before and after:

    python bench/fingerprint.py --out runs/fingerprint_before.npz   # old tree
    python bench/fingerprint.py --out runs/fingerprint_after.npz \
        --compare runs/fingerprint_before.npz                       # new tree

`--compare` prints, per entry, the largest absolute difference and exits
non-zero when any entry differs by more than `--atol` (default 1e-6) or is
missing. It uses only public names, so that both trees can run it. Op
determinism is switched on, so two runs of one tree agree exactly.
"""
from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402


def _data(n: int = 32, num_classes: int = 10, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 16, 16, 3), dtype=np.float32)
    y = (np.arange(n) % num_classes).astype(np.int64)
    return x, y


def _backbone(keras, num_classes=10, seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((16, 16, 3)),
        keras.layers.Conv2D(8, 3, activation="relu"),
        keras.layers.BatchNormalization(),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(num_classes),
    ])


def fingerprint() -> dict[str, np.ndarray]:
    import keras
    import tensorflow as tf

    import keras_robust as kr

    tf.config.experimental.enable_op_determinism()
    out: dict[str, np.ndarray] = {}
    x, y = _data()
    model = _backbone(keras)
    a = kr.attacks
    eps = 8 / 255
    runs = {
        "pgd10": lambda: a.pgd(model, x, y, eps, 2 / 255, 10, seed=0),
        "pgd10_early": lambda: a.pgd(model, x, y, eps, 2 / 255, 10, seed=0, early_stop=True),
        "pgd5_cw_r2": lambda: a.pgd(model, x, y, eps, 2 / 255, 5, loss="cw", restarts=2, seed=1),
        "pgd5_l2_mc": lambda: a.pgd(model, x, y, 0.5, norm="l2", steps=5, target="mc", seed=2),
        "fgsm": lambda: a.fgsm(model, x, y, eps),
        "rfgsm": lambda: a.fgsm(model, x, y, eps, random_start=True, step_size=1.25 * eps,
                                seed=3),
        "mi_fgsm": lambda: a.mi_fgsm(model, x, y, eps, steps=5, seed=4),
        "apgd": lambda: a.apgd(model, x, y, eps, steps=10, seed=5),
        "apgd_t": lambda: a.apgd_targeted(model, x, y, eps, steps=10, num_targets=2, seed=6),
        "square": lambda: a.square(model, x, y, eps, queries=30, seed=7),
        "fab": lambda: a.fab(model, x, y, eps, steps=5, num_targets=2, seed=8),
        "cw_l2": lambda: a.cw_l2(model, x, y, steps=10),
    }
    for name, run in runs.items():
        out[f"attack/{name}"] = np.asarray(run())

    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    defences = {
        "pgd_at": lambda b: kr.PGDATModel(b, epsilon=0.05, step_size=0.02, steps=2, seed=0),
        "bat": lambda b: kr.BATModel(b, epsilon=0.05, seed=0),
        "bpfc": lambda b: kr.BPFCModel(b, seed=0),
        "mtlat": lambda b: kr.MTLATModel(b, epsilon_max=0.05, seed=0),
        "afs": lambda b: kr.AFSModel([_backbone(keras, seed=1), _backbone(keras, seed=2)],
                                     epsilon=0.05, steps=2, seed=0),
    }
    for name, make in defences.items():
        defence = make(_backbone(keras))
        defence.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
                        metrics=["accuracy"])
        history = defence.fit(ds, epochs=1, verbose=0)
        out[f"fit/{name}/loss"] = np.asarray(history.history["loss"])
        out[f"fit/{name}/logits"] = np.asarray(defence.predict(x, verbose=0))

    surrogates = [_backbone(keras, seed=3), _backbone(keras, seed=4)]
    images = (x * 255).astype(np.uint8)
    d_inf, d_2 = kr.datacentric.perturbations(
        surrogates, images, y, kr.datacentric.AttackSettings(iterations=3), batch_size=16)
    out["eq6/delta_linf"], out["eq6/delta_l2"] = d_inf, d_2

    report = kr.evaluate.robustness_report(model, (x, y), attacks="quick", progress=False)
    for key, value in sorted(report.results["attacks"].items()):
        accuracy = value["accuracy"] if isinstance(value, dict) else value
        out[f"report/{key}"] = np.asarray(accuracy, dtype=np.float64)
    out["report/clean"] = np.asarray(report.clean_accuracy, dtype=np.float64)
    out["report/worst"] = np.asarray(report.robust_accuracy, dtype=np.float64)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="where to save the .npz fingerprint")
    parser.add_argument("--compare", help="a fingerprint .npz to compare with")
    parser.add_argument("--atol", type=float, default=1e-6)
    args = parser.parse_args(argv)
    values = fingerprint()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    np.savez(args.out, **values)
    print(f"{len(values)} entries saved to {args.out}")
    if not args.compare:
        return 0
    reference = dict(np.load(args.compare))
    worst, failed = 0.0, []
    for key in sorted(set(reference) | set(values)):
        if key not in values or key not in reference:
            failed.append(f"{key}: only in {'the reference' if key in reference else 'this run'}")
            continue
        if reference[key].shape != values[key].shape:
            failed.append(f"{key}: shape {values[key].shape} vs {reference[key].shape}")
            continue
        diff = float(np.max(np.abs(values[key].astype(np.float64) - reference[key]))) \
            if values[key].size else 0.0
        worst = max(worst, diff)
        print(f"{key:28s} max |diff| {diff:.3g}")
        if not diff <= args.atol:
            failed.append(f"{key}: max |diff| {diff:.3g} > {args.atol}")
    print(f"largest difference {worst:.3g} over {len(reference)} entries")
    for line in failed:
        print("DIFFERS:", line)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
