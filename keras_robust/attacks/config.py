"""`AttackConfig`: the settings of the iterative first-order attack, in one place.

PGD, FGSM, MI-FGSM (with DI and TI), the training attacks of the defences and
the eq. 6 attack of the data-centric paper are one loop
(`keras_robust.attacks.engine.run_attack`) under different settings; this
frozen dataclass holds those settings, checks them once, and serialises them.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import keras
import numpy as np

from keras_robust._validation import (
    check_bool,
    check_choice,
    check_epsilon,
    check_fraction,
    check_positive,
    check_positive_int,
)
from keras_robust.attacks.common import NORMS
from keras_robust.attacks.objectives import OBJECTIVES
from keras_robust.attacks.targets import TARGET_MODES

TARGET_SOURCES = ("clean", "start")

# The fields that are numbers of the call, not of the graph: compiled attacks
# take them as tensors, so changing them does not retrace.
PER_CALL_FIELDS = ("epsilon", "step_size")


@keras.saving.register_keras_serializable(package="keras_robust")
@dataclasses.dataclass(frozen=True)
class AttackConfig:
    """The settings of an iterative first-order attack (PGD, FGSM, MI-FGSM, eq. 6).

    One frozen, validated, serialisable value: the public attacks build one
    from their keywords, defences hold one as `attack` (and save it in their
    `get_config()`), and `keras_robust.attacks.engine.run_attack` runs it.

    Args:
        norm: "linf" or "l2" (the ball and the step).
        epsilon: the budget on the [0, 1] image scale (in (0, 1] for L-inf,
            > 0 for L2), or None when every call passes it as a tensor (for
            per-sample budgets).
        step_size: the step, or None for the PGD default `2.5 * epsilon / steps`.
        steps: number of ascent steps (an int >= 1).
        loss: the objective: "ce", "cw", "dlr" or "logit" (see
            `keras_robust.attacks.objectives`), or a callable
            `(logits, y, target) -> [B]` to maximise (not serialisable).
        target: None (untargeted), "mc" (most confusing class), "ll" (least
            likely class) or "random"; target labels are passed per call.
        target_source: where "mc"/"ll" targets are chosen: "clean" (at x, one
            extra forward pass) or "start" (at the first iterate).
        random_start: start from a random point of the ball.
        restarts: runs of the attack; per sample the worst case is kept.
        momentum: the MI-FGSM decay mu (>= 0), or None for plain steps.
        input_diversity: probability of the DI resize-and-pad per step (0 = off).
        smoothing_kernel: odd size of the TI Gaussian kernel (0 = off).
        early_stop: keep each sample's first adversarial iterate and attack
            only the samples still standing (evaluation only; not with input
            diversity).

    Example:

    >>> config = AttackConfig(epsilon=8 / 255, step_size=2 / 255, steps=10, restarts=2)
    >>> config.replace(loss="cw").loss, config.steps
    ('cw', 10)
    >>> AttackConfig.from_config(config.get_config()) == config
    True
    >>> try:
    ...     AttackConfig(steps=0)
    ... except ValueError as error:
    ...     print(error)
    `steps` must be an integer >= 1, got 0.
    """

    norm: str = "linf"
    epsilon: float | None = 8 / 255
    step_size: float | None = None
    steps: int = 10
    loss: str | Callable = "ce"
    target: str | None = None
    target_source: str = "clean"
    random_start: bool = True
    restarts: int = 1
    momentum: float | None = None
    input_diversity: float = 0.0
    smoothing_kernel: int = 0
    early_stop: bool = False

    def __post_init__(self) -> None:
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731
        check_choice(self.norm, NORMS, "norm")
        if self.epsilon is not None:
            check_epsilon(self.epsilon, maximum=1.0 if self.norm == "linf" else None)
            set_("epsilon", float(self.epsilon))
        if self.step_size is not None:
            set_("step_size", check_positive(self.step_size, "step_size"))
        set_("steps", check_positive_int(self.steps, "steps"))
        set_("restarts", check_positive_int(self.restarts, "restarts"))
        if not callable(self.loss):
            check_choice(self.loss, OBJECTIVES, "loss")
        if self.target in ("none",):
            set_("target", None)
        if self.target is not None:
            if not isinstance(self.target, str):
                raise TypeError(
                    "`AttackConfig.target` is a mode (None, " + ", ".join(map(repr, TARGET_MODES))
                    + f"), got {type(self.target).__name__}; pass target labels to the attack "
                    "call instead (`run_attack(..., target=labels)`).")
            check_choice(self.target, TARGET_MODES, "target")
        check_choice(self.target_source, TARGET_SOURCES, "target_source")
        set_("random_start", bool(self.random_start))
        if self.momentum is not None:
            set_("momentum", check_fraction(self.momentum, "momentum", 0.0, float("inf")))
        set_("input_diversity", check_fraction(self.input_diversity, "input_diversity"))
        kernel = self.smoothing_kernel
        if isinstance(kernel, bool) or not isinstance(kernel, (int, np.integer)) or kernel < 0 or (
                kernel and kernel % 2 == 0):
            raise ValueError(
                f"`smoothing_kernel` must be 0 (off) or a positive odd size, got {kernel!r}.")
        set_("smoothing_kernel", int(kernel))
        set_("early_stop", check_bool(self.early_stop, "early_stop"))
        if self.early_stop and self.input_diversity > 0:
            raise ValueError(
                "early_stop judges success on the logits of each step, which input diversity "
                "transforms; use early_stop=False with input_diversity > 0.")

    def replace(self, **changes: Any) -> "AttackConfig":
        """A copy with `changes` applied (and validated again).

        Args:
            **changes: field names and their new values.

        Returns:
            A new `AttackConfig`.

        Example:

        >>> AttackConfig(steps=10).replace(steps=20).steps
        20
        """
        return dataclasses.replace(self, **changes)

    def get_config(self) -> dict:
        """The settings as a JSON-safe dict (`from_config` rebuilds the config).

        Returns:
            A dict of field names to numbers, strings, booleans and None.

        Raises:
            ValueError: when `loss` is a callable, which cannot be serialised.

        Example:

        >>> AttackConfig(steps=3).get_config()["steps"]
        3
        """
        if callable(self.loss):
            raise ValueError(
                "An AttackConfig with a callable `loss` cannot be serialised; use one of "
                f"{OBJECTIVES} to save it.")
        return dataclasses.asdict(self)

    @classmethod
    def from_config(cls, config: dict) -> "AttackConfig":
        """Rebuilds a config from `get_config()`'s dict.

        Args:
            config: a dict of field names (unknown names raise a `TypeError`).

        Returns:
            An `AttackConfig`.

        Example:

        >>> AttackConfig.from_config({"epsilon": 0.5, "norm": "l2"}).norm
        'l2'
        """
        return cls(**config)

    def graph_key(self) -> "AttackConfig":
        """The config without its per-call numbers (epsilon, step size): what shapes the graph.

        Compiled attacks keep one `tf.function` per graph key, and pass
        epsilon and the step size as tensors.

        Returns:
            A copy with `epsilon` and `step_size` set to None.

        Example:

        >>> AttackConfig(epsilon=0.1).graph_key() == AttackConfig(epsilon=0.2).graph_key()
        True
        """
        return dataclasses.replace(self, **{name: None for name in PER_CALL_FIELDS})


__all__ = ["AttackConfig"]
