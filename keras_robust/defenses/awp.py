"""Adversarial weight perturbation (AWP; Wu, Xia & Wang, NeurIPS 2020).

AWP takes each training gradient at adversarially perturbed weights: before
the step, every kernel W (each trainable variable of rank > 1: conv and dense
kernels; biases and BatchNorm parameters are left alone) moves to W + v with

    v = gamma * ||W|| * g / (||g|| + 1e-20),

g the gradient of the defence's own training loss with respect to W (one
ascent step, normalised per kernel, as `AT_AWP/utils_awp.py` of
csdongxian/AWP). The gradient taken at W + v is then applied to W.

This module holds the settings (`AWPConfig`, `AWP_PRESETS`), the choice of
kernels (`awp_kernels`), the per-kernel scaling (`scaled_perturbation`), the
epoch schedule of gamma (`AWPScheduler`) and the replica-safe helpers the
step uses; the step itself is `RobustModel.train_step`'s weight-perturbation
hook (`keras_robust.defenses.base`), so AWP runs over any defence.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, ClassVar, Sequence

import keras
import numpy as np
import tensorflow as tf

from keras_robust._validation import check_positive_int
from keras_robust.attacks.config import ConfigBase

# The reference's EPS in `diff_in_weights`: keeps a zero direction at v = 0.
NORM_EPSILON = 1e-20


def _check_gamma(value: Any, name: str = "gamma") -> float:
    """Checks that `value` is a finite number >= 0 and returns it as float."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        raise TypeError(
            f"`{name}` must be a number >= 0 (the relative size of the weight perturbation, "
            f"e.g. 0.01), got {value!r}.")
    value = float(value)
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(
            f"`{name}` must be a finite number >= 0 (0 turns the perturbation off), got {value}.")
    return value


@keras.saving.register_keras_serializable(package="keras_robust")
@dataclasses.dataclass(frozen=True)
class AWPConfig(ConfigBase):
    """The settings of adversarial weight perturbation (AWP).

    A frozen, validated config like the attacks' (`replace`, `get_config`
    and `from_config` from `keras_robust.attacks.config.ConfigBase`).

    Pass one to any defence as `weight_perturbation=`: each training step
    then takes its gradient at W + v, v = gamma * ||W|| * g / ||g|| per
    kernel (g: the gradient of the defence's own loss), and applies it to W.

    Args:
        gamma: the size of each kernel's perturbation relative to the
            kernel's norm (the reference's `--awp-gamma`; 0.01 for AT-AWP,
            0.005 for TRADES-AWP). 0 gives the defence underneath.
        warmup_epochs: epochs trained without the perturbation first (the
            reference's `--awp-warmup`; 0 for AT-AWP, 10 for TRADES-AWP).

    Example:

    >>> config = AWPConfig(gamma=0.005, warmup_epochs=10)
    >>> [config.gamma_at(epoch) for epoch in (0, 9, 10)]
    [0.0, 0.0, 0.005]
    >>> AWPConfig.from_config(config.get_config()) == config
    True
    >>> try:
    ...     AWPConfig(gamma=-0.01)
    ... except ValueError as error:
    ...     print(error)
    `gamma` must be a finite number >= 0 (0 turns the perturbation off), got -0.01.
    """

    gamma: float = 0.01
    warmup_epochs: int = 0

    per_call_fields: ClassVar[tuple[str, ...]] = ()  # no per-call numbers: gamma is a variable

    def __post_init__(self) -> None:
        object.__setattr__(self, "gamma", _check_gamma(self.gamma))
        object.__setattr__(
            self, "warmup_epochs", check_positive_int(self.warmup_epochs, "warmup_epochs", 0))

    def gamma_at(self, epoch: int) -> float:
        """The gamma epoch `epoch` trains with (epochs count from 0): 0 during the warm-up.

        Args:
            epoch: the 0-based epoch, as Keras callbacks number them.

        Returns:
            0.0 for the first `warmup_epochs` epochs, `gamma` after.

        Example:

        >>> AWPConfig(gamma=0.01, warmup_epochs=1).gamma_at(1)
        0.01
        """
        return 0.0 if epoch < self.warmup_epochs else self.gamma


# The paper's settings (Wu et al. 2020, Sec. 5; the reference's train scripts).
AWP_PRESETS: dict[str, AWPConfig] = {
    "at-awp": AWPConfig(gamma=0.01),
    "trades-awp": AWPConfig(gamma=0.005, warmup_epochs=10),
}


def resolve_weight_perturbation(value: AWPConfig | dict | str | None) -> AWPConfig | None:
    """A defence's `weight_perturbation` argument as an `AWPConfig` (or None: off).

    Args:
        value: an `AWPConfig`, its `get_config()` dict, a name of
            `AWP_PRESETS`, or None.

    Returns:
        The `AWPConfig`, or None.

    Raises:
        TypeError: `value` is none of these.
        ValueError: an unknown preset name.

    Example:

    >>> resolve_weight_perturbation("trades-awp").warmup_epochs
    10
    >>> resolve_weight_perturbation({"gamma": 0.02}).gamma
    0.02
    """
    if value is None or isinstance(value, AWPConfig):
        return value
    if isinstance(value, dict):
        return AWPConfig.from_config(value)
    if isinstance(value, str):
        if value not in AWP_PRESETS:
            raise ValueError(
                f"Unknown AWP preset {value!r}; expected one of {sorted(AWP_PRESETS)}.")
        return AWP_PRESETS[value]
    raise TypeError(
        "`weight_perturbation` must be an AWPConfig, its config dict, a name of AWP_PRESETS "
        f"or None, got {type(value).__name__}.")


def awp_kernels(model: keras.Model) -> list:
    """The variables AWP perturbs: the model's trainable variables of rank > 1.

    Conv and dense kernels are perturbed; biases, BatchNorm's scale and
    offset (rank 1) and every non-trainable variable (moving statistics)
    are not, as `diff_in_weights` of the reference skips tensors of rank <= 1.

    Args:
        model: a Keras model (a defence: its backbone's variables).

    Returns:
        The variables, in `model.trainable_variables` order.

    Example:

    >>> inputs = keras.Input((4, 4, 1))
    >>> hidden = keras.layers.BatchNormalization()(keras.layers.Conv2D(2, 3)(inputs))
    >>> model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(hidden)))
    >>> [tuple(kernel.shape) for kernel in awp_kernels(model)]
    [(3, 3, 1, 2), (8, 3)]
    """
    return [variable for variable in model.trainable_variables if len(variable.shape) > 1]


def scaled_perturbation(weight: tf.Tensor, direction: tf.Tensor, gamma: Any) -> tf.Tensor:
    """One kernel's perturbation: gamma * ||W|| * g / (||g|| + 1e-20).

    Norms are Frobenius norms over the whole kernel. A zero direction gives
    a zero perturbation.

    Args:
        weight: the kernel's current value W.
        direction: the ascent direction g (the loss gradient at W).
        gamma: the relative size (a number or a scalar tensor).

    Returns:
        v, with the shape and dtype of `weight`; ||v|| = gamma * ||W||.

    Example:

    >>> v = scaled_perturbation(tf.constant([[3.0, 4.0]]), tf.constant([[0.0, 2.0]]), 0.1)
    >>> v.numpy().tolist()
    [[0.0, 0.5]]
    """
    weight = tf.convert_to_tensor(weight)
    direction = tf.cast(direction, weight.dtype)
    gamma = tf.cast(gamma, weight.dtype)
    return gamma * tf.norm(weight) * direction / (tf.norm(direction) + NORM_EPSILON)


def sum_over_replicas(values: Sequence[tf.Tensor]) -> list[tf.Tensor]:
    """Sums per-replica tensors over the replicas of the current strategy.

    Called from a replica context (a strategy's step); with one replica the
    values come back unchanged. AWP sums the ascent gradients so that every
    replica computes the same perturbation (each replica's loss is already
    scaled by 1 / replicas, so the sum is the global batch's gradient).

    Args:
        values: tensors, one per kernel.

    Returns:
        The summed tensors, in order.

    Example:

    >>> float(sum_over_replicas([tf.constant(2.0)])[0])   # default strategy: one replica
    2.0
    """
    values = list(values)
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return values
    return list(context.all_reduce(tf.distribute.ReduceOp.SUM, values))


def _assign(variable: tf.Variable, value: tf.Tensor) -> Any:
    return variable.assign(tf.cast(value, variable.dtype))


def assign_in_sync(variables: Sequence[Any], values: Sequence[Any]) -> None:
    """Assigns each replica's value to its copy of each variable.

    From a replica context this goes through the strategy (`merge_call`,
    then `strategy.extended.update`), as Keras' TensorFlow optimizer
    updates variables, so a mirrored variable's copy on each device gets
    that device's value; without a strategy it is a plain `assign`.

    Args:
        variables: Keras (or TensorFlow) variables.
        values: one tensor per variable, per replica.

    Example:

    >>> variable = keras.Variable([1.0, 2.0])
    >>> assign_in_sync([variable], [tf.constant([3.0, 4.0])])
    >>> variable.numpy().tolist()
    [3.0, 4.0]
    """
    def update(strategy: tf.distribute.Strategy, variables: list, values: list) -> None:
        for variable, value in zip(variables, values):
            variable = variable.value if isinstance(variable, keras.Variable) else variable
            strategy.extended.update(variable, _assign, args=(value,), group=False)

    variables, values = list(variables), list(values)
    context = tf.distribute.get_replica_context()
    if context is None:  # cross-replica context
        update(tf.distribute.get_strategy(), variables, values)
    else:
        context.merge_call(update, args=(variables, values))


class AWPScheduler(keras.callbacks.Callback):
    """Sets a defence's AWP gamma at the start of each epoch and logs it.

    `RobustModel.fit` adds one automatically when the model has a
    `weight_perturbation`; pass your own to control gamma. At the start of
    epoch `e` (from 0) it assigns `schedule(e)` to the model's `awp_gamma`
    variable: by default the model's `AWPConfig.gamma_at` (0 during the
    warm-up, then gamma); at the end of each epoch it adds the value to the
    logs as "awp_gamma" (so `History` records it).

    Args:
        schedule: an `AWPConfig` (its `gamma_at`), any callable
            epoch -> gamma, or None for the model's own config.

    Example:

    >>> backbone = keras_robust.backbones.small_cnn(input_shape=(8, 8, 3))
    >>> model = keras_robust.PGDATModel(backbone, weight_perturbation=AWP_PRESETS["trades-awp"])
    >>> scheduler = AWPScheduler()                 # the model's own warm-up
    >>> scheduler.set_model(model)                 # as `fit` does
    >>> scheduler.on_epoch_begin(9)
    >>> float(model.awp_gamma.numpy())
    0.0
    >>> scheduler.on_epoch_begin(10)
    >>> round(float(model.awp_gamma.numpy()), 6)
    0.005
    >>> ramp = AWPScheduler(lambda epoch: min(0.01, 0.002 * epoch))   # fit(..., callbacks=[ramp])
    """

    def __init__(self, schedule: AWPConfig | Callable[[int], float] | None = None):
        super().__init__()
        if schedule is not None and not callable(schedule) and not isinstance(schedule, AWPConfig):
            raise TypeError(
                "`schedule` must be an AWPConfig, a callable epoch -> gamma, or None, got "
                f"{type(schedule).__name__}.")
        self.schedule = schedule

    def _gamma_variable(self) -> Any:
        gamma = getattr(self.model, "awp_gamma", None)
        if gamma is None:
            raise ValueError(
                "AWPScheduler needs a defence built with weight perturbation, e.g. "
                "PGDATModel(backbone, weight_perturbation=AWPConfig(gamma=0.01)).")
        return gamma

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        gamma = self._gamma_variable()
        schedule = self.schedule or self.model.weight_perturbation
        if isinstance(schedule, AWPConfig):
            schedule = schedule.gamma_at
        gamma.assign(_check_gamma(schedule(epoch), f"the AWP schedule's gamma at epoch {epoch}"))

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None:
            logs["awp_gamma"] = float(self._gamma_variable().numpy())


__all__ = [
    "AWPConfig", "AWPScheduler", "AWP_PRESETS", "assign_in_sync", "awp_kernels",
    "resolve_weight_perturbation", "scaled_perturbation", "sum_over_replicas",
]
