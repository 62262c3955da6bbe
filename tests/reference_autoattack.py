"""Independent NumPy ports of the AutoAttack reference code, for tests only.

Written from the text of fra31/auto-attack (`autoattack/autopgd_base.py`,
`APGDAttack.attack_single_run`, L-inf) and max-andr/square-attack
(`attack.py`, `p_selection` and `square_attack_linf`), not from
keras_robust: the tests compare the library with these.

The model is a one-hidden-layer tanh network with fixed weights, whose input
gradient is written out by hand (no TensorFlow), so the ports share nothing
with the code under test.
"""
from __future__ import annotations

import numpy as np


class TanhNet:
    """logits = tanh(x W1 + b1) W2 + b2 on flattened images, in float64."""

    def __init__(self, w1, b1, w2, b2):
        self.w1, self.b1, self.w2, self.b2 = (np.asarray(a, np.float64) for a in (w1, b1, w2, b2))

    def logits(self, flat: np.ndarray) -> np.ndarray:
        return np.tanh(flat @ self.w1 + self.b1) @ self.w2 + self.b2

    def loss_and_grad(self, flat, y, loss, target=None):
        """Per-sample objective (AutoAttack's definitions) and its input gradient."""
        hidden = np.tanh(flat @ self.w1 + self.b1)
        z = hidden @ self.w2 + self.b2
        n, c = z.shape
        rows = np.arange(n)
        onehot = np.eye(c)
        if loss == "ce":  # CrossEntropyLoss(reduction="none")
            p = np.exp(z - z.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            value = -np.log(p[rows, y])
            dz = p - onehot[y]
        elif loss == "dlr":  # dlr_loss: -(z_y - max_{j!=y} z_j) / (z_pi1 - z_pi3 + 1e-12)
            order = np.argsort(z, axis=1)
            top1, top2, top3 = order[:, -1], order[:, -2], order[:, -3]
            other = np.where(top1 == y, top2, top1)
            num = z[rows, y] - z[rows, other]
            den = z[rows, top1] - z[rows, top3] + 1e-12
            value = -num / den
            dz = (-(onehot[y] - onehot[other]) / den[:, None]
                  + (num / den**2)[:, None] * (onehot[top1] - onehot[top3]))
        elif loss == "dlr-targeted":  # dlr_loss_targeted
            order = np.argsort(z, axis=1)
            top1, top3, top4 = order[:, -1], order[:, -3], order[:, -4]
            num = z[rows, y] - z[rows, target]
            den = z[rows, top1] - 0.5 * (z[rows, top3] + z[rows, top4]) + 1e-12
            value = -num / den
            dz = (-(onehot[y] - onehot[target]) / den[:, None]
                  + (num / den**2)[:, None]
                  * (onehot[top1] - 0.5 * onehot[top3] - 0.5 * onehot[top4]))
        else:
            raise ValueError(loss)
        d_hidden = (dz @ self.w2.T) * (1.0 - hidden**2)
        return value, d_hidden @ self.w1.T, z


def apgd_linf_single_run(net, x, y, x_init, eps, n_iter, loss, target=None, rho=0.75,
                         strict=False, first_compare="zero"):
    """`APGDAttack.attack_single_run` for the L-inf norm (eot_iter=1), in NumPy.

    Args:
        net: a `TanhNet`.
        x: clean images, flattened [B, d] float64.
        y: true classes [B].
        x_init: the starting point [B, d] (the reference draws it at random;
            here it is given so that both sides start together).
        eps: the L-inf budget.
        n_iter: iterations.
        loss: "ce", "dlr" or "dlr-targeted".
        target: target classes for "dlr-targeted".
        rho: the oscillation threshold (`thr_decr`).
        strict: the reference halves when the count of increases is
            `<= k * rho`; `strict=True` uses `<` (the paper's condition 1).
        first_compare: the reference's `check_oscillation` reads
            `loss_steps[-1]` (a row of zeros) as the objective before the
            first step ("zero"); "start" uses the objective at `x_init` (the
            paper's f(x^(0))).

    Returns:
        dict with x_best, loss_best, loss_best_steps ([n_iter + 1, B]),
        x_best_adv (the last misclassified iterate), acc (still correctly
        classified after every iterate) and halvings (per sample).
    """
    x = np.asarray(x, np.float64)
    batch = x.shape[0]
    # init_hyperparam
    n_iter_2 = max(int(0.22 * n_iter), 1)
    n_iter_min = max(int(0.06 * n_iter), 1)
    size_decr = max(int(0.03 * n_iter), 1)

    x_adv = np.clip(np.asarray(x_init, np.float64), 0.0, 1.0)
    x_best = x_adv.copy()
    x_best_adv = x_adv.copy()
    loss_steps = np.zeros([n_iter, batch])
    loss_best_steps = np.zeros([n_iter + 1, batch])

    loss_indiv, grad, logits = net.loss_and_grad(x_adv, y, loss, target)
    grad_best = grad.copy()
    acc = logits.argmax(1) == y
    loss_best = loss_indiv.copy()
    loss_best_steps[0] = loss_best
    initial_loss = loss_indiv.copy()

    step_size = 2.0 * eps * np.ones([batch, 1])
    x_adv_old = x_adv.copy()
    k = n_iter_2
    counter3 = 0
    loss_best_last_check = loss_best.copy()
    reduced_last_check = np.ones(batch)
    halvings = np.zeros(batch, np.int64)

    for i in range(n_iter):
        grad2 = x_adv - x_adv_old
        x_adv_old = x_adv.copy()
        a = 0.75 if i > 0 else 1.0
        x_adv_1 = x_adv + step_size * np.sign(grad)
        x_adv_1 = np.clip(np.minimum(np.maximum(x_adv_1, x - eps), x + eps), 0.0, 1.0)
        x_adv_1 = np.clip(
            np.minimum(np.maximum(x_adv + (x_adv_1 - x_adv) * a + grad2 * (1 - a), x - eps),
                       x + eps), 0.0, 1.0)
        x_adv = x_adv_1

        loss_indiv, grad, logits = net.loss_and_grad(x_adv, y, loss, target)
        pred = logits.argmax(1) == y
        acc = np.minimum(acc, pred)
        x_best_adv[~pred] = x_adv[~pred]

        y1 = loss_indiv.copy()
        loss_steps[i] = y1
        ind = y1 > loss_best
        x_best[ind] = x_adv[ind]
        grad_best[ind] = grad[ind]
        loss_best[ind] = y1[ind]
        loss_best_steps[i + 1] = loss_best

        counter3 += 1
        if counter3 == k:
            # check_oscillation(loss_steps, i, k, loss_best, k3=rho)
            t = np.zeros(batch)
            for counter5 in range(k):
                before = i - counter5 - 1
                if before < 0 and first_compare == "start":
                    previous = initial_loss
                else:
                    previous = loss_steps[before]  # index -1: the last row (zeros)
                t += (loss_steps[i - counter5] > previous).astype(np.float64)
            fl_oscillation = (t < k * rho) if strict else (t <= k * rho)
            fl_oscillation = fl_oscillation.astype(np.float64)
            fl_reduce_no_impr = (1.0 - reduced_last_check) * (
                loss_best_last_check >= loss_best).astype(np.float64)
            fl_oscillation = np.maximum(fl_oscillation, fl_reduce_no_impr)
            reduced_last_check = fl_oscillation.copy()
            loss_best_last_check = loss_best.copy()
            halve = fl_oscillation > 0
            step_size[halve] /= 2.0
            halvings += halve
            x_adv[halve] = x_best[halve]
            grad[halve] = grad_best[halve]
            k = max(k - size_decr, n_iter_min)
            counter3 = 0

    return dict(x_best=x_best, loss_best=loss_best, loss_best_steps=loss_best_steps,
                x_best_adv=x_best_adv, acc=acc, halvings=halvings)


def square_p_selection(p_init: float, it: int, n_iters: int) -> float:
    """`p_selection` of square-attack's attack.py (the same in AutoAttack's square.py)."""
    it = int(it / n_iters * 10000)
    if 10 < it <= 50:
        return p_init / 2
    if 50 < it <= 200:
        return p_init / 4
    if 200 < it <= 500:
        return p_init / 8
    if 500 < it <= 1000:
        return p_init / 16
    if 1000 < it <= 2000:
        return p_init / 32
    if 2000 < it <= 4000:
        return p_init / 64
    if 4000 < it <= 6000:
        return p_init / 128
    if 6000 < it <= 8000:
        return p_init / 256
    if 8000 < it:
        return p_init / 512
    return p_init


def square_side(p: float, h: int, w: int, c: int) -> int:
    """`square_attack_linf`'s square side: round(sqrt(p * n_features / c)) in [1, h - 1]."""
    n_features = c * h * w
    s = int(round(np.sqrt(p * n_features / c)))
    return min(max(s, 1), h - 1)


def apgd_checkpoint_iterations(n_iter: int) -> list[int]:
    """The iterations i (0-based) after which `attack_single_run` checks the step size:
    `counter3 == k`, k starting at n_iter_2 and shrinking by size_decr to n_iter_min."""
    k, counter3, out = max(int(0.22 * n_iter), 1), 0, []
    for i in range(n_iter):
        counter3 += 1
        if counter3 == k:
            out.append(i)
            k = max(k - max(int(0.03 * n_iter), 1), max(int(0.06 * n_iter), 1))
            counter3 = 0
    return out


def apgd_p_schedule(count: int) -> list[float]:
    """The paper's p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06)."""
    p = [0.0, 0.22]
    while len(p) < count:
        p.append(p[-1] + max(p[-1] - p[-2] - 0.03, 0.06))
    return p
