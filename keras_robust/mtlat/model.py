"""M-TLAT: Mixup and Targeted Labeling Adversarial Training (Laugros et al., ECCV-W 2020).

One training step (Algorithm 1 of the paper): the batch is split in two
halves. The first half is mixed (Mixup, eq. 1); the second half is mixed, then
attacked by a targeted FGSM step toward a uniformly random class with a
per-sample budget eps ~ U[0, eps_max], and labelled
`(1 - eps) * y_mix + eps * y_target` (eq. 6). The weights are trained on the sum of both halves' losses.
`PRESETS` holds every model the paper trains: M-TLAT and IAT (Table 1),
the Mixup and TLAT ablations (Table 2), the FGSM, target-FGSM and label
smoothing adversarial trainings (Table 3).
"""
from __future__ import annotations

from typing import Any, NamedTuple

import keras
import numpy as np
import tensorflow as tf

from keras_robust._random import as_seed, fold_seed
from keras_robust._validation import check_bool, check_choice, check_epsilon
from keras_robust.attacks.config import AttackConfig
from keras_robust.attacks.engine import run_attack
from keras_robust.defenses.base import RobustModel, TrainingBatch, register_defense, resolve_attack
from keras_robust.mtlat.layers import check_alpha, sample_uniform, tlat_labels
from keras_robust.mtlat.layers import mixup as mix_batch

# The adversary of every model: one FGSM step of size eps from x on the
# cross-entropy (towards a target for TLAT), eps drawn per sample in
# U[0, epsilon_max] (passed per call): the attack's `epsilon` is epsilon_max,
# 0.025 in the paper (Sec. 5: "the same hyperparameters for all trainings").
ATTACK = AttackConfig(norm="linf", epsilon=0.025, steps=1, loss="ce", random_start=False)

# The models of the paper's Tables 1-3 (besides the standard model). Every one uses
# Algorithm 1's two halves (Sec. 5.4: "All models are trained with minibatches that
# contain both clean samples and adversarial examples") and the same attack.
PRESETS: dict[str, dict[str, Any]] = {
    "M-TLAT": dict(mixup=True, adversary="tlat", attack=ATTACK),                       # Table 1
    "IAT": dict(mixup=True, adversary="fgsm", attack_before_mixup=True, attack=ATTACK),  # Table 1
    "Mixup": dict(mixup=True, adversary=None, attack=ATTACK),                          # Table 2
    "TLAT": dict(mixup=False, adversary="tlat", attack=ATTACK),                        # Tables 2, 3
    "FGSM": dict(mixup=False, adversary="fgsm", attack=ATTACK),                        # Table 3
    "target-FGSM": dict(mixup=False, adversary="targeted_fgsm", attack=ATTACK),        # Table 3
    "LS": dict(mixup=False, adversary="label_smoothing", attack=ATTACK),               # Table 3
}

# adversary -> (targeted attack?, how the attacked half is labelled)
ADVERSARIES: dict[str, tuple[bool, str]] = {
    "tlat": (True, "tlat"),
    "fgsm": (False, "unchanged"),
    "targeted_fgsm": (True, "unchanged"),
    "label_smoothing": (True, "smoothed"),
}

_SALT = 3  # step_seed purpose of M-TLAT's draws (PGD-AT uses 1, BAT 2)


class MTLATBatch(NamedTuple):
    """One M-TLAT training batch and how it was made (for inspection and tests).

    Rows [0, B // 2) are the Mixup half, rows [B // 2, B) the TLAT half.
    `MTLATModel.mtlat_batch` builds one; `training_batch` trains on its `x`,
    `y` and `sample_weight`.

    Attributes:
        x: the training images: mixed (first half), mixed then attacked
            (second; attacked then mixed with `attack_before_mixup`), float32
            [B, H, W, C] in [0, 1].
        y: the training label rows: y_mix, and the adversary's labels (for
            "tlat" (1 - eps) y_mix + eps y_target), float32 [B, num_classes].
        sample_weight: the sample weights mixed like the labels
            (lam w_i + (1 - lam) w_partner), float32 [B], or None when none
            were given.
        mixed: the clean images after Mixup (no attack), float32
            [B, H, W, C].
        mixed_labels: the label rows after Mixup, before TLAT's labelling,
            float32 [B, num_classes].
        lam: float32 [B], each sample's Mixup weight (1 without Mixup).
        partner: int32 [B], the index in the batch of each sample's partner,
            always in the sample's own half (i itself without Mixup).
        epsilon: float32 [B], the FGSM budget of the row's attack (0 in the
            first half and without an adversary; with `attack_before_mixup`
            the budget of the row's own image, its partner's being
            `epsilon[partner]`).
        target: int32 [B], the target class (-1 in the first half, without
            an adversary and for the untargeted "fgsm").
        adversarial: bool [B], True in the second half when an adversary is on.

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


@register_defense("mtlat")
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
    5. train on loss = L1 + L2, L1 the mean cross-entropy of the first half,
       L2 that of the second.

    The loss (`halves="sum"`, the default) is Algorithm 1's L1 + L2: each
    row of half k carries the weight B / B_k (B_k the half's size), so the
    compiled loss's mean over the B rows is exactly L1 + L2, odd batches
    included (times the sample weights, if any). `halves="mean"` trains on
    (L1 + L2) / 2 instead (B_k / (B / 2) = 1 for equal halves: the plain mean
    over the rows). That factor 1/2 scales the loss gradient only: with SGD
    and no weight decay it is the same as halving the learning rate; with
    Adam and no weight decay or Keras' decoupled `weight_decay` it changes
    nothing (up to Adam's epsilon); with a coupled L2 penalty (kernel
    regularisers, or PyTorch's `Adam(weight_decay=...)`, which adds wd * w to
    the gradient; the paper's "weight decay of 1e-4" with Adam does not say
    which kind) it doubles the penalty's weight relative to the data loss,
    and with SGD's decoupled `weight_decay` (applied as lr * wd * w) it
    doubles the decay relative to the gradient step. The reported `loss` is
    the value trained on, so about 2 ln N for an untrained N-class model
    with "sum".

    `adversary` chooses what happens to the second half; with `mixup` and
    `attack_before_mixup` it builds every model of the paper (`PRESETS`,
    `MTLATModel.from_preset("IAT", backbone)`):

    - "tlat": targeted FGSM toward a random class, TLAT label (eq. 6);
    - "fgsm": untargeted FGSM (ascent on the cross-entropy of the label's
      argmax class), label unchanged (Table 3's FGSM; IAT's attack);
    - "targeted_fgsm": targeted FGSM toward a random class, label unchanged
      (Table 3's target-FGSM);
    - "label_smoothing": targeted FGSM toward a random class, label smoothed
      with the sample's budget: (1 - eps) y + eps / N (Table 3's LS model;
      label smoothing as defined by Szegedy et al., the paper's [41]: the
      paper's paraphrase "the one values ... are replaced by 1 - eps" drops the
      eps / N the true class also receives, which keeps the row summing to 1);
    - None: no attack (both halves only mixed: Table 2's Mixup).

    `attack_before_mixup=True` is Interpolated Adversarial Training's order
    (Lamb et al. 2019, the paper's [28], Table 1): each image of the second
    half is attacked (its own eps and target) and relabelled first, then
    mixed with the same Mixup draws. Lamb et al. train each sample twice per
    step (the whole batch mixed clean and mixed adversarial); here, as in
    Algorithm 1, each sample is in one half. `mixup=False` leaves the first
    half clean (TLAT alone and Table 3's models); `mixup=False,
    adversary=None` is plain training. Inference and `export()` are the
    backbone alone.

    Args:
        backbone: a Keras model mapping [0, 1] images to logits.
        mixup_alpha: alpha of Beta(alpha, alpha), >= 0 (0.4 in the paper; 0
            gives lambda = 1, no mixing).
        epsilon_max: the largest FGSM budget on the [0, 1] scale, in (0, 1]:
            a keyword for `attack.epsilon` (0.025 in the paper).
        mixup: use Mixup (both halves).
        adversary: "tlat", "fgsm", "targeted_fgsm", "label_smoothing" or
            None (see above).
        attack_before_mixup: attack (and relabel) the second half before
            mixing it (IAT) instead of after (M-TLAT).
        halves: "sum" (L1 + L2, Algorithm 1) or "mean" ((L1 + L2) / 2).
        tlat: deprecated alias of `adversary`: `tlat=False` is
            `adversary=None`, `tlat=True` is `adversary="tlat"` (kept so that
            models saved with it load).
        seed: see `RobustModel`; draws are keyed on (seed, step, replica).
        attack: the adversary's FGSM, an `AttackConfig` (or its dict) whose
            `epsilon` is the largest budget; default `ATTACK` (one step on
            the cross-entropy, no random start, epsilon 0.025). Each call
            draws the budgets and steps by them.
        **kwargs: passed to `RobustModel` (e.g. `name`).

    Example:

    ```python
    backbone = keras_robust.backbones.small_cnn(num_classes=10)
    model = keras_robust.MTLATModel.from_preset("M-TLAT", backbone)   # alpha 0.4, eps_max 0.025
    model.compile(optimizer=keras.optimizers.Adam(0.002), metrics=["accuracy"])
    model.fit(train_ds, epochs=90)
    model.export("mtlat_savedmodel")          # serves the backbone's logits
    ```
    """

    presets = PRESETS

    def __init__(
        self,
        backbone: keras.Model,
        mixup_alpha: float = 0.4,
        epsilon_max: float | None = None,
        mixup: bool = True,
        adversary: str | None = "tlat",
        attack_before_mixup: bool = False,
        halves: str = "sum",
        tlat: bool | None = None,
        seed: int | None = None,
        attack: AttackConfig | dict | None = None,
        **kwargs: Any,
    ):
        super().__init__(backbone, seed=seed, **kwargs)
        self.mixup_alpha = check_alpha(mixup_alpha, "mixup_alpha")
        if epsilon_max is not None and (
                isinstance(epsilon_max, bool) or not isinstance(epsilon_max, (int, float, np.number))):
            raise TypeError(
                f"`epsilon_max` must be a number in (0, 1] (0.025 in M-TLAT), got {epsilon_max!r}."
            )
        if epsilon_max is not None:
            epsilon_max = float(check_epsilon(float(epsilon_max), "epsilon_max"))
        self.attack = resolve_attack(attack, ATTACK, epsilon=epsilon_max)
        if self.attack.epsilon is None or callable(self.attack.loss):
            raise ValueError(
                "M-TLAT's attack needs `epsilon` (the largest budget, epsilon_max) and a named "
                f"`loss`, got {self.attack}.")
        self.mixup = check_bool(mixup, "mixup")
        if tlat is not None:  # the keyword of models saved before `adversary`
            if not check_bool(tlat, "tlat"):
                adversary = None
            elif adversary is None:
                raise ValueError("`tlat=True` contradicts `adversary=None`; pass `adversary` only.")
        if adversary is not None:
            check_choice(adversary, ADVERSARIES, "M-TLAT adversary (or None for no attack)")
        self.adversary = adversary
        self.attack_before_mixup = check_bool(attack_before_mixup, "attack_before_mixup")
        self.halves = check_choice(halves, ("sum", "mean"), "`halves` reduction")

    def mtlat_batch(
        self,
        x: Any,
        y: Any,
        sample_weight: Any = None,
        seed: Any = None,
        epsilon: Any = None,
    ) -> MTLATBatch:
        """Builds the M-TLAT batch of Algorithm 1 (what `training_batch` trains on).

        The draws, all from `seed` (folds with Philox, so XLA draws the same):
        the Mixup of half k (k = 1, 2) from `fold_seed(seed, k)` (see
        `keras_robust.layers.mixup`), the budgets from fold 3
        (`keras_robust.layers.sample_uniform`), the targets from fold 4.

        Args:
            x: float32 images [B, H, W, C] in [0, 1].
            y: labels (sparse, one-hot or soft).
            sample_weight: [B] or None.
            seed: an int or an int [2] stateless seed; default the step's
                `step_seed(3)`, which needs a compiled model.
            epsilon: budgets for the attacked half (a scalar or one per sample of
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
        second = size - first
        eps, target = self._adversary_draws(seed, second, epsilon)

        def attack(images, labels):
            return self._attack_half(images, labels, eps, target)

        mixed, mixed_labels, lams, partners, outputs = [], [], [], [], []
        for index, (lo, hi) in enumerate([(0, first), (first, size)]):
            attacked = index == 1 and self.adversary is not None
            half = self._mix_half(x[lo:hi], y[lo:hi], hi - lo, fold_seed(seed, index + 1, alg="philox"),
                                  attack if attacked else None)
            mixed.append(half[0])
            mixed_labels.append(half[1])
            lams.append(half[2])
            partners.append(half[3] + lo)
            outputs.append(half[4])

        lam = tf.concat(lams, 0)
        partner = tf.concat(partners, 0)
        weights = None
        if sample_weight is not None:
            weights = tf.cast(tf.reshape(sample_weight, [-1]), tf.float32)
            weights = lam * weights + (1.0 - lam) * tf.gather(weights, partner)
        return MTLATBatch(
            x=tf.concat([outputs[0][0], outputs[1][0]], 0),
            y=tf.concat([outputs[0][1], outputs[1][1]], 0),
            sample_weight=weights,
            mixed=tf.concat(mixed, 0),
            mixed_labels=tf.concat(mixed_labels, 0),
            lam=lam,
            partner=partner,
            epsilon=tf.concat([tf.zeros([first], tf.float32), eps], 0),
            target=tf.concat([tf.fill([first], -1), target], 0),
            adversarial=tf.concat(
                [tf.zeros([first], tf.bool), tf.fill([second], self.adversary is not None)], 0),
        )

    def _adversary_draws(self, seed: tf.Tensor, count: Any, epsilon: Any) -> tuple:
        """(budgets [count], targets [count]) of the attacked half (zeros and -1 without one)."""
        if self.adversary is None:
            return tf.zeros([count], tf.float32), tf.fill([count], -1)
        if epsilon is None:
            eps = sample_uniform([count], fold_seed(seed, 3, alg="philox"), 0.0, self.attack.epsilon)
        else:
            eps = tf.cast(epsilon, tf.float32) * tf.ones([count], tf.float32)
        if not ADVERSARIES[self.adversary][0]:
            return eps, tf.fill([count], -1)
        target = tf.random.stateless_uniform(
            [count], fold_seed(seed, 4, alg="philox"), 0, self.num_classes, dtype=tf.int32,
            alg="philox")  # XLA draws the same
        return eps, target

    def _attack_half(self, images: tf.Tensor, labels: tf.Tensor, eps: tf.Tensor,
                     target: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """The adversary on a half: its FGSM images (step = budget = eps) and labels."""
        targeted, labelling = ADVERSARIES[self.adversary]
        x_adv = run_attack(
            self.attack_logits, images, labels, self.attack.replace(epsilon=None), epsilon=eps,
            step_size=eps, target=target if targeted else None,
        ).x_adv
        if labelling == "tlat":
            labels = tlat_labels(labels, target, eps)
        elif labelling == "smoothed":
            labels = tlat_labels(labels, tf.fill(tf.shape(labels), 1.0 / self.num_classes), eps)
        return x_adv, labels

    def _mix_half(self, images: tf.Tensor, labels: tf.Tensor, count: Any, half_seed: tf.Tensor,
                  attack: Any) -> tuple:
        """One half: (mixed images, mixed labels, lambda, partner, (training images, labels)).

        `attack` (None for the clean half) runs after Mixup, or before it with
        `attack_before_mixup` (then the attacked half is mixed with the same draws).
        """
        if attack is not None and self.attack_before_mixup:
            adv_images, adv_labels = attack(images, labels)
        if self.mixup:
            mixed_images, mixed_rows, lam, partner = mix_batch(
                images, labels, self.mixup_alpha, half_seed)
        else:
            mixed_images, mixed_rows = images, labels
            lam, partner = tf.ones([count], tf.float32), tf.range(count, dtype=tf.int32)
        if attack is None:
            output = (mixed_images, mixed_rows)
        elif not self.attack_before_mixup:
            output = attack(mixed_images, mixed_rows)
        elif self.mixup:  # the same draws, on the attacked half
            result = mix_batch(adv_images, adv_labels, self.mixup_alpha, half_seed)
            output = (result.images, result.labels)
        else:
            output = (adv_images, adv_labels)
        return mixed_images, mixed_rows, lam, partner, output

    def half_weights(self, size: Any) -> tf.Tensor:
        """The loss weight of each row: B / B_k in half k ("sum"), B / (2 B_k) ("mean").

        With these weights the compiled loss's mean over the B rows is
        L1 + L2 ("sum") or (L1 + L2) / 2 ("mean"), L_k the mean loss of half k
        (with B = 1 the first half is empty and L1 = 0).

        Args:
            size: the batch size B (an int or a scalar tensor).

        Returns:
            float32 [B].

        Example:

        >>> np.round(model.half_weights(5).numpy(), 3).tolist()   # halves of 2 and 3 rows, "sum"
        [2.5, 2.5, 1.667, 1.667, 1.667]
        """
        size = tf.cast(size, tf.int32)
        first = size // 2
        second = size - first
        total = tf.cast(size, tf.float32)
        scale = 1.0 if self.halves == "sum" else 0.5
        return tf.concat([
            tf.fill([first], scale * total / tf.cast(tf.maximum(first, 1), tf.float32)),
            tf.fill([second], scale * total / tf.cast(second, tf.float32)),
        ], 0)

    def training_batch(self, x, y, sample_weight) -> TrainingBatch:
        batch = self.mtlat_batch(x, y, sample_weight)
        weights = self.half_weights(tf.shape(batch.x)[0])
        if batch.sample_weight is not None:
            weights = weights * batch.sample_weight
        return TrainingBatch(batch.x, batch.y, weights)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            mixup_alpha=self.mixup_alpha, mixup=self.mixup, adversary=self.adversary,
            attack_before_mixup=self.attack_before_mixup, halves=self.halves,
            attack=self.attack.get_config(),
        )
        return config


__all__ = ["ADVERSARIES", "ATTACK", "MTLATBatch", "MTLATModel", "PRESETS"]
