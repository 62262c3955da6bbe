"""Projected gradient descent (Madry et al. 2018) and FGSM (Goodfellow et al. 2015)."""
from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from keras_robust._validation import check_epsilon, check_positive

from keras_robust.attacks.common import (
    as_logits_fn, as_seed, check_early_stop, refuse_diversity_with_xla, validate_common,
)
from keras_robust.attacks.config import AttackConfig, resolve_step_size
from keras_robust.attacks.engine import compiled_attack, with_restarts
from keras_robust.attacks.targets import check_target

# FGSM's step as a multiple of epsilon: one step of the whole budget.
FGSM_REL_STEPSIZE = 1.0


@compiled_attack
def iterative(model, x, y, config: AttackConfig, *, epsilon, step_size, seed, target=None):
    """The compiled PGD / FGSM / MI-FGSM: `with_restarts` on the model's logits."""
    return with_restarts(as_logits_fn(model), x, y, config, seed=seed, epsilon=epsilon,
                         step_size=step_size, target=target)


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
    config: AttackConfig | None = None,
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
        config: an `AttackConfig` to run instead of the keywords above
            (`epsilon`, `step_size` and `target` labels given here still
            apply when the config has none); momentum, DI and TI included.

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
    >>> config = keras_robust.attacks.AttackConfig(epsilon=8 / 255, steps=2, loss="cw")
    >>> pgd(model, x, y, None, config=config, seed=0).shape
    TensorShape([4, 8, 8, 3])
    """
    check_target(target)
    if config is None:
        config = AttackConfig(
            norm=norm, epsilon=_static_number(epsilon, "epsilon", norm), steps=steps,
            loss=loss, target=target if isinstance(target, str) else None,
            random_start=random_start, restarts=restarts, early_stop=early_stop,
            step_size=_static_number(step_size, "step_size"),
        )
    elif not isinstance(config, AttackConfig):
        raise TypeError(f"`config` must be an AttackConfig, got {type(config).__name__}.")
    elif not config.project:
        raise ValueError(
            "An AttackConfig with project=False (N-FGSM's training perturbation) leaves the "
            "epsilon ball, so the accuracy it leaves measures nothing at that budget; evaluate "
            "with project=True (the default).")
    if epsilon is None:
        epsilon = config.epsilon
    if step_size is None:
        step_size = config.step_size
    if epsilon is None:
        raise ValueError("No budget: pass `epsilon` or a `config` with one.")
    x = validate_common(x, epsilon, config.norm)
    check_early_stop(config.early_stop, jit_compile)
    refuse_diversity_with_xla(config.input_diversity, jit_compile)
    step_size = resolve_step_size(epsilon, config.steps, step_size, config.rel_stepsize)
    return iterative(
        model, x, y, config, jit_compile=jit_compile, epsilon=tf.cast(epsilon, tf.float32),
        step_size=tf.cast(step_size, tf.float32), seed=as_seed(seed),
        target=_as_target_arg(target),
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
        step_size: the step; default `epsilon` (`rel_stepsize` 1.0,
            `FGSM_REL_STEPSIZE`; see `attacks.config.resolve_step_size`).
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
    step_size = resolve_step_size(epsilon, 1, step_size, rel_stepsize=FGSM_REL_STEPSIZE)
    return pgd(
        model, x, y, epsilon, step_size, 1, norm=norm, target=target, loss=loss,
        random_start=random_start, seed=seed, jit_compile=jit_compile,
    )


def _as_target_arg(target: Any) -> Any:
    """Target labels as a tensor; None for no target or a mode (which the config holds)."""
    if target is None or isinstance(target, str):
        return None
    return tf.convert_to_tensor(target)


def _static_number(value: Any, name: str, norm: str | None = None) -> float | None:
    """A Python number for the config, or None for a per-sample array or tensor (passed per call).

    Numbers are checked here, arrays where they enter the attack.
    """
    if value is None or isinstance(value, bool) or not isinstance(
            value, (int, float, np.integer, np.floating)):
        return None
    if name == "step_size":
        check_positive(value, name)
    else:
        check_epsilon(value, name, maximum=1.0 if norm == "linf" else None)
    return float(value)
