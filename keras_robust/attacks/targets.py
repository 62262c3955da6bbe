"""Target classes for targeted attacks.

- "mc": the most confusing class, the non-true class of highest logit (BAT);
- "ll": the least likely class, the non-true class of lowest logit (Kurakin et
  al.; the PGD_LL attack of M-TLAT's benchmark);
- "random": a uniformly random class other than the true one;
- a tensor of class indices (or one-hot rows), used as given.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from keras_robust._validation import check_choice
from keras_robust.attacks.common import label_indices, random_uniform, without_class

TARGET_MODES = ("mc", "ll", "random")


def check_target(target: Any) -> Any:
    """Accepts None, one of `TARGET_MODES`, or labels; raises otherwise."""
    if target is None or tf.is_tensor(target) or isinstance(target, (list, tuple, np.ndarray)):
        return target
    if isinstance(target, str):
        return check_choice(target, TARGET_MODES, "target")
    raise TypeError(
        f"`target` must be None, one of {TARGET_MODES} or class labels, got {type(target).__name__}."
    )


def needs_logits(target: Any) -> bool:
    """Whether choosing the target needs the model's logits."""
    return isinstance(target, str) and target in ("mc", "ll")


def select_target(
    target: Any,
    y: tf.Tensor,
    num_classes: int | tf.Tensor,
    logits: tf.Tensor | None = None,
    seed: tf.Tensor | None = None,
) -> tf.Tensor | None:
    """Resolves `target` to class indices [B] (or None for untargeted attacks).

    Args:
        target: None, "mc", "ll", "random", or labels.
        y: true classes, int32 [B].
        num_classes: number of classes.
        logits: logits [B, C] for "mc" and "ll".
        seed: optional [2] stateless seed for "random".

    Returns:
        int32 [B] target classes, never equal to `y` for the named modes.
    """
    if target is None:
        return None
    if not isinstance(target, str):
        return label_indices(target)
    y_hot = tf.one_hot(y, num_classes)
    if target == "mc":
        return tf.argmax(without_class(logits, y_hot), axis=-1, output_type=tf.int32)
    if target == "ll":
        return tf.argmin(without_class(logits, y_hot, lowest=True), axis=-1, output_type=tf.int32)
    # Uniform over the C - 1 other classes: draw in [0, C-1) and skip the true class.
    draw = random_uniform(tf.shape(y), seed, 0, tf.cast(num_classes, tf.int32) - 1, dtype=tf.int32)
    return draw + tf.cast(draw >= y, tf.int32)
