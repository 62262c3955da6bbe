"""Bilateral adversarial training (Wang & Zhang, ICCV 2019).

Both sides of a training pair are perturbed: the image by a one-step (or
two-step) targeted attack toward the most confusing class from a random start,
the label by the closed-form adversarial label of eq. 14 with the budget of
eq. 18. The batch holds only perturbed pairs. `BATModel` is `PGDATModel` plus
the label adversary, so every model of the paper's Tables 3 to 6 is a preset
(`PRESETS`, `BATModel.from_preset`), Madry-LA included.
"""
from __future__ import annotations

from typing import Any, ClassVar

import keras
import tensorflow as tf

from keras_robust._validation import check_choice, check_fraction, check_positive
from keras_robust.attacks.config import AttackConfig
from keras_robust.attacks.targets import select_target
from keras_robust.defenses.base import TrainingBatch, register_defense
from keras_robust.defenses.pgd_at import PGDATModel
from keras_robust.bat.losses import LABEL_LOGS, adversarial_labels, smoothed_labels

LABELS = ("adversarial", "smoothing", "onehot")
LABEL_SOURCES = ("clean", "start")

# The models the BAT paper compares (Tables 3-6), as BATModel arguments: every one
# attacks from a random start with budget 8/255 and, but for Madry-LA (7 steps of
# 2/255), one step of epsilon / steps (its `step_size` unset). The MC target and the
# adversarial label come from the clean image's logits, as in eq. 11-14 and the
# authors' train.py.
def _attack(target: str | None, steps: int = 1, step_size: float | None = None) -> AttackConfig:
    return AttackConfig(epsilon=8 / 255, step_size=step_size, steps=steps, target=target,
                        random_start=True)


PRESETS: dict[str, dict[str, Any]] = {
    "R-FGSM": dict(attack=_attack(None), label="onehot"),
    "R-LL": dict(attack=_attack("ll"), label="onehot"),
    "R-MC": dict(attack=_attack("mc"), label="onehot"),
    "R-FGSM-LS": dict(attack=_attack(None), label="smoothing", label_epsilon=0.5),
    "R-MC-LS": dict(attack=_attack("mc"), label="smoothing", label_epsilon=0.5),
    "R-MC-LA": dict(attack=_attack("mc"), label="adversarial", beta=9.0, gamma=0.01),
    "Madry-LA": dict(attack=_attack(None, steps=7, step_size=2 / 255), label="adversarial",
                     beta=9.0, gamma=0.01),
}


@register_defense("bat")
@keras.saving.register_keras_serializable(package="keras_robust")
class BATModel(PGDATModel):
    """Bilateral adversarial training: adversarial image and adversarial label.

    Each step attacks the batch with `steps` targeted steps of size
    `epsilon / steps` from a random start (R-MC: toward the most confusing
    class), replaces the labels by their adversarial version (eq. 14 with
    eq. 18's budget) or by smoothed labels, and trains on those pairs only.
    Every model of the paper's Tables 3 to 6 is a preset (`PRESETS`,
    `BATModel.list_presets()`); the constructor's defaults are R-MC-LA's.

    Args:
        backbone: a Keras model mapping [0, 1] images to logits.
        label: "adversarial" (LA), "smoothing" (LS) or "onehot".
        beta: eq. 16's multiplier for the adversarial label.
        gamma: eq. 14's constant.
        label_epsilon: the budget of "smoothing" labels.
        label_source: where the MC/LL target and the adversarial label come
            from: "clean" (default; the clean image's logits, as eq. 11-14
            and the authors' train.py, at the cost of one extra forward pass)
            or "start" (the logits of the random-start point, which the
            attack's first gradient pass computes anyway: one forward pass
            fewer, a speed option that departs from the paper). Without a
            random start the two are the same.
        label_log: how eq. 13's v_k = -log p_k is computed: "log_softmax"
            (the equation) or "saturated" (the authors' -log(p_k + 1e-8);
            see `keras_robust.losses.adversarial_labels`).
        **kwargs: passed to `PGDATModel`: `seed`; `attack`, the image attack
            (an `AttackConfig` or its dict; default R-MC-LA's: one step toward
            the most confusing class from a random start, budget 8/255; its
            `step_size`, if unset, is `epsilon / steps`); and the attack's fields by
            keyword (`epsilon`, `steps`, `target` ("mc", "ll", "random", or
            None for R-FGSM's untargeted attack), `step_size`, `random_start`,
            `norm`, `loss`), which replace those of `attack`.

    Example:

    ```python
    backbone = keras_robust.backbones.wide_resnet(28, 10)
    model = keras_robust.BATModel.from_preset("R-MC-LA", backbone)       # Table 3's BAT
    baseline = keras_robust.BATModel.from_preset("R-MC", backbone)       # no label adversary
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), metrics=["accuracy"])
    model.fit(train_ds, epochs=100)
    ```
    """

    presets = PRESETS
    default_attack: ClassVar[AttackConfig] = PRESETS["R-MC-LA"]["attack"]

    def __init__(
        self,
        backbone: keras.Model,
        label: str = "adversarial",
        beta: float = 9.0,
        gamma: float = 0.01,
        label_epsilon: float = 0.5,
        label_source: str = "clean",
        label_log: str = "log_softmax",
        **kwargs: Any,
    ):
        super().__init__(backbone, **kwargs)
        self.label = check_choice(label, LABELS, "label")
        self.beta = check_positive(beta, "beta")
        self.gamma = check_positive(gamma, "gamma")
        self.label_epsilon = check_fraction(label_epsilon, "label_epsilon")
        self.label_source = check_choice(label_source, LABEL_SOURCES, "label_source")
        self.label_log = check_choice(label_log, LABEL_LOGS, "label_log")

    @classmethod
    def default_step_size(cls, attack: AttackConfig) -> float:
        """BAT's step: `epsilon / steps` (one step of the whole budget in the paper)."""
        return float(attack.epsilon) / attack.steps

    def perturb_labels(self, logits: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
        """The training labels: adversarial (from `logits`), smoothed or one-hot."""
        if self.label == "adversarial":
            return adversarial_labels(logits, y, self.beta, self.gamma,
                                      label_log=self.label_log)
        if self.label == "smoothing":
            return smoothed_labels(y, self.num_classes, self.label_epsilon)
        return y

    def training_batch(self, x, y, sample_weight) -> TrainingBatch:
        target_mode = self.attack.target
        needs_clean = self.label_source == "clean" and (
            self.label == "adversarial" or target_mode in ("mc", "ll")
        )
        if needs_clean:
            clean_logits = self.attack_logits(x)
            target = select_target(
                target_mode, tf.argmax(y, -1, output_type=tf.int32), self.num_classes,
                clean_logits, self.step_seed(2),
            )
            result = self.adversarial_examples(x, y, target=target)
            label_logits = clean_logits
        else:
            result = self.adversarial_examples(x, y, target_source="start")
            label_logits = result.start_logits
        return TrainingBatch(result.x_adv, self.perturb_labels(label_logits, y), sample_weight)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            label=self.label, beta=self.beta, gamma=self.gamma, label_epsilon=self.label_epsilon,
            label_source=self.label_source, label_log=self.label_log,
        )
        return config
