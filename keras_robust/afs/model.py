"""Adversarial feature stacking (Liu & Zhao, 2022): the merger of the AFS model.

Several extractors, adversarially trained at different budgets, are frozen;
their penultimate features are concatenated and a linear merger is trained on

    alpha * L(clean) + (1 - alpha) * L(PGD against the whole stack)      (eq. 5)

The stack (extractors + concatenation + merger) is the model's backbone, so
`call`, `.keras` saving (extractors included) and `export()` (one SavedModel)
are the shared wrapper's. Training the extractors, choosing their budgets
(Delta-z, eq. 8) and reading the merger (importance ratios) live in
`keras_robust.afs`.
"""
from __future__ import annotations

from typing import Any, ClassVar, Sequence

import keras
import numpy as np
import tensorflow as tf

from keras_robust._validation import check_fraction
from keras_robust.attacks.config import AttackConfig
from keras_robust.defenses.base import TrainingBatch
from keras_robust.defenses.pgd_at import PGDATModel


def feature_extractor(model: keras.Model, feature_layer: int | str = -2, name: str | None = None
                      ) -> keras.Model:
    """The sub-model from `model`'s input to the output of `feature_layer`.

    Features of rank above 2 are flattened. The sub-model shares its layers
    (and weights) with `model`, so freezing it also makes those layers of
    `model` non-trainable.

    Args:
        model: a trained functional classifier (or a defence: its backbone is used).
        feature_layer: the layer index (-2: the one before the logits layer) or name.
        name: the sub-model's name (default "<model name>_features").

    Returns:
        A frozen functional model from images to flat features [None, F].

    Raises:
        TypeError: `model` is not a functional Keras model (or a defence
            wrapping one).
        ValueError: no layer is named `feature_layer`.

    Example:

    >>> classifier = keras_robust.backbones.small_cnn(input_shape=(8, 8, 3))
    >>> extractor = feature_extractor(classifier)        # up to the "features" layer
    >>> extractor.output_shape, extractor.trainable
    ((None, 128), False)
    """
    model = getattr(model, "backbone", model)
    if not isinstance(model, keras.Model) or not hasattr(model, "inputs") or model.inputs is None:
        raise TypeError(
            "Extractors must be functional Keras models (or defences wrapping one), got "
            f"{type(model).__name__}."
        )
    layer = model.get_layer(feature_layer) if isinstance(feature_layer, str) else model.layers[feature_layer]
    features = layer.output
    if len(features.shape) != 2:
        features = keras.layers.Flatten(name=f"{name or model.name}_flatten")(features)
    extractor = keras.Model(model.inputs, features, name=name or f"{model.name}_features")
    extractor.trainable = False
    return extractor


@keras.saving.register_keras_serializable(package="keras_robust", name="InferenceModeExtractor")
class _InferenceMode(keras.layers.Layer):
    """Runs a frozen sub-model in inference mode whatever the caller's `training`.

    In Keras 3 a functional model passes its own `training` flag to every
    nested layer that takes one, overriding a `training=False` written at the
    call site: under `stack(x, training=True)` (every train step) an extractor's
    Dropout would be on and its BatchNorm would normalise with batch
    statistics. This layer's `call` takes no `training` argument, so the flag
    never reaches the sub-model, which it always calls with `training=False`.
    """

    def __init__(self, model: keras.Model, **kwargs: Any):
        kwargs.setdefault("name", model.name)
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        self.model = model
        self.model.trainable = False
        self.built = True

    def call(self, inputs: Any) -> Any:
        return self.model(inputs, training=False)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return self.model.compute_output_shape(input_shape)

    def get_config(self) -> dict:
        config = super().get_config()
        config["model"] = keras.saving.serialize_keras_object(self.model)
        return config

    @classmethod
    def from_config(cls, config: dict) -> "_InferenceMode":
        config = dict(config)
        config["model"] = keras.saving.deserialize_keras_object(config["model"])
        return cls(**config)


def build_stack(
    extractors: Sequence[keras.Model], num_classes: int | None = None,
    feature_layer: int | str = -2, name: str = "afs_stack",
) -> keras.Model:
    """Frozen extractors -> concatenated features -> linear merger (eq. 1-2).

    Features concatenate in extractor order; the merger is a `Dense` layer
    named "merger" with float32 output. Each extractor becomes a frozen
    sub-model "extractor_<i>" (see `feature_extractor`, which also freezes
    the layers of the models passed in) that always runs in inference mode
    (BatchNorm on its moving statistics, Dropout off), even inside
    `stack(x, training=True)`: the merger holds the only trainable weights
    and trains on the features the extractors give at inference.

    Args:
        extractors: trained functional classifiers (or defences wrapping
            one), all taking the same image shape.
        num_classes: logits of the merger (default: the first extractor's).
        feature_layer: the layer of each extractor whose output is its
            feature (see `feature_extractor`).
        name: the stack's name.

    Returns:
        A functional model from [0, 1] images to logits.

    Raises:
        ValueError: no extractors, or extractors taking different images.
        TypeError: an extractor is not a functional Keras model.

    Example:

    >>> extractors = [keras_robust.backbones.small_cnn(input_shape=(8, 8, 3)) for _ in range(2)]
    >>> stack = build_stack(extractors)
    >>> merger = stack.get_layer("merger")
    >>> stack.output_shape, tuple(merger.kernel.shape), len(stack.trainable_weights)
    ((None, 10), (256, 10), 2)
    """
    extractors = list(extractors)
    if len(extractors) < 1:
        raise ValueError("AFS needs at least one extractor (the paper stacks 6).")
    first = getattr(extractors[0], "backbone", extractors[0])
    input_shape = tuple(first.input_shape[1:])
    num_classes = num_classes or int(first.output_shape[-1])
    inputs = keras.Input(input_shape, dtype="float32", name="images")
    features = []
    for index, model in enumerate(extractors):
        backbone = getattr(model, "backbone", model)
        if tuple(backbone.input_shape[1:]) != input_shape:
            raise ValueError(
                f"Extractor {index} takes {tuple(backbone.input_shape[1:])}, the first takes "
                f"{input_shape}; all extractors must take the same images."
            )
        extractor = feature_extractor(backbone, feature_layer, name=f"extractor_{index}_features")
        features.append(_InferenceMode(extractor, name=f"extractor_{index}")(inputs))
    stacked = features[0] if len(features) == 1 else keras.layers.Concatenate(name="features")(features)
    logits = keras.layers.Dense(num_classes, name="merger", dtype="float32")(stacked)
    return keras.Model(inputs, logits, name=name)


def warm_start_merger(stack: keras.Model, extractors: Sequence[keras.Model], index: int) -> None:
    """Sets the merger so that the stack starts as extractor `index`'s own classifier.

    The merger's rows for extractor `index`'s features take that extractor's
    logits-layer kernel and its bias; every other row is zero. The stack then
    computes exactly that extractor's logits, and training moves from its
    predictions (the most robust extractor's, say) instead of from random ones.

    Args:
        stack: a model from `build_stack(extractors, feature_layer=-2)`.
        extractors: the extractors the stack was built from, in its order.
        index: which extractor's classifier to copy (negative counts from the end).

    Raises:
        ValueError: if `index` is out of range or that extractor's last layer is
            not a linear `Dense` layer on the stacked features.

    Example:

    >>> stack = build_stack([model_2, model_8])
    >>> warm_start_merger(stack, [model_2, model_8], index=1)   # stack(x) == model_8(x)
    """
    if not -len(extractors) <= index < len(extractors):
        raise ValueError(f"warm_start={index} is not an index into {len(extractors)} extractors.")
    index %= len(extractors)
    merger = stack.get_layer("merger")
    widths = [int(stack.get_layer(f"extractor_{i}").output.shape[-1]) for i in range(len(extractors))]
    head = getattr(extractors[index], "backbone", extractors[index]).layers[-1]
    kernel_shape = (widths[index], int(merger.units))
    if (not isinstance(head, keras.layers.Dense) or head.activation is not keras.activations.linear
            or tuple(head.kernel.shape) != kernel_shape or not head.use_bias):
        raise ValueError(
            f"warm_start needs extractor {index}'s last layer to be a linear Dense layer with a "
            f"bias and a {kernel_shape} kernel (its features -> logits), got {head.name!r} "
            f"({type(head).__name__}); use the default feature_layer=-2 and a backbone ending "
            "in its logits layer."
        )
    kernel = np.zeros(tuple(merger.kernel.shape), "float32")
    offset = sum(widths[:index])
    kernel[offset: offset + widths[index]] = keras.ops.convert_to_numpy(head.kernel)
    merger.kernel.assign(kernel)
    merger.bias.assign(keras.ops.convert_to_numpy(head.bias))


# The paper's merger training (Liu & Zhao 2022, Sec. 4.1, CIFAR-10): eq. 5 with
# alpha = 0.5 against PGD-10 at 8/255 from a random start, steps of epsilon / 4.
PRESETS: dict[str, dict[str, Any]] = {
    "cifar10": dict(alpha=0.5, attack=AttackConfig(epsilon=8 / 255, steps=10, random_start=True)),
}


@keras.saving.register_keras_serializable(package="keras_robust")
class AFSModel(PGDATModel):
    """The AFS model: a linear merger over frozen, adversarially trained extractors.

    Only the merger trains; the extractors' weights and BatchNorm statistics
    are untouched (they are frozen and always run in inference mode). Each step
    attacks the whole stack with PGD and minimises eq. 5 on the clean and
    adversarial halves of the batch.

    Args:
        extractors: trained classifiers (functional Keras models or defences),
            e.g. from `keras_robust.afs.train_extractors`, in the order their
            features are concatenated.
        alpha: weight of the clean loss (0.5 in the paper).
        feature_layer: the layer whose output is an extractor's feature
            (-2: the input of the logits layer; "features" in this library's
            backbones).
        warm_start: None (a fresh merger, the paper) or the index of the
            extractor whose classifier initialises the merger (see
            `warm_start_merger`): training then starts from that
            extractor's predictions, e.g. the most robust one's (-1 when the
            budgets ascend). Needs `feature_layer=-2`.
        num_classes: classes of the merger (default: the first extractor's).
        backbone: the stack itself, when rebuilding a saved model (leave None).
        **kwargs: passed to `PGDATModel`: `seed`, `attack` (an `AttackConfig`;
            default the "cifar10" preset's PGD-10 at 8/255, whose step, when
            unset, is `epsilon / 4`), and its fields by keyword (`epsilon`,
            `steps`, `step_size`, `random_start`...).

    Example:

    ```python
    extractors = keras_robust.afs.train_extractors(builder, [3/255, 5/255, 8/255], train_ds,
                                                   epochs=100, output_dir="extractors")
    model = keras_robust.AFSModel.from_preset("cifar10", extractors)   # alpha 0.5, PGD-10 at 8/255
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), metrics=["accuracy"])
    model.fit(train_ds, epochs=5)
    ```
    """

    presets = PRESETS
    default_attack: ClassVar[AttackConfig] = PRESETS["cifar10"]["attack"]

    def __init__(
        self,
        extractors: Sequence[keras.Model] | None = None,
        alpha: float = 0.5,
        feature_layer: int | str = -2,
        warm_start: int | None = None,
        num_classes: int | None = None,
        backbone: keras.Model | None = None,
        **kwargs: Any,
    ):
        if backbone is None:
            if not extractors:
                raise ValueError("AFSModel needs a non-empty list of `extractors`.")
            backbone = build_stack(extractors, num_classes, feature_layer)
            if warm_start is not None:
                if isinstance(warm_start, bool) or not isinstance(warm_start, (int, np.integer)):
                    raise TypeError(
                        f"warm_start must be None or an extractor index (an int), got "
                        f"{warm_start!r}.")
                if feature_layer != -2:
                    raise ValueError(
                        f"warm_start needs feature_layer=-2 (the logits layer's input), got "
                        f"{feature_layer!r}.")
                warm_start_merger(backbone, list(extractors), int(warm_start))
        elif extractors:
            raise ValueError("Pass either `extractors` or a built `backbone` stack, not both.")
        super().__init__(backbone, **kwargs)
        self.alpha = check_fraction(alpha, "alpha")
        self.feature_layer = feature_layer
        self.warm_start = warm_start

    @classmethod
    def default_step_size(cls, attack: AttackConfig) -> float:
        """AFS's step: `epsilon / 4`."""
        return attack.epsilon / 4

    @property
    def extractors(self) -> list[keras.Model]:
        """The frozen feature extractors (images -> features), in concatenation order.

        The stack calls each through a wrapper layer "extractor_<i>" that keeps
        it in inference mode; these are the wrapped sub-models.
        """
        return [layer.model for layer in self.backbone.layers if isinstance(layer, _InferenceMode)]

    @property
    def merger(self) -> keras.layers.Dense:
        """The linear merger (the only trained layer)."""
        return self.backbone.get_layer("merger")

    def training_batch(self, x, y, sample_weight) -> TrainingBatch:
        x_adv = self.adversarial_examples(x, y).x_adv
        weight = tf.ones(tf.shape(x)[:1]) if sample_weight is None else tf.cast(sample_weight, tf.float32)
        # The mean over the 2B rows with weights (2 alpha w, 2 (1 - alpha) w) is eq. 5.
        weights = tf.concat([2.0 * self.alpha * weight, 2.0 * (1.0 - self.alpha) * weight], 0)
        return TrainingBatch(tf.concat([x, x_adv], 0), tf.concat([y, y], 0), weights)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(alpha=self.alpha, feature_layer=self.feature_layer,
                      warm_start=self.warm_start)
        return config  # the stack is saved as the backbone; from_config rebuilds from it
