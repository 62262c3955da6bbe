"""The main job: a short CIFAR-10 adversarial training with a robustness summary.

    python examples/quickstart.py

Trains `small_cnn` with bilateral adversarial training (BAT's R-MC-LA: one
targeted step toward the most confusing class from a random start, adversarial
labels with beta 9, eps 8/255) for 2 epochs on 10,000 CIFAR-10 images, with
no augmentation and no weight decay (the short-run recipe of BUILD_NOTES: in 2
epochs they only slow the fit), then prints, on 500 test images at eps 8/255,
clean accuracy and accuracy under FGSM, PGD-10 and PGD-20 with the
cross-entropy (CE) loss, PGD-20 with the CW margin loss and APGD-T with the DLR
margin loss; the worst case over these attacks, with the attack that reached
it, as the headline robust figure; and a WARNING when the CE and margin-loss
figures disagree by the report's check 5 (the CE loss is masked and overstates
robustness). It writes the model, a SavedModel and summary.json to
runs/quickstart/. Measured with the local copy: 31.2% clean, 12.8% FGSM, 10.6%
PGD-10, 10.8% PGD-20, 8.2% CW-20, 7.6% APGD-T, so a worst case of 7.6%
(APGD-T) and the warning: this BAT model masks the CE loss, and its PGD-20
figure alone would overstate the worst case by 3.2 points. It takes a
few minutes on an idle 2-core CPU. Data: a local CIFAR-10 copy when found
(`$KERAS_ROBUST_CIFAR10` or `../shared/datasets/cifar10_jpeg.npz`), else TFDS.
Every flag of examples/train.py works here too (e.g. --epochs=5 --train_limit=0).
"""
from __future__ import annotations

import os
import sys

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train  # noqa: E402  (examples/train.py, the generic trainer)

for name, value in {
    "defense": "bat", "steps": 1, "step_size": 8.0, "epochs": 2, "train_limit": 10_000,
    "eval_limit": 500, "augment": False, "weight_decay": 0.0, "output_dir": "runs/quickstart",
}.items():
    flags.FLAGS.set_default(name, value)

if __name__ == "__main__":
    app.run(train.main)
