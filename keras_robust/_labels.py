"""Label normalisation: the library's one reading of sparse, one-hot and soft labels.

- `class_indices`: the class of each sample (int32 [B]); rows give their argmax.
- `label_rows`: float32 rows [B, num_classes]; rows of the right width are
  kept as they are (soft labels stay soft), class indices are one-hot encoded.
- `check_class_indices`: the NumPy check of a whole label array (class indices only).

The ground floor of the package: it imports nothing from `keras_robust`.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf


def class_indices(y: Any) -> tf.Tensor:
    """Class indices (int32, [B]) from sparse ([B] or [B, 1]), one-hot or soft labels."""
    y = tf.convert_to_tensor(y)
    if y.shape.rank == 2 and y.shape[-1] != 1:
        return tf.argmax(y, axis=-1, output_type=tf.int32)
    if y.shape.rank == 2:
        y = y[:, 0]
    return tf.cast(y, tf.int32)


def label_rows(y: Any, num_classes: int) -> tf.Tensor:
    """Sparse, one-hot or soft labels as float32 rows [batch, num_classes].

    Rows [batch, num_classes] are kept (cast to float32); class indices [batch]
    or [batch, 1] are one-hot encoded; any other shape raises a `ValueError`.
    """
    y = tf.convert_to_tensor(y)
    if y.shape.rank == 2 and y.shape[-1] == num_classes:
        return tf.cast(y, tf.float32)
    if y.shape.rank not in (1, 2) or (y.shape.rank == 2 and y.shape[-1] != 1):
        raise ValueError(
            f"Labels must be class indices [batch] or rows [batch, {num_classes}], "
            f"got shape {y.shape}."
        )
    return tf.one_hot(class_indices(y), num_classes, dtype=tf.float32)


def check_class_indices(labels: Any, count: int, name: str = "labels") -> np.ndarray:
    """Checks `count` class indices ([N] or [N, 1], integer-valued); returns them as int32."""
    if hasattr(labels, "numpy") and not isinstance(labels, np.ndarray):
        labels = labels.numpy()
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise ValueError(
            f"`{name}` must be class indices of shape [{count}], got shape {labels.shape}"
            + (" (for one-hot rows pass np.argmax(labels, -1))." if labels.ndim == 2 else ".")
        )
    if len(labels) != count:
        raise ValueError(f"There are {count} images but {len(labels)} {name}; expected one each.")
    if labels.dtype.kind not in "iu":
        if labels.dtype.kind == "f" and np.all(labels == np.round(labels)):
            labels = labels.astype(np.int64)
        else:
            raise TypeError(f"`{name}` must be integer class indices, got dtype {labels.dtype}.")
    if labels.size and labels.min() < 0:
        raise ValueError(f"`{name}` must be non-negative class indices, got {int(labels.min())}.")
    return labels.astype(np.int32)
