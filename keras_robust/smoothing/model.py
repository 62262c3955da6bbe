"""Gaussian data augmentation, the training of a randomized-smoothing base classifier.

Cohen, Rosenfeld & Kolter (ICML 2019) train the base classifier f on
x + sigma * N(0, I) with the usual cross-entropy (reference: locuslab/smoothing
`code/train.py`), the noise added to the [0, 1] image before the model's own
normalisation and not clipped. The smoothed classifier
g(x) = argmax_c P(f(x + sigma * N(0, I)) = c) is then certified in L2 with the
same sigma (`keras_robust.evaluate.certify`).
"""
from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from keras_robust import _random
from keras_robust._validation import check_positive
from keras_robust.defenses.base import RobustModel, TrainingBatch, register_defense

# The salt of the noise's step seed (`RobustModel.step_seed`).
_NOISE_SALT = 5

PRESETS: dict[str, dict[str, Any]] = {
    # The paper's noise levels (CIFAR-10 and ImageNet models, Table / Figure 7).
    "sigma-0.12": dict(sigma=0.12),
    "sigma-0.25": dict(sigma=0.25),
    "sigma-0.5": dict(sigma=0.5),
    "sigma-1.0": dict(sigma=1.0),
}


@register_defense("gaussian_noise")
@keras.saving.register_keras_serializable(package="keras_robust")
class GaussianNoiseModel(RobustModel):
    """Trains the backbone on x + sigma * N(0, I): the base classifier of randomized smoothing.

    Each step replaces the batch by x + sigma * z, z a stateless N(0, 1)
    draw (Box-Muller on Philox integers) from the step's seed (`step_seed`,
    so a seeded `fit` is reproducible, resumes identically and draws the
    same compiled with XLA), not clipped to [0, 1]; the backbone normalises inside, after the noise, as the
    reference's `NormalizeLayer`. The loss is the compiled one
    (cross-entropy by default) on the noisy batch. Certify the smoothed
    classifier with the same sigma: `keras_robust.evaluate.certify_dataset`.

    Args:
        backbone: a built Keras model mapping [0, 1] images to logits.
        sigma: the noise's standard deviation on the [0, 1] scale, > 0
            (the paper: 0.12, 0.25, 0.5, 1.0; see `list_presets()`).
        seed: the noise's seed; None picks one (saved in the config).
        **kwargs: `RobustModel`'s (`weight_averaging`, `name`, ...).

    Example:

    >>> backbone = keras_robust.backbones.small_cnn(input_shape=(8, 8, 3))
    >>> model = keras_robust.GaussianNoiseModel.from_preset("sigma-0.5", backbone, seed=0)
    >>> model.sigma, keras_robust.GaussianNoiseModel.list_presets()[0]
    (0.5, 'sigma-0.12')
    >>> model.compile(optimizer="sgd")
    >>> batch = model.training_batch(tf.fill([2, 8, 8, 3], 0.5), model.label_probabilities([0, 1]),
    ...                              None)
    >>> bool(tf.reduce_max(batch.x) > 1.0), bool(tf.reduce_min(batch.x) < 0.0)   # not clipped
    (True, True)
    """

    presets = PRESETS

    def __init__(self, backbone: keras.Model, sigma: float = 0.25, seed: int | None = None,
                 **kwargs: Any):
        super().__init__(backbone, seed=seed, **kwargs)
        self.sigma = check_positive(sigma, "sigma")

    def noise(self, shape: Any) -> tf.Tensor:
        """sigma * N(0, I) of `shape`, drawn from this step's seed (float32).

        Args:
            shape: the batch's shape [B, H, W, C].

        Returns:
            The noise the step adds, a float32 tensor of `shape`.

        Example:

        >>> model = keras_robust.GaussianNoiseModel(
        ...     keras_robust.backbones.small_cnn(input_shape=(8, 8, 3)), sigma=0.5, seed=0)
        >>> model.compile(optimizer="sgd")
        >>> bool(tf.reduce_all(model.noise([1, 2]) == model.noise([1, 2])))  # same step, same noise
        True
        """
        return self.sigma * _random.normal(shape, self.step_seed(_NOISE_SALT))

    def training_batch(self, x: tf.Tensor, y: tf.Tensor, sample_weight: tf.Tensor | None
                       ) -> TrainingBatch:
        """The noisy batch x + sigma * z (not clipped), the labels unchanged."""
        x = tf.convert_to_tensor(x, tf.float32)
        return TrainingBatch(x + self.noise(tf.shape(x)), y, sample_weight)

    def get_config(self) -> dict:
        config = super().get_config()
        config["sigma"] = self.sigma
        return config
