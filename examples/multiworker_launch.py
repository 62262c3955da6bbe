"""Launches a multi-worker training on this machine: N local workers on loopback ports.

    python examples/multiworker_launch.py --workers=2 -- --defense=bat --epochs=1 \
        --train_limit=2000 --output_dir=runs/multiworker

Each worker runs `examples/train.py --strategy=multi_worker` with its own
`TF_CONFIG` ({"cluster": {"worker": [host:port, ...]}, "task": {"type": "worker",
"index": i}}); `tf.distribute.MultiWorkerMirroredStrategy` reads it, splits
every global batch over the workers and all-reduces gradients, so the workers
train one model. Worker 0 is the chief: its files land in `--output_dir`, the
others save to `--output_dir/.workers/` (every worker must run the same saving
code). On real machines, start the same `train.py` command on each machine
with that machine's `TF_CONFIG` (same cluster list, its own index).
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_integer("workers", 2, "Number of local worker processes.")
flags.DEFINE_string("host", "127.0.0.1", "Loopback address the workers listen on.")


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def main(argv):
    train_args = argv[1:]
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "train.py")
    cluster = {"worker": [f"{FLAGS.host}:{_free_port(FLAGS.host)}" for _ in range(FLAGS.workers)]}
    print("cluster:", json.dumps(cluster))
    processes = []
    for index in range(FLAGS.workers):
        env = {**os.environ,
               "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
        command = [sys.executable, script, "--strategy=multi_worker", *train_args]
        processes.append(subprocess.Popen(command, env=env))
    codes = [p.wait() for p in processes]
    print("worker exit codes:", codes)
    if any(codes):
        sys.exit(1)


if __name__ == "__main__":
    app.run(main)
