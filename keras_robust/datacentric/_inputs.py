"""Checks of what enters the data-centric functions: images, labels, surrogates."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from keras_robust._labels import check_class_indices
from keras_robust.corruptions import MIN_SIDE


def image_array(images: Any, name: str = "images") -> np.ndarray:
    """Checks uint8 (0..255) or float [0, 1] NHWC images with 1 or 3 channels.

    Returns:
        The images as a NumPy array (uint8 or float32), not copied when possible.
    """
    if hasattr(images, "numpy") and not isinstance(images, np.ndarray):
        images = images.numpy()
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(
            f"`{name}` must be a batch of images [N, H, W, C] (NHWC), got shape {images.shape}."
        )
    n, height, width, channels = images.shape
    if n == 0:
        raise ValueError(f"`{name}` is empty; expected at least one image.")
    if channels not in (1, 3):
        raise ValueError(
            f"`{name}` must have 1 or 3 channels in the last axis (NHWC), got shape {images.shape}."
        )
    if min(height, width) < MIN_SIDE:
        raise ValueError(f"`{name}` must be at least {MIN_SIDE}x{MIN_SIDE} pixels, got {height}x{width}.")
    if images.dtype == np.uint8:
        return images
    if not np.issubdtype(images.dtype, np.floating):
        raise TypeError(
            f"`{name}` must be uint8 (0..255) or float in [0, 1], got dtype {images.dtype}."
        )
    if np.isnan(images).any():
        raise ValueError(f"`{name}` contains NaN; expected float images in [0, 1].")
    low, high = float(images.min()), float(images.max())
    if low < 0 or high > 1:
        hint = " They look like 0..255 pixels: pass them as uint8." if high > 1.5 else ""
        raise ValueError(
            f"Float `{name}` must lie in [0, 1], got values in [{low:.4g}, {high:.4g}].{hint}"
        )
    return images.astype(np.float32, copy=False)


def float_images(images: Any, name: str = "images") -> tuple[np.ndarray, bool]:
    """Checked images as float32 [0, 1]; also whether they came as uint8."""
    images = image_array(images, name)
    if images.dtype == np.uint8:
        return images.astype(np.float32) / 255.0, True
    return images, False


def to_uint8(images: np.ndarray) -> np.ndarray:
    """float [0, 1] -> uint8, rounding to the nearest level (uint8 passes through)."""
    if images.dtype == np.uint8:
        return images
    return np.round(np.clip(images, 0.0, 1.0) * 255.0).astype(np.uint8)


def sparse_labels(labels: Any, count: int, name: str = "labels") -> np.ndarray:
    """Checks class indices [N] (or [N, 1]); returns int32."""
    return check_class_indices(labels, count, name)


def check_surrogates(surrogates: Sequence[Any], image_shape: Sequence[int], labels: np.ndarray) -> None:
    """Checks the surrogates accept `image_shape` and have a logit per class of `labels`."""
    for model in surrogates:
        input_shape = getattr(model, "input_shape", None)
        if isinstance(input_shape, tuple) and len(input_shape) == 4:
            expected = tuple(d for d in input_shape[1:])
            if None not in expected and expected != tuple(image_shape):
                raise ValueError(
                    f"Surrogate {getattr(model, 'name', model)!r} takes images {expected}, the data "
                    f"has images {tuple(image_shape)}."
                )
        output_shape = getattr(model, "output_shape", None)
        if isinstance(output_shape, tuple) and len(output_shape) == 2 and output_shape[-1]:
            if labels.size and int(labels.max()) >= int(output_shape[-1]):
                raise ValueError(
                    f"Surrogate {getattr(model, 'name', model)!r} has {output_shape[-1]} logits but "
                    f"the labels go up to {int(labels.max())}."
                )
