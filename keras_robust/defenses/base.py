"""The shared defence wrapper: a `keras.Model` that holds a backbone.

Every defence of the library subclasses `RobustModel` and adds only what is its
own, through three hooks:

- `training_batch(x, y, sample_weight)` builds the pair the weights are trained
  on, outside the gradient tape (attacks, mixing, adversarial labels, a
  quantised copy, clean + adversarial halves...);
- `training_logits(batch)` runs the backbone on that batch inside the tape;
- `training_loss(batch, y_pred)` turns the backbone's logits on that batch into
  the loss (cross-entropy by default; BPFC adds its consistency term).

Two settings of the wrapper itself run over any defence through those hooks:
`weight_perturbation=AWPConfig(...)` (adversarial weight perturbation, see
`keras_robust.defenses.awp` and `RobustModel.train_step`) and
`weight_averaging=AveragingConfig(...)` (an EMA of the weights, see
`keras_robust.defenses.averaging`).

Everything else is shared: labels become probability rows (sparse, one-hot and
soft labels all work), `call` is the backbone alone (inference and export never
see training-only layers), metrics and the loss are reported correctly under
`tf.distribute` strategies, randomness is stateless and keyed on the step (so
runs are reproducible and resumable), inputs are checked where they enter, and
`.keras` saving and SavedModel export work for every defence.
"""
from __future__ import annotations

import contextlib
import random
from typing import Any, Callable, ClassVar, Mapping, NamedTuple, TypeVar

import keras
import numpy as np
import tensorflow as tf

from keras_robust._labels import label_rows
from keras_robust._random import fold_seed
from keras_robust._keras_compat import PrebuiltCompiledState
from keras_robust._validation import (
    assert_batch_in_graph,
    check_choice,
    check_images,
    check_labels,
    graph_check_message,
)
from keras_robust.attacks.config import AttackConfig
from keras_robust.backbones import batchnorm_layers
from keras_robust.defenses.awp import (
    AWPConfig,
    AWPScheduler,
    assign_in_sync,
    awp_kernels,
    resolve_weight_perturbation,
    scaled_perturbation,
    sum_over_replicas,
)
from keras_robust.defenses.averaging import (
    AveragingConfig,
    averaged_variables,
    enter_averaged,
    leave_averaged,
    make_averages,
    resolve_weight_averaging,
    swap_averages,
    update_averages,
)

_PACKAGE = "keras_robust"

ATTACK_BATCHNORM = ("moving", "batch")

# The defences by name, for `keras_robust.defenses.get`. Each class enters it with
# `register_defense` where it is defined, so this module imports no paper's package:
# the papers import this module, and importing `keras_robust` imports them all.
DEFENSES: dict[str, type["RobustModel"]] = {}

_Defense = TypeVar("_Defense", bound=type)


def register_defense(name: str) -> Callable[[_Defense], _Defense]:
    """A class decorator that enters a defence in `DEFENSES` under `name`.

    Args:
        name: the defence's short name (e.g. "bat"), unique.

    Returns:
        The decorator; it returns the class unchanged.

    Example:

    >>> @register_defense("plain_again")
    ... class Plain(RobustModel):
    ...     pass
    >>> DEFENSES["plain_again"] is Plain
    True
    >>> del DEFENSES["plain_again"]
    """

    def register(cls: _Defense) -> _Defense:
        if DEFENSES.get(name, cls) is not cls:
            raise ValueError(f"A defence named {name!r} is registered already: {DEFENSES[name]}.")
        DEFENSES[name] = cls
        return cls

    return register


class _Unset:
    """The default of a keyword whose None means something (`target=None`: untargeted)."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


def resolve_attack(attack: AttackConfig | dict | None, default: AttackConfig, **fields: Any
                   ) -> AttackConfig:
    """A defence's attack: `attack` (or `default`) with the fields given by keyword.

    Every defence holds its attack settings as one `AttackConfig`; its
    constructor also takes the settings by keyword (`epsilon=...`), which
    replace those fields. A keyword left at None (`target`: at `UNSET`) keeps
    the field.

    Args:
        attack: an `AttackConfig`, its `get_config()` dict, or None for `default`.
        default: the defence's own attack.
        **fields: `AttackConfig` fields; None (or `UNSET`) leaves a field as it is.

    Returns:
        The `AttackConfig`.

    Raises:
        TypeError: `attack` is neither a config nor its dict.

    Example:

    >>> base = AttackConfig(epsilon=8 / 255, step_size=2 / 255, steps=7)
    >>> resolve_attack(None, base, steps=3, target=UNSET).steps
    3
    >>> resolve_attack({"epsilon": 0.1, "step_size": 0.05}, base).epsilon
    0.1
    """
    if attack is None:
        attack = default
    elif isinstance(attack, dict):
        attack = AttackConfig.from_config(attack)
    elif not isinstance(attack, AttackConfig):
        raise TypeError(
            f"`attack` must be an AttackConfig or its config dict, got {type(attack).__name__}.")
    changes = {name: value for name, value in fields.items()
               if value is not None and value is not UNSET}
    if "target" in fields and fields["target"] is None:
        changes["target"] = None
    return attack.replace(**changes) if changes else attack


class TrainingBatch(NamedTuple):
    """The batch a defence trains on.

    What `RobustModel.training_batch` returns (the clean batch for plain
    training; attacked, mixed, relabelled or doubled rows for the defences)
    and what `training_logits` and `training_loss` receive. N may differ from
    the input batch size (AFS and BPFC return 2B rows). A `NamedTuple`:
    build it positionally or by field name.

    Attributes:
        x: images, float32 [N, H, W, C].
        y: label rows on the probability simplex, float32 [N, num_classes].
        sample_weight: per-example weights [N], or None.
        clean_x: the clean images the batch was built from, for a loss term
            taken at them (GradAlign's alignment term), or None (the default)
            when no term needs them.

    Example:

    >>> model = keras_robust.RobustModel(keras_robust.backbones.small_cnn(input_shape=(8, 8, 3)))
    >>> batch = model.training_batch(tf.zeros([2, 8, 8, 3]), model.label_probabilities([0, 1]),
    ...                              None)
    >>> batch.x.shape, batch.y.shape, batch.sample_weight is None
    (TensorShape([2, 8, 8, 3]), TensorShape([2, 10]), True)
    >>> doubled = TrainingBatch(tf.concat([batch.x, batch.x], 0), tf.concat([batch.y, batch.y], 0),
    ...                         sample_weight=tf.ones([4]))
    """

    x: tf.Tensor
    y: tf.Tensor
    sample_weight: tf.Tensor | None
    clean_x: tf.Tensor | None = None


def replica_scale(value: tf.Tensor) -> tf.Tensor:
    """Divides a per-replica loss term by the number of replicas in sync.

    Keras losses already do this so that summing gradients over replicas gives
    the global mean; loss terms a defence adds itself must do the same (BPFC
    returns `cross_entropy + replica_scale(lam * consistency)`). The count is
    that of the current strategy (`tf.distribute.get_strategy()`); with one
    replica the value comes back unchanged.

    Args:
        value: a float loss term computed on this replica's batch (a scalar
            tensor, usually).

    Returns:
        `value / num_replicas_in_sync`, with the dtype of `value`.

    Example:

    >>> replica_scale(tf.constant(3.0))           # default strategy: one replica
    <tf.Tensor: shape=(), dtype=float32, numpy=3.0>
    """
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    if replicas > 1:
        value = value / tf.cast(replicas, value.dtype)
    return value


def replica_unscale(value: tf.Tensor) -> tf.Tensor:
    """Undoes `replica_scale`, for reporting a per-replica loss as the global mean."""
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    if replicas > 1:
        value = value * tf.cast(replicas, value.dtype)
    return value


class frozen_batchnorm:
    """Holds the momentum of every BatchNorm layer of a model at 1 while open.

    Keras' BatchNormalization updates `moving = moving * momentum + batch *
    (1 - momentum)` when called in training mode; with the momentum at 1 the
    update writes the moving statistics back unchanged. The momentum is a
    Python float read when the graph is traced, so the effect lasts for the
    calls traced inside the block and nothing else.

    Args:
        model: the model whose BatchNormalization layers (nested ones
            included) are frozen.

    Example:

    >>> with frozen_batchnorm(backbone):
    ...     logits = backbone(images, training=True)  # batch statistics, no update
    """

    def __init__(self, model: keras.Model):
        self.layers = batchnorm_layers(model)
        self.momenta: list[float] = []

    def __enter__(self) -> "frozen_batchnorm":
        self.momenta = [layer.momentum for layer in self.layers]
        for layer in self.layers:
            layer.momentum = 1.0
        return self

    def __exit__(self, *exc_info: Any) -> None:
        for layer, momentum in zip(self.layers, self.momenta):
            layer.momentum = momentum


@register_defense("plain")
@keras.saving.register_keras_serializable(package=_PACKAGE)
class RobustModel(PrebuiltCompiledState, keras.Model):
    """A backbone with a robust training step; plain training when used as is.

    Args:
        backbone: a built Keras model mapping float32 [0, 1] images
            [None, H, W, C] to logits [None, num_classes].
        seed: seed of the defence's randomness (random starts, targets,
            mixing...). Each step draws from (seed, step, replica), so a run
            is reproducible and continues identically after a restore. None
            picks one at random (and saves it in the config).
        attack_batchnorm: how training-time attacks normalise: "moving"
            (BatchNorm in inference mode, on its moving statistics, as the
            BAT authors' code) or "batch" (on the statistics of the batch
            being attacked, as PyTorch references that attack in
            `model.train()`, but without updating the moving statistics;
            dropout is then active during the attack too).
        weight_perturbation: adversarial weight perturbation (AWP, Wu et
            al. 2020) over this defence: an `AWPConfig`, its config dict, a
            name of `AWP_PRESETS` ("at-awp", "trades-awp"), or None (off).
            See "Weight perturbation" below.
        weight_averaging: an exponential moving average of the backbone's
            trainable weights: an `AveragingConfig`, its config dict, a
            float (tau), or None (off). See "Weight averaging" below.
        **kwargs: passed to `keras.Model` (e.g. `name`).

    Weight perturbation: with `weight_perturbation` set, each training step
    takes its gradient at adversarially perturbed weights. After the batch
    is built, the gradient g of the defence's own loss
    (`training_loss(batch, training_logits(batch))`) is taken at the
    current weights, BatchNorm running on the batch's statistics without
    updating its moving ones; every kernel W (trainable, rank > 1) moves to
    W + gamma * ||W|| * g / ||g||; the step's gradient is taken there; each
    kernel gets its saved value back exactly; then the optimizer applies the
    gradient to W (so weight decay and EMA see the unperturbed weights).
    gamma is the model's `awp_gamma` variable, set each epoch by an
    `AWPScheduler` (which `fit` adds). Any defence gets it, since it uses
    only the three hooks above.

    Weight averaging: with `weight_averaging` set, the model holds one
    non-trainable variable per trainable variable of the backbone (BatchNorm
    moving statistics are not averaged), initialised to its value, and
    each training step ends, after the optimizer's update (so the average
    sees the unperturbed weights under AWP), with A <- d * A + (1 - d) * W,
    d = `AveragingConfig.decay_at(optimizer.iterations)` (min(tau,
    (1 + t) / (10 + t)) with the warm-up). The averages are weights of the
    model: `save`, checkpoints and `BackupAndRestore` carry them, and a
    resumed run continues them. Evaluate or export the average with
    `with model.averaged_weights(): ...` (`model.export(...)` inside it
    writes the averaged backbone), `swap_averaged_weights()` or the
    `AveragedEvaluation` callback. Keras' `optimizer(use_ema=True)` has a
    fixed momentum and no warm-up, so it cannot give this rule.

    Example:

    ```python
    backbone = keras_robust.backbones.small_cnn(num_classes=10)
    model = keras_robust.RobustModel(backbone)           # plain training
    model.compile(optimizer="sgd", metrics=["accuracy"])  # loss: soft-label CE
    model.fit(train_ds, epochs=5)
    model.export("serving")                               # SavedModel, `serve` = backbone

    awp = keras_robust.PGDATModel(backbone, weight_perturbation=keras_robust.AWPConfig(gamma=0.01))

    ema = keras_robust.PGDATModel(backbone,
                                  weight_averaging=keras_robust.AveragingConfig(tau=0.995))
    ema.compile(optimizer="sgd", metrics=["accuracy"])
    ema.fit(train_ds, epochs=5)
    with ema.averaged_weights():                          # evaluate and export the average
        ema.evaluate(test_ds)
        ema.export("serving_averaged")
    ```
    """

    # A paper's settings by name (keras-hub's presets): constructor arguments
    # besides the backbone, read by `from_preset`. Each defence sets its own.
    presets: ClassVar[Mapping[str, Mapping[str, Any]]] = {}

    def __init__(
        self,
        backbone: keras.Model,
        seed: int | None = None,
        attack_batchnorm: str = "moving",
        weight_perturbation: AWPConfig | dict | str | None = None,
        weight_averaging: AveragingConfig | dict | float | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        if not isinstance(backbone, keras.Model):
            raise TypeError(
                f"`backbone` must be a keras.Model mapping [0, 1] images to logits, got "
                f"{type(backbone).__name__}."
            )
        try:
            input_shape = tuple(backbone.input_shape)
            output_shape = tuple(backbone.output_shape)
        except (AttributeError, ValueError) as error:
            raise ValueError(
                "`backbone` must be built with a known input shape (e.g. a functional model "
                f"or a subclassed model after build((None, H, W, C))): {error}"
            ) from None
        if len(input_shape) != 4 or None in input_shape[1:]:
            raise ValueError(
                f"`backbone` must take images [None, H, W, C] with fixed H, W, C, got input "
                f"shape {input_shape}."
            )
        if len(output_shape) != 2 or not output_shape[-1] or output_shape[-1] < 2:
            raise ValueError(
                f"`backbone` must return logits [None, num_classes], got output shape "
                f"{output_shape}."
            )
        self.backbone = backbone
        self.image_shape: tuple[int, int, int] = tuple(int(d) for d in input_shape[1:])
        self.num_classes = int(output_shape[-1])
        self.seed = int(seed) if seed is not None else random.randrange(2**31 - 1)
        self.attack_batchnorm = check_choice(
            attack_batchnorm, ATTACK_BATCHNORM, "attack_batchnorm")
        # Keras' own loss tracker is updated only by the `train_step` this class
        # replaces; this one reports the loss as the global mean (see `_track_loss`).
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.weight_perturbation = resolve_weight_perturbation(weight_perturbation)
        # AWP's gamma as a variable, so that `AWPScheduler` changes it between epochs
        # without retracing the step.
        self.awp_gamma = None if self.weight_perturbation is None else keras.Variable(
            self.weight_perturbation.gamma_at(0), trainable=False, dtype="float32",
            name="awp_gamma")
        self.weight_averaging = resolve_weight_averaging(weight_averaging)
        # The averages are the model's own (non-trainable) weights, so saving, checkpoints
        # and BackupAndRestore carry them; the step count t is the optimizer's `iterations`.
        self.weight_averages = [] if self.weight_averaging is None else make_averages(
            averaged_variables(self))

    # ------------------------------------------------------------------ presets
    @classmethod
    def list_presets(cls) -> list[str]:
        """The names of this defence's presets (its paper's models), in the paper's order.

        Returns:
            A list of names for `from_preset`.

        Example:

        >>> keras_robust.BATModel.list_presets()[:3]
        ['R-FGSM', 'R-LL', 'R-MC']
        """
        return list(cls.presets)

    @classmethod
    def from_preset(cls, preset: str, backbone: Any, **overrides: Any) -> "RobustModel":
        """Builds one of the paper's models by name, around `backbone`.

        Args:
            preset: a name of `cls.presets` (see `list_presets()`).
            backbone: the model's first argument (a backbone; AFS: its extractors).
            **overrides: constructor arguments that replace or add to the
                preset's (`seed`, `epsilon`, `beta`...). An attack setting
                given by keyword (`epsilon`, `steps`...) replaces that field
                of the preset's `attack`.

        Returns:
            The defence model.

        Raises:
            ValueError: `preset` is not one of this defence's presets.

        Example:

        >>> backbone = keras_robust.backbones.small_cnn(input_shape=(8, 8, 3))
        >>> model = keras_robust.BATModel.from_preset("R-MC-LS", backbone, seed=0)
        >>> model.label, model.attack.target, model.attack.steps
        ('smoothing', 'mc', 1)
        >>> try:
        ...     keras_robust.BATModel.from_preset("R-XX", backbone)
        ... except ValueError as error:
        ...     print(str(error)[:40])
        Unknown BATModel preset 'R-XX'; known pr
        """
        if not isinstance(preset, str) or preset not in cls.presets:
            known = ", ".join(map(repr, cls.presets)) or "none"
            raise ValueError(f"Unknown {cls.__name__} preset {preset!r}; known presets: {known}.")
        return cls(backbone, **{**cls.presets[preset], **overrides})

    # ------------------------------------------------------------------ inference
    def call(self, inputs: Any, training: bool | None = None) -> tf.Tensor:
        """The backbone's logits: inference never includes training-only parts."""
        return self.backbone(inputs, training=training)

    def build(self, input_shape: Any = None) -> None:
        """The backbone is built already; nothing else holds weights here."""
        self.built = True

    def ensure_built(self) -> None:
        """Marks the wrapper built with its real input shape [None, H, W, C].

        Keras records the shape `build` receives and derives the SavedModel's
        default signature and the `.keras` build config from it.
        """
        if not self.built:
            self.build((None, *self.image_shape))

    def attack_logits(self, images: tf.Tensor) -> tf.Tensor:
        """The logits training-time attacks see.

        With `attack_batchnorm="moving"` the backbone runs in inference mode;
        with "batch" it runs in training mode with every BatchNorm's momentum
        held at 1 while the graph is traced, so the batch statistics normalise
        the attack and the moving statistics stay as they were. Crafting an
        attack never updates them either way.
        """
        if self.attack_batchnorm == "batch":
            with frozen_batchnorm(self.backbone):
                logits = self.backbone(images, training=True)
        else:
            logits = self.backbone(images, training=False)
        return tf.cast(logits, tf.float32)

    # ------------------------------------------------------------------ compile
    def compile(
        self,
        optimizer: Any = "sgd",
        loss: Any = None,
        metrics: Any = None,
        **kwargs: Any,
    ) -> None:
        """Configures training; the default loss is cross-entropy on logits.

        Labels reach the loss as probability rows [batch, num_classes]
        (sparse labels are one-hot encoded first), so the default loss takes
        sparse, one-hot and soft labels alike.

        Args:
            optimizer: a Keras optimizer or its name.
            loss: None for `keras.losses.CategoricalCrossentropy(from_logits=True)`,
                or any loss on (probability rows, logits).
            metrics: Keras metrics, e.g. ["accuracy"].
            **kwargs: passed to `keras.Model.compile` (`jit_compile`, ...).
        """
        if loss is None:
            loss = keras.losses.CategoricalCrossentropy(from_logits=True)
        if isinstance(loss, str) and "sparse" in loss or isinstance(
            loss, keras.losses.SparseCategoricalCrossentropy
        ):
            raise ValueError(
                "Defences pass labels to the loss as probability rows (soft labels are "
                "first-class), so sparse losses cannot work; leave `loss` unset for "
                "cross-entropy on logits, or pass CategoricalCrossentropy(from_logits=True)."
            )
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)

    def compile_from_config(self, config: dict) -> None:
        """Recompiles a loaded model with its saved optimizer, loss and metrics."""
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        if getattr(self, "optimizer", None) is not None and self.built:
            self.optimizer.build(self.trainable_variables)

    # ------------------------------------------------------------------ labels
    def label_probabilities(self, y: Any) -> tf.Tensor:
        """Sparse, one-hot or soft labels as float32 rows [batch, num_classes]."""
        return label_rows(y, self.num_classes)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """`keras.Model.compute_loss` on label rows (sparse labels are one-hot encoded).

        Keras also calls this (and `compute_metrics`) outside `train_step`,
        e.g. to build the loss and metrics symbolically under a distribution
        strategy, so the conversion lives here and is idempotent.
        """
        if y is not None:
            y = self.label_probabilities(y)
        return super().compute_loss(
            x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=training
        )

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        """`keras.Model.compute_metrics` on label rows (sparse labels are one-hot encoded)."""
        return super().compute_metrics(x, self.label_probabilities(y), y_pred, sample_weight)

    # ------------------------------------------------------------------ hooks
    def training_batch(
        self, x: tf.Tensor, y: tf.Tensor, sample_weight: tf.Tensor | None
    ) -> TrainingBatch:
        """Builds the pair to train on; plain training returns it unchanged.

        Runs outside the gradient tape, in the training graph. Subclasses
        override it (attacks, label perturbations, mixing, extra views).

        Args:
            x: float32 images [B, H, W, C] in [0, 1].
            y: float32 label rows [B, num_classes].
            sample_weight: [B] or None.

        Returns:
            A `TrainingBatch`.
        """
        return TrainingBatch(x, y, sample_weight)

    def training_logits(self, batch: TrainingBatch) -> tf.Tensor:
        """The logits the loss is taken on: one training-mode pass of the batch.

        Runs inside the gradient tape. A subclass overrides it when parts of
        the batch must be normalised apart (e.g. BPFC's separate passes).

        Args:
            batch: the `TrainingBatch` from `training_batch`.

        Returns:
            Logits [rows of batch.x, num_classes].
        """
        return self(batch.x, training=True)

    def training_loss(self, batch: TrainingBatch, y_pred: tf.Tensor) -> tf.Tensor:
        """The loss on the training batch (compiled loss + regularisers by default).

        The value is per replica (scaled by 1 / replicas, as Keras losses are);
        a subclass adding terms scales them with `replica_scale`.
        """
        return self.compute_loss(
            x=batch.x, y=batch.y, y_pred=y_pred, sample_weight=batch.sample_weight,
            training=True,
        )

    def step_seed(self, salt: int) -> tf.Tensor:
        """A stateless [2] seed for this step, replica and purpose (`salt`)."""
        # Philox named: with "auto_select" XLA folds to other seeds than graph mode
        # (measured, TF 2.21 CPU), so a jit-compiled step would draw differently.
        seed = tf.constant([self.seed, salt], dtype=tf.int64)
        seed = fold_seed(seed, tf.cast(self.optimizer.iterations, tf.int64), alg="philox")
        context = tf.distribute.get_replica_context()
        if context is not None:
            replica = tf.cast(context.replica_id_in_sync_group, tf.int64)
            seed = fold_seed(seed, replica, alg="philox")
        return seed

    # ------------------------------------------------------------------ steps
    def train_step(self, data: Any) -> dict:
        """One training step: build the batch, take the loss gradient, apply it.

        The defence's hooks build the batch (`training_batch`, outside the
        tape) and the loss (`training_logits`, `training_loss`, inside it).
        With `weight_perturbation` set, AWP's hook runs around the tape:

        1. `_perturb_weights`: the gradient of the same loss at the current
           weights (BatchNorm frozen: batch statistics, moving ones kept),
           summed over replicas; each kernel saved, then moved to W + v;
        2. the tape: logits, loss and gradients at W + v;
        3. `_restore_weights`: each kernel assigned its saved value (exact);
        4. the optimizer applies the gradients to W.

        Without it the step is the tape and the optimizer alone. With
        `weight_averaging` set, the averages are updated last, from the
        weights the optimizer left (`_update_averages`).

        Args:
            data: a batch, (x, y) or (x, y, sample_weight).

        Returns:
            The logs: the loss and the compiled metrics.
        """
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        x, y = self._checked_batch(x, y, "fit")
        batch = self.training_batch(x, self.label_probabilities(y), sample_weight)
        batch = TrainingBatch(
            tf.stop_gradient(batch.x), tf.stop_gradient(batch.y), batch.sample_weight,
            None if batch.clean_x is None else tf.stop_gradient(batch.clean_x),
        )
        saved = None if self.weight_perturbation is None else self._perturb_weights(batch)
        with tf.GradientTape() as tape:
            y_pred = self.training_logits(batch)
            loss = self.training_loss(batch, y_pred)
            self._track_loss(loss, batch.x)
            scaled_loss = self.optimizer.scale_loss(loss)
        gradients = tape.gradient(scaled_loss, self.trainable_weights)
        # t of the averaging rule: the optimizer's step count before this update.
        step = None if self.weight_averaging is None else tf.identity(
            tf.convert_to_tensor(self.optimizer.iterations))
        if saved is not None:
            self._restore_weights(saved)
        self.optimizer.apply(gradients, self.trainable_weights)
        if self.weight_averaging is not None:
            self._update_averages(step)
        return _multi_worker_logs(
            self.compute_metrics(batch.x, batch.y, y_pred, sample_weight=batch.sample_weight))

    # ------------------------------------------------------------------ weight perturbation
    def _perturb_weights(self, batch: TrainingBatch) -> list[tf.Tensor]:
        """AWP: moves each kernel W to W + v; returns the saved values of W.

        v = gamma * ||W|| * g / (||g|| + 1e-20) per kernel (`scaled_perturbation`),
        g from `_ascent_directions`, the same on every replica.
        """
        kernels = awp_kernels(self)
        directions = self._ascent_directions(batch, kernels)
        saved = [tf.identity(tf.convert_to_tensor(kernel)) for kernel in kernels]
        perturbed = [
            weight + scaled_perturbation(weight, direction, self.awp_gamma)
            for weight, direction in zip(saved, directions)
        ]
        assign_in_sync(kernels, perturbed)
        return saved

    def _ascent_directions(self, batch: TrainingBatch, kernels: list) -> list[tf.Tensor]:
        """The gradient of the defence's loss w.r.t. `kernels`, summed over replicas.

        The pass runs in training mode with every BatchNorm's momentum held at
        1 (`frozen_batchnorm`): the batch statistics normalise it, the moving
        ones are not updated. A kernel the loss does not reach gets zeros.
        """
        with frozen_batchnorm(self.backbone):
            with tf.GradientTape() as tape:
                loss = self.training_loss(batch, self.training_logits(batch))
        gradients = tape.gradient(loss, kernels)
        gradients = [
            tf.zeros_like(tf.convert_to_tensor(kernel)) if gradient is None
            else tf.convert_to_tensor(gradient)
            for kernel, gradient in zip(kernels, gradients)
        ]
        return sum_over_replicas(gradients)

    def _restore_weights(self, saved: list[tf.Tensor]) -> None:
        """AWP: assigns each kernel its value before `_perturb_weights` (not W + v - v)."""
        assign_in_sync(awp_kernels(self), saved)

    # ------------------------------------------------------------------ weight averaging
    def _update_averages(self, step: tf.Tensor) -> None:
        """A <- d * A + (1 - d) * W for every averaged W, d the decay at optimizer step `step`."""
        update_averages(self.weight_averages, averaged_variables(self),
                        self.weight_averaging.decay_at(step))

    @contextlib.contextmanager
    def averaged_weights(self, batchnorm_data: Any = None, batches: int = 100):
        """A context in which the backbone holds the averaged weights.

        On entry the averages and the backbone's trainable weights are
        swapped; on exit they are swapped back, bit-identically (also when
        the block raises). The BatchNorm moving statistics stay the trained
        run's with `batchnorm="raw"`; with "reestimate" they are recomputed
        on `batchnorm_data` (`reestimate_batchnorm`) and the trained ones are
        put back on exit. Evaluate, report and export inside the block
        (`model.export(path)` there writes the averaged backbone; a
        `model.save` there writes the averaged weights as the backbone's and
        the trained ones as the averages, so do not resume training from it).

        Args:
            batchnorm_data: training images for "reestimate" (a dataset of
                images or (images, labels) batches, or an array of images).
            batches: the most batches of `batchnorm_data` used.

        Yields:
            The model.

        Raises:
            ValueError: the model has no `weight_averaging`, or "reestimate"
                without `batchnorm_data`.

        Example:

        ```python
        with model.averaged_weights():
            keras_robust.evaluate.robustness_report(model, (x_test, y_test))
            model.export("serving_averaged")
        ```
        """
        held = enter_averaged(self, batchnorm_data, batches)
        try:
            yield self
        finally:
            leave_averaged(self, held)

    def swap_averaged_weights(self) -> None:
        """Swaps the averaged and the trained weights once (a second call swaps back).

        Like Keras' `SwapEMAWeights` for `optimizer(use_ema=True)`: only the
        trainable weights move; the BatchNorm moving statistics stay. For
        re-estimated statistics use `averaged_weights(batchnorm_data=...)`.

        Raises:
            ValueError: the model has no `weight_averaging`.
        """
        if self.weight_averaging is None:
            enter_averaged(self)  # raises the error that says how to turn averaging on
        swap_averages(self.weight_averages, averaged_variables(self))

    def test_step(self, data: Any) -> dict:
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        x, y = self._checked_batch(x, y, "evaluate")
        y = self.label_probabilities(y)
        y_pred = self(x, training=False)
        loss = self.compute_loss(
            x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=False
        )
        self._track_loss(loss, x)
        return _multi_worker_logs(self.compute_metrics(x, y, y_pred, sample_weight=sample_weight))

    def _track_loss(self, loss: tf.Tensor, x: tf.Tensor) -> None:
        # Keras losses come back divided by the replica count; report the global mean.
        self.loss_tracker.update_state(replica_unscale(loss), sample_weight=tf.shape(x)[0])

    @property
    def metrics(self) -> list:
        """The loss tracker, then the compiled and other metrics, as Keras orders them."""
        others = [
            metric for metric in super().metrics
            if not (isinstance(metric, keras.metrics.Mean) and metric.name == "loss")
        ]
        return [self.loss_tracker, *others]

    # ------------------------------------------------------------------ input checks
    def _checked_batch(self, x: Any, y: Any, where: str) -> tuple:
        """(float32 images, labels) of a step, behind in-graph checks of every batch.

        `fit` and `evaluate` check NumPy data in full but a dataset only by its
        first batch; these assertions (`assert_batch_in_graph`: images finite
        and in [0, 1], labels in range) check each batch in the step, per
        replica under a distribution strategy. XLA drops assertions, so an
        XLA-compiled model (`jit_compile`) checks datasets in their pipeline
        instead (`_checked_dataset`).
        """
        x = tf.cast(x, tf.float32)
        if self.jit_compile:
            return x, y
        with tf.control_dependencies(assert_batch_in_graph(x, y, self.num_classes, where)):
            x = tf.identity(x)
            y = None if y is None else tf.identity(y)
        return x, y

    def _checked_dataset(self, data: Any, where: str) -> Any:
        """Under XLA, `data` (a dataset) with the in-graph checks mapped over its batches."""
        if not isinstance(data, tf.data.Dataset) or not self.jit_compile:
            return data

        def check(*element):
            x, y, _ = keras.utils.unpack_x_y_sample_weight(
                element if len(element) > 1 else element[0])
            with tf.control_dependencies(assert_batch_in_graph(x, y, self.num_classes, where)):
                checked = tuple(tf.nest.map_structure(tf.identity, e) for e in element)
            return checked if len(element) > 1 else checked[0]

        return data.map(check)

    def fit(self, x: Any = None, y: Any = None, *args: Any, **kwargs: Any):
        """`keras.Model.fit`, after checking the data where it enters.

        NumPy inputs are checked in full; a `tf.data.Dataset` by its element
        spec and its first batch: images must be float [0, 1] NHWC with the
        backbone's shape, labels in range, nothing NaN, the dataset non-empty.
        Every later batch is checked in the training step (images finite and
        in [0, 1], labels in range), so a bad batch deep in a dataset stops
        training with the same message instead of training on it.

        With `weight_perturbation` set, an `AWPScheduler` (gamma per epoch,
        logged as "awp_gamma") is added unless one is among the callbacks.
        """
        sample = self._check_data(x, y, "fit")
        self.ensure_built()  # callbacks such as BackupAndRestore need a built model at once
        if sample is not None:
            self._build_compiled_state(*sample)
        validation = kwargs.get("validation_data")
        if validation is not None:
            if isinstance(validation, (tuple, list)):
                self._check_data(validation[0], validation[1] if len(validation) > 1 else None,
                                 "validation_data")
            else:
                self._check_data(validation, None, "validation_data")
                kwargs["validation_data"] = self._checked_dataset(validation, "evaluate")
        if isinstance(x, tf.data.Dataset) and len(args) < 7 and "shuffle" not in kwargs:
            # Keras ignores `shuffle` for a dataset (it must shuffle itself) but warns
            # on every call, since fit's default is True: say False, which is what happens.
            kwargs["shuffle"] = False
        if self.weight_perturbation is not None:
            args, kwargs = _with_awp_scheduler(args, kwargs)
        with _clear_graph_check_errors():
            return super().fit(self._checked_dataset(x, "fit"), y, *args, **kwargs)

    def evaluate(self, x: Any = None, y: Any = None, *args: Any, **kwargs: Any):
        """`keras.Model.evaluate`, after the same checks as `fit` (every batch included)."""
        self._check_data(x, y, "evaluate")
        with _clear_graph_check_errors():
            return super().evaluate(self._checked_dataset(x, "evaluate"), y, *args, **kwargs)

    def _check_data(self, x: Any, y: Any, where: str) -> tuple | None:
        """Checks the data and returns its first (images, labels) batch, if it has one."""
        if isinstance(x, tf.data.Dataset):
            images_spec = _images_spec(x, where)
            if images_spec is not None:
                if not images_spec.dtype.is_floating:
                    raise TypeError(
                        f"{where}: the dataset yields {images_spec.dtype.name} images; expected "
                        "float32 images in [0, 1] (divide 0..255 pixels by 255, or build the "
                        "pipeline with keras_robust.data)."
                    )
                if images_spec.shape.rank is not None and images_spec.shape.rank != 4:
                    raise ValueError(
                        f"{where}: the dataset must yield batched images of rank 4 (batch, height, "
                        f"width, channels), got {images_spec.shape}; did you forget .batch()?"
                    )
            first = next(iter(x.take(1)), None)
            if first is None:
                raise ValueError(f"{where}: the dataset is empty; expected at least one batch.")
            first_x, first_y, _ = keras.utils.unpack_x_y_sample_weight(first)
            self._check_arrays(first_x, first_y, where)
            return (first_x, first_y) if first_y is not None else None
        if isinstance(x, np.ndarray) or tf.is_tensor(x):
            if len(x) == 0:
                raise ValueError(f"{where}: `x` is empty; expected at least one image.")
            self._check_arrays(x, y, where)
            return (x, y) if y is not None else None
        return None

    def _check_arrays(self, x: Any, y: Any, where: str) -> None:
        check_images(x, f"{where} images", channels=(self.image_shape[-1],))
        shape = tuple(x.shape[1:])
        if shape != self.image_shape:
            raise ValueError(
                f"{where}: images have shape {shape} but the backbone takes {self.image_shape}."
            )
        if y is not None:
            check_labels(y, self.num_classes, f"{where} labels")

    # ------------------------------------------------------------------ serialisation
    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "backbone": keras.saving.serialize_keras_object(self.backbone),
                "seed": self.seed,
                "attack_batchnorm": self.attack_batchnorm,
                "weight_perturbation": None if self.weight_perturbation is None
                else self.weight_perturbation.get_config(),
                "weight_averaging": None if self.weight_averaging is None
                else self.weight_averaging.get_config(),
            }
        )
        return config

    @classmethod
    def from_config(cls, config: dict, custom_objects: Any = None):
        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(
            config["backbone"], custom_objects=custom_objects
        )
        return cls(**config)

    def export(
        self,
        filepath: str,
        format: str = "tf_saved_model",
        verbose: bool | None = None,
        input_signature: Any = None,
        **kwargs: Any,
    ):
        """Writes a SavedModel whose `serve` maps float32 [None, H, W, C] images in
        [0, 1] to float32 logits: the backbone alone.

        Args:
            filepath: the SavedModel directory.
            format: "tf_saved_model" (default) or another `keras.Model.export` format.
            verbose: print a summary of the endpoints.
            input_signature: defaults to `[TensorSpec([None, H, W, C], float32)]`.
            **kwargs: passed to `keras.Model.export`.

        Example:

        >>> model.export("serving")
        >>> served = tf.saved_model.load("serving").serve(images)
        """
        if input_signature is None:
            input_signature = [
                tf.TensorSpec([None, *self.image_shape], tf.float32, name="images")
            ]
        self.ensure_built()
        return super().export(
            filepath, format=format, verbose=verbose, input_signature=input_signature, **kwargs
        )




@contextlib.contextmanager
def _clear_graph_check_errors():
    """Re-raises a failed in-graph input check as a one-line `ValueError`, like the NumPy path."""
    try:
        yield
    except tf.errors.InvalidArgumentError as error:
        message = graph_check_message(error)
        if message is None:
            raise
        raise ValueError(message) from None


def _with_awp_scheduler(args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """`fit`'s arguments after (x, y) with an `AWPScheduler` among the callbacks."""
    positional = len(args) > 3  # fit(x, y, batch_size, epochs, verbose, callbacks, ...)
    callbacks = list((args[3] if positional else kwargs.get("callbacks")) or [])
    if not any(isinstance(callback, AWPScheduler) for callback in callbacks):
        callbacks.append(AWPScheduler())
    if positional:
        return (*args[:3], callbacks, *args[4:]), kwargs
    return args, {**kwargs, "callbacks": callbacks}


def _multi_worker_logs(logs: dict) -> dict:
    """Under MultiWorkerMirroredStrategy, logs as [1] tensors.

    Keras 3.15 reduces a step's logs over workers with
    `strategy.reduce("MEAN", value, axis=0)`, which fails on the scalar logs
    every model returns ("Invalid reduction dimension 0 for input with 0
    dimensions"); with a leading axis of 1 the same call averages the workers'
    values into a scalar. Other strategies get the logs unchanged.
    """
    if not isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
        return logs
    return {key: tf.reshape(value, [1]) for key, value in logs.items()}


def _images_spec(dataset: tf.data.Dataset, where: str) -> tf.TensorSpec | None:
    spec = dataset.element_spec
    if isinstance(spec, dict):
        raise ValueError(
            f"{where}: expected a dataset of (images, labels) tuples, got a dict of "
            f"{sorted(spec)}; map it to tuples first."
        )
    spec = spec[0] if isinstance(spec, tuple) else spec
    return spec if isinstance(spec, tf.TensorSpec) else None
