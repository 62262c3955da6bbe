"""Seeds: the library's one way to turn a user's seed into a [2] stateless
seed and derive new ones from it (`as_seed`, `fold_seed`), and to derive the
integer seeds of the NumPy and imgaug draws (`numpy_seed`).

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


def numpy_seed(base: int, *keys: int) -> int:
    """An int seed in [0, 2**63 - 1] mixed from `base` and integer `keys` (NumPy, imgaug draws).

    `numpy.random.SeedSequence` mixes the entropy, so different keys give
    unrelated seeds; the corruptions and the data-centric plan derive every
    per-image, per-batch and per-decision seed with it.
    """
    entropy: Sequence[int] = [int(base), *(int(k) for k in keys)]
    return int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0] >> 1)
