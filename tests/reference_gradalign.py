"""NumPy transcription of GradAlign (tml-epfl/understanding-fast-adv-training), for the tests.

On a linear model logits = flatten(x) W + b, in float64: the input gradient of
the summed cross-entropy is W (p - onehot(y)) per sample (`ce_input_gradient`),
the alignment term is 1 - mean_i cos(g(x_i), g(x_i + eta_i)) with each norm
floored at 1e-8 (torch's `cosine_similarity`), eta not clipped to the image;
FGSM starts at zero and steps epsilon (`--attack_init zero`). Weight
gradients of the term are central finite differences. Nothing here imports
keras_robust.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from tests.reference_paired import linear_logits, softmax
from tests.reference_single_step import ce_input_gradient


def cosines(g1: np.ndarray, g2: np.ndarray, eps: float = 1e-8) -> np.ndarray:
    """Per-sample cosine of flattened gradients, each norm at least eps."""
    g1, g2 = g1.reshape(len(g1), -1), g2.reshape(len(g2), -1)
    n1 = np.maximum(np.linalg.norm(g1, axis=1), eps)
    n2 = np.maximum(np.linalg.norm(g2, axis=1), eps)
    return (g1 * g2).sum(1) / (n1 * n2)


def alignment(W, b, x, y, eta, frozen_first: tuple | None = None) -> float:
    """1 - mean cos(g(x), g(x + eta)); `frozen_first` = (W0, b0) takes g(x) at fixed weights."""
    W1, b1 = (W, b) if frozen_first is None else frozen_first
    return 1.0 - cosines(ce_input_gradient(W1, b1, x, y), ce_input_gradient(W, b, x + eta, y)).mean()


def fgsm_zero(W, b, x, y, epsilon):
    """FGSM from a zero start, step epsilon, clamped to the ball and to [0, 1]."""
    delta = np.clip(epsilon * np.sign(ce_input_gradient(W, b, x, y)), -epsilon, epsilon)
    return np.clip(x + delta, 0.0, 1.0)


def ce_weight_gradient(W, b, x, y):
    """d/d(W, b) of the batch-mean cross-entropy of the linear model."""
    p = softmax(linear_logits(W, b, x))
    p[np.arange(len(x)), y] -= 1.0
    flat = x.reshape(len(x), -1)
    return flat.T @ p / len(x), p.mean(0)


def finite_differences(f: Callable[[np.ndarray, np.ndarray], float], W, b, h: float = 1e-6):
    """Central differences of f(W, b) in every entry of W and b."""
    grads = []
    for which in (0, 1):
        params = [W.copy(), b.copy()]
        grad = np.zeros_like(params[which])
        for index in np.ndindex(grad.shape):
            params[which][index] += h
            up = f(*params)
            params[which][index] -= 2 * h
            down = f(*params)
            params[which][index] += h
            grad[index] = (up - down) / (2 * h)
        grads.append(grad)
    return grads
