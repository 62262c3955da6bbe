"""Weight averaging: an exponential moving average (EMA) of the weights.

With `weight_averaging=AveragingConfig(...)` a defence keeps, next to each
trainable variable W of its backbone, an average A updated after every
optimizer step:

    decay_t = min(tau, (1 + t) / (10 + t))     (warmup=True; tau when False)
    A <- decay_t * A + (1 - decay_t) * W

t is the optimizer's step count before the update (`optimizer.iterations`:
0 at the first update, whose decay is 0.1, so A starts near the trained
weights instead of lingering at the random initialisation). This is the
rule of the leaderboard code (deepmind-research `adversarial_robustness`,
`utils.ema_update` with `dynamic_decay=True`, `swa_decay=0.995`).

BatchNorm's moving statistics are not averaged: the averaged weights are
evaluated with the raw run's statistics (`batchnorm="raw"`, as the
leaderboard code does), or with statistics recomputed for the averaged
weights over a few training batches (`batchnorm="reestimate"`,
`reestimate_batchnorm`).

Keras' own `optimizer(use_ema=True)` cannot express this rule: its
momentum is fixed (`ema_momentum`); it copies the weights at the first step
and then averages with that momentum from step 2 on, with no warm-up ramp.
So the average is built here, on the model: one non-trainable
`keras.Variable` per averaged weight, which `model.save`, checkpoints and
`keras.callbacks.BackupAndRestore` carry like any other weight.

This module holds the settings (`AveragingConfig`), the choice of averaged
variables (`averaged_variables`), the update (`update_averages`, called by
`RobustModel.train_step` after the optimizer step), the swaps
(`swap_averages`), the BatchNorm re-estimation (`reestimate_batchnorm`) and
the callback that evaluates on the average (`AveragedEvaluation`).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar, Sequence

import keras
import numpy as np
import tensorflow as tf

from keras_robust._validation import check_bool, check_choice, check_positive_int
from keras_robust.attacks.config import ConfigBase
from keras_robust.backbones import batchnorm_layers
from keras_robust.defenses.awp import assign_in_sync

AVERAGING_BATCHNORM = ("raw", "reestimate")


def _check_tau(value: Any) -> float:
    """Checks that `value` is a number in (0, 1) and returns it as float."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        raise TypeError(
            f"`tau` must be a number in (0, 1) (the average's decay, e.g. 0.995), got {value!r}.")
    value = float(value)
    if not (math.isfinite(value) and 0.0 < value < 1.0):
        raise ValueError(
            f"`tau` must be in (0, 1) (the average's decay, e.g. 0.995; 1 would never move "
            f"the average, 0 would copy the weights), got {value}.")
    return value


@keras.saving.register_keras_serializable(package="keras_robust")
@dataclasses.dataclass(frozen=True)
class AveragingConfig(ConfigBase):
    """The settings of weight averaging (an EMA of the weights).

    A frozen, validated config like the attacks' (`replace`, `get_config`
    and `from_config` from `keras_robust.attacks.config.ConfigBase`). Pass
    one to any defence as `weight_averaging=` (a float there is `tau`).

    Args:
        tau: the decay of the average, in (0, 1). Its window is about
            1 / (1 - tau) steps: 200 for 0.995 (the leaderboard code's
            `swa_decay`), 1000 for 0.999.
        warmup: the decay is min(tau, (1 + t) / (10 + t)) at optimizer step
            t (from 0) when True, tau throughout when False.
        batchnorm: the BatchNorm moving statistics the averaged weights use:
            "raw" (the trained model's, as the leaderboard code) or
            "reestimate" (recomputed for the averaged weights over training
            batches passed to `averaged_weights(batchnorm_data=...)`, see
            `reestimate_batchnorm`).

    Example:

    >>> config = AveragingConfig(tau=0.995)
    >>> [round(float(config.decay_at(t)), 4) for t in (0, 1, 100, 10_000)]
    [0.1, 0.1818, 0.9182, 0.995]
    >>> round(float(config.replace(warmup=False).decay_at(0)), 4)
    0.995
    >>> AveragingConfig.from_config(config.get_config()) == config
    True
    >>> try:
    ...     AveragingConfig(tau=1.0)
    ... except ValueError as error:
    ...     print(str(error)[:32])
    `tau` must be in (0, 1) (the ave
    """

    tau: float = 0.995
    warmup: bool = True
    batchnorm: str = "raw"

    per_call_fields: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "tau", _check_tau(self.tau))
        object.__setattr__(self, "warmup", check_bool(
            self.warmup, "warmup", "True (decay min(tau, (1 + t) / (10 + t))) or False (tau)"))
        object.__setattr__(self, "batchnorm", check_choice(
            self.batchnorm, AVERAGING_BATCHNORM, "batchnorm"))

    def decay_at(self, step: Any) -> tf.Tensor:
        """The decay of the update at optimizer step `step` (0 at the first update).

        Args:
            step: the optimizer's step count before the update (a number or
                an integer tensor, e.g. `optimizer.iterations`).

        Returns:
            A float32 scalar tensor: min(tau, (1 + step) / (10 + step)) with
            the warm-up, tau without.

        Example:

        >>> float(AveragingConfig(tau=0.5).decay_at(20))
        0.5
        """
        tau = tf.constant(self.tau, tf.float32)
        if not self.warmup:
            return tau
        step = tf.cast(step, tf.float32)
        return tf.minimum(tau, (1.0 + step) / (10.0 + step))


def resolve_weight_averaging(value: AveragingConfig | dict | float | None
                             ) -> AveragingConfig | None:
    """A defence's `weight_averaging` argument as an `AveragingConfig` (or None: off).

    Args:
        value: an `AveragingConfig`, its `get_config()` dict, a float (tau,
            the other settings at their defaults), or None.

    Returns:
        The `AveragingConfig`, or None.

    Raises:
        TypeError: `value` is none of these.

    Example:

    >>> resolve_weight_averaging(0.99)
    AveragingConfig(tau=0.99, warmup=True, batchnorm='raw')
    >>> resolve_weight_averaging({"tau": 0.9, "warmup": False}).warmup
    False
    """
    if value is None or isinstance(value, AveragingConfig):
        return value
    if isinstance(value, dict):
        return AveragingConfig.from_config(value)
    if isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(
            value, (bool, np.bool_)):
        return AveragingConfig(tau=value)
    raise TypeError(
        "`weight_averaging` must be an AveragingConfig, its config dict, a float tau in (0, 1) "
        f"or None, got {type(value).__name__}.")


def averaged_variables(model: keras.Model) -> list:
    """The variables weight averaging averages: the backbone's trainable ones.

    Every trainable variable is averaged (kernels, biases, BatchNorm's scale
    and offset); the BatchNorm moving statistics are non-trainable and are
    not.

    Args:
        model: a defence (its `backbone`'s variables) or a plain Keras model.

    Returns:
        The variables, in `trainable_variables` order.

    Example:

    >>> inputs = keras.Input((4, 4, 1))
    >>> hidden = keras.layers.BatchNormalization()(keras.layers.Conv2D(2, 3)(inputs))
    >>> model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(hidden)))
    >>> [v.name for v in averaged_variables(model)]
    ['kernel', 'bias', 'gamma', 'beta', 'kernel', 'bias']
    """
    return list(getattr(model, "backbone", model).trainable_variables)


def make_averages(variables: Sequence[Any]) -> list[keras.Variable]:
    """One non-trainable `keras.Variable` per variable, initialised to its value.

    Called once, when the model is built (inside a strategy's scope the
    averages are mirrored like the weights).

    Args:
        variables: the averaged variables (`averaged_variables`).

    Returns:
        The averages, in the same order.

    Example:

    >>> weight = keras.Variable([1.0, 2.0], name="kernel")
    >>> [average.numpy().tolist() for average in make_averages([weight])]
    [[1.0, 2.0]]
    """
    return [
        keras.Variable(tf.identity(tf.convert_to_tensor(variable)), trainable=False,
                       dtype=variable.dtype, name="average_" + variable.path.replace("/", "_"))
        for variable in variables
    ]


def update_averages(averages: Sequence[Any], variables: Sequence[Any], decay: Any) -> None:
    """A <- decay * A + (1 - decay) * W for each average A of a variable W.

    From a replica context (a strategy's step) the new values go through
    the strategy (`assign_in_sync`); the weights are mirrored, so every
    replica computes the same average.

    Args:
        averages: the averages (`make_averages`).
        variables: the averaged variables, in the same order.
        decay: the decay (`AveragingConfig.decay_at`), a scalar.

    Example:

    >>> average, weight = keras.Variable([0.0]), keras.Variable([10.0])
    >>> update_averages([average], [weight], 0.9)
    >>> round(float(average.numpy()[0]), 4)
    1.0
    """
    values = []
    for average, variable in zip(averages, variables):
        average = tf.convert_to_tensor(average)
        rate = tf.cast(decay, average.dtype)
        values.append(rate * average + (1.0 - rate) * tf.cast(variable, average.dtype))
    assign_in_sync(averages, values)


def swap_averages(averages: Sequence[Any], variables: Sequence[Any]) -> None:
    """Exchanges the values of the averages and the variables (exactly).

    Outside a training step (cross-replica context): each value is copied
    to the host and assigned, so a second swap restores both bit-identically.

    Args:
        averages: the averages.
        variables: the averaged variables, in the same order.

    Example:

    >>> average, weight = keras.Variable([1.0]), keras.Variable([2.0])
    >>> swap_averages([average], [weight])
    >>> float(average.numpy()[0]), float(weight.numpy()[0])
    (2.0, 1.0)
    """
    averages, variables = list(averages), list(variables)
    if len(averages) != len(variables):
        raise ValueError(
            f"{len(averages)} averages for {len(variables)} trainable variables: the backbone's "
            "trainable variables changed after the model was built (e.g. a layer was frozen); "
            "set `trainable` before building the defence.")
    held = [np.array(average.numpy()) for average in averages]
    for average, variable in zip(averages, variables):
        average.assign(np.array(variable.numpy()))
    for variable, value in zip(variables, held):
        variable.assign(value)


def _batches(data: Any, batches: int, batch_size: int) -> list:
    """Up to `batches` image batches of `data` (a dataset of x or (x, y, ...), or images)."""
    if isinstance(data, tf.data.Dataset):
        found = []
        for element in data.take(batches):
            x, _, _ = keras.utils.unpack_x_y_sample_weight(element)
            found.append(tf.cast(x, tf.float32))
        return found
    if isinstance(data, (np.ndarray, tf.Tensor)):
        return [tf.cast(data[start:start + batch_size], tf.float32)
                for start in range(0, len(data), batch_size)][:batches]
    raise TypeError(
        "The BatchNorm re-estimation data must be a tf.data.Dataset of images or (images, "
        f"labels) batches, or an array of images, got {type(data).__name__}.")


def reestimate_batchnorm(model_or_backbone: keras.Model, dataset: Any, batches: int = 100,
                         batch_size: int = 128) -> int:
    """Recomputes every BatchNorm's moving statistics for the current weights.

    Each BatchNormalization layer (nested ones included) gets its moving
    mean reset to 0 and its moving variance to 1; then the model runs in
    training mode on up to `batches` batches with the momentum of batch k
    (from 1) set to (k - 1) / k, so after K batches the moving mean is the
    mean of the K batch means and the moving variance the mean of the K
    batch variances (a cumulative average, PyTorch's `update_bn` with
    `momentum=None`). The momenta are restored afterwards. Dropout and
    other training-mode layers are active during the passes, as in
    `update_bn`; nothing else changes. Run it on training images (without
    the attack) after swapping the averaged weights in: averaged weights
    change the activations the statistics were gathered on.

    Args:
        model_or_backbone: a defence (its backbone is used) or a Keras model.
        dataset: a `tf.data.Dataset` of image batches or (images, labels)
            batches, or an array of images (split into `batch_size` rows).
        batches: the most batches used.
        batch_size: the batch size for an array of images.

    Returns:
        The number of batches used.

    Raises:
        ValueError: the data has no batch.

    Example:

    >>> inputs = keras.Input((2,))
    >>> model = keras.Model(inputs, keras.layers.BatchNormalization()(inputs))
    >>> reestimate_batchnorm(model, np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]], "float32"),
    ...                      batch_size=2)
    2
    >>> model.layers[1].moving_mean.numpy().tolist()   # the mean of the batch means 1 and 4
    [2.5, 3.5]
    """
    check_positive_int(batches, "batches")
    check_positive_int(batch_size, "batch_size")
    model = getattr(model_or_backbone, "backbone", model_or_backbone)
    layers = batchnorm_layers(model)
    found = _batches(dataset, batches, batch_size)
    if not found:
        raise ValueError("The BatchNorm re-estimation data has no batch; expected at least one.")
    momenta = [layer.momentum for layer in layers]
    try:
        for layer in layers:
            layer.moving_mean.assign(tf.zeros_like(layer.moving_mean))
            layer.moving_variance.assign(tf.ones_like(layer.moving_variance))
        for k, images in enumerate(found, start=1):
            for layer in layers:
                layer.momentum = (k - 1) / k
            model(images, training=True)  # eagerly: each call reads the momentum it is given
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
    return len(found)


def _averaging_of(model: keras.Model) -> Any:
    """The model's `AveragingConfig`, or a clear error when it has none."""
    config = getattr(model, "weight_averaging", None)
    if config is None:
        raise ValueError(
            f"{type(model).__name__} keeps no averaged weights; build it with "
            "weight_averaging=AveragingConfig(tau=0.995) (or a float tau), e.g. "
            "keras_robust.PGDATModel(backbone, weight_averaging=0.995).")
    return config


def enter_averaged(model: keras.Model, batchnorm_data: Any = None, batches: int = 100) -> list:
    """Swaps a defence's averaged weights into its backbone; returns what `leave_averaged` needs.

    With the model's `batchnorm="reestimate"` the BatchNorm moving
    statistics are then re-estimated on `batchnorm_data`
    (`reestimate_batchnorm`) and the trained ones are returned, to be put
    back; with "raw" they are left as they are.

    Args:
        model: a defence built with `weight_averaging`.
        batchnorm_data: training images for "reestimate"; unused with "raw".
        batches: the most batches of `batchnorm_data` used.

    Returns:
        The trained model's BatchNorm statistics (NumPy arrays; empty with "raw").

    Raises:
        ValueError: the model keeps no averages, or "reestimate" without data.

    Example:

    >>> model = kr.RobustModel(kr.backbones.small_cnn(input_shape=(8, 8, 3)), weight_averaging=0.99)
    >>> held = enter_averaged(model)        # what `model.averaged_weights()` does on entry
    >>> leave_averaged(model, held)         # ... and on exit
    """
    config = _averaging_of(model)
    reestimate = config.batchnorm == "reestimate"
    if reestimate and batchnorm_data is None:
        raise ValueError(
            "The model's weight averaging has batchnorm='reestimate': pass training images as "
            "`batchnorm_data` (a dataset or an array) to re-estimate the BatchNorm statistics "
            "for the averaged weights, or use AveragingConfig(batchnorm='raw').")
    stats = [variable for layer in batchnorm_layers(model.backbone)
             for variable in (layer.moving_mean, layer.moving_variance)]
    held = [np.array(variable.numpy()) for variable in stats] if reestimate else []
    swap_averages(model.weight_averages, averaged_variables(model))
    if reestimate:
        reestimate_batchnorm(model, batchnorm_data, batches)
    return held


def leave_averaged(model: keras.Model, held: list) -> None:
    """Undoes `enter_averaged`: the trained weights (and BatchNorm statistics) back, exactly.

    Args:
        model: the defence `enter_averaged` was called on.
        held: what `enter_averaged` returned.

    Example:

    >>> model = kr.RobustModel(kr.backbones.small_cnn(input_shape=(8, 8, 3)), weight_averaging=0.99)
    >>> leave_averaged(model, enter_averaged(model))
    """
    swap_averages(model.weight_averages, averaged_variables(model))
    stats = [variable for layer in batchnorm_layers(model.backbone)
             for variable in (layer.moving_mean, layer.moving_variance)]
    for variable, value in zip(stats, held):
        variable.assign(value)


class AveragedEvaluation(keras.callbacks.Callback):
    """Evaluates a defence on its averaged weights during `fit`.

    Before each evaluation (fit's validation, or `evaluate(callbacks=[...])`)
    it swaps the averaged weights into the backbone and swaps the trained
    ones back after it (Keras' `SwapEMAWeights` does the same for
    `optimizer(use_ema=True)`, whose average it reads from the optimizer,
    so it cannot serve here). With `batchnorm="reestimate"` in the model's
    config, the BatchNorm statistics are re-estimated on `batchnorm_data`
    for each evaluation and the trained ones put back after it.

    Args:
        swap_on_end: leave the averaged weights (and, with "reestimate",
            re-estimated statistics) in the model when training ends.
        batchnorm_data: training images for "reestimate" (see
            `reestimate_batchnorm`); unused with "raw".
        batches: the most batches of `batchnorm_data` used.

    Example:

    ```python
    model = keras_robust.PGDATModel(backbone, weight_averaging=0.995)
    model.compile(optimizer="sgd", metrics=["accuracy"])
    model.fit(train, validation_data=test, epochs=5,
              callbacks=[keras_robust.AveragedEvaluation(swap_on_end=True)])
    ```
    """

    def __init__(self, swap_on_end: bool = False, batchnorm_data: Any = None, batches: int = 100):
        super().__init__()
        self.swap_on_end = check_bool(swap_on_end, "swap_on_end")
        self.batchnorm_data = batchnorm_data
        self.batches = check_positive_int(batches, "batches")
        self._held: Any = None  # the trained model's BatchNorm statistics while swapped

    @property
    def swapped(self) -> bool:
        """Whether the averaged weights are in the model now."""
        return self._held is not None

    def on_test_begin(self, logs: dict | None = None) -> None:
        if not self.swapped:
            self._held = enter_averaged(self.model, self.batchnorm_data, self.batches)

    def on_test_end(self, logs: dict | None = None) -> None:
        if self.swapped:
            leave_averaged(self.model, self._held)
            self._held = None

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.swap_on_end and not self.swapped:
            enter_averaged(self.model, self.batchnorm_data, self.batches)


__all__ = [
    "AVERAGING_BATCHNORM", "AveragedEvaluation", "AveragingConfig", "averaged_variables",
    "enter_averaged", "leave_averaged", "make_averages", "reestimate_batchnorm",
    "resolve_weight_averaging", "swap_averages", "update_averages",
]
