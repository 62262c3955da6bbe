"""TRADES (Zhang et al., ICML 2019): clean cross-entropy plus beta times KL(p(x) || p(x')).

    L = CE(f(x), y) + beta * (1 / B) * sum_i KL(p(x_i) || p(x'_i)),
    x' = argmax over the eps-ball of KL(p(x) || p(x')),

the KL summed over the classes, the gradient through both p(x) and p(x')
(reference: yaodongyu/TRADES `trades.py`). The inner maximisation is the
shared attack engine with the "kl" objective from a Gaussian start
(`AttackConfig(loss="kl", start="gaussian")`): K sign steps from x + 0.001 N(0, 1),
each projected to the box and [0, 1], on the model in inference mode with the
clean distribution computed once per batch. The KL has zero gradient at
x' = x, so the config refuses the KL objective without a random start.
"""
from __future__ import annotations

from typing import Any, ClassVar

import keras
import tensorflow as tf

from keras_robust._validation import check_fraction
from keras_robust.attacks.config import AttackConfig, resolve_step_size
from keras_robust.attacks.objectives import kl_divergence
from keras_robust.defenses.awp import AWP_PRESETS
from keras_robust.defenses.base import TrainingBatch, register_defense, replica_scale
from keras_robust.defenses.paired import PairedModel, batch_mean

# The authors' L2 attack: SGD on delta with learning rate 2 eps / K (`trades.py`).
L2_SPAN = 2.0


def _kl_attack(**fields: Any) -> AttackConfig:
    return AttackConfig(loss="kl", start="gaussian", **fields)


PRESETS: dict[str, dict[str, Any]] = {
    # The library's default: the 8/255 budget with steps of 2/255, beta 6.
    "trades": dict(beta=6.0, attack=_kl_attack(epsilon=8 / 255, step_size=2 / 255, steps=10)),
    # The authors' CIFAR-10 script (`train_trades_cifar10.py`).
    "trades-cifar10": dict(beta=6.0, attack=_kl_attack(epsilon=0.031, step_size=0.007, steps=10)),
    # The L2 variant of `trades.py` (normalised-gradient steps of 2 eps / K) at the usual 0.5.
    "trades-l2": dict(beta=6.0, attack=_kl_attack(norm="l2", epsilon=0.5, steps=10)),
    # TRADES-AWP (csdongxian/AWP `trades_AWP/train_trades_cifar.py`): gamma 0.005 after 10 epochs.
    "trades-awp": dict(beta=6.0, attack=_kl_attack(epsilon=8 / 255, step_size=2 / 255, steps=10),
                       weight_perturbation=AWP_PRESETS["trades-awp"]),
}


@register_defense("trades")
@keras.saving.register_keras_serializable(package="keras_robust")
class TRADESModel(PairedModel):
    """TRADES: clean cross-entropy + beta * KL(p(x) || p(x')), x' the KL's own attack.

    Each step attacks the batch with the KL objective (`attack`: the engine's
    sign steps from a Gaussian start, in inference mode), runs x and x' through
    the backbone in two training-mode passes (`PairedModel`), and minimises
    the compiled loss on the clean half (cross-entropy by default) plus beta
    times the batch mean of KL(p(x) || p(x')), with the gradient through both
    distributions. `beta` trades clean accuracy (low) for robustness (high).
    The metrics are the clean half's. The default attack is the "trades"
    preset's: 8/255, 10 steps of 2/255, the KL from a Gaussian start.

    Differences from the authors' `trades.py`, all documented in the design
    notes: the clean pass runs once (the authors run x through the model a
    second time for the KL's target, which in training mode gives the same
    distribution and updates the BatchNorm moving averages once more); the
    L2 attack projects to the ball then to [0, 1] (theirs clamps, then
    renormalises) and keeps a zero gradient at zero (theirs draws a random
    direction).

    Args:
        backbone: a Keras model mapping [0, 1] images to logits.
        beta: the KL weight (the authors' script: 6; their function: 1).
        **kwargs: `PairedModel`'s `clean_batchnorm` ("update": the
            authors'), and `PGDATModel`'s and `RobustModel`'s: `attack` (an
            `AttackConfig`; default this class's `default_attack`, the
            library's preset), the attack fields by keyword (`epsilon`,
            `steps`, ... replace its fields), `seed`, `weight_perturbation`.

    Example:

    ```python
    backbone = keras_robust.backbones.small_cnn(num_classes=10)
    model = keras_robust.TRADESModel.from_preset("trades", backbone)          # beta 6, 8/255
    model = keras_robust.TRADESModel(backbone, beta=1.0, steps=3, step_size=3 / 255)
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), metrics=["accuracy"])
    model.fit(train_ds, epochs=5)
    ```
    """

    presets = PRESETS
    default_attack: ClassVar[AttackConfig] = PRESETS["trades"]["attack"]
    loss_half: ClassVar[str] = "clean"

    def __init__(self, backbone: keras.Model, beta: float = 6.0, **kwargs: Any):
        super().__init__(backbone, **kwargs)
        self.beta = check_fraction(beta, "beta", 0.0, float("inf"))

    @classmethod
    def default_step_size(cls, attack: AttackConfig) -> float | None:
        """The authors' L2 step, 2 eps / K; L-inf steps must be given (the presets set them)."""
        if attack.norm == "l2":
            return float(resolve_step_size(attack.epsilon, attack.steps, span=L2_SPAN))
        return None

    def training_loss(self, batch: TrainingBatch, y_pred: tf.Tensor) -> tf.Tensor:
        cross_entropy = super().training_loss(batch, y_pred)  # the compiled loss, clean half
        pair = self.paired_logits(batch, y_pred)
        kl = kl_divergence(tf.nn.softmax(pair.clean), pair.adversarial)
        return cross_entropy + replica_scale(self.beta * batch_mean(kl, pair.weight))

    def get_config(self) -> dict:
        config = super().get_config()
        config["beta"] = self.beta
        return config
