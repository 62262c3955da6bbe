"""Keras preprocessing layer: :class:`RandomCorruption`.

Example:

>>> import keras
>>> inputs = keras.Input((32, 32, 3))
>>> x = RandomCorruption(names=["fog", "snow"], severity=(1, 3), seed=0)(inputs)
>>> model = keras.Model(inputs, keras.layers.Flatten()(x))
"""
from __future__ import annotations

import threading
from typing import Any, Sequence

import keras
import numpy as np
import tensorflow as tf

from keras_robust.corruptions import _checks
from keras_robust.corruptions.api import random_corruptions
from keras_robust.corruptions.names import NAMES


@keras.saving.register_keras_serializable(package="keras_robust")
class RandomCorruption(keras.layers.Layer):
    """Corrupts each image with a random corruption, during training only.

    With ``training=True`` each image of the batch is, with probability
    ``probability``, replaced by one corruption drawn uniformly from
    ``names`` at a severity drawn uniformly from ``severity``; otherwise (and
    always with ``training`` False or None) images pass through unchanged.
    Inputs are float images in [0, 1] (any float dtype; uint8 also works),
    NHWC with 1 or 3 channels. Float inputs with NaN or values outside
    [0, 1] (e.g. 0..255 floats) are refused when training, not clipped: a
    ``ValueError`` for eager tensors, ``tf.errors.InvalidArgumentError`` from
    an in-graph assertion inside ``tf.function``, ``fit`` or
    ``Dataset.map``.

    The corruptions run as NumPy/OpenCV/imgaug code in one
    ``tf.numpy_function`` per batch, so the layer is CPU-bound, holds the
    Python GIL for part of the work and cannot be compiled by XLA (it sets
    ``supports_jit = False``, so ``model.fit`` does not jit-compile a model
    containing it). For throughput, apply it in the input pipeline
    (``ds.map(lambda x, y: (layer(x, training=True), y),
    num_parallel_calls=...)``) rather than inside the model on a GPU.

    Randomness comes from a NumPy generator owned by the layer (seeded by
    ``seed``): a seeded layer called on the same batches in the same order
    gives the same results. The generator state is not saved with the model.

    Args:
        names: ``"all"`` (every corruption in
            :data:`keras_robust.corruptions.NAMES`) or a list of names.
        severity: An int 1..5, or an inclusive range ``(low, high)``.
        probability: Chance that an image is corrupted, in [0, 1].
        seed: Optional non-negative int.
        **kwargs: Base ``keras.layers.Layer`` arguments (``name``, ...).

    Example:

    >>> layer = RandomCorruption(names=["gaussian_noise"], severity=2, seed=0)
    >>> x = np.random.default_rng(0).random((2, 32, 32, 3)).astype("float32")
    >>> bool(np.all(layer(x, training=False) == x))
    True
    >>> bool(np.any(layer(x, training=True).numpy() != x))
    True
    """

    def __init__(
        self,
        names: str | Sequence[str] = "all",
        severity: int | Sequence[int] = (1, 5),
        probability: float = 1.0,
        seed: int | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        if isinstance(names, str) and names == "all":
            self._names_config: str | list[str] = "all"
            self.corruption_names = NAMES
        else:
            self.corruption_names = _checks.names(names)
            self._names_config = list(self.corruption_names)
        if isinstance(severity, (int, np.integer)) and not isinstance(severity, bool):
            low = high = _checks.severity(severity)
        else:
            try:
                low, high = (_checks.severity(v) for v in severity)
            except (TypeError, ValueError) as err:
                raise ValueError(
                    f"severity must be an int 1..5 or a pair (low, high), got {severity!r}."
                ) from err
            if low > high:
                raise ValueError(f"severity range must have low <= high, got {severity!r}.")
        self.severity_range = (low, high)
        probability = float(probability)
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"probability must be in [0, 1], got {probability}.")
        self.probability = probability
        self.seed = None if seed is None else _checks.seed(seed)
        self._rng = np.random.default_rng(self.seed)
        self._rng_lock = threading.Lock()
        self.supports_jit = False
        self.supports_masking = False

    def _next_seed(self) -> int:
        with self._rng_lock:
            return int(self._rng.integers(0, 2**63 - 1))

    def _corrupt_numpy(self, batch: np.ndarray) -> np.ndarray:
        if batch.shape[0] == 0:
            return batch
        floating = batch.dtype != np.uint8
        # float batches were checked to lie in [0, 1] (_corrupt)
        as_uint8 = np.rint(batch * 255.0).astype(np.uint8) if floating else batch
        checked, _ = _checks.images(as_uint8, "RandomCorruption")
        severities = tuple(range(self.severity_range[0], self.severity_range[1] + 1))
        out, names, _ = random_corruptions(
            checked, self.corruption_names, severities, self.probability, self._next_seed()
        )
        if not floating:
            return out
        result = batch.copy()
        hit = names != ""
        result[hit] = (out[hit].astype(np.float32) / 255.0).astype(batch.dtype)
        return result

    def _corrupt(self, inputs: tf.Tensor) -> tf.Tensor:
        if inputs.dtype != tf.uint8:
            inputs = _checks.unit_float_images(inputs, "RandomCorruption")
        work = inputs if inputs.dtype in (tf.uint8, tf.float32) else tf.cast(inputs, tf.float32)
        out = tf.numpy_function(self._corrupt_numpy, [work], work.dtype, stateful=True)
        out.set_shape(inputs.shape)
        return tf.cast(out, inputs.dtype)

    def call(self, inputs: Any, training: Any = None) -> Any:
        inputs = tf.convert_to_tensor(inputs)
        if training is None or training is False:
            return inputs
        if training is True:
            return self._corrupt(inputs)
        return tf.cond(
            tf.cast(training, tf.bool), lambda: self._corrupt(inputs), lambda: tf.identity(inputs)
        )

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "names": self._names_config,
                "severity": list(self.severity_range),
                "probability": self.probability,
                "seed": self.seed,
            }
        )
        return config


__all__ = ["RandomCorruption"]
