"""Projected gradient descent (Madry et al. 2018) and FGSM (Goodfellow et al. 2015)."""
from __future__ import annotations

from typing import Any

import tensorflow as tf

from keras_robust._validation import check_choice, check_positive, check_positive_int
from keras_robust.attacks._common import (
    as_logits_fn,
    as_seed,
    run_compiled,
    validate_common,
)
from keras_robust.attacks._engine import with_restarts
from keras_robust.attacks.objectives import OBJECTIVES
from keras_robust.attacks.targets import check_target

_COMPILED: dict = {}


def _pgd_impl(model, x, y, epsilon, step_size, steps, norm, target, loss, random_start,
              restarts, seed, early_stop):
    return with_restarts(
        as_logits_fn(model), x, y, restarts=restarts, loss=loss, seed=seed,
        epsilon=epsilon, step_size=step_size, steps=steps, norm=norm, target=target,
        random_start=random_start, early_stop=early_stop,
    )


def pgd(
    model: Any,
    x: Any,
    y: Any,
    epsilon: float | Any,
    step_size: float | Any | None = None,
    steps: int = 10,
    *,
    norm: str = "linf",
    target: Any = None,
    loss: str = "ce",
    random_start: bool = True,
    restarts: int = 1,
    seed: int | Any | None = None,
    early_stop: bool = False,
    jit_compile: bool = False,
) -> tf.Tensor:
    """Projected gradient descent inside an L-inf or L2 ball.

    Args:
        model: a Keras model, an `Ensemble`, a list of models (averaged), or
            any callable mapping [0, 1] images to logits.
        x: float images in [0, 1], [B, H, W, C].
        y: true labels: class indices, one-hot or soft rows.
        epsilon: the budget (scalar or one per sample), on the [0, 1] scale.
        step_size: the step; default 2.5 * epsilon / steps.
        steps: number of steps.
        norm: "linf" or "l2".
        target: None (untargeted), "mc" (most confusing class), "ll" (least
            likely class), "random", or target labels.
        loss: "ce", "cw" (margin), "dlr" (difference of logits ratio) or "logit".
        random_start: start from a random point of the ball (L-inf: uniform in
            the box; L2: a uniform direction at a uniformly drawn radius).
        restarts: number of random restarts; per sample the worst case is kept
            (an adversarial example if any restart found one).
        seed: an int (or [2] ints) for reproducible randomness.
        early_stop: for evaluation: keep each sample's first adversarial
            iterate (misclassified, or classified as its target) and run the
            later steps on the samples still standing only. Each sample follows
            the same path as without it until it is fooled, so robust accuracy
            is never higher (it is lower only where the plain attack's last
            iterate is classified correctly again), and the attack costs
            steps x the standing fraction: on a model that few images
            withstand, a fraction of the full cost (bench/attacks.py). With
            restarts, a restart attacks only the samples that no earlier one
            fooled. Not for training: a fooled sample stops at the boundary
            instead of climbing the loss.
        jit_compile: compile the attack with XLA (not with `early_stop`, whose
            batches shrink as samples fall).

    Returns:
        float32 adversarial images inside the ball and [0, 1].

    Example:

    >>> model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
    ...                           keras.layers.Dense(10)])
    >>> x = np.random.default_rng(0).random((4, 8, 8, 3), "float32")
    >>> y = np.array([0, 1, 2, 3])
    >>> x_fast = pgd(model, x, y, 8 / 255, 2 / 255, steps=10, early_stop=True, seed=0)
    >>> bool(np.abs(x_fast - x).max() <= 8 / 255 + 1e-6)
    True
    >>> x_adv = pgd(model, x, y, epsilon=8 / 255, step_size=2 / 255, steps=2, seed=0)
    >>> x_adv.shape, x_adv.dtype, bool(np.abs(x_adv - x).max() <= 8 / 255 + 1e-6)
    (TensorShape([4, 8, 8, 3]), tf.float32, True)
    >>> x_cw = pgd(model, x, y, 8 / 255, 2 / 255, 2, loss="cw", restarts=2, seed=0)
    >>> x_l2 = pgd(model, x, y, epsilon=0.5, norm="l2", steps=2, seed=0)
    >>> l2 = np.sqrt(np.square(x_l2 - x).reshape(4, -1).sum(axis=1))
    >>> bool(np.abs(x_cw - x).max() <= 8 / 255 + 1e-6), bool(np.all(l2 <= 0.5 + 1e-5))
    (True, True)
    """
    x = validate_common(x, epsilon, norm)
    steps = check_positive_int(steps, "steps")
    restarts = check_positive_int(restarts, "restarts")
    check_choice(loss, OBJECTIVES, "loss")
    check_target(target)
    if early_stop and jit_compile:
        raise ValueError(
            "early_stop=True shrinks the batch as samples are fooled (dynamic shapes), which "
            "XLA cannot compile; pass jit_compile=False."
        )
    if step_size is None:
        step_size = 2.5 * tf.cast(epsilon, tf.float32) / steps
    elif isinstance(step_size, (int, float)):
        check_positive(step_size, "step_size")
    return run_compiled(
        _pgd_impl, _COMPILED, jit_compile, model, x, y,
        tf.cast(epsilon, tf.float32), tf.cast(step_size, tf.float32), steps, norm,
        _as_target_arg(target), loss, bool(random_start), restarts, as_seed(seed),
        bool(early_stop),
    )


def fgsm(
    model: Any,
    x: Any,
    y: Any,
    epsilon: float | Any,
    *,
    target: Any = None,
    random_start: bool = False,
    step_size: float | Any | None = None,
    loss: str = "ce",
    norm: str = "linf",
    seed: int | Any | None = None,
    jit_compile: bool = False,
) -> tf.Tensor:
    """The fast gradient sign method: one step of size `epsilon`.

    With `random_start=True` it is R-FGSM (Tramer et al. 2018; Wong et al.
    2020 use `step_size=1.25 * epsilon`); with a `target` it steps toward it.

    Args:
        model: see `pgd`.
        x: float images in [0, 1], [B, H, W, C].
        y: true labels.
        epsilon: the budget (scalar or one per sample).
        target: None, "mc", "ll", "random", or target labels.
        random_start: start from a uniformly random point of the ball.
        step_size: the step; default `epsilon`.
        loss: see `pgd`.
        norm: "linf" (sign step) or "l2" (normalised gradient step).
        seed: an int (or [2] ints) for reproducible randomness.
        jit_compile: compile the attack with XLA.

    Returns:
        float32 adversarial images inside the ball and [0, 1].

    Example:

    >>> model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
    ...                           keras.layers.Dense(10)])
    >>> x = np.random.default_rng(0).random((4, 8, 8, 3), "float32")
    >>> x_adv = fgsm(model, x, [0, 1, 2, 3], 8 / 255)
    >>> x_adv.shape, bool(np.abs(x_adv - x).max() <= 8 / 255 + 1e-6)
    (TensorShape([4, 8, 8, 3]), True)
    >>> x_rfgsm = fgsm(model, x, [0, 1, 2, 3], 8 / 255, random_start=True,
    ...                step_size=1.25 * 8 / 255, seed=0)
    >>> bool(np.abs(x_rfgsm - x).max() <= 8 / 255 + 1e-6)
    True
    """
    if step_size is None:
        step_size = epsilon
    return pgd(
        model, x, y, epsilon, step_size, 1, norm=norm, target=target, loss=loss,
        random_start=random_start, seed=seed, jit_compile=jit_compile,
    )


def _as_target_arg(target: Any) -> Any:
    if target is None or isinstance(target, str):
        return target
    return tf.convert_to_tensor(target)
