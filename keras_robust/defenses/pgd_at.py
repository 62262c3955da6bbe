"""PGD adversarial training (Madry et al. 2018), the baseline of every paper here."""
from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from keras_robust.attacks.config import AttackConfig
from keras_robust.attacks.engine import run_attack
from keras_robust.defenses.base import RobustModel, TrainingBatch


@keras.saving.register_keras_serializable(package="keras_robust")
class PGDATModel(RobustModel):
    """Trains on PGD adversarial examples only (the inner max of Madry's min-max).

    Each step replaces the batch by its PGD attack against the current weights
    (BatchNorm in inference mode), then fits it. The attack is configurable
    enough to express the one-step baselines of the BAT paper: R-FGSM is
    `steps=1, step_size=epsilon`; targeted variants set `target`.

    Args:
        backbone: a Keras model mapping [0, 1] images to logits.
        epsilon: L-inf (or L2) budget on the [0, 1] scale.
        step_size: PGD step size.
        steps: PGD steps per training step.
        random_start: start each attack at a random point of the ball.
        norm: "linf" or "l2".
        loss: attack objective: "ce", "cw", "dlr" or "logit".
        target: None (untargeted), "mc", "ll" or "random".
        attack: an `AttackConfig` (or its `get_config()` dict) to use instead
            of `epsilon`, `step_size`, `steps`, `random_start`, `norm`, `loss`
            and `target`; held as `model.attack` and saved in `get_config()`.
        seed: see `RobustModel`.
        **kwargs: passed to `RobustModel`.

    Example:

    ```python
    backbone = keras_robust.backbones.small_cnn(num_classes=10)
    model = keras_robust.PGDATModel(backbone, epsilon=8 / 255, step_size=2 / 255, steps=7)
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), metrics=["accuracy"])
    model.fit(train_ds, epochs=100)
    ```

    The same attack as one value:

    ```python
    attack = keras_robust.attacks.AttackConfig(epsilon=8 / 255, step_size=2 / 255, steps=7)
    model = keras_robust.PGDATModel(backbone, attack=attack)
    ```
    """

    def __init__(
        self,
        backbone: keras.Model,
        epsilon: float = 8 / 255,
        step_size: float = 2 / 255,
        steps: int = 7,
        random_start: bool = True,
        norm: str = "linf",
        loss: str = "ce",
        target: str | None = None,
        seed: int | None = None,
        attack: AttackConfig | dict | None = None,
        **kwargs: Any,
    ):
        super().__init__(backbone, seed=seed, **kwargs)
        if attack is None:
            attack = AttackConfig(
                norm=norm, epsilon=epsilon, step_size=step_size, steps=steps,
                random_start=random_start, loss=loss, target=target,
            )
        elif isinstance(attack, dict):
            attack = AttackConfig.from_config(attack)
        elif not isinstance(attack, AttackConfig):
            raise TypeError(
                f"`attack` must be an AttackConfig or its config dict, got {type(attack).__name__}.")
        if attack.epsilon is None or attack.step_size is None:
            raise ValueError(
                "A training attack needs a fixed budget and step: pass an AttackConfig with "
                f"`epsilon` and `step_size` set, got {attack}.")
        if callable(attack.loss):
            raise ValueError("A defence's attack needs a named `loss` (it is saved with the model).")
        self.attack = attack

    # The attack's settings under their former attribute names.
    epsilon = property(lambda self: self.attack.epsilon, doc="The attack's budget.")
    step_size = property(lambda self: self.attack.step_size, doc="The attack's step.")
    steps = property(lambda self: self.attack.steps, doc="The attack's steps.")
    random_start = property(lambda self: self.attack.random_start, doc="Random starts.")
    norm = property(lambda self: self.attack.norm, doc="The attack's norm.")
    attack_loss = property(lambda self: self.attack.loss, doc="The attack's objective.")
    target = property(lambda self: self.attack.target, doc="The attack's target mode.")

    def adversarial_examples(
        self, x: tf.Tensor, y: tf.Tensor, target: Any = "default", target_source: str = "clean"
    ):
        """Runs the training attack on a batch; returns the engine's `AttackResult`.

        Args:
            x: the clean images.
            y: label rows.
            target: the target ("default": the model's `target`), or target
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
