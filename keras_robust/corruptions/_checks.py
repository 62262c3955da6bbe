"""Argument checks and seed handling shared by the public functions."""
from __future__ import annotations

import numbers
from typing import Any, Iterable

import numpy as np

from keras_robust.corruptions.catalogue import CATALOGUE

#: Smallest image side every corruption is tested on.
MIN_SIDE = 8
_SEED_MAX = 2**63 - 1


def images(x: Any, who: str = "corrupt") -> tuple[np.ndarray, bool]:
    """Checks a uint8 NHWC batch or HWC image; returns ``(batch, was_single)``."""
    if not isinstance(x, np.ndarray):
        if hasattr(x, "numpy"):  # eager tensors
            x = x.numpy()
        else:
            x = np.asarray(x)
    if x.dtype != np.uint8:
        hint = ""
        if np.issubdtype(x.dtype, np.floating):
            hint = (
                " For float images in [0, 1] convert with "
                "np.round(np.clip(x, 0, 1) * 255).astype(np.uint8), or use "
                "corrupt_tf, which accepts float32 [0, 1] tensors."
            )
        raise TypeError(f"{who} expects uint8 images with values 0..255, got dtype {x.dtype}.{hint}")
    if x.ndim not in (3, 4):
        raise ValueError(
            f"{who} expects a batch of shape (N, H, W, C) or one image of shape "
            f"(H, W, C), got an array of rank {x.ndim} with shape {x.shape}."
        )
    single = x.ndim == 3
    batch = x[None] if single else x
    n, h, w, c = batch.shape
    if c not in (1, 3):
        raise ValueError(
            f"{who} expects 1 (grey) or 3 (RGB) channels in the last axis (NHWC), "
            f"got {c} in shape {x.shape}. Channels-first arrays need "
            "x.transpose(0, 2, 3, 1)."
        )
    if min(h, w) < MIN_SIDE:
        raise ValueError(f"{who} expects images of at least {MIN_SIDE}x{MIN_SIDE} pixels, got {h}x{w}.")
    return np.ascontiguousarray(batch), single


def name(value: Any) -> str:
    """Checks a corruption name."""
    if not isinstance(value, str):
        raise TypeError(f"A corruption name must be a str, got {type(value).__name__}: {value!r}.")
    if value not in CATALOGUE:
        raise ValueError(f"Unknown corruption {value!r}. Valid names: {', '.join(CATALOGUE)}.")
    return value


def names(values: Any) -> tuple[str, ...]:
    """Checks a non-empty sequence of corruption names (a single str allowed)."""
    if isinstance(values, str):
        values = (values,)
    out = tuple(name(v) for v in values)
    if not out:
        raise ValueError("Expected at least one corruption name, got an empty sequence.")
    return out


def severity(value: Any) -> int:
    """Checks a severity (int 1..5)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"severity must be an int from 1 to 5, got {type(value).__name__}: {value!r}.")
    if not 1 <= int(value) <= 5:
        raise ValueError(f"severity must be an int from 1 to 5, got {value}.")
    return int(value)


def severities(values: Iterable[Any]) -> tuple[int, ...]:
    """Checks a non-empty sequence of severities."""
    if isinstance(values, numbers.Integral):
        values = (values,)
    out = tuple(severity(v) for v in values)
    if not out:
        raise ValueError("Expected at least one severity, got an empty sequence.")
    return out


def seed(value: Any) -> int:
    """Checks a seed; ``None`` draws a fresh one from OS entropy."""
    if value is None:
        return int(np.random.SeedSequence().generate_state(1, np.uint64)[0] >> 1)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"seed must be None or a non-negative int, got {type(value).__name__}: {value!r}.")
    if not 0 <= int(value) <= _SEED_MAX:
        raise ValueError(f"seed must be None or an int in [0, 2**63 - 1], got {value}.")
    return int(value)


def unit_float_images(images: Any, who: str) -> Any:
    """Refuses float images with NaN or values outside [0, 1]; returns them.

    The tf.data and Keras entry points take float images on the library's
    [0, 1] scale and quantise them to uint8; clipping 0..255 floats or NaN
    there would corrupt a white or constant image without a word. Eager
    tensors are checked at once with
    :func:`keras_robust._validation.check_images` (``ValueError``); symbolic
    ones (``tf.function``, ``Dataset.map``, a Keras graph) get in-graph
    assertions with the same wording, which raise
    ``tf.errors.InvalidArgumentError`` when the batch is run.

    Args:
        images: float tensor, ``(N, H, W, C)`` or ``(H, W, C)``.
        who: the entry point, for the message.

    Returns:
        ``images`` (in a graph, behind the assertions).
    """
    import tensorflow as tf

    from keras_robust._validation import NON_FINITE, check_images

    name = f"{who} images"
    if tf.executing_eagerly() and hasattr(images, "numpy"):
        check_images(images if images.shape.rank == 4 else images[None], name)
        return images
    x = tf.cast(images, tf.float32)
    non_finite = tf.logical_not(tf.reduce_all(tf.math.is_finite(x)))  # NaN or inf
    low, high = tf.reduce_min(x), tf.reduce_max(x)
    in_range = tf.logical_or(tf.equal(tf.size(x), 0), tf.logical_and(low >= 0.0, high <= 1.0))
    checks = [
        tf.debugging.Assert(
            tf.logical_not(non_finite), [f"`{name}` {NON_FINITE}; expected finite images in [0, 1]."]
        ),
        tf.debugging.Assert(
            tf.logical_or(non_finite, in_range),
            [
                f"`{name}` must lie in [0, 1] (the library's image convention), got values in",
                low,
                high,
                "(min, max). 0..255 pixels: divide by 255, or pass uint8 images.",
            ],
        ),
    ]
    with tf.control_dependencies(checks):
        return tf.identity(images)
