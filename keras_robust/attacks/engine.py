"""The iterative first-order attack that PGD, FGSM and MI-FGSM share, and how
every attack is compiled.

One loop (`run_attack`), configured by an `AttackConfig`: the norm of the ball
and of the step, the objective, the target, a random start, momentum on
L1-normalised gradients (MI-FGSM), input diversity (DI) and Gaussian smoothing
of the gradient (TI). With momentum, DI, TI, the logit loss and an `Ensemble`
it is eq. 6 of the data-centric paper; with none of them it is Madry's PGD.
`early_stop_attack` is its evaluation variant that stops on each fooled
sample, `with_restarts` keeps the worst case over restarts. They are plain
graph functions: defences trace them into their `train_step`, the public
attacks compile them with `compiled_attack`.
"""
from __future__ import annotations

import functools
import weakref
from typing import Any, Callable, NamedTuple

import numpy as np
import tensorflow as tf

from keras_robust.attacks.common import (
    LogitsFn,
    check_batch,
    fold_seed,
    gaussian_start,
    normalize,
    per_sample,
    project,
    random_start as draw_random_start,
    random_uniform,
    label_indices,
    refuse_diversity_with_early_stop,
    step_standing,
    unrolled_loop,
)
from keras_robust.attacks.config import AttackConfig
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



class _Prepared(NamedTuple):
    """What both loops share: the gradient and step functions and the first step."""

    y: tf.Tensor
    gradient: Callable
    step: Callable
    bounds: dict
    x_start: tf.Tensor
    x_next: tf.Tensor
    velocity: tf.Tensor
    start_logits: tf.Tensor
    target_classes: tf.Tensor | None


def _prepare(logits_fn: LogitsFn, x: tf.Tensor, y: Any, config: AttackConfig,
             seed: tf.Tensor | None, epsilon: Any, step_size: Any, target: Any) -> _Prepared:
    """Resolves the per-call numbers, builds the step, and takes the first step."""
    if epsilon is None:
        epsilon = config.epsilon
    if epsilon is None:
        raise ValueError(
            "No budget: the AttackConfig has epsilon=None, so pass `epsilon=` (a number or a "
            "[B] tensor) to the call.")
    if step_size is None:
        step_size = config.step_for(epsilon)
    if target is None:
        target = config.target
    norm, momentum = config.norm, config.momentum
    input_diversity, loss = config.input_diversity, config.loss
    y = label_indices(y)
    eps = per_sample(epsilon, x)
    alpha = per_sample(step_size, x)
    reference = None
    if loss == "kl":  # TRADES: the clean prediction, once per batch, is what x' moves away from
        reference = tf.stop_gradient(tf.nn.softmax(tf.cast(logits_fn(x), tf.float32)))
    objective_fn = loss if callable(loss) else (
        lambda z, y_, t: objective(loss, z, y_, t, reference=reference))
    kernel = (gaussian_kernel(config.smoothing_kernel, int(x.shape[-1]))
              if config.smoothing_kernel else None)

    # Targets given as labels are used as they are; "mc"/"ll" chosen at the clean
    # images cost one forward pass here; the others ("random", or "mc"/"ll" at the
    # start point) are chosen from the logits of the first gradient pass.
    target_classes = None
    if target is not None and not isinstance(target, str):
        target_classes = label_indices(target)
    elif needs_logits(target) and config.target_source == "clean":
        clean_logits = logits_fn(x)
        target_classes = tf.stop_gradient(
            select_target(target, y, tf.shape(clean_logits)[-1], clean_logits)
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
    # The L-inf ball intersected with [0, 1] is a box: one clip per step. Without
    # projection (N-FGSM) the box is [0, 1] and the L2 radius unbounded.
    radius = eps if config.project else tf.fill(tf.shape(eps), float("inf"))
    if norm == "linf":
        bounds = {"alpha": alpha, "lower": tf.maximum(x - radius, 0.0),
                  "upper": tf.minimum(x + radius, 1.0)}
    else:
        bounds = {"alpha": alpha, "x": x, "eps": radius}

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

    x_adv = x
    if config.random_start and config.start == "gaussian":
        x_adv = gaussian_start(x, config.start_scale, fold_seed(seed, 1))
    elif config.random_start:
        x_adv = draw_random_start(x, config.start_radius * eps, norm, fold_seed(seed, 1))
    # The first step is peeled off the loop: it fixes the target when chosen at
    # the start point and returns the start logits that defences reuse.
    grad, start_logits, target_classes = gradient(x_adv, target_classes, 0)
    velocity = tf.zeros_like(x)
    x_next, velocity = step(x_adv, grad, velocity)
    return _Prepared(y, gradient, step, bounds, x_adv, x_next, velocity, start_logits,
                     target_classes)


def run_attack(
    logits_fn: LogitsFn,
    x: tf.Tensor,
    y: Any,
    config: AttackConfig,
    *,
    seed: tf.Tensor | None = None,
    active: tf.Tensor | None = None,
    epsilon: Any = None,
    step_size: Any = None,
    target: Any = None,
) -> AttackResult:
    """Runs `config.steps` ascent steps on the config's objective inside its ball (one run).

    A plain graph function (no `tf.function`, no input checks): defences call
    it inside their `train_step`; the public attacks compile it with
    `compiled_attack`. With `config.early_stop` it is `early_stop_attack`.
    `config.restarts` is ignored here (see `with_restarts`).

    Args:
        logits_fn: images -> float32 logits (see `common.as_logits_fn`).
        x: float32 [B, H, W, C] images in [0, 1].
        y: labels (sparse, one-hot or soft; the argmax is the true class).
        config: the `AttackConfig`.
        seed: optional [2] int seed; makes every random draw reproducible.
        active: optional bool [B], with `config.early_stop` only: the samples
            to attack; the others are returned as the first iterate.
        epsilon: the budget for this call (a number or a [B] tensor), instead
            of `config.epsilon`.
        step_size: the step for this call, instead of `config.step_size`.
        target: target labels for this call, instead of `config.target`.

    Returns:
        An `AttackResult`.

    Example:

    >>> model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
    ...                           keras.layers.Dense(10)])
    >>> x = tf.random.stateless_uniform([4, 8, 8, 3], [0, 0])
    >>> config = AttackConfig(epsilon=8 / 255, step_size=2 / 255, steps=3)
    >>> result = run_attack(model, x, [0, 1, 2, 3], config, seed=tf.constant([0, 0]))
    >>> result.x_adv.shape, bool(tf.reduce_max(tf.abs(result.x_adv - x)) <= 8 / 255 + 1e-6)
    (TensorShape([4, 8, 8, 3]), True)
    """
    if config.early_stop:
        return early_stop_attack(logits_fn, x, y, config, seed=seed, active=active,
                                 epsilon=epsilon, step_size=step_size, target=target)
    p = _prepare(logits_fn, x, y, config, seed, epsilon, step_size, target)

    def body(i, state):
        grad, _, _ = p.gradient(state[0], p.target_classes, i)
        return p.step(state[0], grad, state[1])

    # The remaining steps, unrolled UNROLLED_STEPS at a time (PGD-10's are
    # one straight graph; see `common.unrolled_loop`).
    x_adv, _ = unrolled_loop(body, 1, config.steps, (p.x_next, p.velocity))
    return AttackResult(tf.stop_gradient(x_adv), p.start_logits, p.target_classes)


def early_stop_attack(
    logits_fn: LogitsFn,
    x: tf.Tensor,
    y: Any,
    config: AttackConfig,
    *,
    seed: tf.Tensor | None = None,
    active: tf.Tensor | None = None,
    epsilon: Any = None,
    step_size: Any = None,
    target: Any = None,
) -> AttackResult:
    """`run_attack` that keeps each sample's first adversarial iterate and stops on it.

    A sample is fooled when misclassified (or classified as its target);
    every later step runs on the samples still standing only (gathered into a
    smaller batch). Per sample the iterates are those of the plain attack up
    to that point, so the output is adversarial wherever the plain attack's
    path ever was. For evaluation, not training; not with input diversity
    (success is judged on the logits of the step, which DI transforms).

    Args:
        logits_fn: images -> float32 logits.
        x: float32 [B, H, W, C] images in [0, 1].
        y: labels.
        config: the `AttackConfig` (its `early_stop` flag is not read).
        seed: optional [2] int seed.
        active: optional bool [B]: the samples to attack; the others are
            returned as the first iterate (restarts pass the samples no
            earlier restart fooled).
        epsilon: see `run_attack`.
        step_size: see `run_attack`.
        target: see `run_attack`.

    Returns:
        An `AttackResult`.

    Example:

    >>> model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
    ...                           keras.layers.Dense(10)])
    >>> x = tf.random.stateless_uniform([4, 8, 8, 3], [0, 0])
    >>> config = AttackConfig(epsilon=8 / 255, step_size=2 / 255, steps=3, early_stop=True)
    >>> early_stop_attack(model, x, [0, 1, 2, 3], config).x_adv.shape
    TensorShape([4, 8, 8, 3])
    """
    refuse_diversity_with_early_stop(config.input_diversity, True)
    if config.loss == "kl":
        raise ValueError("early_stop_attack cannot run the KL objective (TRADES' training "
                         "attack); use run_attack, or loss='ce' to evaluate.")
    p = _prepare(logits_fn, x, y, config, seed, epsilon, step_size, target)
    y, target_classes, bounds = p.y, p.target_classes, p.bounds
    standing = ~succeeded(p.start_logits, y, target_classes)
    if active is not None:
        standing = standing & tf.cast(active, tf.bool)
    x_adv = tf.where(_rows(standing), p.x_next, p.x_start)

    def early_stop_body(i, state):
        def attack_standing(sub, inputs):
            x_sub, v_sub, _ = sub
            y_sub, t_sub, bounds_sub = inputs
            grad, logits, _ = p.gradient(x_sub, t_sub, i, y=y_sub)
            fooled = succeeded(logits, y_sub, t_sub)
            x_new, v_new = p.step(x_sub, grad, v_sub, bounds_sub)
            x_new = tf.where(_rows(fooled), x_sub, x_new)
            return x_new, v_new, ~fooled

        return step_standing(state[2], attack_standing, state, (y, target_classes, bounds))

    x_adv, _, _ = unrolled_loop(early_stop_body, 1, config.steps, (x_adv, p.velocity, standing))
    return AttackResult(tf.stop_gradient(x_adv), p.start_logits, target_classes)


def _rows(mask: tf.Tensor) -> tf.Tensor:
    """A [B] bool mask as [B, 1, 1, 1], to select whole images with `tf.where`."""
    return tf.reshape(mask, [-1, 1, 1, 1])


def with_restarts(
    logits_fn: LogitsFn,
    x: tf.Tensor,
    y: Any,
    config: AttackConfig,
    *,
    seed: tf.Tensor | None = None,
    epsilon: Any = None,
    step_size: Any = None,
    target: Any = None,
) -> tf.Tensor:
    """Runs the attack `config.restarts` times and keeps, per sample, the worst case.

    The worst case is an adversarial example if any restart found one (the one
    with the highest objective among them), else the highest objective. With
    `config.early_stop`, each restart attacks only the samples that no
    earlier restart fooled.

    Args:
        logits_fn: images -> float32 logits.
        x: float32 [B, H, W, C] images in [0, 1].
        y: labels.
        config: the `AttackConfig` (a named `loss`, not a callable, when
            `restarts` > 1: restarts are compared on it).
        seed: optional [2] int seed; restart r uses `fold_seed(seed, 1000 + r)`.
        epsilon: see `run_attack`.
        step_size: see `run_attack`.
        target: see `run_attack`.

    Returns:
        The adversarial images.

    Example:

    >>> model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
    ...                           keras.layers.Dense(10)])
    >>> x = tf.random.stateless_uniform([4, 8, 8, 3], [0, 0])
    >>> config = AttackConfig(epsilon=8 / 255, steps=2, restarts=3)
    >>> with_restarts(model, x, [0, 1, 2, 3], config, seed=tf.constant([1, 0])).shape
    TensorShape([4, 8, 8, 3])
    """
    y_sparse = label_indices(y)
    restarts, loss = config.restarts, config.loss
    best = active = None
    for restart in range(restarts):
        if config.early_stop and best is not None:
            active = ~best_success
        result = run_attack(
            logits_fn, x, y_sparse, config, seed=fold_seed(seed, 1000 + restart), active=active,
            epsilon=epsilon, step_size=step_size, target=target,
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


class _BoundAttack:
    """One attack, one settings value and (weakly) one model: what one `tf.function` runs.

    A callable object rather than a closure on purpose: TensorFlow counts
    retracing per Python code object, so closures sharing one body would
    share one count across every model and attack (the "5 out of the last 5
    calls ... triggered tf.function retracing" warning); an object is counted
    on its own.
    """

    def __init__(self, impl: Callable, settings: Any, model: Any = None):
        self.impl = impl
        self.settings = settings
        self.model = None if model is None else weakref.ref(model)

    def __call__(self, *args: Any, **per_call: Any) -> Any:
        if self.model is None:  # a model that cannot be weakly referenced: passed in
            model, args = args[0], args[1:]
        else:
            model = self.model()
        return self.impl(model, *args, self.settings, **per_call)


def _graph_key(settings: Any) -> Any:
    return settings.graph_key() if hasattr(settings, "graph_key") else settings


def compiled_attack(impl: Callable) -> Callable:
    """Compiles an attack once per (model, settings' graph, jit_compile); one decorator per attack.

    `impl(model, x, y, settings, **per_call)` is the attack as a graph
    function: `settings` a hashable value holding what shapes the graph (an
    `AttackConfig`, or a tuple of Python values), `per_call` the tensors of
    the call (budget, seed, target labels; None is allowed). The decorated
    function `attack(model, x, y, settings, *, jit_compile=False, **per_call)`
    checks the batch against the model (`common.check_batch`), then

    - inside a graph (a defence's `train_step`), runs `impl` inline;
    - eagerly, runs a `tf.function(reduce_retracing=True)` kept per model
      (weakly: freed with the model) and per graph key of `settings`
      (`AttackConfig.graph_key()`: without epsilon and step size, which the
      attack must take from `per_call`). Only a new batch shape retraces it;
      models that cannot be weakly referenced (a list of models) share one
      function per settings and are passed to it.

    Args:
        impl: the attack's graph function.

    Returns:
        The compiled attack.

    Example:

    >>> @compiled_attack
    ... def nudge(model, x, y, settings, *, epsilon):
    ...     del model, y
    ...     (sign,) = settings
    ...     return tf.clip_by_value(x + sign * epsilon, 0.0, 1.0)
    >>> model = keras.Sequential([keras.Input((2, 2, 1)), keras.layers.Flatten(),
    ...                           keras.layers.Dense(3)])
    >>> x = tf.fill([2, 2, 2, 1], 0.5)
    >>> float(nudge(model, x, [0, 1], (1.0,), epsilon=tf.constant(0.25))[0, 0, 0, 0])
    0.75
    """

    @functools.wraps(impl)
    def attack(model: Any, x: Any, y: Any, settings: Any, *, jit_compile: bool = False,
               **per_call: Any) -> Any:
        check_batch(model, x, y, per_call.get("target"))
        if not tf.executing_eagerly():
            return impl(model, x, y, settings, **per_call)
        key = (impl, _graph_key(settings), bool(jit_compile))
        try:
            per_model = _COMPILED_PER_MODEL.setdefault(model, {})
        except TypeError:  # not weak-referenceable or not hashable
            function = _COMPILED_SHARED.get(key)
            if function is None:
                function = tf.function(_BoundAttack(impl, key[1]), jit_compile=key[2],
                                       reduce_retracing=True)
                _COMPILED_SHARED[key] = function
            return function(model, x, y, **per_call)
        function = per_model.get(key)
        if function is None:
            function = tf.function(_BoundAttack(impl, key[1], model), jit_compile=key[2],
                                   reduce_retracing=True)
            per_model[key] = function
        return function(x, y, **per_call)

    return attack


def clear_compiled() -> None:
    """Forgets every compiled attack (benchmarks time a fresh trace with it).

    Example:

    >>> clear_compiled()
    """
    _COMPILED_PER_MODEL.clear()
    _COMPILED_SHARED.clear()


_COMPILED_PER_MODEL: "weakref.WeakKeyDictionary[Any, dict]" = weakref.WeakKeyDictionary()
_COMPILED_SHARED: dict = {}

__all__ = [
    "compiled_attack", "clear_compiled", "early_stop_attack", "run_attack",
    "with_restarts",
]
