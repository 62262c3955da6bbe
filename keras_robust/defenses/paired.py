"""Defences whose loss reads each image twice: clean and attacked (TRADES, MART).

`PairedModel` is `PGDATModel` with one change: the training batch holds the
clean images and their attacks, [x; x'], run through the backbone in two
training-mode passes (as the TRADES and MART authors' code does), so that a
loss can compare p(x) with p(x') and the gradient flows through both. The
compiled loss (cross-entropy by default) is taken on one half through the
sample weights; a subclass adds its own terms in `training_loss`.
"""
from __future__ import annotations

from typing import Any, ClassVar, NamedTuple

import keras
import tensorflow as tf

from keras_robust._validation import check_choice
from keras_robust.defenses.base import TrainingBatch, frozen_batchnorm
from keras_robust.defenses.pgd_at import PGDATModel

# How the clean pass treats BatchNorm: "update" (the authors' code: both
# passes normalise by their batch and update the moving statistics) or
# "frozen" (the leaderboard code: batch statistics, no update by the clean pass).
CLEAN_BATCHNORM = ("update", "frozen")


class PairedLogits(NamedTuple):
    """The two halves of a paired training batch's logits.

    Attributes:
        clean: float32 logits of the clean images [B, C].
        adversarial: float32 logits of their attacks [B, C].
        labels: the label rows of the images [B, C].
        weight: per-image weights [B] (ones without sample weights).
    """

    clean: tf.Tensor
    adversarial: tf.Tensor
    labels: tf.Tensor
    weight: tf.Tensor


class PairedModel(PGDATModel):
    """PGD-AT whose training batch is the clean images and their attacks, [x; x'].

    The base of TRADES and MART. `training_batch` attacks the batch (the
    model's `attack`, BatchNorm as `attack_batchnorm` says) and returns 2B
    rows; `training_logits` runs the two halves through the backbone in two
    training-mode passes (each normalised by its own batch); the compiled
    loss sees the half named by `loss_half` (weights (2w, 0) or (0, 2w), so
    that Keras' mean over the 2B rows is the mean over that half), and the
    metrics follow it. A subclass adds its terms in `training_loss`, reading
    both halves with `paired_logits`.

    Args:
        backbone: a Keras model mapping [0, 1] images to logits.
        clean_batchnorm: "update" (the clean pass updates the BatchNorm moving
            statistics, as the TRADES and MART authors' code) or "frozen" (it
            is normalised by its batch statistics without updating them, as
            the leaderboard code, google-deepmind/deepmind-research
            `adversarial_robustness`).
        **kwargs: `PGDATModel`'s (the attack, `seed`, ...).

    Example:

    >>> backbone = keras_robust.backbones.small_cnn(input_shape=(8, 8, 3))
    >>> model = PairedModel(backbone, epsilon=8 / 255, step_size=2 / 255, steps=1, seed=0)
    >>> model.compile(optimizer="sgd")
    >>> batch = model.training_batch(tf.zeros([2, 8, 8, 3]), model.label_probabilities([0, 1]),
    ...                              None)
    >>> batch.x.shape, batch.sample_weight.numpy().tolist()
    (TensorShape([4, 8, 8, 3]), [2.0, 2.0, 0.0, 0.0])
    """

    # Which half the compiled loss (and the metrics) are taken on: "clean" or "adversarial".
    loss_half: ClassVar[str] = "clean"

    def __init__(self, backbone: keras.Model, clean_batchnorm: str = "update", **kwargs: Any):
        super().__init__(backbone, **kwargs)
        self.clean_batchnorm = check_choice(clean_batchnorm, CLEAN_BATCHNORM, "clean_batchnorm")

    def training_batch(self, x, y, sample_weight) -> TrainingBatch:
        x_adv = self.adversarial_examples(x, y).x_adv
        return TrainingBatch(tf.concat([x, x_adv], 0), tf.concat([y, y], 0),
                             half_weights(x, sample_weight, first=self.loss_half == "clean"))

    def training_logits(self, batch: TrainingBatch) -> tf.Tensor:
        clean, adversarial = tf.split(batch.x, 2, axis=0)
        if self.clean_batchnorm == "frozen":
            with frozen_batchnorm(self.backbone):
                clean_logits = self(clean, training=True)
        else:
            clean_logits = self(clean, training=True)
        return tf.concat([clean_logits, self(adversarial, training=True)], axis=0)

    def paired_logits(self, batch: TrainingBatch, y_pred: tf.Tensor) -> PairedLogits:
        """Splits a paired batch's logits, labels and weights into their halves.

        Args:
            batch: the `TrainingBatch` of `training_batch` (2B rows).
            y_pred: the logits of `training_logits` [2B, C].

        Returns:
            A `PairedLogits` (float32 logits; the weight w of each image).
        """
        clean, adversarial = tf.split(tf.cast(y_pred, tf.float32), 2, axis=0)
        labels, _ = tf.split(batch.y, 2, axis=0)
        weights = tf.split(batch.sample_weight, 2, axis=0)
        weight = weights[0 if self.loss_half == "clean" else 1] / 2.0
        return PairedLogits(clean, adversarial, labels, weight)

    def get_config(self) -> dict:
        config = super().get_config()
        config["clean_batchnorm"] = self.clean_batchnorm
        return config


def half_weights(x: tf.Tensor, sample_weight: tf.Tensor | None, first: bool = True) -> tf.Tensor:
    """Sample weights [2B] that put a mean over 2B rows on one half: (2w, 0) or (0, 2w).

    Keras' losses and metrics average over every row of the batch, so with
    these weights the compiled loss of a doubled batch [a; b] is the mean
    over `a` alone (`first`) or over `b` alone.

    Args:
        x: the first half's images [B, ...] (for B).
        sample_weight: the batch's weights w [B], or None for ones.
        first: weight the first half (True) or the second.

    Returns:
        float32 [2B].

    Example:

    >>> half_weights(tf.zeros([2, 1]), None, first=False).numpy().tolist()
    [0.0, 0.0, 2.0, 2.0]
    """
    weight = tf.ones(tf.shape(x)[:1]) if sample_weight is None else tf.cast(sample_weight, tf.float32)
    halves = [2.0 * weight, tf.zeros_like(weight)]
    return tf.concat(halves if first else halves[::-1], 0)


def batch_mean(values: tf.Tensor, weight: tf.Tensor) -> tf.Tensor:
    """The weighted mean over a replica's batch, sum(w * v) / B, as Keras' losses reduce.

    Args:
        values: per-image values [B].
        weight: per-image weights [B].

    Returns:
        A float32 scalar.

    Example:

    >>> float(batch_mean(tf.constant([1.0, 3.0]), tf.constant([1.0, 0.0])))
    0.5
    """
    values = tf.cast(values, tf.float32)
    return tf.reduce_sum(weight * values) / tf.cast(tf.shape(values)[0], tf.float32)
