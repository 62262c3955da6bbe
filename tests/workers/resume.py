"""Trains a defence with BackupAndRestore; optionally hangs mid-epoch to be killed.

    python tests/workers/resume.py DEFENSE BACKUP_DIR OUT.npz [KILL_MARKER]

With KILL_MARKER, the process writes that file at batch 2 of epoch 1 and then
sleeps, so the test can SIGKILL it mid-epoch; rerun without it, training
resumes from the last backup (the end of epoch 0) and finishes.
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from tests.defense_cases import CASES  # noqa: E402
from tests.helpers import tiny_cnn  # noqa: E402

name, backup_dir, output = sys.argv[1:4]
marker = sys.argv[4] if len(sys.argv) > 4 else None


class HangMidEpoch(keras.callbacks.Callback):
    def on_train_batch_begin(self, batch, logs=None):
        if marker and self.epoch == 1 and batch == 2:
            with open(marker, "w") as f:
                f.write("hanging")
            time.sleep(600)

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch


rng = np.random.default_rng(0)
x = rng.random((64, 8, 8, 1), dtype=np.float32)
y = (np.arange(64) % 3).astype(np.int32)
keras.utils.set_random_seed(0)
model = CASES[name].make(lambda: tiny_cnn(num_classes=3))
model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9))
model.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0,
          callbacks=[keras.callbacks.BackupAndRestore(backup_dir), HangMidEpoch()])
np.savez(output, *model.get_weights())
print("finished")
