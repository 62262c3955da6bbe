"""Seeds: the library's one way to turn a user's seed into a [2] stateless
seed and derive new ones from it (`as_seed`, `fold_seed`), to derive the
integer seeds of the NumPy and imgaug draws (`numpy_seed`), and the stateless
float draws that are the same compiled with XLA or not (`uniform`, `normal`),
for the draws of a training step.

The ground floor of the package: it imports nothing from `keras_robust`.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import tensorflow as tf


def as_seed(seed: Any) -> tf.Tensor | None:
    """None, an int, or a scalar or [2] tensor of ints -> None or an int64 [2] seed.

    A scalar `s` becomes `[s, 0]`; a [2] seed is cast to int64.
    """
    if seed is None:
        return None
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return tf.constant([int(seed), 0], tf.int64)
    seed = tf.cast(tf.convert_to_tensor(seed), tf.int64)
    if seed.shape.rank == 0:
        return tf.stack([seed, tf.constant(0, tf.int64)])
    return seed


def fold_seed(seed: tf.Tensor | None, salt: int, alg: str = "auto_select") -> tf.Tensor | None:
    """A new [2] seed derived from `seed` and a constant, or None when `seed` is None.

    `alg` is `tf.random.experimental.stateless_fold_in`'s algorithm: the
    attacks use the default, the Mixup / TLAT draws "philox" (whose integers
    are the same with or without XLA).
    """
    if seed is None:
        return None
    return tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int64), salt, alg=alg)


# Float32 uniforms carry 23 random bits: the draws below are k / 2**23 for a Philox integer k.
_MANTISSA = 2**23


def uniform(shape: Any, seed: Any, minval: Any = 0.0, maxval: Any = 1.0) -> tf.Tensor:
    """Stateless float32 draws from U[minval, maxval), the same with or without XLA.

    `tf.random.stateless_uniform` maps the generator's bits to floats
    differently under XLA (measured with TF 2.21 on CPU: other values for the
    same seed, even with `alg="philox"`), while its integer draws agree when
    the algorithm is named. This draws integers k in [0, 2**23) with Philox and
    returns minval + (maxval - minval) * k / 2**23, the 23-bit grid of float32
    uniforms, so a training step draws the same compiled or not. Public as
    `keras_robust.layers.sample_uniform` (M-TLAT's budgets, GradAlign's eta).

    Args:
        shape: the output shape.
        seed: an int or an int [2] tensor.
        minval: the lower bound (a scalar or broadcastable to `shape`).
        maxval: the upper bound, excluded.

    Returns:
        float32 draws of `shape`.

    Example:

    >>> u = keras_robust.layers.sample_uniform([10000], seed=0, minval=0.0, maxval=0.025)
    >>> bool(tf.reduce_min(u) >= 0.0), bool(tf.reduce_max(u) < 0.025)
    (True, True)
    """
    bits = tf.random.stateless_uniform(shape, as_seed(seed), 0, _MANTISSA, dtype=tf.int32,
                                       alg="philox")
    unit = tf.cast(bits, tf.float32) * (1.0 / _MANTISSA)
    minval = tf.cast(minval, tf.float32)
    return minval + (tf.cast(maxval, tf.float32) - minval) * unit


def normal(shape: Any, seed: Any) -> tf.Tensor:
    """Stateless float32 N(0, 1) draws, the same with or without XLA (up to rounding).

    Box-Muller on two `uniform` draws from folds 0 and 1 of `seed`:
    sqrt(-2 ln u1) cos(2 pi u2) with u1 in (0, 1] (k + 1 over 2**23), so the
    largest |z| is sqrt(2 ln 2**23) = 5.65 (a two-sided tail of 1.6e-8 is cut).
    `tf.random.stateless_normal` gives other floats under XLA for the same seed.

    Args:
        shape: the output shape.
        seed: an int or an int [2] tensor.

    Returns:
        float32 draws of `shape`.
    """
    seed = as_seed(seed)
    u1 = uniform(shape, fold_seed(seed, 0, alg="philox")) + 1.0 / _MANTISSA
    u2 = uniform(shape, fold_seed(seed, 1, alg="philox"))
    return tf.sqrt(-2.0 * tf.math.log(u1)) * tf.cos((2.0 * np.pi) * u2)


def numpy_seed(base: int, *keys: int) -> int:
    """An int seed in [0, 2**63 - 1] mixed from `base` and integer `keys` (NumPy, imgaug draws).

    `numpy.random.SeedSequence` mixes the entropy, so different keys give
    unrelated seeds; the corruptions and the data-centric plan derive every
    per-image, per-batch and per-decision seed with it.
    """
    entropy: Sequence[int] = [int(base), *(int(k) for k in keys)]
    return int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0] >> 1)
