"""Serving latency of an exported defence (SavedModel `serve`) at batch 1 and 256.

    python bench/serving.py --model=runs/bat_R-MC-LA_small_cnn_5ep/savedmodel
    python bench/serving.py                       # exports an untrained small_cnn first

Loads the SavedModel with `tf.saved_model.load` (as TF Serving would), warms it
up, then times `serve` on float32 [0, 1] batches: median, p90 and p99 latency
in milliseconds and images per second for each batch size, interleaving the
batch sizes round by round (the machine is shared). Writes JSON.
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time

from absl import app, flags

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, "A SavedModel directory (default: export a small_cnn).")
flags.DEFINE_list("batch_sizes", ["1", "256"], "Batch sizes to time.")
flags.DEFINE_integer("rounds", 5, "Interleaved rounds.")
flags.DEFINE_integer("calls", 20, "Calls per batch size and round.")
flags.DEFINE_string("output", "bench/results/serving.json", "JSON output path.")
flags.DEFINE_boolean("progress", True, "A bar over the rounds on stderr when it is a terminal "
                     "(KERAS_ROBUST_PROGRESS=1 forces it).")


def _percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main(argv):
    del argv
    import numpy as np
    import tensorflow as tf

    import keras_robust as kr

    path = FLAGS.model
    if path is None:
        path = os.path.join(tempfile.mkdtemp(), "savedmodel")
        model = kr.RobustModel(kr.backbones.small_cnn(num_classes=10), seed=0)
        model.export(path, verbose=False)
    loaded = tf.saved_model.load(path)
    signature = loaded.signatures["serve"]
    spec = list(signature.structured_input_signature[1].values())[0]
    shape = spec.shape.as_list()[1:]
    rng = np.random.default_rng(0)
    batches = {int(b): tf.constant(rng.random((int(b), *shape), dtype=np.float32))
               for b in FLAGS.batch_sizes}
    for batch in batches.values():  # warm-up (first calls build kernels)
        for _ in range(3):
            loaded.serve(batch).numpy()
    latencies = {size: [] for size in batches}
    from keras_robust import progress as _progress

    bar = _progress.bar("[bench serving] ", FLAGS.rounds * len(batches), FLAGS.progress,
                        unit="size")
    for _ in range(FLAGS.rounds):
        for size, batch in batches.items():
            for _ in range(FLAGS.calls):
                start = time.perf_counter()
                loaded.serve(batch).numpy()
                latencies[size].append(1000 * (time.perf_counter() - start))
            bar.update()  # between the timed calls
    rows = []
    print(f"SavedModel {path}, input {shape}, {FLAGS.rounds} x {FLAGS.calls} calls per size")
    print(f"{'batch':>6}{'p50 ms':>10}{'p90 ms':>10}{'p99 ms':>10}{'images/s':>11}")
    for size, values in latencies.items():
        median = statistics.median(values)
        row = {"batch_size": size, "p50_ms": median, "p90_ms": _percentile(values, 0.9),
               "p99_ms": _percentile(values, 0.99), "images_per_second": size * 1000 / median}
        rows.append(row)
        print(f"{size:>6}{median:>10.2f}{row['p90_ms']:>10.2f}{row['p99_ms']:>10.2f}"
              f"{row['images_per_second']:>11.0f}")
    os.makedirs(os.path.dirname(os.path.abspath(FLAGS.output)), exist_ok=True)
    with open(FLAGS.output, "w") as f:
        json.dump({"model": path, "input_shape": shape, "rows": rows,
                   "command": " ".join(sys.argv)}, f, indent=2)
    print(f"wrote {FLAGS.output}")


if __name__ == "__main__":
    app.run(main)
