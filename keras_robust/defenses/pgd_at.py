"""PGD adversarial training (Madry et al. 2018), the baseline of every paper here."""
from __future__ import annotations

from typing import Any, ClassVar

import keras
import tensorflow as tf

from keras_robust.attacks.config import AttackConfig
from keras_robust.attacks.engine import run_attack
from keras_robust.defenses.awp import AWP_PRESETS
from keras_robust.defenses.base import UNSET, RobustModel, TrainingBatch, register_defense, resolve_attack


# The settings of Madry et al. (2018), Sec. 4 / Appendix: MNIST and CIFAR-10; and
# AT-AWP's (Wu et al. 2020, csdongxian/AWP `AT_AWP/train_cifar10.py`: PGD-10 of 2/255, gamma 0.01).
PRESETS: dict[str, dict[str, Any]] = {
    "madry": dict(attack=AttackConfig(epsilon=8 / 255, step_size=2 / 255, steps=7)),
    "madry-mnist": dict(attack=AttackConfig(epsilon=0.3, step_size=0.01, steps=40)),
    "at-awp": dict(attack=AttackConfig(epsilon=8 / 255, step_size=2 / 255, steps=10),
                   weight_perturbation=AWP_PRESETS["at-awp"]),
    # Single-step training, with the attack on the batch's BatchNorm statistics as the
    # references' model.train(). FGSM-RS (Wong et al. 2020, locuslab/fast_adversarial
    # `train_fgsm.py`): a uniform start in the ball, one step of 1.25 epsilon, projected.
    "fgsm-rs": dict(attack=AttackConfig(epsilon=8 / 255, rel_stepsize=1.25, steps=1),
                    attack_batchnorm="batch"),
    # N-FGSM (de Jorge et al. 2022, pdejorge/N-FGSM `train.py`): noise uniform in
    # 2 epsilon, one step of epsilon, clipped to [0, 1] only (up to 3 epsilon).
    "n-fgsm": dict(attack=AttackConfig(epsilon=8 / 255, rel_stepsize=1.0, steps=1,
                                       start_radius=2.0, project=False),
                   attack_batchnorm="batch"),
}


@register_defense("pgd_at")
@keras.saving.register_keras_serializable(package="keras_robust")
class PGDATModel(RobustModel):
    """Trains on PGD adversarial examples only (the inner max of Madry's min-max).

    Each step replaces the batch by its PGD attack against the current weights
    (BatchNorm in inference mode), then fits it. The attack is one
    `AttackConfig`, held as `model.attack` and saved in `get_config()`; it is
    general enough to express the one-step baselines of the BAT paper
    (R-FGSM is `steps=1, step_size=epsilon`; targeted variants set `target`).
    The presets are Madry's settings: "madry" (CIFAR-10, the default) and
    "madry-mnist"; "at-awp", PGD-10 with adversarial weight perturbation
    (gamma 0.01, `keras_robust.defenses.AWPConfig`) as in the AWP authors'
    `AT_AWP/train_cifar10.py`; and single-step training: "fgsm-rs" (Wong et
    al. 2020: a uniform start in the ball, one step of 1.25 epsilon) and
    "n-fgsm" (de Jorge et al. 2022: noise uniform in 2 epsilon, one step of
    epsilon, no projection back to the ball), both attacking on the batch's
    BatchNorm statistics as their references do. A step given as a multiple
    of the budget (`rel_stepsize`) is fixed when the model is built, so
    `from_preset("n-fgsm", backbone, epsilon=16 / 255)` steps 16/255.

    Args:
        backbone: a Keras model mapping [0, 1] images to logits.
        epsilon: L-inf (or L2) budget on the [0, 1] scale.
        step_size: PGD step size.
        steps: PGD steps per training step.
        random_start: start each attack at a random point of the ball.
        norm: "linf" or "l2".
        loss: attack objective: "ce", "cw", "dlr" or "logit".
        target: None (untargeted), "mc", "ll" or "random".
        seed: see `RobustModel`.
        attack: an `AttackConfig` (or its `get_config()` dict); default the
            "madry" preset's (8/255, steps of 2/255, 7 steps). The keywords
            above, when given, replace its fields.
        **kwargs: passed to `RobustModel`.

    Example:

    ```python
    backbone = keras_robust.backbones.small_cnn(num_classes=10)
    model = keras_robust.PGDATModel.from_preset("madry", backbone)   # 8/255, 7 steps of 2/255
    model = keras_robust.PGDATModel.from_preset("n-fgsm", backbone)  # single-step N-FGSM
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), metrics=["accuracy"])
    model.fit(train_ds, epochs=100)
    ```

    The same attack as one value, or by keyword:

    ```python
    attack = keras_robust.attacks.AttackConfig(epsilon=8 / 255, step_size=2 / 255, steps=7)
    model = keras_robust.PGDATModel(backbone, attack=attack)
    model = keras_robust.PGDATModel(backbone, epsilon=8 / 255, step_size=2 / 255, steps=7)
    ```
    """

    presets = PRESETS
    default_attack: ClassVar[AttackConfig] = PRESETS["madry"]["attack"]

    def __init__(
        self,
        backbone: keras.Model,
        epsilon: float | None = None,
        step_size: float | None = None,
        steps: int | None = None,
        random_start: bool | None = None,
        norm: str | None = None,
        loss: str | None = None,
        target: str | None = UNSET,
        seed: int | None = None,
        attack: AttackConfig | dict | None = None,
        **kwargs: Any,
    ):
        super().__init__(backbone, seed=seed, **kwargs)
        attack = resolve_attack(
            attack, self.default_attack, norm=norm, epsilon=epsilon, step_size=step_size,
            steps=steps, random_start=random_start, loss=loss, target=target)
        if attack.step_size is None and attack.epsilon is not None:
            step = (attack.rel_stepsize * attack.epsilon if attack.rel_stepsize is not None
                    else self.default_step_size(attack))
            attack = attack.replace(step_size=step)
        if attack.epsilon is None or attack.step_size is None:
            raise ValueError(
                "A training attack needs a fixed budget and step: pass an AttackConfig with "
                f"`epsilon` and `step_size` set, got {attack}.")
        if callable(attack.loss):
            raise ValueError("A defence's attack needs a named `loss` (it is saved with the model).")
        self.attack = attack

    @classmethod
    def default_step_size(cls, attack: AttackConfig) -> float | None:
        """The step of an attack given without one: None here (PGD-AT needs it set).

        A defence whose paper ties the step to the budget (BAT: epsilon /
        steps; AFS: epsilon / 4) overrides this; its default attack and
        presets then leave `step_size` unset, so that a new `epsilon` or
        `steps` moves the step with it.
        """
        return None

    def adversarial_examples(
        self, x: tf.Tensor, y: tf.Tensor, target: Any = "default", target_source: str = "clean"
    ):
        """Runs the training attack on a batch; returns the engine's `AttackResult`.

        Args:
            x: the clean images.
            y: label rows.
            target: the target ("default": the attack's `target`), or target
                classes chosen by the caller.
            target_source: where "mc"/"ll" targets are chosen ("clean" or
                "start", see `keras_robust.attacks.AttackConfig`).
        """
        config, labels = self.attack, None
        if not isinstance(target, str):
            labels = target
            config = config.replace(target=None)
        elif target != "default":
            config = config.replace(target=None if target == "none" else target)
        if target_source != config.target_source:
            config = config.replace(target_source=target_source)
        return run_attack(self.attack_logits, x, y, config, seed=self.step_seed(1),
                          target=labels)

    def training_batch(self, x, y, sample_weight) -> TrainingBatch:
        return TrainingBatch(self.adversarial_examples(x, y).x_adv, y, sample_weight)

    def get_config(self) -> dict:
        config = super().get_config()
        config["attack"] = self.attack.get_config()
        return config
