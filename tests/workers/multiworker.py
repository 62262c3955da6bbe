"""One worker of a MultiWorkerMirroredStrategy run (TF_CONFIG set by the test).

    TF_CONFIG=... python tests/workers/multiworker.py OUTPUT_DIR

Trains PGD-AT on a tiny task for one epoch; the chief writes the model to
OUTPUT_DIR/model.keras, other workers to a scratch folder (as TensorFlow
recommends, every worker saves, only the chief's copy is kept).
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_robust as kr  # noqa: E402
from keras_robust import experiment  # noqa: E402
from tests.helpers import tiny_cnn  # noqa: E402

output_dir = sys.argv[1]
strategy = experiment.strategy("multi_worker")
rng = np.random.default_rng(0)
x = rng.random((64, 8, 8, 1), dtype=np.float32)
y = (np.arange(64) % 3).astype(np.int32)
dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
with strategy.scope():
    model = kr.PGDATModel(tiny_cnn(num_classes=3), epsilon=0.05, step_size=0.02, steps=2, seed=0)
    model.compile(optimizer="sgd", metrics=["accuracy"])
history = model.fit(dataset, epochs=1, verbose=0)
path = experiment.worker_path(output_dir, "model.keras")
model.save(path)
task = json.loads(os.environ["TF_CONFIG"])["task"]
print(json.dumps({"task": task, "loss": history.history["loss"][0], "saved": path,
                  "replicas": strategy.num_replicas_in_sync}))
