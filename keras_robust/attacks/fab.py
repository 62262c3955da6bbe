"""FAB (Croce & Hein 2020), the minimum-norm member of AutoAttack.

"Minimally distorted adversarial examples with a fast adaptive boundary
attack" (ICML 2020). FAB looks for the smallest perturbation that changes the
class, by repeatedly projecting onto the linearised decision boundary:

- at the iterate x_k it linearises g = f_t - f_y (targeted: toward the class
  t; untargeted: the class whose linearised boundary is nearest) into the
  hyperplane pi_k = {z : g(x_k) + grad g(x_k) . (z - x_k) = 0};
- it projects both x_k and the original x onto pi_k intersected with the box
  [0, 1]^d, in the attack's norm (L-inf or L2), giving the displacements
  delta_k and delta_0 (`_project`: the minimum-norm point of a hyperplane in
  a box, found through its KKT conditions, see `_water_level`);
- the biased step: x_{k+1} = clip((1 - alpha)(x_k + eta delta_k) +
  alpha (x + eta delta_0), 0, 1), alpha = min(|delta_k| / (|delta_k| +
  |delta_0|), alpha_max) pulls toward the original image, eta >= 1
  overshoots the linearised boundary;
- whenever x_{k+1} is misclassified it is recorded if it is the closest so
  far, and the iterate steps back toward x: x + beta (x_{k+1} - x).

AutoAttack's FAB-T runs this toward each of the top-`num_targets` non-true
classes (ranked by clean logit), one restart without random start. A sample
counts as broken when the smallest perturbation found is within epsilon.
Everything runs on whole batches inside one `tf.function` (the steps in a
`tf.while_loop` of ten unrolled iterations, see `_common.unrolled_loop`).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from keras_robust._validation import check_positive_int
from keras_robust.attacks.common import (
    LogitsFn,
    as_logits_fn,
    as_seed,
    fold_seed,
    random_normal,
    random_uniform,
    label_indices,
    step_standing,
    top_other_classes,
    unrolled_loop,
    validate_common,
)
from keras_robust.attacks.config import FABConfig, build_config
from keras_robust.attacks.engine import compiled_attack


def _water_level(weights: tf.Tensor, caps: tf.Tensor, required: tf.Tensor) -> tf.Tensor:
    """The smallest lam >= 0 with sum_i weights_i * min(lam, caps_i) = required, per row.

    The left side is piecewise linear and non-decreasing in lam, with kinks at
    the caps: sorting the caps, the kink values are sum_{i<k} w_i c_i + c_k
    sum_{i>=k} w_i; the solution lies after the m kinks below `required`,
    where the first m coordinates are saturated. +inf where even lam = inf
    (every coordinate saturated) falls short.

    Args:
        weights: non-negative [B, D].
        caps: non-negative [B, D].
        required: non-negative [B].

    Returns:
        lam, [B].
    """
    order = tf.argsort(caps, axis=1)
    caps = tf.gather(caps, order, batch_dims=1)
    weights = tf.gather(weights, order, batch_dims=1)
    saturated = tf.cumsum(weights * caps, axis=1, exclusive=True)
    free = tf.cumsum(weights, axis=1, reverse=True)
    at_kinks = saturated + caps * free
    below = tf.reduce_sum(tf.cast(at_kinks < required[:, None], tf.int32), axis=1)
    size = tf.shape(caps)[1]
    index = tf.minimum(below, size - 1)[:, None]
    level = (required - tf.gather(saturated, index, batch_dims=1)[:, 0]) / tf.maximum(
        tf.gather(free, index, batch_dims=1)[:, 0], 1e-30
    )
    return tf.where(below >= size, np.inf, tf.maximum(level, 0.0))


def _project(points: tf.Tensor, w: tf.Tensor, b: tf.Tensor, norm: str) -> tf.Tensor:
    """The minimum-`norm` displacement d with w . (points + d) = b and points + d in [0, 1].

    The FAB projection (the paper's Propositions 2 and 3; `projection_linf`
    and `projection_l2` of the authors' code), for flat rows. Oriented so
    that w . points >= b, the hyperplane is reached by lowering w . z: each
    coordinate moves against sign(w_i) by at most its room to the box, r_i
    (x_i if w_i > 0, 1 - x_i if w_i < 0). For L-inf, |d_i| = min(lam, r_i)
    with lam the smallest radius that reaches the plane; for L2 (KKT),
    d_i = -sign(w_i) min(lam |w_i|, r_i). Where the plane cannot be reached
    inside the box, d is the box corner that comes closest.

    Args:
        points: [B, D] in [0, 1].
        w: hyperplane normals [B, D].
        b: offsets [B].
        norm: "linf" or "l2".

    Returns:
        d, [B, D].
    """
    violation = tf.reduce_sum(w * points, axis=1) - b
    w = tf.where(violation[:, None] >= 0.0, w, -w)
    required = tf.abs(violation)
    room = tf.where(w > 0.0, points, 1.0 - points)
    direction = -tf.sign(w)
    magnitude = tf.abs(w)
    if norm == "linf":
        level = _water_level(magnitude, room, required)
        reachable = tf.math.is_finite(level)[:, None]
        return direction * tf.where(reachable, tf.minimum(level[:, None], room), room)
    active = magnitude > 1e-12
    caps = tf.where(active, room / tf.where(active, magnitude, 1.0), 0.0)
    level = _water_level(tf.where(active, tf.square(magnitude), 0.0), caps, required)
    reachable = tf.math.is_finite(level)[:, None]
    level = tf.where(reachable[:, 0], level, 0.0)[:, None]
    return direction * tf.where(reachable, tf.minimum(level * magnitude, room), room)


def _norm(v: tf.Tensor, norm: str) -> tf.Tensor:
    """Per-row L-inf or L2 norm of [B, D], as [B]."""
    if norm == "linf":
        return tf.reduce_max(tf.abs(v), axis=1)
    return tf.sqrt(tf.reduce_sum(tf.square(v), axis=1))


def _dual_norm(v: tf.Tensor, norm: str) -> tf.Tensor:
    """The dual norm over the last axis: L1 for L-inf, L2 for L2."""
    if norm == "linf":
        return tf.reduce_sum(tf.abs(v), axis=-1)
    return tf.sqrt(tf.reduce_sum(tf.square(v), axis=-1))


def fab_run(
    logits_fn: LogitsFn,
    x: tf.Tensor,
    y: tf.Tensor,
    target: tf.Tensor | None,
    epsilon: tf.Tensor,
    *,
    steps: int,
    norm: str,
    alpha_max: float,
    eta: float,
    beta: float,
    random_start: bool | tf.Tensor,
    seed: tf.Tensor | None,
) -> tuple[tf.Tensor, tf.Tensor]:
    """One FAB run on a batch (no validation), as a graph function.

    Args:
        logits_fn: images -> float32 logits.
        x: float32 [B, H, W, C] images in [0, 1].
        y: true classes, int32 [B].
        target: target classes int32 [B] (FAB-T), or None (untargeted FAB:
            the nearest linearised boundary among all classes, which costs a
            Jacobian per step).
        epsilon: [B]; the random start is drawn at half this radius.
        steps: iterations.
        norm: "linf" or "l2".
        alpha_max: the largest weight of the step from the original image.
        eta: the overshoot (>= 1).
        beta: the backward step after a success.
        random_start: start from a random point (later restarts) instead of x
            (a bool or a scalar bool tensor).
        seed: optional [2] seed.

    Returns:
        (the closest misclassified iterate, its distance to x), [B, H, W, C]
        and [B]; the distance is +inf (and the image x) where none was found.
    """
    shape = tf.shape(x)
    batch = shape[0]
    x0 = tf.reshape(x, [batch, -1])

    def as_images(flat):
        return tf.reshape(flat, shape)

    def linearise(flat):
        """g(flat) and grad g for the boundary FAB projects onto, [B] and [B, D]."""
        with tf.GradientTape(watch_accessed_variables=False, persistent=target is None) as tape:
            tape.watch(flat)
            logits = logits_fn(as_images(flat))
            if target is not None:
                diff = tf.gather(logits, target, batch_dims=1) - tf.gather(logits, y, batch_dims=1)
                total = tf.reduce_sum(diff)
        if target is not None:
            grad = tape.gradient(total, flat)
            if grad is None:
                raise ValueError(_NO_GRADIENT)
            return diff, grad
        jacobian = tape.batch_jacobian(logits, flat)  # [B, K, D]
        del tape
        if jacobian is None:
            raise ValueError(_NO_GRADIENT)
        num_classes = tf.shape(logits)[-1]
        diffs = logits - tf.gather(logits, y, batch_dims=1)[:, None]
        grads = jacobian - tf.gather(jacobian, y, batch_dims=1)[:, None]
        distance = tf.abs(diffs) / (_dual_norm(grads, norm) + 1e-12)
        distance = tf.where(tf.one_hot(y, num_classes) > 0, np.inf, distance)
        nearest = tf.argmin(distance, axis=-1, output_type=tf.int32)
        return tf.gather(diffs, nearest, batch_dims=1), tf.gather(grads, nearest, batch_dims=1)

    def misclassified(flat):
        logits = logits_fn(as_images(flat))
        return tf.not_equal(tf.argmax(logits, axis=-1, output_type=tf.int32), y)

    x_start = x0
    if random_start is not False:  # True, or a bool tensor (a restart's index > 0)
        radius = 0.5 * tf.reshape(tf.cast(epsilon, tf.float32), [-1, 1])
        if norm == "linf":
            noise = random_uniform(tf.shape(x0), seed, -1.0, 1.0)
        else:
            noise = random_normal(tf.shape(x0), seed)
        noise = noise / (_norm(noise, norm)[:, None] + 1e-12)
        x_start = tf.where(random_start, tf.clip_by_value(x0 + radius * noise, 0.0, 1.0), x0)

    def body(i, state):
        x_k, best, best_distance = state
        g, w = linearise(x_k)
        # The linearised boundary g(x_k) + w . (z - x_k) = 0, i.e. w . z = b.
        b = tf.reduce_sum(w * x_k, axis=1) - g
        delta_k = _project(x_k, w, b, norm)
        delta_0 = _project(x0, w, b, norm)
        size_k = tf.maximum(_norm(delta_k, norm), 1e-8)
        size_0 = tf.maximum(_norm(delta_0, norm), 1e-8)
        alpha = tf.clip_by_value(size_k / (size_k + size_0), 0.0, alpha_max)[:, None]
        x_new = tf.clip_by_value(
            (1.0 - alpha) * (x_k + eta * delta_k) + alpha * (x0 + eta * delta_0), 0.0, 1.0
        )
        adversarial = misclassified(x_new)
        distance = _norm(x_new - x0, norm)
        closer = adversarial & (distance < best_distance)
        best = tf.where(closer[:, None], x_new, best)
        best_distance = tf.where(closer, distance, best_distance)
        # After a success, step back toward the original image.
        x_new = tf.where(adversarial[:, None], x0 + beta * (x_new - x0), x_new)
        return x_new, best, best_distance

    state = (x_start, x0, tf.fill([batch], np.inf))
    _, best, best_distance = unrolled_loop(body, 0, steps, state)
    return tf.stop_gradient(as_images(best)), tf.stop_gradient(best_distance)


_NO_GRADIENT = (
    "FAB needs the gradient of the model's logits with respect to its input, and this model "
    "provides none; use keras_robust.attacks.square for gradient-free models."
)


@compiled_attack
def _fab_impl(model, x, y, config: FABConfig, *, epsilon, seed, compact):
    """The compiled FAB: `config` (its graph key)."""
    norm, targeted, num_targets, restarts = (
        config.norm, config.targeted, config.num_targets, config.restarts)
    logits_fn = as_logits_fn(model)
    y = label_indices(y)
    clean_logits = logits_fn(x)
    num_classes = clean_logits.shape[-1]
    if targeted and num_classes is not None and num_targets > num_classes - 1:
        raise ValueError(
            f"`num_targets` must be at most the number of classes minus one ({num_classes - 1}), "
            f"got {num_targets}."
        )
    correct = tf.equal(tf.argmax(clean_logits, axis=-1, output_type=tf.int32), y)
    eps = tf.broadcast_to(tf.reshape(tf.cast(epsilon, tf.float32), [-1]), tf.shape(y))
    if targeted:
        ranked = top_other_classes(clean_logits, y, num_targets)
    else:
        ranked = None

    # Misclassified clean images are broken at distance 0 and never attacked.
    # One graph for every (target, restart) run: a while-loop over the runs.
    def run(j, best, best_distance):
        k, restart = j // restarts, j % restarts
        target = None if ranked is None else tf.gather(ranked, k, axis=1)
        run_kwargs = dict(steps=config.steps, norm=norm, alpha_max=config.alpha_max,
                          eta=config.eta, beta=config.beta, random_start=restart > 0,
                          seed=fold_seed(seed, 1000 * (k + 1) + restart))
        # AutoAttack attacks with later runs only the images not yet broken
        # within epsilon; `minimal` attacks every correct image every time.
        active = correct if config.minimal else correct & (best_distance > eps)
        if not compact:
            found, distance = fab_run(logits_fn, x, y, target, eps, **run_kwargs)
            closer = active & (distance < best_distance)
            return (j + 1, tf.where(tf.reshape(closer, [-1, 1, 1, 1]), found, best),
                    tf.where(closer, distance, best_distance))

        def attack(old, rows):
            old_best, old_distance = old
            found, distance = fab_run(logits_fn, *rows, **run_kwargs)
            closer = distance < old_distance
            return (tf.where(tf.reshape(closer, [-1, 1, 1, 1]), found, old_best),
                    tf.where(closer, distance, old_distance))

        best, best_distance = step_standing(active, attack, (best, best_distance),
                                            (x, y, target, eps))
        return j + 1, best, best_distance

    runs = (num_targets if targeted else 1) * restarts
    _, best, best_distance = tf.while_loop(
        lambda j, *_: j < runs, run, (tf.constant(0), x, tf.where(correct, np.inf, 0.0)),
        parallel_iterations=1,
    )

    # The final check: a returned image is misclassified and within epsilon, or x.
    batch = tf.shape(x)[0]
    distance = _norm(tf.reshape(best - x, [batch, -1]), norm)
    fooled = tf.not_equal(tf.argmax(logits_fn(best), axis=-1, output_type=tf.int32), y)
    keep = correct & fooled & (distance <= eps)
    return tf.where(tf.reshape(keep, [-1, 1, 1, 1]), best, x)


def fab(
    model: Any,
    x: Any,
    y: Any,
    epsilon: float | Any = None,
    norm: str | None = None,
    *,
    targeted: bool | None = None,
    num_targets: int | None = None,
    steps: int | None = None,
    restarts: int | None = None,
    seed: int | Any | None = 0,
    minimal: bool | None = None,
    batch_size: int | None = None,
    jit_compile: bool = False,
    config: FABConfig | None = None,
) -> tf.Tensor:
    """FAB (Croce & Hein 2020): the fast adaptive boundary attack; FAB-T of AutoAttack by default.

    FAB searches for the smallest perturbation that changes the class: each
    step projects the iterate and the original image onto the linearised
    decision boundary intersected with [0, 1] and moves to a mix of the two
    (biased toward the original image), overshooting by `eta`; after each
    success it steps back toward the image by `beta`. The targeted version
    (AutoAttack's standard FAB-T) linearises f_t - f_y toward each of the
    `num_targets` most likely other classes in turn, one gradient per step.
    A sample counts as broken when the smallest perturbation found (over
    targets and restarts) is within `epsilon`, and only then is it returned
    perturbed; every other sample is returned as it is.

    Differences from the authors' code (fra31/auto-attack `fab_base.py`):
    targets are ranked among the non-true classes (the same classes as the
    authors' k-th largest logit on the correctly classified images, the only
    ones attacked); the projection finds its radius from sorted cumulative
    sums, not a bisection (the same solution); the random start of later
    restarts is drawn at half of `epsilon` (the authors' `min(res2, eps)`
    with `res2` reset per run); with `minimal=True` every target runs on
    every image and the smallest perturbation is kept, where AutoAttack
    stops at the first target that breaks an image within epsilon.

    Args:
        model: a Keras model, an `Ensemble`, a list of models (logits
            averaged), or any callable mapping [0, 1] images to logits.
        x: float images in [0, 1], [B, H, W, C].
        y: true labels: class indices, one-hot or soft rows.
        epsilon: the budget (scalar or one per sample) on the [0, 1] scale.
        norm: "linf" or "l2".
        targeted: FAB-T (toward each of the top `num_targets` classes, one
            gradient per step) or untargeted FAB (the nearest linearised
            boundary over all classes, a full Jacobian per step).
        num_targets: target classes to try with `targeted` (at most classes
            minus one; AutoAttack uses 9).
        steps: iterations per target and restart (AutoAttack uses 100).
        restarts: runs per target; the first starts at x, later ones at a
            random point at half of `epsilon` (AutoAttack's FAB-T uses 1).
        seed: an int (or [2] ints) for the random starts of later restarts.
        minimal: attack every correctly classified image with every target
            and restart, keeping the smallest perturbation found (the
            minimum-norm adversarial example); by default, as in AutoAttack,
            later targets attack only images not yet broken within epsilon.
        batch_size: images per compiled call; None attacks all of `x` at once.
        jit_compile: compile with XLA (every run then attacks the whole
            batch, since XLA needs static shapes).
        config: a `FABConfig` holding these settings (defaults: AutoAttack's
            FAB-T); the keywords above that are given (not None) override its
            fields, `epsilon` its budget. The step's shape is set here only:
            `FABConfig(alpha_max=...)`, the largest weight of the step from
            the original image; `FABConfig(eta=...)`, the overshoot of the
            linearised boundary (>= 1); `FABConfig(beta=...)`, the backward
            step toward x after a success, in (0, 1].

    Returns:
        float32 images: per sample a misclassified image within `epsilon`
        of x and in [0, 1], or x itself where none was found.

    Example:

    >>> x_adv = fab(model, x_test, y_test, epsilon=8 / 255)  # doctest: +SKIP
    >>> x_adv = fab(model, x_test, y_test, epsilon=8 / 255,
    ...             config=FABConfig(eta=1.1, beta=0.8))  # doctest: +SKIP
    >>> model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
    ...                           keras.layers.Dense(10)])
    >>> x = np.random.default_rng(0).random((4, 8, 8, 3), "float32")
    >>> x_adv = fab(model, x, [0, 1, 2, 3], epsilon=8 / 255, num_targets=2, steps=3)
    >>> x_adv.shape, bool(np.abs(x_adv - x).max() <= 8 / 255 + 1e-6)
    (TensorShape([4, 8, 8, 3]), True)
    """
    config = build_config(
        FABConfig, config, norm=norm, targeted=targeted, num_targets=num_targets, steps=steps,
        restarts=restarts, minimal=minimal)
    epsilon = config.epsilon if epsilon is None else epsilon
    if epsilon is None:
        raise ValueError("No budget: pass `epsilon` or a `config` with one.")
    x = validate_common(x, epsilon, config.norm)
    labels = label_indices(tf.convert_to_tensor(y))
    if labels.shape.rank != 1 or (x.shape[0] is not None and labels.shape[0] != x.shape[0]):
        raise ValueError(
            f"`y` must hold one label per image ({x.shape[0]} images: class indices [B] or "
            f"rows [B, num_classes]), got labels of shape {np.shape(y)}."
        )
    epsilon = tf.cast(epsilon, tf.float32)
    count = x.shape[0]
    size = None if batch_size is None else check_positive_int(batch_size, "batch_size")
    settings = config.graph_key()
    seed = as_seed(seed)
    if size is None or count is None or size >= count:
        return _fab_impl(model, x, labels, settings, jit_compile=jit_compile, epsilon=epsilon,
                         seed=seed, compact=not jit_compile)
    per_image = epsilon.shape.rank == 1
    outputs = []
    for start in range(0, int(count), size):
        part = slice(start, start + size)
        outputs.append(_fab_impl(
            model, x[part], labels[part], settings, jit_compile=jit_compile,
            epsilon=epsilon[part] if per_image else epsilon, seed=seed, compact=not jit_compile,
        ))
    return tf.concat(outputs, axis=0)
