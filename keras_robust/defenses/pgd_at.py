"""PGD adversarial training (Madry et al. 2018), the baseline of every paper here."""
from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from keras_robust._validation import (
    check_choice,
    check_epsilon,
    check_positive,
    check_positive_int,
)
from keras_robust.attacks._common import NORMS
from keras_robust.attacks._engine import iterative_attack
from keras_robust.attacks.objectives import OBJECTIVES
from keras_robust.attacks.targets import TARGET_MODES
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
        seed: see `RobustModel`.
        **kwargs: passed to `RobustModel`.

    Example:

    ```python
    backbone = keras_robust.backbones.small_cnn(num_classes=10)
    model = keras_robust.PGDATModel(backbone, epsilon=8 / 255, step_size=2 / 255, steps=7)
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), metrics=["accuracy"])
    model.fit(train_ds, epochs=100)
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
        **kwargs: Any,
    ):
        super().__init__(backbone, seed=seed, **kwargs)
        self.norm = check_choice(norm, NORMS, "norm")
        self.epsilon = float(check_epsilon(epsilon, maximum=1.0 if norm == "linf" else None))
        self.step_size = check_positive(step_size, "step_size")
        self.steps = check_positive_int(steps, "steps")
        self.random_start = bool(random_start)
        self.attack_loss = check_choice(loss, OBJECTIVES, "loss")
        self.target = None if target in (None, "none") else check_choice(target, TARGET_MODES, "target")

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
                "start", see `keras_robust.attacks._engine.iterative_attack`).
        """
        return iterative_attack(
            self.attack_logits, x, y, epsilon=self.epsilon, step_size=self.step_size,
            steps=self.steps, norm=self.norm, loss=self.attack_loss,
            target=self.target if isinstance(target, str) and target == "default" else target,
            random_start=self.random_start, seed=self.step_seed(1), target_source=target_source,
        )

    def training_batch(self, x, y, sample_weight) -> TrainingBatch:
        return TrainingBatch(self.adversarial_examples(x, y).x_adv, y, sample_weight)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            epsilon=self.epsilon, step_size=self.step_size, steps=self.steps,
            random_start=self.random_start, norm=self.norm, loss=self.attack_loss,
            target=self.target,
        )
        return config
