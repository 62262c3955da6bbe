"""Constants and small functions the attack tests share."""
from __future__ import annotations

import numpy as np
import tensorflow as tf

EPS = 8 / 255


def _accuracy(model, x, y):
    return float(np.mean(np.argmax(np.asarray(model(tf.constant(np.asarray(x)))), -1) == y))
