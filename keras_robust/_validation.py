"""Argument and input checks shared by the whole library.

Every public entry point validates what enters it here, so a bad value fails at
once with a message that says what was expected, instead of deep inside a
`tf.function` or, worse, silently.
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import numpy as np
import tensorflow as tf


def check_choice(value: Any, valid: Iterable[str], what: str) -> str:
    """Returns `value` if it is one of `valid`, else raises a `ValueError`.

    Args:
        value: the user's choice.
        valid: the accepted names.
        what: what the value names, for the message ("target", "loss", ...).

    Returns:
        The value, unchanged.
    """
    valid = tuple(valid)
    if not isinstance(value, str) or value not in valid:
        raise ValueError(
            f"Unknown {what} {value!r}. Expected one of: {', '.join(map(repr, valid))}."
        )
    return value


def check_epsilon(
    epsilon: Any, name: str = "epsilon", allow_zero: bool = False, maximum: float | None = 1.0
) -> Any:
    """Checks a perturbation budget on the [0, 1] image scale.

    Python numbers (and eager tensors or arrays) must lie in (0, maximum] (or
    [0, maximum] when `allow_zero`); symbolic tensors are passed through
    unchanged.

    Args:
        epsilon: a number, array or tensor (scalar or one value per sample).
        name: the argument's name, for the message.
        allow_zero: accept 0 as a budget.
        maximum: the largest budget accepted (1 for L-inf on [0, 1] images;
            None for no bound, as for L2 budgets).

    Returns:
        The value, unchanged.
    """
    values = _concrete_values(epsilon)
    if values is None:
        return epsilon
    if values.size == 0:
        raise ValueError(f"`{name}` is empty; expected a budget in (0, 1].")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"`{name}` must be finite, got {epsilon!r}.")
    low_ok = np.all(values >= 0) if allow_zero else np.all(values > 0)
    if not low_ok or (maximum is not None and np.any(values > maximum)):
        upper = "inf)" if maximum is None else f"{maximum:g}]"
        interval = ("[0, " if allow_zero else "(0, ") + upper
        shown = values if values.size <= 4 else f"values in [{values.min()}, {values.max()}]"
        raise ValueError(
            f"`{name}` must be in {interval} on the [0, 1] image scale (e.g. 8/255 for "
            f"8 pixel levels), got {shown}."
        )
    return epsilon


def check_bool(value: Any, name: str, meaning: str = "True or False") -> bool:
    """Checks that `value` is a bool (Python's or NumPy's) and returns it as `bool`.

    `meaning` words the two values in the error (e.g. "True (FAB-T) or False (FAB)").
    """
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"`{name}` must be {meaning}, got {value!r}.")
    return bool(value)


def check_positive_int(value: Any, name: str, minimum: int = 1) -> int:
    """Checks that `value` is an integer >= `minimum` and returns it as `int`."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"`{name}` must be an integer >= {minimum}, got {value!r}.")
    if value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}, got {value}.")
    return int(value)


def check_fraction(value: Any, name: str, low: float = 0.0, high: float = 1.0) -> float:
    """Checks that `value` is a finite number in [low, high] and returns it as float."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        raise TypeError(f"`{name}` must be a number in [{low}, {high}], got {value!r}.")
    value = float(value)
    if not (math.isfinite(value) and low <= value <= high):
        raise ValueError(f"`{name}` must be in [{low}, {high}], got {value}.")
    return value


def check_positive(value: Any, name: str) -> float:
    """Checks that `value` is a finite number > 0 and returns it as float."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        raise TypeError(f"`{name}` must be a positive number, got {value!r}.")
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"`{name}` must be a positive finite number, got {value}.")
    return value


def check_images(images: Any, name: str = "images", channels: Sequence[int] | None = None) -> None:
    """Checks a batch of images against the library's convention.

    Images are float NHWC in [0, 1]. Static checks (rank, channels, dtype) run
    on any tensor; value checks (range, NaN) run on concrete values only (NumPy
    arrays and eager tensors), never inside a traced function.

    Args:
        images: the batch.
        name: the argument's name, for the message.
        channels: accepted channel counts, or None for any.

    Raises:
        TypeError: for integer or non-numeric dtypes.
        ValueError: for a wrong rank, channel count, NaN or values outside [0, 1].
    """
    dtype = _dtype_of(images)
    if dtype is not None and not dtype.is_floating:
        hint = ""
        if dtype in (tf.uint8, tf.int32, tf.int64):
            hint = " If these are 0..255 pixels, divide by 255 (keras_robust.data does this)."
        raise TypeError(
            f"`{name}` must be float images in [0, 1] (NHWC), got dtype {dtype.name}.{hint}"
        )
    shape = _shape_of(images)
    if shape is not None and shape.rank is not None:
        if shape.rank != 4:
            raise ValueError(
                f"`{name}` must be a batch of images of rank 4 (batch, height, width, "
                f"channels), got shape {shape}."
            )
        if channels is not None and shape[-1] is not None and shape[-1] not in channels:
            raise ValueError(
                f"`{name}` must have {' or '.join(map(str, channels))} channels (NHWC), "
                f"got shape {shape}."
            )
    summary = _value_summary(images)
    if summary is None:
        return
    finite, low, high = summary
    if not finite:
        raise ValueError(_non_finite_message(images, name, "finite images in [0, 1]"))
    if low < 0.0 or high > 1.0:
        hint = " They look like 0..255 pixels: divide by 255." if high > 1.5 else ""
        raise ValueError(
            f"`{name}` must lie in [0, 1] (the library's image convention), got values in "
            f"[{low:.4g}, {high:.4g}].{hint}"
        )


def check_labels(labels: Any, num_classes: int, name: str = "labels") -> None:
    """Checks sparse, one-hot or soft labels against `num_classes`.

    Sparse labels must be integers in [0, num_classes); dense labels must have
    `num_classes` columns and rows on the probability simplex. Value checks run
    on concrete values only.

    Raises:
        ValueError: for out-of-range classes, a wrong width or rows off the simplex.
    """
    shape = _shape_of(labels)
    dtype = _dtype_of(labels)
    dense = shape is not None and shape.rank == 2 and shape[-1] not in (None, 1)
    if dense and shape[-1] != num_classes:
        raise ValueError(
            f"`{name}` are dense with {shape[-1]} columns but the model has {num_classes} "
            f"classes; expected sparse class indices or [batch, {num_classes}] probabilities."
        )
    values = _concrete_values(labels)
    if values is None or values.size == 0:
        return
    if dense:
        if np.isnan(values).any() or values.min() < -1e-6:
            raise ValueError(f"`{name}` must be non-negative probabilities without NaN.")
        sums = values.sum(axis=-1)
        if np.abs(sums - 1.0).max() > 1e-3:
            raise ValueError(
                f"`{name}` rows must sum to 1 (one-hot or soft labels), got sums in "
                f"[{sums.min():.4g}, {sums.max():.4g}]."
            )
        return
    if not np.isfinite(values).all():
        raise ValueError(_non_finite_message(values, name, f"class indices in [0, {num_classes})"))
    if dtype is not None and dtype.is_floating and not np.all(values == np.round(values)):
        raise ValueError(f"Sparse `{name}` must be whole class indices, got {values[:5]}...")
    if values.min() < 0 or values.max() >= num_classes:
        raise ValueError(
            f"`{name}` must be class indices in [0, {num_classes}), got values in "
            f"[{int(values.min())}, {int(values.max())}]."
        )


def _value_summary(images: Any) -> tuple[bool, float, float] | None:
    """(all finite, min, max) of concrete images; None for symbolic or empty ones.

    Eager tensors are reduced where they live (three scalars come back, not the
    batch), so checking a batch on an accelerator costs no device-to-host copy.
    """
    if tf.is_tensor(images):
        if not tf.executing_eagerly() or not hasattr(images, "numpy") or images.shape.num_elements() == 0:
            return None
        values = tf.cast(images, tf.float32)
        return (bool(tf.reduce_all(tf.math.is_finite(values))),
                float(tf.reduce_min(values)), float(tf.reduce_max(values)))
    values = _concrete_values(images)
    if values is None or values.size == 0:
        return None
    return bool(np.isfinite(values).all()), float(np.nanmin(values)), float(np.nanmax(values))


def _non_finite_message(values: Any, name: str, expected: str) -> str:
    """Says where the first inf or NaN of concrete `values` is (called on the error path only)."""
    array = np.asarray(values.numpy() if tf.is_tensor(values) else values, dtype=np.float64)
    bad = np.argwhere(~np.isfinite(array))
    index = tuple(int(i) for i in bad[0]) if len(bad) else ()
    value = array[index] if len(bad) else float("nan")
    return (
        f"`{name}` contains inf/NaN at index {index} (value {value}, {len(bad)} non-finite "
        f"values in all); expected {expected}. Look for a division by zero or a bad decode "
        "upstream."
    )


NON_FINITE = "contains inf/NaN"
_GRAPH_CHECK = "keras_robust input check: "


def graph_check_message(error: Exception) -> str | None:
    """The message of a failed `assert_batch_in_graph`, from the TensorFlow error it raised.

    TensorFlow reports a failed assertion as a long "Graph execution error"
    trace; `fit` and `evaluate` re-raise it as a `ValueError` with this one
    line, values included. Returns None for any other error.
    """
    text = getattr(error, "message", None) or str(error)
    start = text.find(_GRAPH_CHECK)
    if start < 0:
        return None
    text = text[start + len(_GRAPH_CHECK):]
    if text.startswith(tuple("`S")) and "'\n" in text.split("] [")[0]:
        # Eager: "...Summarized data: b'message'\nvalue\nvalue".
        message, rest = text.split("'\n", 1)
        values = [v.strip() for v in rest.split("\n") if v.strip()]
    else:
        # Graph: "assertion failed: [message] [value] [value]\n\t [[{{node ...".
        message, *values = text.split("\n")[0].split("] [")
        values = [v.rstrip("]").strip() for v in values]
        message = message if values else message.rstrip("]'")
    if values:
        message = f"{message} [{', '.join(values)}]"
    return f"{message.rstrip('.')}. (Found by the check of every batch in the step.)"


def assert_batch_in_graph(
    images: tf.Tensor, labels: tf.Tensor | None, num_classes: int, where: str
) -> list:
    """In-graph versions of `check_images` and `check_labels`, for every batch of a dataset.

    The NumPy checks see concrete values only; a `tf.data.Dataset` is checked
    by its first batch there. These `tf.debugging` assertions check each batch
    where it is used (a `train_step`, a `tf.data` map), at the cost of a few
    reductions, and fail with the messages of the NumPy path (turn the
    TensorFlow error back into that message with `graph_check_message`). They are no-ops
    under XLA (`jit_compile=True` drops assertions), so an XLA-compiled step
    must check its input pipeline instead.

    Args:
        images: float images [B, H, W, C].
        labels: sparse [B] / [B, 1] class indices or [B, num_classes] rows, or None.
        num_classes: the model's number of classes.
        where: names the data in the messages ("fit", "evaluate", ...).

    Returns:
        The assertion ops (empty in eager mode, where they have run already):
        use them as control dependencies.

    Example:

    >>> @tf.function
    ... def checked(x, y):
    ...     with tf.control_dependencies(assert_batch_in_graph(x, y, 3, "fit")):
    ...         return tf.identity(y)
    >>> checked(tf.zeros([2, 4, 4, 1]), tf.constant([0, 2])).numpy()
    array([0, 2], dtype=int32)
    >>> try:
    ...     checked(tf.zeros([2, 4, 4, 1]), tf.constant([0, 3]))
    ... except tf.errors.InvalidArgumentError as error:
    ...     print("class indices in [0, 3)" in error.message)
    True
    """
    values = tf.cast(images, tf.float32)
    name = f"{where} images"
    finite = tf.reduce_all(tf.math.is_finite(values))
    ops = [
        tf.debugging.Assert(finite, [
            f"{_GRAPH_CHECK}`{name}` {NON_FINITE}; expected finite images in [0, 1]. Look for "
            "a division by zero or a bad decode upstream."]),
        tf.debugging.Assert(
            tf.logical_or(tf.logical_not(finite), tf.logical_and(
                tf.reduce_min(values) >= 0.0, tf.reduce_max(values) <= 1.0)),
            [f"{_GRAPH_CHECK}`{name}` must lie in [0, 1] (the library's image convention; "
             "0..255 pixels: divide by 255), got values in",
             tf.reduce_min(values), tf.reduce_max(values)]),
    ]
    if labels is None:
        return ops
    name = f"{where} labels"
    labels = tf.convert_to_tensor(labels)
    if labels.shape.rank == 2 and labels.shape[-1] not in (None, 1):
        rows = tf.cast(labels, tf.float32)
        sums = tf.reduce_sum(rows, axis=-1)
        ops.append(tf.debugging.Assert(
            tf.logical_and(
                tf.reduce_all(tf.math.is_finite(rows)) & (tf.reduce_min(rows) >= -1e-6),
                tf.reduce_max(tf.abs(sums - 1.0)) <= 1e-3),
            [f"{_GRAPH_CHECK}`{name}` rows must be non-negative probabilities without NaN "
             "that sum to 1 (one-hot or soft labels), got row sums in", tf.reduce_min(sums),
             tf.reduce_max(sums)]))
        return ops
    indices = tf.reshape(labels, [-1])
    if indices.dtype.is_floating:
        ops.append(tf.debugging.Assert(
            tf.reduce_all(tf.equal(indices, tf.round(indices))),
            [f"{_GRAPH_CHECK}Sparse `{name}` must be whole class indices without NaN, got",
             indices],
            summarize=5))
    indices = tf.cast(indices, tf.float32 if indices.dtype.is_floating else tf.int64)
    ops.append(tf.debugging.Assert(
        tf.logical_and(tf.reduce_min(indices) >= 0, tf.reduce_max(indices) < num_classes),
        [f"{_GRAPH_CHECK}`{name}` must be class indices in [0, {num_classes}), got values in",
         tf.reduce_min(indices), tf.reduce_max(indices)]))
    return ops


def _dtype_of(value: Any) -> tf.DType | None:
    if isinstance(value, (tf.Tensor, tf.Variable)) or tf.is_tensor(value):
        return tf.as_dtype(value.dtype)
    if isinstance(value, np.ndarray):
        try:
            return tf.as_dtype(value.dtype)
        except TypeError:
            return None
    return None


def _shape_of(value: Any) -> tf.TensorShape | None:
    if tf.is_tensor(value) or isinstance(value, np.ndarray):
        return tf.TensorShape(value.shape)
    return None


def _concrete_values(value: Any) -> np.ndarray | None:
    """The values of an array, number or eager tensor; None for symbolic tensors."""
    if isinstance(value, (int, float, np.number, np.ndarray, list, tuple)):
        return np.asarray(value, dtype=np.float64)
    if tf.is_tensor(value):
        if not tf.executing_eagerly() or not hasattr(value, "numpy"):
            return None
        try:
            return np.asarray(value.numpy(), dtype=np.float64)
        except (AttributeError, TypeError, ValueError):
            return None
    return None
