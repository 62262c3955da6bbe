"""The attacks' settings as named values: one frozen, validated, serialisable config per attack.

PGD, FGSM, MI-FGSM (with DI and TI), the training attacks of the defences and
the eq. 6 attack of the data-centric paper are one loop
(`keras_robust.attacks.engine.run_attack`) under different settings: that is
`AttackConfig`. APGD (`APGDConfig`), AutoAttack's APGD-T
(`APGDTargetedConfig`), FAB (`FABConfig`), CW-L2 (`CWConfig`) and Square
(`SquareConfig`) have their own. Each holds its attack's defaults (the one
place those numbers are written), checks its fields once, serialises with
`get_config` / `from_config` (and `keras.saving`), and gives its compiled body
a `graph_key()`: the config without its per-call numbers (the budget).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, ClassVar

import keras
import numpy as np
import tensorflow as tf

from keras_robust._validation import (
    check_bool,
    check_choice,
    check_epsilon,
    check_fraction,
    check_positive,
    check_positive_int,
)
from keras_robust.attacks.common import NORMS, refuse_diversity_with_early_stop
from keras_robust.attacks.objectives import OBJECTIVES
from keras_robust.attacks.targets import TARGET_MODES

TARGET_SOURCES = ("clean", "start")
STARTS = ("uniform", "gaussian")
APGD_LOSSES = ("ce", "dlr")
APGD_RULES = ("reference", "paper")
SQUARE_LOSSES = ("margin", "ce")
CW_FALLBACKS = ("input", "misclassified")

# The fields that are numbers of the call, not of the graph: compiled attacks
# take them as tensors, so changing them does not retrace.
PER_CALL_FIELDS = ("epsilon", "step_size", "rel_stepsize")


class ConfigBase:
    """What every attack config shares: `replace`, `get_config`, `from_config`, `graph_key`.

    Subclasses are frozen dataclasses; `per_call_fields` names the fields the
    compiled attack takes per call (so they stay out of the graph key).

    Example:

    >>> isinstance(SquareConfig(), ConfigBase), SquareConfig(epsilon=0.1).graph_key().epsilon
    (True, None)
    """

    per_call_fields: ClassVar[tuple[str, ...]] = ("epsilon",)

    def replace(self, **changes: Any) -> Any:
        """A copy with `changes` applied (and validated again).

        Args:
            **changes: field names and their new values.

        Returns:
            A new config of the same class.

        Example:

        >>> AttackConfig(steps=10).replace(steps=20).steps
        20
        """
        return dataclasses.replace(self, **changes)

    def get_config(self) -> dict:
        """The settings as a JSON-safe dict (`from_config` rebuilds the config).

        Returns:
            A dict of field names to numbers, strings, booleans and None.

        Example:

        >>> AttackConfig(steps=3).get_config()["steps"]
        3
        """
        return dataclasses.asdict(self)

    @classmethod
    def from_config(cls, config: dict) -> Any:
        """Rebuilds a config from `get_config()`'s dict.

        Args:
            config: a dict of field names (unknown names raise a `TypeError`).

        Returns:
            A config of this class.

        Example:

        >>> AttackConfig.from_config({"epsilon": 0.5, "norm": "l2"}).norm
        'l2'
        """
        if not isinstance(config, dict):
            raise TypeError(
                f"A {cls.__name__} config must be a dict, got {type(config).__name__}.")
        fields = [field.name for field in dataclasses.fields(cls)]
        unknown = sorted(set(config) - set(fields))
        if unknown:
            raise TypeError(f"Unknown {cls.__name__} keys {unknown}; expected some of {fields}.")
        return cls(**config)

    def graph_key(self) -> Any:
        """The config without its per-call numbers (such as epsilon): what shapes the graph.

        Compiled attacks keep one `tf.function` per graph key, and take the
        per-call numbers as tensors.

        Returns:
            A copy with the per-call fields set to None.

        Example:

        >>> AttackConfig(epsilon=0.1).graph_key() == AttackConfig(epsilon=0.2).graph_key()
        True
        """
        return dataclasses.replace(self, **{name: None for name in self.per_call_fields})


def _set(config: Any, name: str, value: Any) -> None:
    object.__setattr__(config, name, value)


def _check_budget(config: Any) -> None:
    """Checks a config's `norm` and, when given, its `epsilon` (stored as float)."""
    check_choice(config.norm, NORMS, "norm")
    if config.epsilon is not None:
        check_epsilon(config.epsilon, maximum=1.0 if config.norm == "linf" else None)
        _set(config, "epsilon", float(config.epsilon))


def _check_target_mode(target: Any, owner: str) -> None:
    """A config's `target` is a mode (None or one of TARGET_MODES); labels go to the call."""
    if target is not None and not isinstance(target, str):
        raise TypeError(
            f"`{owner}.target` is a mode (None, " + ", ".join(map(repr, TARGET_MODES))
            + f"), got {type(target).__name__}; pass target labels to the attack call instead.")
    if target is not None:
        check_choice(target, TARGET_MODES, "target")


def resolve_step_size(epsilon: Any, steps: int, step_size: Any = None,
                      rel_stepsize: float | None = None, span: float = 2.5) -> Any:
    """The step of an iterative attack: the absolute `step_size`, else `rel_stepsize * epsilon`,
    else the default `span * epsilon / steps` (as a float32 tensor).

    The one place the step is derived from the budget (foolbox's `rel_stepsize`
    is the model: the step as a multiple of epsilon, the absolute step an
    override). The default rule spreads `span` budgets over the steps: 2.5
    for PGD (Madry et al.), 1.0 for MI-FGSM (Dong et al.: `epsilon / steps`).
    It divides by `steps` rather than multiplying by `rel_stepsize=1 / steps`
    because the two differ in the last bit of float32 for about a quarter of
    the budgets k/255 and step counts up to 100, and the division is what
    these attacks have always computed.

    Args:
        epsilon: the budget (a number or a [B] tensor).
        steps: the number of steps.
        step_size: an absolute step, or None.
        rel_stepsize: the step as a multiple of epsilon, or None (FGSM's
            step is `rel_stepsize=1.0`, epsilon itself).
        span: the default rule's number of budgets covered by all the steps
            together, used when both `step_size` and `rel_stepsize` are None.

    Returns:
        `step_size` as given, or the derived step (float32).

    Example:

    >>> round(float(resolve_step_size(0.1, 10, rel_stepsize=0.25)), 6)
    0.025
    >>> round(float(resolve_step_size(0.1, 10)), 6)
    0.025
    >>> round(float(resolve_step_size(0.1, 10, span=1.0)), 6)  # MI-FGSM's epsilon / steps
    0.01
    """
    if step_size is not None:
        return step_size
    if rel_stepsize is not None:
        return rel_stepsize * tf.cast(epsilon, tf.float32)
    return span * tf.cast(epsilon, tf.float32) / steps


@keras.saving.register_keras_serializable(package="keras_robust")
@dataclasses.dataclass(frozen=True)
class AttackConfig(ConfigBase):
    """The settings of an iterative first-order attack (PGD, FGSM, MI-FGSM, eq. 6).

    One frozen, validated, serialisable value: the public attacks build one
    from their keywords, defences hold one as `attack` (and save it in their
    `get_config()`), and `keras_robust.attacks.engine.run_attack` runs it.

    Args:
        norm: "linf" or "l2" (the ball and the step).
        epsilon: the budget on the [0, 1] image scale (in (0, 1] for L-inf,
            > 0 for L2), or None when every call passes it as a tensor (for
            per-sample budgets).
        step_size: the absolute step (it overrides `rel_stepsize`), or None
            for `rel_stepsize * epsilon`, or, with both None, the PGD default
            `2.5 * epsilon / steps` (see `resolve_step_size`).
        steps: number of ascent steps (an int >= 1).
        loss: the objective: "ce", "cw", "dlr", "logit" or "kl" (TRADES:
            KL(p(x) || p(x')) from the model's own clean prediction; see
            `keras_robust.attacks.objectives`), or a callable
            `(logits, y, target) -> [B]` to maximise (not serialisable).
        target: None (untargeted), "mc" (most confusing class), "ll" (least
            likely class) or "random"; target labels are passed per call.
        target_source: where "mc"/"ll" targets are chosen: "clean" (at x, one
            extra forward pass) or "start" (at the first iterate).
        random_start: start from a random point instead of x itself.
        start: the random start's law: "uniform" (a uniform point of the
            ball: L-inf uniform in the box, L2 a uniform direction at a
            uniform radius; Madry's PGD) or "gaussian" (x + `start_scale` *
            N(0, 1), not clipped before the first gradient: the start of
            TRADES' and MART's attacks).
        start_scale: the standard deviation of the "gaussian" start (0.001,
            the TRADES and MART authors' value).
        start_radius: the radius of the "uniform" start in budgets (1.0: the
            ball itself; N-FGSM draws its noise in 2 epsilon).
        project: project each iterate back onto the ball (True), or only
            clip it to [0, 1] (False: N-FGSM's training perturbation, which
            reaches `start_radius` * epsilon + `steps` * step). An attack
            that leaves the ball measures nothing: the public attacks and the
            report refuse it; it is a setting of training attacks.
        restarts: runs of the attack; per sample the worst case is kept.
        momentum: the MI-FGSM decay mu (>= 0), or None for plain steps.
        input_diversity: probability of the DI resize-and-pad per step (0 = off).
        smoothing_kernel: odd size of the TI Gaussian kernel (0 = off).
        early_stop: keep each sample's first adversarial iterate and attack
            only the samples still standing (evaluation only; not with input
            diversity).
        rel_stepsize: the step as a multiple of epsilon (foolbox's
            `rel_stepsize`), used when `step_size` is None; None for the PGD
            default 2.5 / steps.

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
    start: str = "uniform"
    start_scale: float = 0.001
    start_radius: float = 1.0
    project: bool = True
    restarts: int = 1
    momentum: float | None = None
    input_diversity: float = 0.0
    smoothing_kernel: int = 0
    early_stop: bool = False
    rel_stepsize: float | None = None

    per_call_fields: ClassVar[tuple[str, ...]] = PER_CALL_FIELDS

    def __post_init__(self) -> None:
        set_ = lambda name, value: _set(self, name, value)  # noqa: E731
        _check_budget(self)
        if self.step_size is not None:
            set_("step_size", check_positive(self.step_size, "step_size"))
        if self.rel_stepsize is not None:
            set_("rel_stepsize", check_positive(self.rel_stepsize, "rel_stepsize"))
        set_("steps", check_positive_int(self.steps, "steps"))
        set_("restarts", check_positive_int(self.restarts, "restarts"))
        if not callable(self.loss):
            check_choice(self.loss, OBJECTIVES, "loss")
        if self.target in ("none",):
            set_("target", None)
        _check_target_mode(self.target, "AttackConfig")
        check_choice(self.target_source, TARGET_SOURCES, "target_source")
        set_("random_start", bool(self.random_start))
        check_choice(self.start, STARTS, "start")
        set_("start_scale", check_positive(self.start_scale, "start_scale"))
        set_("start_radius", check_positive(self.start_radius, "start_radius"))
        set_("project", check_bool(self.project, "project"))
        _check_unprojected_start(self)
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
        refuse_diversity_with_early_stop(self.input_diversity, self.early_stop)
        if self.loss == "kl":
            _check_kl(self)

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

    def step_for(self, epsilon: Any = None) -> Any:
        """This config's step for the budget `epsilon` (default: its own), by `resolve_step_size`.

        Args:
            epsilon: the budget of the call, or None for `self.epsilon`.

        Returns:
            The absolute step (a number, or a float32 tensor when derived).

        Example:

        >>> round(float(AttackConfig(epsilon=0.1, rel_stepsize=0.25).step_for()), 6)
        0.025
        """
        return resolve_step_size(self.epsilon if epsilon is None else epsilon, self.steps,
                                 self.step_size, self.rel_stepsize)


def _check_unprojected_start(config: "AttackConfig") -> None:
    """Refuses a `start_radius` the start does not use, and an unprojected evaluation."""
    if config.start_radius != 1.0 and (config.start != "uniform" or not config.random_start):
        raise ValueError(
            f"`start_radius` sets the radius of the uniform random start, got start_radius="
            f"{config.start_radius} with random_start={config.random_start}, start="
            f"{config.start!r}; use random_start=True and start='uniform' (the gaussian "
            "start's size is `start_scale`).")
    if not config.project and (config.early_stop or config.restarts > 1):
        raise ValueError(
            "project=False lets the perturbation leave the epsilon ball (N-FGSM's training "
            "attack), so it cannot judge robustness: early_stop and restarts > 1 are "
            "evaluation settings; use project=True to evaluate.")


def _check_kl(config: "AttackConfig") -> None:
    """Refuses the settings under which the KL objective cannot work (see `AttackConfig`)."""
    if not config.random_start:
        raise ValueError(
            "The KL objective (loss='kl', TRADES) has zero gradient at x' = x, so an attack "
            "started at x never moves and TRADES silently becomes clean training; set "
            "random_start=True (start='gaussian', as the TRADES authors).")
    if config.target is not None:
        raise ValueError(
            f"The KL objective is untargeted (it pushes p(x') away from p(x)), got "
            f"target={config.target!r}; use target=None.")
    if config.early_stop or config.restarts > 1:
        raise ValueError(
            "The KL objective is a training attack: early_stop and restarts > 1 judge success "
            "by the label, which KL does not aim at; use early_stop=False and restarts=1 (or "
            "loss='ce' to evaluate).")


def _check_apgd(config: Any) -> None:
    _check_budget(config)
    _set(config, "steps", check_positive_int(config.steps, "steps"))
    _set(config, "restarts", check_positive_int(config.restarts, "restarts"))
    check_choice(config.loss, APGD_LOSSES, "loss")
    _set(config, "rho", check_fraction(config.rho, "rho"))
    check_choice(config.rule, APGD_RULES, "rule")
    _set(config, "eot_iter", check_positive_int(config.eot_iter, "eot_iter"))
    _set(config, "early_stop", check_bool(config.early_stop, "early_stop"))


@keras.saving.register_keras_serializable(package="keras_robust")
@dataclasses.dataclass(frozen=True)
class APGDConfig(ConfigBase):
    """The settings of Auto-PGD (`keras_robust.attacks.apgd`; Croce & Hein 2020).

    Args:
        norm: "linf" or "l2".
        epsilon: the budget on the [0, 1] scale, or None when the call passes it.
        steps: iterations per restart (AutoAttack uses 100).
        loss: "ce" (APGD-CE) or "dlr" (APGD-DLR).
        target: None (untargeted) or a mode, "mc", "ll" or "random" (target
            labels are passed to the call).
        restarts: random restarts.
        rho: the checkpoint threshold (0.75 in AutoAttack).
        rule: "reference" (the authors' code) or "paper" (see `apgd`).
        eot_iter: gradients averaged per iterate (1: the deterministic attack).
        early_stop: each sample stops at its first adversarial iterate.

    Example:

    >>> config = APGDConfig(epsilon=8 / 255, loss="dlr")
    >>> config.steps, config.rho, APGDConfig.from_config(config.get_config()) == config
    (100, 0.75, True)
    >>> try:
    ...     APGDConfig(rho=2.0)
    ... except ValueError as error:
    ...     print(error)
    `rho` must be in [0.0, 1.0], got 2.0.
    """

    norm: str = "linf"
    epsilon: float | None = None
    steps: int = 100
    loss: str = "ce"
    target: str | None = None
    restarts: int = 1
    rho: float = 0.75
    rule: str = "reference"
    eot_iter: int = 1
    early_stop: bool = False

    def __post_init__(self) -> None:
        _check_apgd(self)
        _check_target_mode(self.target, "APGDConfig")


@keras.saving.register_keras_serializable(package="keras_robust")
@dataclasses.dataclass(frozen=True)
class APGDTargetedConfig(ConfigBase):
    """The settings of AutoAttack's APGD-T (`keras_robust.attacks.apgd_targeted`).

    Args:
        norm: "linf" or "l2".
        epsilon: the budget, or None when the call passes it.
        steps: iterations per target and restart.
        num_targets: how many of the most likely other classes to try (9 in
            AutoAttack's standard version).
        loss: "dlr" (the targeted DLR) or "ce".
        restarts: random restarts per target.
        rho: the checkpoint threshold.
        rule: "reference" or "paper" (see `apgd`).
        eot_iter: gradients averaged per iterate.
        early_stop: each sample stops at its first misclassified iterate.

    Example:

    >>> APGDTargetedConfig().num_targets, APGDTargetedConfig().loss
    (9, 'dlr')
    >>> try:
    ...     APGDTargetedConfig(num_targets=0)
    ... except ValueError as error:
    ...     print(error)
    `num_targets` must be an integer >= 1, got 0.
    """

    norm: str = "linf"
    epsilon: float | None = None
    steps: int = 100
    num_targets: int = 9
    loss: str = "dlr"
    restarts: int = 1
    rho: float = 0.75
    rule: str = "reference"
    eot_iter: int = 1
    early_stop: bool = False

    def __post_init__(self) -> None:
        _check_apgd(self)
        _set(self, "num_targets", check_positive_int(self.num_targets, "num_targets"))


@keras.saving.register_keras_serializable(package="keras_robust")
@dataclasses.dataclass(frozen=True)
class FABConfig(ConfigBase):
    """The settings of FAB and FAB-T (`keras_robust.attacks.fab`; Croce & Hein 2020).

    Args:
        norm: "linf" or "l2".
        epsilon: the budget, or None when the call passes it.
        targeted: FAB-T (toward each of the `num_targets` most likely other
            classes) or untargeted FAB.
        num_targets: target classes of FAB-T.
        steps: iterations per run.
        restarts: runs per target (later ones from a random start).
        alpha_max: the largest weight of the original image (0.1).
        eta: the overshoot, >= 1 (1.05).
        beta: the backward step, in (0, 1] (0.9).
        minimal: attack every correct image in every run (the smallest
            perturbation), not only those not yet broken within epsilon.

    Example:

    >>> FABConfig().steps, FABConfig().eta
    (100, 1.05)
    >>> try:
    ...     FABConfig(eta=0.5)
    ... except ValueError as error:
    ...     print(error)
    `eta` is FAB's overshoot and must be >= 1 (1.05 in AutoAttack), got 0.5.
    """

    norm: str = "linf"
    epsilon: float | None = None
    targeted: bool = True
    num_targets: int = 9
    steps: int = 100
    restarts: int = 1
    alpha_max: float = 0.1
    eta: float = 1.05
    beta: float = 0.9
    minimal: bool = False

    def __post_init__(self) -> None:
        _check_budget(self)
        _set(self, "targeted", check_bool(self.targeted, "targeted", "True (FAB-T) or False (FAB)"))
        _set(self, "num_targets", check_positive_int(self.num_targets, "num_targets"))
        _set(self, "steps", check_positive_int(self.steps, "steps"))
        _set(self, "restarts", check_positive_int(self.restarts, "restarts"))
        _set(self, "alpha_max", check_fraction(self.alpha_max, "alpha_max"))
        _set(self, "eta", check_positive(self.eta, "eta"))
        if self.eta < 1.0:
            raise ValueError(
                f"`eta` is FAB's overshoot and must be >= 1 (1.05 in AutoAttack), got {self.eta}.")
        _set(self, "beta", check_fraction(self.beta, "beta"))
        if self.beta <= 0.0:
            raise ValueError(f"`beta` must be in (0, 1] (0.9 in AutoAttack), got {self.beta}.")
        _set(self, "minimal", bool(self.minimal))


@keras.saving.register_keras_serializable(package="keras_robust")
@dataclasses.dataclass(frozen=True)
class CWConfig(ConfigBase):
    """The settings of CW-L2 (`keras_robust.attacks.cw_l2`; Carlini & Wagner 2017).

    The defaults are the library's short fixed-c attack (`cw_l2`'s "default"
    preset); `CW_PRESETS["carlini_wagner"]` holds the paper's.

    Args:
        confidence: the margin kappa >= 0 asked of an adversarial example.
        steps: Adam iterations per binary-search step.
        learning_rate: Adam's step.
        initial_const: the first trade-off constant c.
        binary_search_steps: rounds of the binary search on c.
        fallback: "misclassified" (return a misclassified point when none
            reached the confidence) or "input" (return the image).
        abort_early: C&W's early abort when the loss stops falling.
        target: None (untargeted) or a mode, "mc", "ll" or "random".

    Example:

    >>> CWConfig().steps, CWConfig(**CW_PRESETS["carlini_wagner"]).binary_search_steps
    (40, 9)
    >>> try:
    ...     CWConfig(confidence=-1.0)
    ... except ValueError as error:
    ...     print(error)
    `confidence` must be a finite number >= 0, got -1.0.
    """

    per_call_fields: ClassVar[tuple[str, ...]] = ()

    confidence: float = 0.0
    steps: int = 40
    learning_rate: float = 1e-2
    initial_const: float = 1.0
    binary_search_steps: int = 1
    fallback: str = "misclassified"
    abort_early: bool = False
    target: str | None = None

    def __post_init__(self) -> None:
        confidence = self.confidence
        if isinstance(confidence, bool) or not isinstance(confidence, (int, float)):
            raise TypeError(f"`confidence` must be a number >= 0, got {confidence!r}.")
        if not confidence >= 0.0 or confidence == float("inf"):
            raise ValueError(f"`confidence` must be a finite number >= 0, got {confidence}.")
        _set(self, "confidence", float(confidence))
        _set(self, "steps", check_positive_int(self.steps, "steps"))
        _set(self, "learning_rate", check_positive(self.learning_rate, "learning_rate"))
        _set(self, "initial_const", check_positive(self.initial_const, "initial_const"))
        _set(self, "binary_search_steps",
             check_positive_int(self.binary_search_steps, "binary_search_steps"))
        check_choice(self.fallback, CW_FALLBACKS, "fallback")
        _set(self, "abort_early", check_bool(self.abort_early, "abort_early"))
        _check_target_mode(self.target, "CWConfig")


# Named settings of `cw_l2(..., preset=...)` over `CWConfig`'s defaults; explicit
# arguments override them.
CW_PRESETS: dict[str, dict[str, Any]] = {
    # The library's default (CWConfig's): a short, fixed-c attack whose accuracy is
    # meaningful at any confidence (see `keras_robust.attacks.cw` for the fallback).
    "default": {},
    # Carlini & Wagner (2017) and their l2_attack.py: c from 1e-3, 9 binary-search
    # steps, Adam at 1e-2 for 10000 iterations, kappa = 0, and the unperturbed image
    # when no c succeeds.
    "carlini_wagner": dict(confidence=0.0, steps=10_000, learning_rate=1e-2,
                           initial_const=1e-3, binary_search_steps=9, fallback="input",
                           abort_early=True),
}


@keras.saving.register_keras_serializable(package="keras_robust")
@dataclasses.dataclass(frozen=True)
class SquareConfig(ConfigBase):
    """The settings of the Square Attack (`keras_robust.attacks.square`; Andriushchenko et al. 2020).

    Args:
        norm: "linf" or "l2".
        epsilon: the budget, or None when the call passes it.
        queries: iterations (5000 in AutoAttack).
        p_init: the initial fraction of pixels per square, in (0, 1] (0.8).
        loss: "margin" or "ce".
        target: None (untargeted) or a mode, "mc", "ll" or "random".

    Example:

    >>> SquareConfig().queries, SquareConfig().p_init
    (5000, 0.8)
    >>> try:
    ...     SquareConfig(p_init=0.0)
    ... except ValueError as error:
    ...     print(error)
    `p_init` must be in (0, 1], got 0.0.
    """

    norm: str = "linf"
    epsilon: float | None = None
    queries: int = 5000
    p_init: float = 0.8
    loss: str = "margin"
    target: str | None = None

    def __post_init__(self) -> None:
        _check_budget(self)
        _set(self, "queries", check_positive_int(self.queries, "queries"))
        _set(self, "p_init", check_fraction(self.p_init, "p_init"))
        if self.p_init <= 0.0:
            raise ValueError(f"`p_init` must be in (0, 1], got {self.p_init}.")
        check_choice(self.loss, SQUARE_LOSSES, "loss")
        _check_target_mode(self.target, "SquareConfig")


def build_config(cls: type, config: Any, **given: Any) -> Any:
    """An attack's config: `config` (default: `cls()`) with the keywords that are not None applied.

    Args:
        cls: the config class.
        config: an instance of `cls`, or None.
        **given: field values from the attack's keywords; None means "not given".

    Returns:
        An instance of `cls`.

    Raises:
        TypeError: when `config` is not an instance of `cls`.

    Example:

    >>> build_config(SquareConfig, None, queries=20, loss=None).queries
    20
    """
    if config is None:
        config = cls()
    elif not isinstance(config, cls):
        raise TypeError(f"`config` must be a {cls.__name__}, got {type(config).__name__}.")
    changes = {name: value for name, value in given.items() if value is not None}
    return config.replace(**changes) if changes else config


__all__ = [
    "APGDConfig", "APGDTargetedConfig", "AttackConfig", "CWConfig", "CW_PRESETS", "ConfigBase",
    "FABConfig", "SquareConfig", "build_config", "resolve_step_size",
]
