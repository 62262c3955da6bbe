"""NumPy transcriptions of the single-step training attacks, for the tests.

`fgsm_rs_step` follows locuslab/fast_adversarial `CIFAR10/train_fgsm.py`
(`--delta-init random`), `n_fgsm_step` pdejorge/N-FGSM `train.py` (`--unif`,
`--clip -1`), both in pixel space (the references divide by the dataset's
std; on the [0, 1] scale that is the identity), on a linear model
logits = flatten(x) W + b in float64 with the CE input gradient written by
hand. `unit_noise` is U(-1, 1), the same draw the library scales; the
scaling by the radius is the reference's. Nothing here imports keras_robust.
"""
from __future__ import annotations

import numpy as np

from tests.reference_paired import linear_logits, softmax


def ce_input_gradient(W: np.ndarray, b: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """d/dx of sum_i CE(flatten(x_i) W + b, y_i): W (p - onehot(y)) per sample."""
    p = softmax(linear_logits(W, b, x))
    p[np.arange(len(x)), y] -= 1.0
    return (p @ W.T).reshape(x.shape)


def fgsm_rs_step(W, b, x, y, unit_noise, epsilon, alpha):
    """delta ~ U(-eps, eps) clamped to [0, 1] - x; one sign step; clamp to the ball, then [0, 1] - x."""
    delta = np.clip(epsilon * unit_noise, -x, 1.0 - x)
    grad = ce_input_gradient(W, b, x + delta, y)
    delta = np.clip(delta + alpha * np.sign(grad), -epsilon, epsilon)
    delta = np.clip(delta, -x, 1.0 - x)
    return x + delta


def n_fgsm_step(W, b, x, y, unit_noise, epsilon, alpha, unif=2.0):
    """eta ~ U(-unif eps, unif eps) clamped to [0, 1] - x; delta = eta + alpha sign(grad), clamped to [0, 1] - x only."""
    eta = np.clip(unif * epsilon * unit_noise, -x, 1.0 - x)
    grad = ce_input_gradient(W, b, x + eta, y)
    delta = np.clip(eta + alpha * np.sign(grad), -x, 1.0 - x)
    return x + delta
