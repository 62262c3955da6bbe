"""Pieces every attack shares: the model as a logits function, labels, budgets,
projections and seeded randomness. Everything here runs inside `tf.function`.
"""
from __future__ import annotations

import weakref
from typing import Any, Callable, Sequence

import keras
import tensorflow as tf

from keras_robust import _labels, _random
from keras_robust._validation import (
    check_bool, check_choice, check_epsilon, check_images, check_labels,
)

LogitsFn = Callable[[tf.Tensor], tf.Tensor]
NORMS = ("linf", "l2")


class Ensemble:
    """Averages the logits of several models (eq. 5 of the data-centric paper).

    An ensemble is itself a model for every attack in `keras_robust.attacks`:
    attacking it crafts perturbations that transfer better than those of any
    member.

    Args:
        models: Keras models (or callables) mapping [0, 1] images to logits.
        weights: optional non-negative weights, normalised to sum to 1.

    Example:

    >>> ensemble = Ensemble([resnet, vgg, mobilenet])  # doctest: +SKIP
    >>> models = [keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
    ...                             keras.layers.Dense(10)]) for _ in range(3)]
    >>> ensemble = Ensemble(models, weights=[2, 1, 1])
    >>> len(ensemble), ensemble.weights
    (3, [0.5, 0.25, 0.25])
    >>> x = np.random.default_rng(0).random((4, 8, 8, 3), "float32")
    >>> mean = sum(w * m(x) for w, m in zip(ensemble.weights, models))
    >>> bool(np.allclose(ensemble(x), mean, atol=1e-6))     # the weighted mean of the logits
    True
    >>> x_adv = keras_robust.attacks.mi_fgsm(ensemble, x, [0, 1, 2, 3], 8 / 255, steps=2)
    >>> x_adv.shape, bool(np.abs(x_adv - x).max() <= 8 / 255 + 1e-6)
    (TensorShape([4, 8, 8, 3]), True)
    """

    def __init__(self, models: Sequence[Any], weights: Sequence[float] | None = None):
        models = list(models)
        if not models:
            raise ValueError("An Ensemble needs at least one model.")
        for model in models:
            if not callable(model):
                raise TypeError(f"Ensemble members must be callable models, got {type(model)}.")
        if weights is None:
            weights = [1.0] * len(models)
        if len(weights) != len(models) or min(weights) < 0 or sum(weights) <= 0:
            raise ValueError(
                f"`weights` must be {len(models)} non-negative numbers with a positive sum, "
                f"got {weights}."
            )
        total = float(sum(weights))
        self.models = models
        self.weights = [float(w) / total for w in weights]

    def __call__(self, images: tf.Tensor, training: bool = False) -> tf.Tensor:
        outputs = [
            w * _logits_of(model, images, training) for w, model in zip(self.weights, self.models)
        ]
        return tf.add_n(outputs)

    def __len__(self) -> int:
        return len(self.models)


def _logits_of(model: Any, images: tf.Tensor, training: bool = False) -> tf.Tensor:
    if isinstance(model, (keras.Model, keras.layers.Layer)):
        logits = model(images, training=training)
    elif isinstance(model, Ensemble):
        logits = model(images, training=training)
    else:
        logits = model(images)
    return tf.cast(logits, tf.float32)


def as_logits_fn(model: Any) -> LogitsFn:
    """Turns a model, an `Ensemble`, a list of models or a callable into x -> float32 logits.

    Keras models are called with `training=False`; a list or tuple of models
    becomes a logit-averaging `Ensemble`.
    """
    if isinstance(model, (list, tuple)):
        model = Ensemble(model)
    if not callable(model):
        raise TypeError(
            "`model` must be a Keras model, an Ensemble, a list of models or a callable "
            f"mapping [0, 1] images to logits; got {type(model).__name__}."
        )
    return lambda images: _logits_of(model, images)


def label_indices(y: Any) -> tf.Tensor:
    """Class indices (int32, [B]) from sparse, one-hot or soft labels (a graph function).

    Example:

    >>> label_indices([[0.0, 1.0], [1.0, 0.0]]).numpy().tolist()
    [1, 0]
    """
    return _labels.class_indices(y)


# A logit offset that rules a class out of a max (or a min) over the classes.
_BIG = 1e9


def without_class(logits: tf.Tensor, hot: tf.Tensor, lowest: bool = False) -> tf.Tensor:
    """`logits` with the one-hot classes of `hot` pushed out of a max (or, `lowest`, a min).

    Args:
        logits: [B, C] logits.
        hot: [B, C] one-hot rows of the class to rule out.
        lowest: push the class up (out of a min) instead of down.

    Returns:
        [B, C] logits, the ruled-out class moved by 1e9.

    Example:

    >>> without_class(tf.constant([[3.0, 1.0]]), tf.constant([[1.0, 0.0]]))[0, 0] < 0
    <tf.Tensor: shape=(), dtype=bool, numpy=True>
    """
    return logits + hot * _BIG if lowest else logits - hot * _BIG


def best_other_logit(logits: tf.Tensor, hot: tf.Tensor) -> tf.Tensor:
    """The largest logit of a class other than the one-hot class of `hot`, per sample ([B]).

    Example:

    >>> best_other_logit(tf.constant([[3.0, 1.0, 2.0]]), tf.one_hot([0], 3)).numpy().tolist()
    [2.0]
    """
    return tf.reduce_max(without_class(logits, hot), axis=-1)


def top_other_classes(logits: tf.Tensor, y: tf.Tensor, k: int) -> tf.Tensor:
    """The `k` most likely classes other than `y`, most likely first (int32 [B, k]).

    Example:

    >>> top_other_classes(tf.constant([[3.0, 1.0, 2.0]]), tf.constant([0]), 2).numpy().tolist()
    [[2, 1]]
    """
    return tf.math.top_k(without_class(logits, tf.one_hot(y, tf.shape(logits)[-1])), k=k).indices


def step_standing(standing: tf.Tensor, step: Callable, state: Any, inputs: Any = ()) -> Any:
    """Gathers the rows still standing, steps them, and scatters the results back.

    Args:
        standing: bool [B], the rows to step.
        step: `(state_rows, input_rows) -> new state_rows`, with the nests of
            `state` and `inputs` gathered to the standing rows.
        state: a nest of [B, ...] tensors that `step` updates.
        inputs: a nest of [B, ...] tensors (or None) that `step` reads.

    Returns:
        `state` with the standing rows replaced by `step`'s results (unchanged
        when no row stands).

    Example:

    >>> step_standing(tf.constant([True, False]), lambda s, _: s + 1.0,
    ...               tf.constant([0.0, 0.0])).numpy().tolist()
    [1.0, 0.0]
    """
    rows = tf.where(standing)[:, 0]

    def run() -> Any:
        take = lambda t: None if t is None else tf.gather(t, rows)  # noqa: E731
        new = step(tf.nest.map_structure(take, state), tf.nest.map_structure(take, inputs))
        index = rows[:, None]
        return tf.nest.map_structure(
            lambda old, update: tf.tensor_scatter_nd_update(old, index, update), state, new)

    return tf.cond(tf.size(rows) > 0, run, lambda: state)


def per_sample(value: Any, batch_like: tf.Tensor) -> tf.Tensor:
    """A scalar or [B] value as float32 [B, 1, 1, 1], to broadcast over images."""
    value = tf.cast(tf.convert_to_tensor(value), tf.float32)
    if value.shape.rank == 0:
        value = tf.fill(tf.shape(batch_like)[:1], value)
    return tf.reshape(value, [-1, 1, 1, 1])


def l2_norm(v: tf.Tensor) -> tf.Tensor:
    """Per-sample L2 norm as [B, 1, 1, 1]."""
    return tf.sqrt(tf.reduce_sum(tf.square(v), axis=[1, 2, 3], keepdims=True))


def normalize(g: tf.Tensor, norm: str) -> tf.Tensor:
    """The steepest-ascent direction of unit size for `norm` ("linf": sign, "l2": g / ||g||)."""
    if norm == "linf":
        return tf.sign(g)
    return g / (l2_norm(g) + 1e-12)


def project(x_adv: tf.Tensor, x: tf.Tensor, epsilon: tf.Tensor, norm: str) -> tf.Tensor:
    """Projects onto the `norm` ball of radius `epsilon` ([B,1,1,1]) around `x`, then onto [0, 1].

    Clipping to [0, 1] after the ball projection never leaves the ball, since
    `x` itself lies in [0, 1].
    """
    delta = x_adv - x
    if norm == "linf":
        delta = tf.clip_by_value(delta, -epsilon, epsilon)
    else:
        delta = delta * tf.minimum(1.0, epsilon / (l2_norm(delta) + 1e-12))
    return tf.clip_by_value(x + delta, 0.0, 1.0)


def random_uniform(shape, seed: tf.Tensor | None, minval=0.0, maxval=1.0, dtype=tf.float32):
    """Uniform noise: stateless (reproducible) when `seed` ([2] ints) is given."""
    if seed is None:
        return tf.random.uniform(shape, minval, maxval, dtype=dtype)
    return tf.random.stateless_uniform(shape, seed, minval, maxval, dtype=dtype)


def random_normal(shape, seed: tf.Tensor | None):
    if seed is None:
        return tf.random.normal(shape)
    return tf.random.stateless_normal(shape, seed)


def fold_seed(seed: tf.Tensor | None, salt: int) -> tf.Tensor | None:
    """A new [2] seed derived from `seed` and a constant, or None when seed is None."""
    return _random.fold_seed(seed, salt)


def random_start(x: tf.Tensor, epsilon: tf.Tensor, norm: str, seed: tf.Tensor | None) -> tf.Tensor:
    """A uniform point of the ball (L-inf) or a uniform direction at a uniform radius (L2)."""
    if norm == "linf":
        delta = random_uniform(tf.shape(x), seed, -1.0, 1.0) * epsilon
    else:
        direction = normalize(random_normal(tf.shape(x), seed), "l2")
        radius = random_uniform(tf.shape(x)[:1], fold_seed(seed, 1))
        delta = direction * tf.reshape(radius, [-1, 1, 1, 1]) * epsilon
    return tf.clip_by_value(x + delta, 0.0, 1.0)


def gaussian_start(x: tf.Tensor, scale: float, seed: tf.Tensor | None) -> tf.Tensor:
    """x + scale * N(0, 1), not clipped: the start of TRADES' and MART's attacks.

    The authors' code takes the first gradient at this point as it is and
    clips to the ball and [0, 1] only after the first step.

    Example:

    >>> x = tf.fill([1, 2, 2, 1], 0.5)
    >>> bool(tf.reduce_max(tf.abs(gaussian_start(x, 0.001, tf.constant([0, 1])) - x)) < 0.01)
    True
    """
    return x + scale * random_normal(tf.shape(x), seed)


# Loop iterations unrolled into one straight graph by `unrolled_loop`.
# Measured on the 3-conv CNN of bench/attacks.py (CPU, oneDNN): a PGD-10
# traced as a while-loop ran at ~400 images/s in about 40% of its traces and
# ~640 in the others, persistently for the life of each trace; the same steps
# unrolled ran at 550-655 in every trace (docs/results/attacks.md).
UNROLLED_STEPS = 10


def unrolled_loop(body: Callable, start: int, stop: int, loop_vars: Any) -> Any:
    """Runs `loop_vars = body(i, loop_vars)` for i in [start, stop), UNROLLED_STEPS at a time.

    The iterations run as a `tf.while_loop` whose body is `UNROLLED_STEPS`
    unrolled calls, then the remainder unrolled after it, so a loop of up to
    `UNROLLED_STEPS` iterations is one straight graph. `i` is a Python int in
    unrolled calls and a scalar int32 tensor inside the while-loop; `body`
    must accept both (indexing a tensor and folding a seed do).

    Args:
        body: `(i, loop_vars) -> loop_vars`, a graph function of the iteration.
        start: the first iteration (a Python int).
        stop: one past the last iteration (a Python int).
        loop_vars: a tensor or a nest of tensors.

    Returns:
        The loop variables after the last iteration.

    Example:

    >>> total = unrolled_loop(lambda i, t: t + i, 0, 25, tf.constant(0))   # 300
    """
    chunks, rest = divmod(max(0, stop - start), UNROLLED_STEPS)

    def run(first, count, loop_vars):
        for offset in range(count):
            loop_vars = body(first + offset, loop_vars)
        return loop_vars

    if chunks:
        _, loop_vars = tf.while_loop(
            lambda c, _: c < chunks,
            lambda c, v: (c + 1, run(start + c * UNROLLED_STEPS, UNROLLED_STEPS, v)),
            (tf.constant(0), loop_vars),
            parallel_iterations=1,
        )
    return run(start + chunks * UNROLLED_STEPS, rest, loop_vars)


def as_seed(seed: Any) -> tf.Tensor | None:
    """None, an int, or a [2] tensor of ints -> None or an int64 [2] tensor."""
    return _random.as_seed(seed)


def validate_common(
    x: Any, epsilon: Any, norm: str, allow_zero_epsilon: bool = False
) -> tf.Tensor:
    """Checks images, budget and norm; returns the images as a float32 tensor."""
    check_choice(norm, NORMS, "norm")
    check_images(x, "x")
    # L2 budgets are not bounded by 1 (the data-centric paper uses 1.0 on 32x32x3).
    check_epsilon(epsilon, allow_zero=allow_zero_epsilon, maximum=1.0 if norm == "linf" else None)
    return tf.cast(tf.convert_to_tensor(x), tf.float32)


def check_early_stop(early_stop: Any, jit_compile: bool) -> bool:
    """Checks an attack's `early_stop` flag against `jit_compile`; returns it as `bool`.

    Early stopping gathers the samples not yet fooled each step (dynamic
    shapes), which XLA cannot compile.
    """
    early_stop = check_bool(early_stop, "early_stop")
    if early_stop and jit_compile:
        raise ValueError(
            "early_stop=True shrinks the batch as samples are fooled (dynamic shapes), which "
            "XLA cannot compile; pass jit_compile=False with it.")
    return early_stop


def refuse_diversity_with_early_stop(input_diversity: float, early_stop: bool) -> None:
    """Refuses early stopping with input diversity: the one place this refusal is written.

    Early stopping judges success on the logits of each step, which input
    diversity transforms.

    Raises:
        ValueError: when both are on.

    Example:

    >>> refuse_diversity_with_early_stop(0.5, False)
    """
    if early_stop and input_diversity > 0:
        raise ValueError(
            "early_stop judges success on the logits of each step, which input diversity "
            "transforms; use early_stop=False with input_diversity > 0.")


def refuse_diversity_with_xla(input_diversity: float, jit_compile: bool) -> None:
    """Refuses XLA with input diversity: the one place this refusal is written.

    Input diversity draws a random image size per step (a dynamic shape).

    Raises:
        ValueError: when both are on.

    Example:

    >>> refuse_diversity_with_xla(0.5, False)
    """
    if jit_compile and input_diversity > 0:
        raise ValueError(
            "Input diversity draws a random image size per step (a dynamic shape), which XLA "
            "cannot compile; use jit_compile=False with input_diversity > 0.")


def _members(model: Any) -> list:
    """The Keras models whose shapes `model` must agree with (all members of an ensemble)."""
    if isinstance(model, Ensemble):
        return [m for member in model.models for m in _members(member)]
    if isinstance(model, (list, tuple)):
        return [m for member in model for m in _members(member)]
    if isinstance(model, keras.Model):
        # A defence wrapper (RobustModel) is its backbone at inference.
        backbone = getattr(model, "backbone", None)
        if _declared_shapes(model) == (None, None) and isinstance(backbone, keras.Model):
            return _members(backbone)
        return [model]
    return []


def _declared_shapes(model: keras.Model) -> tuple[tuple | None, int | None]:
    """(image shape H, W, C; number of classes) a Keras model declares, None where unknown."""
    try:
        inputs, outputs = getattr(model, "inputs", None), getattr(model, "outputs", None)
    except (AttributeError, ValueError):  # a subclassed model that has not been called yet
        return None, None
    image_shape = num_classes = None
    if inputs and len(inputs) == 1 and len(inputs[0].shape) == 4:
        image_shape = tuple(inputs[0].shape[1:])
    if outputs and len(outputs) == 1 and len(outputs[0].shape) == 2:
        num_classes = outputs[0].shape[-1]
    return image_shape, num_classes


def check_batch(model: Any, x: tf.Tensor, y: Any, target: Any = None) -> None:
    """Checks an attack's images and labels against the model, where they enter.

    `tf.function(reduce_retracing=True)` loosens the traced shapes after calls
    at other batch sizes, so Keras's own input check stops firing and images of
    another size can pass through a model that pools them away. So here:
    the batch must be non-empty; its image shape must match every Keras
    model's declared input (models without one, such as plain callables, are
    skipped); `y` must hold one label per image; sparse labels must be class
    indices in [0, num_classes) and dense rows must have num_classes columns,
    with num_classes read from the model's output or, when it declares none,
    from a trace of its logits on one image (eager calls only; nothing runs).
    Symbolic values (an attack traced into a `train_step`) get the static
    checks only.

    Args:
        model: what the attack attacks (see `as_logits_fn`).
        x: the images, float32 [B, H, W, C] (a tensor or an array).
        y: the true labels: class indices [B] (or [B, 1]), or one-hot / soft rows.
        target: a targeted attack's target labels (checked like `y`: one per
            image, classes of the model), or None / a mode name (not checked).

    Raises:
        ValueError: for an empty batch, images of the wrong shape, a label
            count other than the image count, or labels (or target labels)
            outside the model's classes.

    Example:

    >>> model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
    ...                           keras.layers.Dense(10)])
    >>> check_batch(model, tf.zeros([2, 8, 8, 3]), [0, 9])
    >>> try:
    ...     check_batch(model, tf.zeros([2, 8, 8, 3]), [0, 10])
    ... except ValueError as error:
    ...     print(error)
    `y` must be class indices in [0, 10), got values in [0, 10].
    """
    if x.shape[0] == 0:
        raise ValueError(
            "`x` is empty (0 images); expected a batch of at least one image [B, H, W, C].")
    members = _members(model)
    num_classes = None
    for member in members:
        image_shape, classes = _declared_shapes(member)
        if image_shape is not None and not tf.TensorShape(x.shape[1:]).is_compatible_with(
                image_shape):
            raise ValueError(
                f"`x` holds images of shape {tuple(x.shape[1:])} but the model "
                f"{member.name!r} takes images of shape {image_shape}; resize the images "
                "(or attack the model they were made for).")
        num_classes = num_classes or classes
    named = {"y": y}
    if target is not None and not isinstance(target, str):
        named["target"] = target
    for name, value in named.items():
        labels = (value if tf.is_tensor(value) or hasattr(value, "shape")
                  else tf.convert_to_tensor(value))
        rank = len(labels.shape)
        if rank not in (1, 2):
            raise ValueError(
                f"`{name}` must be class indices [B] or label rows [B, num_classes], got shape "
                f"{tuple(labels.shape)}.")
        if (labels.shape[0] is not None and x.shape[0] is not None
                and labels.shape[0] != x.shape[0]):
            raise ValueError(
                f"`x` has {x.shape[0]} images but `{name}` has {labels.shape[0]} labels; "
                "expected one label per image.")
        named[name] = labels
    if num_classes is None and tf.executing_eagerly():
        num_classes = _traced_num_classes(model, x)
    if num_classes is not None:
        for name, labels in named.items():
            check_labels(labels, int(num_classes), name)


def _traced_num_classes(model: Any, x: Any) -> int | None:
    """The logits' width of a model that declares none, from a trace on one image.

    Tracing runs nothing (a model that counts its calls sees none) and is
    done once per model and image shape.
    """
    key = tuple(x.shape[1:])
    try:
        known = _NUM_CLASSES.setdefault(model, {})
    except TypeError:  # not weak-referenceable or not hashable
        known = {}
    if key not in known:
        trace = tf.function(lambda images: _logits_of(model, images))
        spec = tf.TensorSpec([1, *key], tf.float32)
        known[key] = trace.get_concrete_function(spec).structured_outputs.shape[-1]
    return known[key]


_NUM_CLASSES: "weakref.WeakKeyDictionary[Any, dict]" = weakref.WeakKeyDictionary()
