#!/usr/bin/env python3
"""Throughput of every corruption in keras_robust.corruptions, in one run.

Corrupts N CIFAR-10 test images with every corruption at severities 1..5
(one ``corrupt`` call per (corruption, severity) on the whole batch), prints
images/s per corruption averaged over the severities, and the total wall
time. Acceptance target: all corruptions x 5 severities over 1000 images in
under 5 minutes on the 2-core build machine.

    python bench/corruptions.py --images 1000 --output runs/bench_corruptions.json

``--data`` defaults to ``../shared/datasets/cifar10_jpeg.npz`` relative to the
repository root; when it is missing, random images are used (the timing of a
few corruptions depends a little on content, so say which you used).
"""
from __future__ import annotations

import argparse
import io
import json
import os
import platform
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DATA = os.path.join(ROOT, "..", "shared", "datasets", "cifar10_jpeg.npz")


def load_images(path: str, count: int, size: int) -> tuple[np.ndarray, str]:
    """First ``count`` CIFAR-10 test images (resized to ``size``), or random ones."""
    if os.path.exists(path):
        from PIL import Image

        archive = np.load(path)
        offsets, blob = archive["test_offsets"], archive["test_jpeg"]
        count = min(count, len(offsets) - 1)
        images = []
        for i in range(count):
            image = Image.open(io.BytesIO(blob[offsets[i] : offsets[i + 1]].tobytes())).convert("RGB")
            if size != 32:
                image = image.resize((size, size), Image.Resampling.BICUBIC)
            images.append(np.asarray(image))
        return np.stack(images), f"CIFAR-10 test[:{count}] from {os.path.abspath(path)}"
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (count, size, size, 3), dtype=np.uint8), "random uint8 images"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=1000, help="number of images")
    parser.add_argument("--data", default=DEFAULT_DATA, help="cifar10_jpeg.npz path")
    parser.add_argument("--size", type=int, default=32, help="resize images to SIZE x SIZE")
    parser.add_argument("--names", default="all", help="comma-separated corruption names, or 'all'")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="", help="write the results as JSON here")
    parser.add_argument("--no_progress", dest="progress", action="store_false",
                        help="no bar on stderr (shown on a terminal, or with "
                             "KERAS_ROBUST_PROGRESS=1)")
    args = parser.parse_args(argv)

    import keras_robust.corruptions as kc

    names = kc.NAMES if args.names == "all" else tuple(n.strip() for n in args.names.split(","))
    images, source = load_images(args.data, args.images, args.size)
    print(f"{len(names)} corruptions x 5 severities on {len(images)} images ({images.shape[1:]}) - {source}")
    print(f"{'corruption':<20s}{'img/s':>10s}{'seconds':>10s}   per severity (s)")
    rows = {}
    from keras_robust import progress as _progress

    bar = _progress.bar("[bench corruptions] ", 5 * len(names), args.progress, unit="severity")
    start = time.perf_counter()
    for name in names:
        per_sev = []
        for severity in range(1, 6):
            tic = time.perf_counter()
            out = kc.corrupt(images, name, severity, seed=args.seed)
            per_sev.append(time.perf_counter() - tic)
            bar.update()
            assert out.shape == images.shape and out.dtype == np.uint8
        seconds = float(sum(per_sev))
        rate = 5 * len(images) / seconds
        rows[name] = {"images_per_s": rate, "seconds": seconds, "seconds_per_severity": per_sev}
        sev = " ".join(f"{t:.2f}" for t in per_sev)
        print(f"{name:<20s}{rate:>10.0f}{seconds:>10.2f}   {sev}", flush=True)
    total = time.perf_counter() - start
    print(f"total wall time: {total:.1f} s for {len(names)} x 5 x {len(images)} images")
    if args.output:
        os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
        with open(args.output, "w") as f:
            json.dump(
                {
                    "images": len(images),
                    "image_shape": list(images.shape[1:]),
                    "source": source,
                    "total_seconds": total,
                    "corruptions": rows,
                    "cpu_count": os.cpu_count(),
                    "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
                    "python": sys.version.split()[0],
                    "platform": platform.platform(),
                },
                f,
                indent=2,
            )
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
