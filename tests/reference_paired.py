"""NumPy transcriptions of the TRADES and MART authors' functions, for the tests.

`trades_loss` follows yaodongyu/TRADES `trades.py` (`trades_loss`, from the
logits on), `mart_loss` follows YisenWang/MART `mart.py` (`mart_loss`),
`trades_attack_linf` / `trades_attack_l2` the two branches of the TRADES
inner loop, all on a linear model logits = flatten(x) W + b in float64, with
the gradients written by hand. Nothing here imports keras_robust.
"""
from __future__ import annotations

import numpy as np


def log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def softmax(z: np.ndarray) -> np.ndarray:
    return np.exp(log_softmax(z))


def linear_logits(W: np.ndarray, b: np.ndarray, x: np.ndarray) -> np.ndarray:
    return x.reshape(len(x), -1).astype(np.float64) @ W + b


def kl_div_sum(log_input: np.ndarray, target: np.ndarray) -> np.ndarray:
    """PyTorch's `KLDivLoss(reduction='none')`: target * (log target - input), 0 where target is 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(target > 0, target * (np.log(target) - log_input), 0.0)
    return out


def trades_loss(W, b, x, x_adv, y, beta) -> float:
    """`trades_loss` after the attack: CE(logits, y) + beta * KLDivLoss(sum)(log p', p) / B."""
    logits, logits_adv = linear_logits(W, b, x), linear_logits(W, b, x_adv)
    batch = len(x)
    natural = -log_softmax(logits)[np.arange(batch), y].mean()
    robust = kl_div_sum(log_softmax(logits_adv), softmax(logits)).sum() / batch
    return float(natural + beta * robust)


def mart_loss(W, b, x, x_adv, y, beta) -> float:
    """`mart_loss` after the attack, line by line."""
    logits, logits_adv = linear_logits(W, b, x), linear_logits(W, b, x_adv)
    batch = len(x)
    adv_probs = softmax(logits_adv)
    tmp1 = np.argsort(adv_probs, axis=1)[:, -2:]
    new_y = np.where(tmp1[:, -1] == y, tmp1[:, -2], tmp1[:, -1])
    loss_adv = (-log_softmax(logits_adv)[np.arange(batch), y].mean()
                - np.log(1.0001 - adv_probs + 1e-12)[np.arange(batch), new_y].mean())
    nat_probs = softmax(logits)
    true_probs = nat_probs[np.arange(batch), y]
    kl = kl_div_sum(np.log(adv_probs + 1e-12), nat_probs).sum(axis=1)
    loss_robust = (1.0 / batch) * np.sum(kl * (1.0000001 - true_probs))
    return float(loss_adv + beta * loss_robust)


def numeric_gradient(loss, W, b, h=1e-6):
    """Central differences of `loss(W, b)` in every entry of W and b (float64)."""
    grads = []
    for array in (W, b):
        grad = np.zeros_like(array)
        for index in np.ndindex(array.shape):
            old = array[index]
            array[index] = old + h
            up = loss(W, b)
            array[index] = old - h
            down = loss(W, b)
            array[index] = old
            grad[index] = (up - down) / (2 * h)
        grads.append(grad)
    return grads


def _kl_input_gradient(W, b, x_adv, p):
    """d/dx' of sum_i KL(p_i || softmax(x'_i W + b)): (q - p) W^T per image."""
    q = softmax(linear_logits(W, b, x_adv))
    return ((q - p) @ W.T).reshape(x_adv.shape)


def trades_attack_linf(W, b, x, noise, epsilon, step_size, steps):
    """The L-inf branch: x + noise, then K sign steps on the KL, box then [0, 1] after each."""
    p = softmax(linear_logits(W, b, x))
    x_adv = x + noise
    for _ in range(steps):
        grad = _kl_input_gradient(W, b, x_adv, p)
        x_adv = x_adv + step_size * np.sign(grad)
        x_adv = np.minimum(np.maximum(x_adv, x - epsilon), x + epsilon)
        x_adv = np.clip(x_adv, 0.0, 1.0)
    return x_adv


def trades_attack_l2(W, b, x, noise, epsilon, steps):
    """The L2 branch: SGD on delta (lr 2 eps / K) along the normalised KL gradient, clamp, renorm."""
    p = softmax(linear_logits(W, b, x))
    delta = noise.copy()
    batch = len(x)
    for _ in range(steps):
        grad = -_kl_input_gradient(W, b, x + delta, p)  # the gradient of the negated KL
        norms = np.sqrt((grad.reshape(batch, -1) ** 2).sum(axis=1))
        grad = grad / norms.reshape(-1, 1, 1, 1)
        delta = delta - (2 * epsilon / steps) * grad
        delta = np.clip(x + delta, 0.0, 1.0) - x
        norms = np.sqrt((delta.reshape(batch, -1) ** 2).sum(axis=1))
        delta = delta * np.minimum(1.0, epsilon / np.maximum(norms, 1e-300)).reshape(-1, 1, 1, 1)
    return np.clip(x + delta, 0.0, 1.0)
