"""Bit-plane quantisation (Algorithm 1 of BPFC, Addepalli et al. CVPR 2020).

An n-bit image keeps its n - k most significant bit planes: uniform noise
U(-2^(k-2), 2^(k-2)) is added, the k low bits are dropped, the result is shifted
up by half a step (2^(k-1)) and clipped to [0, 2^n - 1]. Values therefore lie on
the grid {j 2^k + 2^(k-1)} (clipped to [0, 2^n - 1]) and differ from the input by
at most 2^(k-1) + 2^(k-2) levels.

Example:

```python
layer = keras_robust.layers.BitPlaneQuantization(k=5, seed=0)
coarse = layer(images, training=True)     # identity when training is False
```
"""
from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from keras_robust._validation import check_positive_int


def bit_plane_quantize(
    images: tf.Tensor, k: int = 5, bits: int = 8, noise: bool = True,
    seed: tf.Tensor | None = None,
) -> tf.Tensor:
    """Algorithm 1 on [0, 1] images seen as `bits`-bit values.

    Args:
        images: float [B, H, W, C] in [0, 1].
        k: low bits dropped (1 <= k <= bits - 1; 5 for CIFAR-10 in the paper).
        bits: the bit depth n the images are seen at.
        noise: add the uniform pre-quantisation noise U(-2^(k-2), 2^(k-2)).
        seed: optional [2] stateless seed for the noise.

    Returns:
        float32 images in [0, 1] on the quantisation grid.

    Example:

    >>> bit_plane_quantize(tf.fill([1, 1, 1, 1], 100 / 255), k=5, noise=False) * 255
    <tf.Tensor: ... 112.>
    """
    top = float(2**bits - 1)
    step = float(2**k)
    x = tf.round(tf.cast(images, tf.float32) * top)
    if noise:
        scale = float(2 ** (k - 2))
        shape = tf.shape(x)
        if seed is None:
            u = tf.random.uniform(shape, -scale, scale)
        else:
            u = tf.random.stateless_uniform(shape, tf.cast(seed, tf.int64), -scale, scale)
        x = x + u
    x = x - tf.math.floormod(x, step) + step / 2.0
    return tf.clip_by_value(x, 0.0, top) / top


def check_bits(k: Any, bits: Any) -> tuple[int, int]:
    """Validates (k, bits): 1 <= k <= bits - 1."""
    bits = check_positive_int(bits, "bits", 2)
    k = check_positive_int(k, "k", 1)
    if k > bits - 1:
        raise ValueError(f"`k` (low bits dropped) must be in [1, bits - 1] = [1, {bits - 1}], got {k}.")
    return k, bits


@keras.saving.register_keras_serializable(package="keras_robust")
class BitPlaneQuantization(keras.layers.Layer):
    """Coarse bit-plane quantisation of [0, 1] images, active only in training.

    With `training=True` the layer applies Algorithm 1 of BPFC; otherwise it is
    the identity, so a model that contains it serves (and exports) exactly its
    input. Reproducible under `seed`.

    Args:
        k: low bits dropped (5 for CIFAR-10 in the paper).
        bits: the bit depth the [0, 1] images are seen at.
        noise: add the uniform pre-quantisation noise.
        seed: seed of the noise (None for a random one).
        **kwargs: passed to `keras.layers.Layer`.

    Example:

    ```python
    inputs = keras.Input((32, 32, 3))
    x = keras_robust.layers.BitPlaneQuantization(k=5)(inputs)   # training-time only
    ```
    """

    def __init__(self, k: int = 5, bits: int = 8, noise: bool = True, seed: int | None = None,
                 **kwargs: Any):
        super().__init__(**kwargs)
        self.k, self.bits = check_bits(k, bits)
        self.noise = bool(noise)
        self.seed = seed
        self._seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True

    def call(self, inputs: tf.Tensor, training: bool | None = None) -> tf.Tensor:
        if not training:
            return inputs
        seed = None
        if self.noise:
            seed = tf.cast(self._seed_generator.next(), tf.int64)
        return tf.cast(bit_plane_quantize(inputs, self.k, self.bits, self.noise, seed), inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "k": self.k, "bits": self.bits, "noise": self.noise,
                "seed": self.seed}
