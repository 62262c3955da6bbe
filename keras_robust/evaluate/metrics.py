"""Accuracy on clean and attacked images, batched, inside `tf.function`."""
from __future__ import annotations

import weakref
from typing import Any, Callable

import numpy as np
import tensorflow as tf

from keras_robust._validation import check_images, check_labels, check_positive_int
from keras_robust.attacks.common import as_logits_fn, label_indices

Attack = Callable[[Any, tf.Tensor, tf.Tensor], tf.Tensor]


def predict_logits(model: Any, images: Any, batch_size: int = 500) -> np.ndarray:
    """Logits of `model` on float [0, 1] images, batched.

    Args:
        model: a model, an `Ensemble` or a callable mapping images to logits.
        images: float32 [N, H, W, C] in [0, 1] (uint8 is converted).
        batch_size: images per forward pass.

    Returns:
        float32 logits [N, num_classes].

    Example:

    >>> logits = predict_logits(model, x_test)  # doctest: +SKIP
    >>> model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
    ...                           keras.layers.Dense(10)])
    >>> x = np.random.default_rng(0).random((5, 8, 8, 3), "float32")
    >>> logits = predict_logits(model, x, batch_size=2)
    >>> logits.shape, logits.dtype, bool(np.allclose(logits, model(x), atol=1e-5))
    ((5, 10), dtype('float32'), True)
    >>> predict_logits(model, np.zeros((3, 8, 8, 3), np.uint8)).shape     # uint8 is converted
    (3, 10)
    """
    images = _as_float_images(images)
    batch_size = check_positive_int(batch_size, "batch_size")
    logits_fn = _compiled_logits(model)
    outputs = [logits_fn(tf.constant(images[i:i + batch_size])).numpy()
               for i in range(0, len(images), batch_size)]
    return np.concatenate(outputs)


_LOGITS_FUNCTIONS: "weakref.WeakKeyDictionary[Any, Callable]" = weakref.WeakKeyDictionary()


def _compiled_logits(model: Any) -> Callable:
    """One `tf.function` per model (traced once per input shape, not per call)."""
    try:
        return _LOGITS_FUNCTIONS[model]
    except (KeyError, TypeError):
        pass
    function = tf.function(as_logits_fn(model), reduce_retracing=True)
    try:
        _LOGITS_FUNCTIONS[model] = function
    except TypeError:  # not weak-referenceable (e.g. a list of models): no cache
        pass
    return function


def accuracy(model: Any, images: Any, labels: Any, batch_size: int = 500) -> float:
    """Top-1 accuracy on clean images.

    The fraction of images whose largest logit is the true class.

    Args:
        model: a model, an `Ensemble` or a callable mapping [0, 1] images to
            logits.
        images: float [N, H, W, C] in [0, 1] (uint8 0..255 is converted).
        labels: class indices [N], or one-hot or soft rows [N, num_classes]
            (the argmax is the class), one per image.
        batch_size: images per forward pass.

    Returns:
        The accuracy, a float in [0, 1].

    Raises:
        TypeError: images that are neither float nor uint8.
        ValueError: images of rank other than 4, with NaN or outside [0, 1],
            a label count other than the image count, class indices outside
            the model's classes, or label rows of another width.

    Example:

    >>> accuracy(model, x_test, y_test)  # doctest: +SKIP
    0.766
    >>> zero = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
    ...                          keras.layers.Dense(10, kernel_initializer="zeros")])
    >>> accuracy(zero, np.zeros((4, 8, 8, 3), np.float32), [0, 0, 1, 2])  # always class 0
    0.5
    """
    logits = predict_logits(model, images, batch_size)
    check_labels(labels, int(logits.shape[-1]), "labels")
    return float(np.mean(np.argmax(logits, -1) == _as_sparse(labels, len(logits))))


def robust_accuracy(
    model: Any,
    images: Any,
    labels: Any,
    attack: Attack,
    batch_size: int = 500,
    return_adversarial: bool = False,
) -> float | tuple[float, np.ndarray]:
    """Top-1 accuracy on `attack(model, x, y)`, batched.

    Args:
        model: the attacked model (also the one classified).
        images: float32 [N, H, W, C] in [0, 1].
        labels: class indices [N] (or one-hot rows).
        attack: `(model, x, y) -> x_adv`, e.g.
            `functools.partial(keras_robust.attacks.pgd, epsilon=8/255, step_size=2/255, steps=10)`.
        batch_size: images per attack batch.
        return_adversarial: also return the adversarial images.

    Returns:
        The accuracy (and the adversarial images when asked).

    Example:

    >>> import functools
    >>> attack = functools.partial(kr.attacks.pgd, epsilon=8/255, step_size=2/255, steps=10)
    >>> robust_accuracy(model, x_test, y_test, attack)  # doctest: +SKIP
    >>> zero = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
    ...                          keras.layers.Dense(10, kernel_initializer="zeros")])
    >>> x = np.random.default_rng(0).random((4, 8, 8, 3), "float32")
    >>> robust_accuracy(zero, x, [0, 0, 1, 2], attack)   # always class 0, whatever the input
    0.5
    >>> model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
    ...                           keras.layers.Dense(10)])
    >>> value, x_adv = robust_accuracy(model, x, [0, 0, 1, 2], attack, batch_size=2,
    ...                                return_adversarial=True)
    >>> x_adv.shape, bool(np.abs(x_adv - x).max() <= 8 / 255 + 1e-6)
    ((4, 8, 8, 3), True)
    """
    images = _as_float_images(images)
    labels = _as_sparse(labels, len(images))
    batch_size = check_positive_int(batch_size, "batch_size")
    adversarial = []
    for i in range(0, len(images), batch_size):
        x = tf.constant(images[i:i + batch_size])
        y = tf.constant(labels[i:i + batch_size])
        adversarial.append(np.asarray(attack(model, x, y)))
    adversarial = np.concatenate(adversarial)
    result = accuracy(model, adversarial, labels, batch_size)
    return (result, adversarial) if return_adversarial else result


def _as_float_images(images: Any) -> np.ndarray:
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return images.astype(np.float32) / 255.0
    check_images(images, "images")
    return images.astype(np.float32)


def _as_sparse(labels: Any, count: int) -> np.ndarray:
    sparse = np.atleast_1d(label_indices(tf.convert_to_tensor(labels)).numpy())
    if sparse.shape != (count,):
        raise ValueError(f"Expected one label per image ({count} images: class indices of shape "
                         f"[{count}] or rows [{count}, num_classes]), got labels of shape "
                         f"{np.shape(labels)}.")
    return sparse
