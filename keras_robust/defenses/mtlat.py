"""M-TLAT: Mixup and Targeted Labeling Adversarial Training (Laugros et al., ECCV-W 2020).

One training step (Algorithm 1 of the paper): the batch is split in two
halves. The first half is mixed (Mixup, eq. 1); the second half is mixed, then
attacked by a targeted FGSM step toward a uniformly random class with a
per-sample budget eps ~ U[0, eps_max], and labelled
`(1 - eps) * y_mix + eps * y_target` (eq. 6). The weights are trained on both
halves together. `mixup=False` and `tlat=False` give the paper's ablations
(TLAT alone, Mixup alone; Table 2), see `VARIANTS`.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import keras
import numpy as np
import tensorflow as tf

from keras_robust._validation import check_choice, check_epsilon
from keras_robust.attacks._common import as_seed
from keras_robust.attacks._engine import iterative_attack
from keras_robust.defenses.base import RobustModel, TrainingBatch
from keras_robust.layers import check_alpha, tlat_labels
from keras_robust.layers import mixup as mix_batch

# The models of the paper's Tables 1 and 2 (besides the standard model), as arguments.
VARIANTS: dict[str, dict[str, Any]] = {
    "M-TLAT": dict(mixup=True, tlat=True),
    "Mixup": dict(mixup=True, tlat=False),
    "TLAT": dict(mixup=False, tlat=True),
}

_SALT = 3  # step_seed purpose of M-TLAT's draws (PGD-AT uses 1, BAT 2)


class MTLATBatch(NamedTuple):
    """One M-TLAT training batch and how it was made (for inspection and tests).

    Rows [0, B // 2) are the Mixup half, rows [B // 2, B) the TLAT half.
    `MTLATModel.mtlat_batch` builds one; `training_batch` trains on its `x`,
    `y` and `sample_weight`.

    Attributes:
        x: the training images: mixed (first half), mixed then attacked
            (second), float32 [B, H, W, C] in [0, 1].
        y: the training label rows: y_mix, and (1 - eps) y_mix + eps y_target,
            float32 [B, num_classes].
        sample_weight: the sample weights mixed like the labels
            (lam w_i + (1 - lam) w_partner), float32 [B], or None when none
            were given.
        mixed: the images after Mixup, before the attack, float32
            [B, H, W, C].
        mixed_labels: the label rows after Mixup, before TLAT's labelling,
            float32 [B, num_classes].
        lam: float32 [B], each sample's Mixup weight (1 without Mixup).
        partner: int32 [B], the index in the batch of each sample's partner,
            always in the sample's own half (i itself without Mixup).
        epsilon: float32 [B], the FGSM budget (0 in the Mixup half).
        target: int32 [B], the target class (-1 in the Mixup half).
        adversarial: bool [B], True in the TLAT half when TLAT is on.

    Example:

    >>> model = MTLATModel(keras_robust.backbones.small_cnn(input_shape=(8, 8, 3)), seed=0)
    >>> batch = model.mtlat_batch(tf.random.stateless_uniform([4, 8, 8, 3], [0, 1]),
    ...                           [0, 1, 2, 3], seed=tf.constant([0, 1]))
    >>> batch.x.shape, batch.y.shape
    (TensorShape([4, 8, 8, 3]), TensorShape([4, 10]))
    >>> batch.adversarial.numpy().tolist(), batch.target.numpy()[:2].tolist()
    ([False, False, True, True], [-1, -1])
    """

    x: tf.Tensor
    y: tf.Tensor
    sample_weight: tf.Tensor | None
    mixed: tf.Tensor
    mixed_labels: tf.Tensor
    lam: tf.Tensor
    partner: tf.Tensor
    epsilon: tf.Tensor
    target: tf.Tensor
    adversarial: tf.Tensor


def _check_flag(value: Any, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"`{name}` must be True or False, got {value!r}.")
    return bool(value)


@keras.saving.register_keras_serializable(package="keras_robust")
class MTLATModel(RobustModel):
    """M-TLAT: Mixup on half of each batch, Mixup + targeted labelling FGSM on the other.

    Algorithm 1 of Laugros et al. (2020), per training step:

    1. split the batch in two halves (rows [0, B // 2) and [B // 2, B); odd
       sizes put the extra sample in the second half);
    2. mix each half within itself: every sample gets a partner drawn by a
       random permutation of its own half and lambda ~ Beta(alpha, alpha)
       (eq. 1), so x_mix = lambda x_i + (1 - lambda) x_j, same for labels;
    3. attack the second half with one targeted FGSM step at the current
       weights (BatchNorm in inference mode), toward y_target drawn uniformly
       from all N classes (Algorithm 1: y_target ~ U[0, N]; the true class can
       be drawn), with eps ~ U[0, eps_max] per sample:
       x_mtlat = x_mix - eps * sign(grad_x CE(f(x_mix), y_target)) (eq. 5),
       kept in [0, 1];
    4. label it y_mtlat = (1 - eps) y_mix + eps y_target (eq. 6);
    5. train on the concatenation of both halves.

    The loss: the paper minimises L(half 1) + L(half 2); this model minimises
    the compiled loss's mean over the concatenated batch, (L1 + L2) / 2 for
    equal halves. The factor 1/2 is a constant rescaling of the gradient,
    absorbed by the learning rate under SGD and irrelevant under Adam (which
    the paper uses, up to Adam's epsilon); with odd batches each half is
    weighted by its size.

    `mixup=False` is TLAT alone (no mixing; the first half is clean),
    `tlat=False` is Mixup alone (both halves only mixed): the ablations of
    the paper's Table 2 (`MTLATModel.variant("TLAT", backbone)`); both False is
    plain training. Inference and `export()` are the backbone alone.

    Args:
        backbone: a Keras model mapping [0, 1] images to logits.
        mixup_alpha: alpha of Beta(alpha, alpha), >= 0 (0.4 in the paper; 0
            gives lambda = 1, no mixing).
        epsilon_max: the largest FGSM budget on the [0, 1] scale, in (0, 1]
            (0.025 in the paper).
        mixup: use Mixup (both halves).
        tlat: attack and relabel the second half.
        seed: see `RobustModel`; draws are keyed on (seed, step, replica).
        **kwargs: passed to `RobustModel` (e.g. `name`).

    Example:

    ```python
    backbone = keras_robust.backbones.small_cnn(num_classes=10)
    model = keras_robust.MTLATModel(backbone, mixup_alpha=0.4, epsilon_max=0.025)
    model.compile(optimizer=keras.optimizers.Adam(0.002), metrics=["accuracy"])
    model.fit(train_ds, epochs=90)
    model.export("mtlat_savedmodel")          # serves the backbone's logits
    ```
    """

    def __init__(
        self,
        backbone: keras.Model,
        mixup_alpha: float = 0.4,
        epsilon_max: float = 0.025,
        mixup: bool = True,
        tlat: bool = True,
        seed: int | None = None,
        **kwargs: Any,
    ):
        super().__init__(backbone, seed=seed, **kwargs)
        self.mixup_alpha = check_alpha(mixup_alpha, "mixup_alpha")
        if isinstance(epsilon_max, bool) or not isinstance(epsilon_max, (int, float, np.number)):
            raise TypeError(
                f"`epsilon_max` must be a number in (0, 1] (0.025 in M-TLAT), got {epsilon_max!r}."
            )
        self.epsilon_max = float(check_epsilon(float(epsilon_max), "epsilon_max"))
        self.mixup = _check_flag(mixup, "mixup")
        self.tlat = _check_flag(tlat, "tlat")

    @classmethod
    def variant(cls, name: str, backbone: keras.Model, **overrides: Any) -> "MTLATModel":
        """One of the paper's models by name: "M-TLAT", "Mixup" or "TLAT" (see `VARIANTS`).

        Example:

        >>> ablation = MTLATModel.variant("TLAT", backbone, seed=0)
        """
        check_choice(name, VARIANTS, "M-TLAT variant")
        return cls(backbone, **{**VARIANTS[name], **overrides})

    def mtlat_batch(
        self,
        x: Any,
        y: Any,
        sample_weight: Any = None,
        seed: Any = None,
        epsilon: Any = None,
    ) -> MTLATBatch:
        """Builds the M-TLAT batch of Algorithm 1 (what `training_batch` trains on).

        Args:
            x: float32 images [B, H, W, C] in [0, 1].
            y: labels (sparse, one-hot or soft).
            sample_weight: [B] or None.
            seed: an int or an int [2] stateless seed; default the step's
                `step_seed(3)`, which needs a compiled model.
            epsilon: budgets for the TLAT half (a scalar or one per sample of
                rows [B // 2, B)) instead of the U[0, eps_max] draw.

        Returns:
            An `MTLATBatch`.

        Example:

        >>> batch = model.mtlat_batch(x, y, seed=tf.constant([0, 1]))
        >>> batch.x.shape == x.shape
        True
        """
        x = tf.cast(tf.convert_to_tensor(x), tf.float32)
        y = self.label_probabilities(y)
        seed = self.step_seed(_SALT) if seed is None else as_seed(seed)
        size = tf.shape(x)[0]
        first = size // 2
        halves = [(x[:first], y[:first], 0), (x[first:], y[first:], first)]

        mixed, mixed_labels, lams, partners = [], [], [], []
        for index, (images, labels, offset) in enumerate(halves):
            count = tf.shape(images)[0]
            if self.mixup:
                result = mix_batch(images, labels, self.mixup_alpha,
                                   tf.random.experimental.stateless_fold_in(seed, index + 1))
                mixed.append(result.images)
                mixed_labels.append(result.labels)
                lams.append(result.lam)
                partners.append(result.partner + offset)
            else:
                mixed.append(images)
                mixed_labels.append(labels)
                lams.append(tf.ones([count], tf.float32))
                partners.append(tf.range(count, dtype=tf.int32) + offset)

        second = size - first
        if self.tlat:
            if epsilon is None:
                eps = tf.random.stateless_uniform(
                    [second], tf.random.experimental.stateless_fold_in(seed, 3),
                    0.0, self.epsilon_max)
            else:
                eps = tf.cast(epsilon, tf.float32) * tf.ones([second], tf.float32)
            target = tf.random.stateless_uniform(
                [second], tf.random.experimental.stateless_fold_in(seed, 4),
                0, self.num_classes, dtype=tf.int32)
            attack = iterative_attack(
                self.attack_logits, mixed[1], mixed_labels[1], epsilon=eps, step_size=eps,
                steps=1, norm="linf", loss="ce", target=target, random_start=False,
            )
            attacked = attack.x_adv
            labels = tlat_labels(mixed_labels[1], target, eps)
        else:
            eps = tf.zeros([second], tf.float32)
            target = tf.fill([second], -1)
            attacked, labels = mixed[1], mixed_labels[1]

        lam = tf.concat(lams, 0)
        partner = tf.concat(partners, 0)
        weights = None
        if sample_weight is not None:
            weights = tf.cast(tf.reshape(sample_weight, [-1]), tf.float32)
            weights = lam * weights + (1.0 - lam) * tf.gather(weights, partner)
        return MTLATBatch(
            x=tf.concat([mixed[0], attacked], 0),
            y=tf.concat([mixed_labels[0], labels], 0),
            sample_weight=weights,
            mixed=tf.concat(mixed, 0),
            mixed_labels=tf.concat(mixed_labels, 0),
            lam=lam,
            partner=partner,
            epsilon=tf.concat([tf.zeros([first], tf.float32), eps], 0),
            target=tf.concat([tf.fill([first], -1), target], 0),
            adversarial=tf.concat(
                [tf.zeros([first], tf.bool), tf.fill([second], self.tlat)], 0),
        )

    def training_batch(self, x, y, sample_weight) -> TrainingBatch:
        batch = self.mtlat_batch(x, y, sample_weight)
        return TrainingBatch(batch.x, batch.y, batch.sample_weight)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            mixup_alpha=self.mixup_alpha, epsilon_max=self.epsilon_max, mixup=self.mixup,
            tlat=self.tlat,
        )
        return config


__all__ = ["MTLATBatch", "MTLATModel", "VARIANTS"]
