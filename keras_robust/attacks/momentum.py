"""MI-FGSM (Dong et al. 2018) with input diversity (DI, Xie et al. 2019) and
translation-invariant gradients (TI, Dong et al. 2019): the transferable attack
of eq. 6 of the data-centric paper when run on an `Ensemble` with the logit loss.
"""
from __future__ import annotations

from typing import Any

import tensorflow as tf

from keras_robust._validation import check_fraction, check_positive
from keras_robust.attacks.common import as_seed, refuse_diversity_with_xla, validate_common
from keras_robust.attacks.config import AttackConfig, resolve_step_size
from keras_robust.attacks.pgd import _as_target_arg, _static_number, iterative
from keras_robust.attacks.targets import check_target

# MI-FGSM's default step (Dong et al.): the steps together cover one budget, epsilon / steps.
MI_FGSM_SPAN = 1.0


def mi_fgsm(
    model: Any,
    x: Any,
    y: Any,
    epsilon: float | Any,
    step_size: float | Any | None = None,
    steps: int = 10,
    *,
    decay: float = 1.0,
    norm: str = "linf",
    loss: str = "ce",
    target: Any = None,
    input_diversity: float = 0.0,
    smoothing_kernel: int = 0,
    random_start: bool = False,
    seed: int | Any | None = None,
    jit_compile: bool = False,
) -> tf.Tensor:
    """Momentum iterative FGSM, with input diversity and Gaussian-smoothed gradients.

    Each step smooths the gradient with a Gaussian kernel W when
    `smoothing_kernel` > 0, accumulates `g = decay * g + W*grad / ||W*grad||_1`
    (the order of TI-MI-FGSM, Dong et al. 2019, and of Zhao et al.'s code;
    eq. 6 of the data-centric paper writes `sign(W * g)`, which differs only
    in each step's L1 scale, as convolution is linear), and moves by
    `step_size` along the sign of g (L-inf) or its L2-normalised direction
    (L2), projecting onto the ball and [0, 1].

    Args:
        model: a model, an `Ensemble`, a list of models (logits averaged), or a
            callable mapping [0, 1] images to logits.
        x: float images in [0, 1], [B, H, W, C].
        y: true labels.
        epsilon: the budget (scalar or one per sample).
        step_size: the step; default `epsilon / steps` (Dong et al.: the
            steps together cover one budget, `MI_FGSM_SPAN`; see
            `attacks.config.resolve_step_size`).
        steps: number of steps.
        decay: the momentum decay mu (1.0 in Dong et al.).
        norm: "linf" or "l2".
        loss: "ce", "cw", "dlr" or "logit" (the data-centric paper uses "logit").
        target: None, "mc", "ll", "random" or target labels.
        input_diversity: probability of the random resize-and-pad per step.
        smoothing_kernel: odd size of the TI Gaussian kernel; 0 disables it.
        random_start: start from a random point of the ball.
        seed: an int (or [2] ints) for reproducible randomness.
        jit_compile: compile with XLA (not with `input_diversity`, whose
            random sizes are dynamic shapes).

    Returns:
        float32 adversarial images inside the ball and [0, 1].

    Example:

    >>> models = [keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
    ...                             keras.layers.Dense(10)]) for _ in range(3)]
    >>> ensemble = keras_robust.attacks.Ensemble(models)
    >>> x = np.random.default_rng(0).random((4, 8, 8, 3), "float32")
    >>> x_adv = mi_fgsm(ensemble, x, [0, 1, 2, 3], 8 / 255, 2 / 255, 2, loss="logit",
    ...                 input_diversity=0.5, smoothing_kernel=5, seed=0)
    >>> x_adv.shape, bool(np.abs(x_adv - x).max() <= 8 / 255 + 1e-6)
    (TensorShape([4, 8, 8, 3]), True)
    """
    x = validate_common(x, epsilon, norm)
    decay = check_positive(decay, "decay") if decay else 0.0
    check_target(target)
    input_diversity = check_fraction(input_diversity, "input_diversity")
    config = AttackConfig(
        norm=norm, epsilon=_static_number(epsilon, "epsilon", norm), steps=steps, loss=loss,
        target=target if isinstance(target, str) else None, random_start=random_start,
        momentum=float(decay), input_diversity=input_diversity,
        smoothing_kernel=smoothing_kernel, step_size=_static_number(step_size, "step_size"),
    )
    refuse_diversity_with_xla(input_diversity, jit_compile)
    step_size = resolve_step_size(epsilon, config.steps, step_size, span=MI_FGSM_SPAN)
    return iterative(
        model, x, y, config, jit_compile=jit_compile, epsilon=tf.cast(epsilon, tf.float32),
        step_size=tf.cast(step_size, tf.float32), seed=as_seed(seed),
        target=_as_target_arg(target),
    )
