"""Keras layers for robust training, each usable in any Keras model.

- `Mixup`: mixes each sample of a batch with a shuffled partner (Zhang et al.
  2018; eq. 1 of M-TLAT), during training only.
- `TLATLabelMixer`: the label of Targeted Labeling Adversarial Training,
  `(1 - eps) * y + eps * y_target` (eq. 4 and 6 of M-TLAT).

The layers and `keras_robust.MTLATModel` share one implementation, the
stateless functions `sample_beta`, `shuffle_indices`, `mixup` and
`tlat_labels`: a layer draws its seed from a `keras.random.SeedGenerator`, a
defence passes the per-step seed of `RobustModel.step_seed`.

Example:

```python
import keras, keras_robust as kr
images = keras.Input((32, 32, 3))
labels = keras.Input((10,))
mixed_images, mixed_labels = kr.layers.Mixup(alpha=0.4, seed=0)([images, labels])
augment = keras.Model([images, labels], [mixed_images, mixed_labels])
```
"""
from __future__ import annotations

import math
from typing import Any, NamedTuple, Sequence

import keras
import numpy as np
import tensorflow as tf

from keras_robust import _random
from keras_robust._random import as_seed, fold_seed

_PACKAGE = "keras_robust"


# --------------------------------------------------------------------------- functions
def check_alpha(alpha: Any, name: str = "alpha") -> float:
    """Checks a Beta(alpha, alpha) concentration: a finite number >= 0.

    0 means "no mixing" (lambda = 1), as in Zhang et al.'s reference code.

    Args:
        alpha: the value to check.
        name: the argument's name, for the message.

    Returns:
        `alpha` as a float.

    Example:

    >>> check_alpha(0.4)
    0.4
    """
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.number)):
        raise TypeError(f"`{name}` must be a number >= 0 (0.4 in M-TLAT), got {alpha!r}.")
    alpha = float(alpha)
    if not (math.isfinite(alpha) and alpha >= 0.0):
        raise ValueError(
            f"`{name}` must be a finite number >= 0 (the Beta(alpha, alpha) concentration; "
            f"0.4 in M-TLAT, 0 for no mixing), got {alpha}."
        )
    return alpha


# Stateless U[minval, maxval) draws that XLA draws the same: the library's one such draw
# (GradAlign's eta and, through Box-Muller, the Gaussian-noise model's noise use it too).
sample_uniform = _random.uniform


def _sample_normal(shape: Any, seed: tf.Tensor) -> tf.Tensor:
    """Standard normal draws by Box-Muller from `sample_uniform` (XLA-stable)."""
    u1 = 1.0 - sample_uniform(shape, fold_seed(seed, 1, "philox"))      # (0, 1]: log is finite
    u2 = sample_uniform(shape, fold_seed(seed, 2, "philox"))
    return tf.sqrt(-2.0 * tf.math.log(u1)) * tf.cos(2.0 * np.pi * u2)


#: Proposals per Gamma draw in `sample_log_gamma`; all are rejected with probability
#: below 0.05 ** 16 (Marsaglia-Tsang accepts > 95% for shapes >= 1).
GAMMA_PROPOSALS = 16


def sample_log_gamma(shape: Any, alpha: float, seed: Any) -> tf.Tensor:
    """Stateless draws of log G with G ~ Gamma(alpha, 1), compilable by XLA.

    Marsaglia & Tsang's method ("A simple method for generating gamma
    variables", 2000), vectorised: `GAMMA_PROPOSALS` proposals per draw, the
    first accepted one kept (all rejected: probability < 1e-20; the draw is
    then the mode of the proposal, d). Shapes below 1 use the boost
    G(alpha) = G(alpha + 1) * U ** (1 / alpha). Computed in log space so that
    the tiny draws of small shapes do not underflow. The normal and uniform
    draws come from `sample_uniform`, so XLA gives the same values as graph
    mode (to float rounding). `tf.random.stateless_gamma`
    is not used because it has no XLA kernel, and Keras compiles training
    steps with XLA on GPUs by default (`jit_compile="auto"`).

    Args:
        shape: the output shape.
        alpha: the shape parameter, > 0.
        seed: an int or an int [2] tensor.

    Returns:
        float32 log-Gamma draws of `shape`.

    Example:

    >>> g = tf.exp(sample_log_gamma([10000], 2.0, seed=0))
    >>> round(float(tf.reduce_mean(g)))
    2
    """
    alpha = float(alpha)
    if not alpha > 0:
        raise ValueError(f"The Gamma shape must be > 0, got {alpha}.")
    seed = as_seed(seed)
    boosted = alpha < 1.0
    d = (alpha + 1.0 if boosted else alpha) - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    proposals = tf.concat([[GAMMA_PROPOSALS], tf.reshape(shape, [-1])], 0)
    z = _sample_normal(proposals, fold_seed(seed, 1, "philox"))
    u = sample_uniform(proposals, fold_seed(seed, 2, "philox"))
    v = (1.0 + c * z) ** 3
    positive = v > 0.0
    log_v = tf.math.log(tf.where(positive, v, 1.0))
    log_u = tf.math.log(tf.maximum(u, np.finfo(np.float32).tiny))
    accepted = positive & (log_u < 0.5 * z * z + d - d * v + d * log_v)
    first = tf.argmax(tf.cast(accepted, tf.int32), axis=0, output_type=tf.int32)
    chosen = tf.one_hot(first, GAMMA_PROPOSALS, axis=0) > 0.5
    log_v = tf.reduce_sum(tf.where(chosen, log_v, 0.0), axis=0)
    log_v = tf.where(tf.reduce_any(accepted, axis=0), log_v, 0.0)
    log_gamma = math.log(d) + log_v
    if boosted:
        boost = sample_uniform(tf.shape(log_gamma), fold_seed(seed, 3, "philox"))
        log_gamma += tf.math.log(tf.maximum(boost, np.finfo(np.float32).tiny)) / alpha
    return log_gamma


def sample_beta(shape: Any, alpha: float, seed: Any) -> tf.Tensor:
    """Stateless draws of lambda ~ Beta(alpha, alpha), as G1 / (G1 + G2).

    G1 and G2 are independent Gamma(alpha, 1) draws (`sample_log_gamma`);
    lambda = sigmoid(log G1 - log G2) is the same ratio, computed without
    underflow. The same seed always gives the same lambdas; it compiles with
    XLA. `alpha = 0` gives 1 everywhere (no mixing).

    Args:
        shape: the output shape (e.g. `[batch]`).
        alpha: the concentration, >= 0 (0.4 in M-TLAT).
        seed: an int or an int [2] tensor (e.g. `RobustModel.step_seed(...)`).

    Returns:
        float32 lambdas in [0, 1] of `shape`.

    Example:

    >>> lam = sample_beta([10000], 0.4, seed=0)
    >>> round(float(tf.reduce_mean(lam)), 1)
    0.5
    """
    alpha = check_alpha(alpha)
    if alpha == 0.0:
        return tf.ones(shape, tf.float32)
    seed = as_seed(seed)
    log_g1 = sample_log_gamma(shape, alpha, fold_seed(seed, 1, "philox"))
    log_g2 = sample_log_gamma(shape, alpha, fold_seed(seed, 2, "philox"))
    return tf.sigmoid(log_g1 - log_g2)


def shuffle_indices(size: Any, seed: Any) -> tf.Tensor:
    """A stateless random permutation of `range(size)` (the mixing partners).

    Args:
        size: the number of samples (an int or a scalar tensor).
        seed: an int or an int [2] tensor.

    Returns:
        int32 [size]: sample i is paired with sample `partner[i]` (possibly
        itself, as with `torch.randperm` in Zhang et al.'s code).

    Example:

    >>> sorted(shuffle_indices(5, seed=0).numpy().tolist())
    [0, 1, 2, 3, 4]
    """
    # Philox integer keys: XLA draws the same integers as TF (not the same floats)
    keys = tf.random.stateless_uniform(tf.reshape(size, [1]), as_seed(seed), None, None,
                                       dtype=tf.int32, alg="philox")
    return tf.cast(tf.argsort(keys), tf.int32)


class MixupResult(NamedTuple):
    """What `mixup` returns.

    Attributes:
        images: `lam * x + (1 - lam) * x[partner]`, per sample; the shape and
            dtype of the input images.
        labels: `lam * y + (1 - lam) * y[partner]`, per sample; float rows
            [B, num_classes] with the input labels' dtype.
        lam: float32 [B], the mixing weights (of the sample itself).
        partner: int32 [B], the index of each sample's partner in the batch.

    Example:

    >>> result = mixup(tf.zeros([4, 8, 8, 3]), tf.one_hot([0, 1, 2, 3], 4), alpha=0.4, seed=0)
    >>> result.images.shape, result.labels.shape, result.lam.shape, result.partner.dtype
    (TensorShape([4, 8, 8, 3]), TensorShape([4, 4]), TensorShape([4]), tf.int32)
    >>> images, labels, lam, partner = result         # a NamedTuple: unpacks too
    """

    images: tf.Tensor
    labels: tf.Tensor
    lam: tf.Tensor
    partner: tf.Tensor


def mixup(images: Any, labels: Any, alpha: float, seed: Any) -> MixupResult:
    """Mixup (eq. 1 of M-TLAT): each sample mixed with a shuffled partner of the batch.

    For every sample i, lambda_i ~ Beta(alpha, alpha) and a partner j = pi(i)
    from a random permutation pi of the batch:
    `x_i' = lambda_i x_i + (1 - lambda_i) x_j`, `y_i' = lambda_i y_i + (1 - lambda_i) y_j`.
    Stateless: the same seed gives the same mixing.

    Args:
        images: float images [B, ...] (any float dtype).
        labels: float label rows [B, num_classes] (one-hot or soft).
        alpha: the Beta concentration, >= 0 (0 gives the batch unchanged).
        seed: an int or an int [2] tensor.

    Returns:
        A `MixupResult`.

    Example:

    >>> x = tf.random.stateless_uniform([4, 8, 8, 3], [0, 1])
    >>> y = tf.constant([0, 1, 2, 3])
    >>> result = mixup(x, tf.one_hot(y, 10), alpha=0.4, seed=7)
    >>> result.images.shape == x.shape, result.labels.shape
    (True, TensorShape([4, 10]))
    >>> bool(np.allclose(tf.reduce_sum(result.labels, -1), 1.0))    # rows stay on the simplex
    True
    >>> lam = tf.reshape(result.lam, [-1, 1, 1, 1])
    >>> mixed = lam * x + (1 - lam) * tf.gather(x, result.partner)
    >>> bool(np.allclose(result.images, mixed, atol=1e-6))
    True
    >>> bool(tf.reduce_all(mixup(x, tf.one_hot(y, 10), alpha=0.4, seed=7).lam == result.lam))
    True
    """
    images = tf.convert_to_tensor(images)
    labels = tf.convert_to_tensor(labels)
    if labels.shape.rank is not None and labels.shape.rank != 2:
        raise ValueError(
            f"Mixup mixes label rows [batch, num_classes] (one-hot or soft), got labels of "
            f"shape {labels.shape}; one-hot encode class indices first."
        )
    if not labels.dtype.is_floating:
        raise TypeError(
            f"Mixup labels must be float probability rows, got dtype {labels.dtype.name}."
        )
    seed = as_seed(seed)
    size = tf.shape(images)[0]
    lam = sample_beta(tf.reshape(size, [1]), alpha, fold_seed(seed, 1, "philox"))
    partner = shuffle_indices(size, fold_seed(seed, 2, "philox"))
    image_lam = tf.reshape(tf.cast(lam, images.dtype), [-1] + [1] * (images.shape.rank - 1))
    label_lam = tf.cast(lam[:, None], labels.dtype)
    mixed_images = image_lam * images + (1 - image_lam) * tf.gather(images, partner)
    mixed_labels = label_lam * labels + (1 - label_lam) * tf.gather(labels, partner)
    return MixupResult(mixed_images, mixed_labels, lam, partner)


def tlat_labels(labels: Any, target: Any, epsilon: Any) -> tf.Tensor:
    """The TLAT label (eq. 4 and 6 of M-TLAT): `(1 - eps) * y + eps * y_target`.

    Args:
        labels: float label rows [B, num_classes] (one-hot, soft or mixed).
        target: the attack's target classes, int [B], or rows [B, num_classes].
        epsilon: the attack budget per sample: a scalar, [B] or [B, 1].

    Returns:
        Label rows [B, num_classes] with the dtype of `labels`; rows on the
        simplex stay on it.

    Example:

    >>> tlat_labels(tf.one_hot([0], 3), [2], 0.1).numpy()
    array([[0.9, 0. , 0.1]], dtype=float32)
    """
    labels = tf.convert_to_tensor(labels)
    if labels.shape.rank is not None and labels.shape.rank != 2:
        raise ValueError(
            f"TLAT labels are rows [batch, num_classes], got labels of shape {labels.shape}."
        )
    target = tf.convert_to_tensor(target)
    if target.shape.rank == 2 and target.shape[-1] == 1:
        target = target[:, 0]
    if target.shape.rank == 1:
        target = tf.one_hot(tf.cast(target, tf.int32), tf.shape(labels)[-1], dtype=labels.dtype)
    target = tf.cast(target, labels.dtype)
    epsilon = tf.cast(tf.convert_to_tensor(epsilon), labels.dtype)
    if epsilon.shape.rank == 1:
        epsilon = epsilon[:, None]
    elif epsilon.shape.rank == 2 and epsilon.shape[-1] not in (None, 1):
        raise ValueError(
            f"`epsilon` must be a scalar, [batch] or [batch, 1], got shape {epsilon.shape}."
        )
    return (1 - epsilon) * labels + epsilon * target


def _unpack(inputs: Any, count: int, layer: str, names: Sequence[str]) -> list:
    if not isinstance(inputs, (list, tuple)) or len(inputs) != count:
        raise ValueError(
            f"{layer} takes a list of {count} tensors ({', '.join(names)}), got "
            f"{type(inputs).__name__}"
            + (f" of length {len(inputs)}." if isinstance(inputs, (list, tuple)) else ".")
        )
    return list(inputs)


# --------------------------------------------------------------------------- layers
@keras.saving.register_keras_serializable(package=_PACKAGE)
class Mixup(keras.layers.Layer):
    """Mixup of `(images, labels)` during training; the identity at inference.

    With `training=True`, each sample is mixed with a partner drawn by a random
    permutation of the batch, with its own lambda ~ Beta(alpha, alpha) (eq. 1
    of M-TLAT): `x' = lambda x + (1 - lambda) x_partner` and the same for the
    label rows. Otherwise both inputs pass through unchanged. Randomness comes
    from the layer's `keras.random.SeedGenerator`; `mix` is the same
    operation with an explicit stateless seed (what `MTLATModel` uses).

    Args:
        alpha: the Beta concentration, >= 0 (0.4 in M-TLAT; 0 disables mixing).
        seed: optional int seed of the layer's generator.
        **kwargs: base `keras.layers.Layer` arguments (`name`, ...).

    Call arguments:
        inputs: `[images, labels]`: images [B, ...], label rows [B, num_classes]
            (one-hot or soft; one-hot encode class indices first).
        training: mix only when True.

    Returns:
        `(mixed_images, mixed_labels)`.

    Example:

    ```python
    images, labels = keras.Input((32, 32, 3)), keras.Input((10,))
    mixed = keras_robust.layers.Mixup(alpha=0.4, seed=0)([images, labels])
    augment = keras.Model([images, labels], mixed)
    x_mix, y_mix = augment([x, tf.one_hot(y, 10)], training=True)
    ```
    """

    def __init__(self, alpha: float = 0.4, seed: int | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.alpha = check_alpha(alpha)
        self.seed = None if seed is None else int(seed)
        self.seed_generator = keras.random.SeedGenerator(self.seed)
        self.supports_masking = False

    def mix(self, images: Any, labels: Any, seed: Any) -> MixupResult:
        """Mixes with an explicit stateless seed (an int or an int [2] tensor).

        Example:

        >>> result = layer.mix(x, y_rows, seed=[0, 1])
        >>> result.lam.shape
        TensorShape([32])
        """
        return mixup(images, labels, self.alpha, seed)

    def call(self, inputs: Any, training: bool | None = None):
        images, labels = _unpack(inputs, 2, "Mixup", ("images", "labels"))
        if not training:
            return images, labels
        result = self.mix(images, labels, tf.cast(self.seed_generator.next(), tf.int64))
        return result.images, result.labels

    def compute_output_shape(self, input_shape: Any) -> tuple:
        images_shape, labels_shape = _unpack(input_shape, 2, "Mixup", ("images", "labels"))
        return tuple(images_shape), tuple(labels_shape)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(alpha=self.alpha, seed=self.seed)
        return config


@keras.saving.register_keras_serializable(package=_PACKAGE)
class TLATLabelMixer(keras.layers.Layer):
    """The TLAT label: `(1 - eps) * labels + eps * target` per sample (eq. 4 / 6).

    Targeted Labeling Adversarial Training labels an example attacked toward
    `target` with budget `eps` by moving `eps` of its label mass to the target
    class. The layer has no weights and no randomness; it computes the same
    in training and inference.

    Args:
        **kwargs: base `keras.layers.Layer` arguments (`name`, ...).

    Call arguments:
        inputs: `[labels, target_labels, epsilon]`: label rows [B, C]; targets
            as rows [B, C] or class indices [B]; budgets [B], [B, 1] or a scalar.

    Returns:
        Label rows [B, C].

    Example:

    ```python
    labels, targets, eps = keras.Input((10,)), keras.Input((10,)), keras.Input((1,))
    mixed = keras_robust.layers.TLATLabelMixer()([labels, targets, eps])
    ```
    """

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.supports_masking = False

    def call(self, inputs: Any) -> tf.Tensor:
        labels, target, epsilon = _unpack(
            inputs, 3, "TLATLabelMixer", ("labels", "target_labels", "epsilon")
        )
        return tlat_labels(labels, target, epsilon)

    def compute_output_shape(self, input_shape: Any) -> tuple:
        labels_shape = _unpack(
            input_shape, 3, "TLATLabelMixer", ("labels", "target_labels", "epsilon")
        )[0]
        return tuple(labels_shape)


__all__ = [
    "GAMMA_PROPOSALS", "Mixup", "MixupResult", "TLATLabelMixer", "check_alpha", "mixup",
    "sample_beta", "sample_log_gamma", "sample_uniform", "shuffle_indices", "tlat_labels",
]
