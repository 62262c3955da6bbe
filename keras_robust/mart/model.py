"""MART (Wang et al., ICLR 2020): misclassification-aware adversarial training.

    L = CE(f(x'), y) + mean_i -log(1.0001 - p'_{y'_i}(x'_i) + 1e-12)
        + lambda * mean_i KL(p(x_i) || p(x'_i)) * (1.0000001 - p_{y_i}(x_i)),

y' the most likely wrong class of p(x'), x' a CE attack from the Gaussian
start TRADES uses (reference: YisenWang/MART `mart.py`). Nothing is detached:
the gradient flows through p(x), p(x') and the weight 1 - p_y(x). The second
term ("boosted CE") pushes the best wrong class down; the third weights the
KL of each image by how badly the clean image is classified.
"""
from __future__ import annotations

from typing import Any, ClassVar

import keras
import tensorflow as tf

from keras_robust._validation import check_fraction
from keras_robust.attacks.common import best_other_logit, label_indices
from keras_robust.attacks.config import AttackConfig
from keras_robust.attacks.objectives import kl_divergence
from keras_robust.defenses.base import TrainingBatch, register_defense, replica_scale
from keras_robust.defenses.paired import PairedModel, batch_mean

# The authors' constants in the boosted CE and the KL weight (`mart.py`).
BOOST_MARGIN = 1.0001
BOOST_FLOOR = 1e-12
WEIGHT_MARGIN = 1.0000001


def _ce_attack(**fields: Any) -> AttackConfig:
    return AttackConfig(loss="ce", start="gaussian", **fields)


PRESETS: dict[str, dict[str, Any]] = {
    # The library's default: the 8/255 budget with steps of 2/255, lambda 6.
    "mart": dict(lam=6.0, attack=_ce_attack(epsilon=8 / 255, step_size=2 / 255, steps=10)),
    # The authors' scripts: WideResNet-34-10 (lambda 6) and ResNet-18 (lambda 5).
    "mart-wrn": dict(lam=6.0, attack=_ce_attack(epsilon=0.031, step_size=0.007, steps=10)),
    "mart-resnet": dict(lam=5.0, attack=_ce_attack(epsilon=0.031, step_size=0.007, steps=10)),
}


@register_defense("mart")
@keras.saving.register_keras_serializable(package="keras_robust")
class MARTModel(PairedModel):
    """MART: adversarial CE + boosted CE + lambda * KL(p(x) || p(x')) * (1 - p_y(x)).

    Each step attacks the batch with CE-PGD from a Gaussian start (`attack`,
    inference mode), runs x and x' through the backbone in two training-mode
    passes (`PairedModel`) and minimises the compiled loss on the
    adversarial half (cross-entropy by default), the boosted term
    -log(1.0001 - p'(x')[best wrong class] + 1e-12) and lambda times the KL
    weighted by 1 - p_y(x), nothing detached. The metrics are the
    adversarial half's. The default attack is the "mart" preset's: 8/255,
    10 steps of 2/255, CE from a Gaussian start.

    Difference from the authors' `mart.py`: the KL takes log p(x') from
    `log_softmax` (theirs: log(p(x') + 1e-12), equal unless p(x') underflows
    float32); their code has no L2 attack, this one runs the engine's.

    Args:
        backbone: a Keras model mapping [0, 1] images to logits.
        lam: lambda, the weight of the KL term (authors: 6 for WideResNet,
            5 for ResNet-18).
        **kwargs: `PairedModel`'s `clean_batchnorm` ("update": the
            authors'), and `PGDATModel`'s and `RobustModel`'s: `attack` (an
            `AttackConfig`; default this class's `default_attack`, the
            library's preset), the attack fields by keyword (`epsilon`,
            `steps`, ... replace its fields), `seed`, `weight_perturbation`.

    Example:

    ```python
    backbone = keras_robust.backbones.small_cnn(num_classes=10)
    model = keras_robust.MARTModel.from_preset("mart-resnet", backbone)     # lambda 5
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), metrics=["accuracy"])
    model.fit(train_ds, epochs=5)
    ```
    """

    presets = PRESETS
    default_attack: ClassVar[AttackConfig] = PRESETS["mart"]["attack"]
    loss_half: ClassVar[str] = "adversarial"

    def __init__(self, backbone: keras.Model, lam: float = 6.0, **kwargs: Any):
        super().__init__(backbone, **kwargs)
        self.lam = check_fraction(lam, "lam", 0.0, float("inf"))

    def training_loss(self, batch: TrainingBatch, y_pred: tf.Tensor) -> tf.Tensor:
        cross_entropy = super().training_loss(batch, y_pred)  # the compiled loss, adversarial half
        pair = self.paired_logits(batch, y_pred)
        y_hot = tf.one_hot(label_indices(pair.labels), tf.shape(pair.clean)[-1])
        adversarial_probs = tf.nn.softmax(pair.adversarial)
        wrong_prob = best_other_logit(adversarial_probs, y_hot)  # p' of the best wrong class
        boosted = -tf.math.log(BOOST_MARGIN - wrong_prob + BOOST_FLOOR)
        clean_probs = tf.nn.softmax(pair.clean)
        true_prob = tf.reduce_sum(clean_probs * y_hot, axis=-1)
        kl = kl_divergence(clean_probs, pair.adversarial) * (WEIGHT_MARGIN - true_prob)
        extra = batch_mean(boosted, pair.weight) + self.lam * batch_mean(kl, pair.weight)
        return cross_entropy + replica_scale(extra)

    def get_config(self) -> dict:
        config = super().get_config()
        config["lam"] = self.lam
        return config
