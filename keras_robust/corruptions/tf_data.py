"""tf.data entry points: :func:`corrupt_tf` and :func:`corrupt_dataset`.

The corruptions are NumPy/OpenCV/imgaug code, so they enter a TensorFlow
graph through one ``tf.numpy_function`` per *batch* (not per image). About the
GIL: the Python part of each call (imgaug's per-image bookkeeping, the Python
loops over images around OpenCV and Pillow calls) holds it, and only the
OpenCV/Pillow kernels and large NumPy operations inside release it. Parallel
``map`` calls therefore overlap only partly: on the 2-core build machine
(shared with a training job) ``num_parallel_calls=AUTOTUNE`` ranged from 0.5x
(cheap NumPy corruptions, where threads only contend) to 1.7x (zoom blur,
mostly ``cv2.warpAffine``) of a sequential map; see ``notes_corruptions.md``.
Do not count on parallel calls for throughput; to build a corrupted dataset
once, :func:`keras_robust.corruptions.corrupt` in a process pool scales with
cores.

Example:

>>> import tensorflow as tf
>>> ds = tf.data.Dataset.from_tensor_slices(
...     (tf.zeros([8, 32, 32, 3]), tf.zeros([8], tf.int64))).batch(4)
>>> ds = corrupt_dataset(ds, "fog", severity=3, seed=0)
>>> next(iter(ds))[0].shape
TensorShape([4, 32, 32, 3])
"""
from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from keras_robust import _random
from keras_robust.corruptions import _checks
from keras_robust.corruptions.api import corrupt

_FLOAT_DTYPES = (tf.float16, tf.bfloat16, tf.float32, tf.float64)


def _seed_tensor(seed: Any) -> tf.Tensor:
    """Seed argument -> int64 vector; empty means "fresh randomness"."""
    if seed is None:
        return tf.zeros([0], tf.int64)
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return tf.constant([_checks.seed(seed)], tf.int64)
    seed = tf.convert_to_tensor(seed)
    if not seed.dtype.is_integer:
        raise TypeError(f"seed must be None, an int or an integer tensor, got dtype {seed.dtype.name}.")
    if seed.shape.rank not in (None, 0, 1):
        raise ValueError(f"seed must be a scalar or a vector, got shape {seed.shape}.")
    return tf.reshape(tf.cast(seed, tf.int64), [-1])


def _numpy_seed(values: np.ndarray) -> int | None:
    values = np.asarray(values).reshape(-1)
    if values.size == 0:
        return None
    if (values < 0).any():
        raise ValueError(f"seed values must be non-negative, got {values.tolist()}.")
    if values.size == 1:
        return int(values[0])
    return _random.numpy_seed(int(values[0]), *(int(v) for v in values[1:]))


def corrupt_tf(images: Any, name: str, severity: int, seed: Any = None) -> tf.Tensor:
    """Corrupts a batch (or one image) inside a TensorFlow graph or tf.data map.

    Runs :func:`keras_robust.corruptions.corrupt` on the whole batch through
    one ``tf.numpy_function``. Float images are read as [0, 1], quantised to
    uint8 (round to nearest), corrupted and returned in the input dtype;
    uint8 images stay uint8. The static shape is preserved.

    Args:
        images: ``(N, H, W, C)`` or ``(H, W, C)`` tensor, uint8 or float in
            [0, 1]; ``C`` 1 or 3.
        name: One of :data:`keras_robust.corruptions.NAMES` (a Python str).
        severity: Integer 1..5 (a Python int).
        seed: ``None`` (fresh randomness each call), a non-negative Python
            int, or an integer tensor: a scalar, or a vector whose entries are
            mixed by :func:`keras_robust.corruptions.derive_seed` (e.g.
            ``tf.stack([seed, batch_index])``).

    Returns:
        A tensor with the dtype and static shape of ``images``.

    Raises:
        TypeError: Unsupported dtype, name not a str, bad seed type.
        ValueError: Unknown name, severity outside 1..5, rank not 3 or 4;
            eager float images with NaN or values outside [0, 1] (0..255
            floats are refused, not clipped).
        tf.errors.InvalidArgumentError: The same NaN / range check, when the
            images are symbolic (``tf.function``, ``Dataset.map``): raised
            when the batch runs.

    Example:

    >>> x = tf.random.uniform([2, 32, 32, 3])
    >>> corrupt_tf(x, "contrast", 2, seed=1).dtype
    tf.float32
    """
    name = _checks.name(name)
    severity = _checks.severity(severity)
    images = tf.convert_to_tensor(images)
    dtype = images.dtype
    if dtype != tf.uint8 and dtype not in _FLOAT_DTYPES:
        raise TypeError(
            f"corrupt_tf expects uint8 images or float images in [0, 1], got dtype {dtype.name}."
        )
    if images.shape.rank not in (3, 4):
        raise ValueError(
            "corrupt_tf expects a batch (N, H, W, C) or one image (H, W, C) with a known "
            f"rank, got shape {images.shape}."
        )
    if dtype == tf.uint8:
        as_uint8 = images
    else:
        unit = tf.cast(_checks.unit_float_images(images, "corrupt_tf"), tf.float32)
        as_uint8 = tf.cast(tf.round(unit * 255.0), tf.uint8)
    seed_vec = _seed_tensor(seed)

    def _run(batch: np.ndarray, seed_values: np.ndarray) -> np.ndarray:
        return corrupt(batch, name, severity, seed=_numpy_seed(seed_values))

    out = tf.numpy_function(
        _run, [as_uint8, seed_vec], tf.uint8, stateful=seed is None, name=f"corrupt_{name}"
    )
    out.set_shape(images.shape)
    if dtype != tf.uint8:
        out = tf.cast(tf.cast(out, tf.float32) / 255.0, dtype)
    return out


def corrupt_dataset(
    dataset: tf.data.Dataset,
    name: str,
    severity: int,
    seed: int | None = None,
    num_parallel_calls: int | None = tf.data.AUTOTUNE,
) -> tf.data.Dataset:
    """Corrupts the images of a batched dataset, deterministically when seeded.

    Elements may be an image tensor, a tuple/list whose first entry is the
    images (``(images, labels)``, ``(images, labels, weights)``), or a dict
    with an ``"image"`` or ``"images"`` key; everything else passes through.
    Batch ``i`` is corrupted with the seed ``derive_seed(seed, i)`` (indices
    from ``dataset.enumerate()``), so the result does not depend on
    ``num_parallel_calls`` or on scheduling, and the output order is kept.

    Args:
        dataset: A batched ``tf.data.Dataset`` (uint8 or float [0, 1] images,
            NHWC).
        name: One of :data:`keras_robust.corruptions.NAMES`.
        severity: Integer 1..5.
        seed: Non-negative int for a reproducible dataset; ``None`` draws
            fresh randomness on every pass.
        num_parallel_calls: Passed to ``Dataset.map``.

    Returns:
        The mapped dataset, same element structure, dtypes and shapes.

    Raises:
        TypeError, ValueError: As :func:`corrupt_tf`, and for an element
            structure without recognisable images.
        tf.errors.InvalidArgumentError: While iterating, a float batch with
            NaN or values outside [0, 1].

    Example:

    >>> ds = tf.data.Dataset.from_tensor_slices(tf.zeros([6, 32, 32, 3], tf.uint8)).batch(3)
    >>> [b.shape[0] for b in corrupt_dataset(ds, "snow", 2, seed=7)]
    [3, 3]
    """
    name = _checks.name(name)
    severity = _checks.severity(severity)
    base = None if seed is None else _checks.seed(seed)
    spec = dataset.element_spec
    _locate_images(spec)  # fail early with a clear message

    def _map(index: tf.Tensor, element: Any) -> Any:
        batch_seed = None if base is None else tf.stack([tf.constant(base, tf.int64), index])
        return _replace_images(element, lambda x: corrupt_tf(x, name, severity, batch_seed))

    if num_parallel_calls is None:
        return dataset.enumerate().map(_map)
    return dataset.enumerate().map(_map, num_parallel_calls=num_parallel_calls, deterministic=True)


def _locate_images(spec: Any) -> str:
    if isinstance(spec, tf.TensorSpec):
        return "tensor"
    if isinstance(spec, (tuple, list)) and spec and isinstance(spec[0], tf.TensorSpec):
        return "sequence"
    if isinstance(spec, dict):
        for key in ("image", "images"):
            if isinstance(spec.get(key), tf.TensorSpec):
                return key
    raise ValueError(
        "corrupt_dataset expects elements that are an image tensor, a tuple whose first "
        "entry is the images, or a dict with an 'image'/'images' key; got element_spec "
        f"{spec}."
    )


def _replace_images(element: Any, fn: Any) -> Any:
    if isinstance(element, tf.Tensor):
        return fn(element)
    if isinstance(element, (tuple, list)):
        return type(element)([fn(element[0]), *element[1:]])
    key = "image" if "image" in element else "images"
    out = dict(element)
    out[key] = fn(element[key])
    return out


__all__ = ["corrupt_dataset", "corrupt_tf"]
