"""The iterative first-order attack that PGD, FGSM and MI-FGSM share.

One loop, configured by: the norm of the ball and of the step, the objective,
the target, a random start, momentum on L1-normalised gradients (MI-FGSM),
input diversity (DI) and Gaussian smoothing of the gradient (TI). With
momentum, DI, TI, the logit loss and an `Ensemble` it is eq. 6 of the
data-centric paper; with none of them it is Madry's PGD. It is a plain graph
function: defences trace it into their `train_step`, the public attacks wrap it
in `tf.function`.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import tensorflow as tf

from keras_robust.attacks._common import (
    LogitsFn,
    fold_seed,
    normalize,
    per_sample,
    project,
    random_start as draw_random_start,
    random_uniform,
    sparse_labels,
    unrolled_loop,
)
from keras_robust.attacks.objectives import objective, succeeded
from keras_robust.attacks.targets import needs_logits, select_target


class AttackResult(NamedTuple):
    """What the engine returns.

    Attributes:
        x_adv: the adversarial images.
        start_logits: logits at the first iterate (the random start, or x);
            defences reuse them instead of paying for a clean forward pass.
        target: the target classes used, or None.
    """

    x_adv: tf.Tensor
    start_logits: tf.Tensor
    target: tf.Tensor | None


def gaussian_kernel(size: int, channels: int, nsig: float = 3.0) -> tf.Tensor:
    """A [size, size, channels, 1] Gaussian kernel over [-nsig, nsig] (TI attacks)."""
    if size < 1 or size % 2 == 0:
        raise ValueError(f"The smoothing kernel size must be a positive odd integer, got {size}.")
    points = np.linspace(-nsig, nsig, size)
    kernel_1d = np.exp(-0.5 * points**2)
    kernel = np.outer(kernel_1d, kernel_1d)
    kernel = (kernel / kernel.sum()).astype(np.float32)
    return tf.constant(np.tile(kernel[:, :, None, None], [1, 1, channels, 1]))


def diverse_inputs(x: tf.Tensor, probability: float, seed: tf.Tensor | None) -> tf.Tensor:
    """Input diversity (Xie et al. 2019): with `probability`, shrink the batch to a
    random size in [0.9 H, H] (nearest neighbour) and zero-pad it back at a random
    offset; the model always sees H x W images.
    """
    height, width = int(x.shape[1]), int(x.shape[2])
    low = max(1, int(np.floor(0.9 * min(height, width))))
    size = random_uniform([], fold_seed(seed, 11), low, min(height, width) + 1, dtype=tf.int32)
    resized = tf.image.resize(x, tf.stack([size, size]), method="nearest")
    pad_h, pad_w = height - size, width - size
    top = random_uniform([], fold_seed(seed, 12), 0, pad_h + 1, dtype=tf.int32)
    left = random_uniform([], fold_seed(seed, 13), 0, pad_w + 1, dtype=tf.int32)
    padded = tf.pad(resized, [[0, 0], [top, pad_h - top], [left, pad_w - left], [0, 0]])
    padded = tf.ensure_shape(padded, x.shape)
    apply = random_uniform([], fold_seed(seed, 14)) < probability
    return tf.cond(apply, lambda: padded, lambda: x)


def iterative_attack(
    logits_fn: LogitsFn,
    x: tf.Tensor,
    y: Any,
    *,
    epsilon: Any,
    step_size: Any,
    steps: int,
    norm: str = "linf",
    loss: str = "ce",
    target: Any = None,
    random_start: bool = True,
    seed: tf.Tensor | None = None,
    momentum: float | None = None,
    input_diversity: float = 0.0,
    smoothing_kernel: int = 0,
    target_source: str = "clean",
    early_stop: bool = False,
    active: tf.Tensor | None = None,
) -> AttackResult:
    """Runs `steps` ascent steps on `objective(loss)` inside the `norm` ball.

    Args:
        logits_fn: images -> float32 logits.
        x: float32 [B, H, W, C] images in [0, 1].
        y: labels (sparse, one-hot or soft; the argmax is the true class).
        epsilon: budget, scalar or [B].
        step_size: step, scalar or [B].
        steps: number of steps (>= 1, a Python int).
        norm: "linf" or "l2" (ball and step).
        loss: an objective of `keras_robust.attacks.objectives`, or a callable
            `(logits, y, target) -> [B]` objective to maximise.
        target: None, "mc", "ll", "random" or labels.
        random_start: start from a random point of the ball.
        seed: optional [2] int seed; makes every random draw reproducible.
        momentum: decay mu of MI-FGSM, or None for plain steps.
        input_diversity: probability of the DI transform per step (0 = off).
        smoothing_kernel: odd size of the TI Gaussian kernel (0 = off).
        target_source: where "mc"/"ll" targets are chosen: "clean" (at x, one
            extra forward pass) or "start" (at the first iterate, for free).
        early_stop: keep each sample's first adversarial iterate (misclassified,
            or classified as its target) and stop computing on it: every later
            step runs on the samples still standing only (gathered into a
            smaller batch). Per sample the iterates are those of the plain
            attack up to that point, so the output is adversarial wherever the
            plain attack's path ever was. Not with input diversity (success is
            judged on the logits of the step, which DI transforms).
        active: optional bool [B]: with `early_stop`, the samples to attack;
            the others are returned as the first iterate (restarts pass the
            samples no earlier restart fooled).

    Returns:
        An `AttackResult`.
    """
    y = sparse_labels(y)
    eps = per_sample(epsilon, x)
    alpha = per_sample(step_size, x)
    objective_fn = loss if callable(loss) else (lambda z, y_, t: objective(loss, z, y_, t))
    kernel = gaussian_kernel(smoothing_kernel, int(x.shape[-1])) if smoothing_kernel else None

    # Targets given as labels are used as they are; "mc"/"ll" chosen at the clean
    # images cost one forward pass here; the others ("random", or "mc"/"ll" at the
    # start point) are chosen from the logits of the first gradient pass.
    target_classes = None
    if target is not None and not isinstance(target, str):
        target_classes = sparse_labels(target)
    elif needs_logits(target) and target_source == "clean":
        clean_logits = logits_fn(x)
        target_classes = tf.stop_gradient(
            select_target(target, y, tf.shape(clean_logits)[-1], clean_logits)
        )

    if early_stop and input_diversity > 0:
        raise ValueError(
            "early_stop judges success on the logits of each step, which input diversity "
            "transforms; use early_stop=False with input_diversity > 0."
        )

    def gradient(x_adv, target_classes, iteration, y=y):
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(x_adv)
            inputs = x_adv
            if input_diversity > 0:
                inputs = diverse_inputs(x_adv, input_diversity, fold_seed(seed, 100 + iteration))
            logits = logits_fn(inputs)
            if target_classes is None and target is not None:  # chosen at the start point
                target_classes = tf.stop_gradient(
                    select_target(
                        target, y, tf.shape(logits)[-1], tf.stop_gradient(logits),
                        fold_seed(seed, 2),
                    )
                )
            total = tf.reduce_sum(objective_fn(logits, y, target_classes))
        return tape.gradient(total, x_adv), logits, target_classes

    # What a step needs per sample, gathered with the samples under early_stop.
    # The L-inf ball intersected with [0, 1] is a box: one clip per step.
    if norm == "linf":
        bounds = {"alpha": alpha, "lower": tf.maximum(x - eps, 0.0),
                  "upper": tf.minimum(x + eps, 1.0)}
    else:
        bounds = {"alpha": alpha, "x": x, "eps": eps}

    def step(x_adv, grad, velocity, bounds=bounds):
        if kernel is not None:
            grad = tf.nn.depthwise_conv2d(grad, kernel, [1, 1, 1, 1], "SAME")
        if momentum is not None:
            l1 = tf.reduce_sum(tf.abs(grad), axis=[1, 2, 3], keepdims=True)
            velocity = momentum * velocity + grad / (l1 + 1e-12)
            grad = velocity
        if norm == "linf":
            return tf.clip_by_value(
                x_adv + bounds["alpha"] * tf.sign(grad), bounds["lower"], bounds["upper"]
            ), velocity
        x_adv = project(x_adv + bounds["alpha"] * normalize(grad, norm), bounds["x"],
                        bounds["eps"], norm)
        return x_adv, velocity

    x_adv = draw_random_start(x, eps, norm, fold_seed(seed, 1)) if random_start else x
    # The first step is peeled off the loop: it fixes the target when chosen at
    # the start point and returns the start logits that defences reuse.
    grad, start_logits, target_classes = gradient(x_adv, target_classes, 0)
    velocity = tf.zeros_like(x)
    x_next, velocity = step(x_adv, grad, velocity)

    if not early_stop:
        def body(i, state):
            grad, _, _ = gradient(state[0], target_classes, i)
            return step(state[0], grad, state[1])

        # The remaining steps, unrolled UNROLLED_STEPS at a time (PGD-10's are
        # one straight graph; see `_common.unrolled_loop`).
        x_adv, _ = unrolled_loop(body, 1, steps, (x_next, velocity))
        return AttackResult(tf.stop_gradient(x_adv), start_logits, target_classes)

    standing = ~succeeded(start_logits, y, target_classes)
    if active is not None:
        standing = standing & tf.cast(active, tf.bool)
    x_adv = tf.where(_rows(standing), x_next, x_adv)

    def early_stop_body(i, state):
        x_adv, velocity, standing = state
        rows = tf.where(standing)[:, 0]

        def attack_standing():
            take = lambda t: tf.gather(t, rows)  # noqa: E731
            x_sub, y_sub = take(x_adv), take(y)
            t_sub = None if target_classes is None else take(target_classes)
            grad, logits, _ = gradient(x_sub, t_sub, i, y=y_sub)
            fooled = succeeded(logits, y_sub, t_sub)
            x_new, v_new = step(x_sub, grad, take(velocity),
                                {k: take(v) for k, v in bounds.items()})
            x_new = tf.where(_rows(fooled), x_sub, x_new)
            index = rows[:, None]
            return (tf.tensor_scatter_nd_update(x_adv, index, x_new),
                    tf.tensor_scatter_nd_update(velocity, index, v_new),
                    tf.tensor_scatter_nd_update(standing, index, ~fooled))

        return tf.cond(tf.size(rows) > 0, attack_standing, lambda: (x_adv, velocity, standing))

    x_adv, _, _ = unrolled_loop(early_stop_body, 1, steps, (x_adv, velocity, standing))
    return AttackResult(tf.stop_gradient(x_adv), start_logits, target_classes)


def _rows(mask: tf.Tensor) -> tf.Tensor:
    """A [B] bool mask as [B, 1, 1, 1], to select whole images with `tf.where`."""
    return tf.reshape(mask, [-1, 1, 1, 1])


def with_restarts(
    logits_fn: LogitsFn,
    x: tf.Tensor,
    y: Any,
    *,
    restarts: int,
    loss: str,
    seed: tf.Tensor | None,
    **attack_kwargs: Any,
) -> tf.Tensor:
    """Runs the attack `restarts` times and keeps, per sample, the worst case.

    The worst case is an adversarial example if any restart found one (the one
    with the highest objective among them), else the highest objective. With
    `early_stop=True` in `attack_kwargs`, each restart attacks only the samples
    that no earlier restart fooled.
    """
    y_sparse = sparse_labels(y)
    early_stop = attack_kwargs.get("early_stop", False)
    best = None
    for restart in range(restarts):
        if early_stop and best is not None:
            attack_kwargs["active"] = ~best_success
        result = iterative_attack(
            logits_fn, x, y_sparse, loss=loss, seed=fold_seed(seed, 1000 + restart), **attack_kwargs
        )
        if restarts == 1:
            return result.x_adv
        logits = logits_fn(result.x_adv)
        score = objective(loss, logits, y_sparse, result.target)
        success = succeeded(logits, y_sparse, result.target)
        if best is None:
            best, best_score, best_success = result.x_adv, score, success
            continue
        better = (success & ~best_success) | ((success == best_success) & (score > best_score))
        best = tf.where(_rows(better), result.x_adv, best)
        best_score = tf.where(better, score, best_score)
        best_success = best_success | success
    return best
