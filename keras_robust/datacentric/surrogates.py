"""Surrogate models for the data-centric enhancement: the paper's five kinds.

The paper (Zhong et al., AAAI 2022) crafts its transferable perturbations on
an ensemble of ResNet-50, WideResNet, DenseNet-121, VGG-16 and MobileNetV2.
This module builds those five kinds for small images, in two presets:

- `"small"`: CPU variants that train in a minute or two on CIFAR-10 and attack
  at hundreds of images per second on two cores (ResNet-8 with 16 filters,
  WRN-10-2, a DenseNet-BC-16 with growth rate 8 (three blocks of two layers),
  a VGG-11 at 1/8 width, a MobileNetV2 at width 0.25 with one block per
  stage);
- `"paper"`: the paper's sizes (ResNet-50 with bottlenecks, WRN-28-10,
  DenseNet-121, VGG-16, MobileNetV2 at width 1), CIFAR stems (no stride-2 stem,
  so 32x32 inputs keep their resolution).

Every builder follows `keras_robust.backbones`: a functional Keras model from
float32 [0, 1] NHWC images to float32 logits that owns its normalisation (a
`Normalization` layer after the input), built from standard Keras layers only
(so `.keras` files load with `safe_mode=True` and no custom objects).
`train_surrogates` trains a list of kinds and saves them; any Keras model that
maps [0, 1] images to logits can be a surrogate too.

Example:

```python
from keras_robust.datacentric import surrogates
models = surrogates.train_surrogates(
    ["resnet", "densenet", "mobilenet"], train_ds, epochs=5, directory="runs/surrogates")
```
"""
from __future__ import annotations

import os
import sys
from typing import Any, Callable, Sequence

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from keras_robust import backbones
from keras_robust._validation import check_choice, check_positive_int

#: The paper's five surrogate kinds.
SURROGATE_KINDS: tuple[str, ...] = ("resnet", "wide_resnet", "densenet", "vgg", "mobilenet")
PRESETS: tuple[str, ...] = ("small", "paper")

Normalization = backbones.Normalization


def _l2(weight_decay: float):
    return keras.regularizers.L2(weight_decay) if weight_decay else None


def _conv(x, filters: int, kernel: int, name: str, weight_decay: float, stride: int = 1):
    return layers.Conv2D(
        filters, kernel, strides=stride, padding="same", use_bias=False, name=name,
        kernel_regularizer=_l2(weight_decay),
    )(x)


def _bn_relu(x, name: str, relu6: bool = False):
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(6.0 if relu6 else None, name=f"{name}_relu")(x)


def _head(x, inputs, num_classes: int, weight_decay: float, name: str) -> keras.Model:
    x = layers.GlobalAveragePooling2D(name="features")(x)
    logits = layers.Dense(
        num_classes, name="logits", dtype="float32", kernel_regularizer=_l2(weight_decay)
    )(x)
    return keras.Model(inputs, logits, name=name)


def resnet(
    blocks: Sequence[int] = (1, 1, 1),
    width: int = 16,
    bottleneck: bool = False,
    input_shape: Sequence[int] = (32, 32, 3),
    num_classes: int = 10,
    normalization: Normalization = "cifar10",
    weight_decay: float = 0.0,
    name: str | None = None,
) -> keras.Model:
    """A post-activation ResNet (He et al. 2016) with a CIFAR stem.

    Stage `s` has `blocks[s]` residual blocks with `width * 2**s` filters
    (times 4 at the output of bottleneck blocks); every stage after the first
    halves the resolution. `blocks=(3, 3, 3)` is ResNet-20,
    `blocks=(3, 4, 6, 3), width=64, bottleneck=True` is ResNet-50.

    Args:
        blocks: residual blocks per stage.
        width: filters of the first stage.
        bottleneck: 1x1-3x3-1x1 bottleneck blocks (expansion 4) instead of
            two 3x3 convolutions.
        input_shape: (height, width, channels) of the [0, 1] images.
        num_classes: number of logits.
        normalization: see `keras_robust.backbones.small_cnn`.
        weight_decay: L2 factor on kernels.
        name: the model's name (default "resnet{depth}").

    Returns:
        A functional `keras.Model` from images to float32 logits.

    Example:

    >>> model = resnet((1, 1, 1), width=16)   # ResNet-8
    >>> model.output_shape
    (None, 10)
    """
    num_classes = check_positive_int(num_classes, "num_classes", 2)
    width = check_positive_int(width, "width")
    blocks = tuple(check_positive_int(b, "blocks") for b in blocks)
    if not blocks:
        raise ValueError("`blocks` must name at least one stage, e.g. (3, 3, 3).")
    depth = (3 if bottleneck else 2) * sum(blocks) + 2
    name = name or f"resnet{depth}"
    inputs, x = backbones._inputs_and_normalization(input_shape, normalization, name)
    x = _bn_relu(_conv(x, width, 3, "stem_conv", weight_decay), "stem")
    for stage, count in enumerate(blocks):
        filters = width * 2**stage
        for block in range(count):
            stride = 2 if (stage > 0 and block == 0) else 1
            prefix = f"stage{stage + 1}_block{block + 1}"
            out_filters = filters * 4 if bottleneck else filters
            shortcut = x
            if stride != 1 or x.shape[-1] != out_filters:
                shortcut = _conv(x, out_filters, 1, f"{prefix}_shortcut", weight_decay, stride)
                shortcut = layers.BatchNormalization(name=f"{prefix}_shortcut_bn")(shortcut)
            if bottleneck:
                out = _bn_relu(_conv(x, filters, 1, f"{prefix}_conv1", weight_decay), f"{prefix}_1")
                out = _bn_relu(
                    _conv(out, filters, 3, f"{prefix}_conv2", weight_decay, stride), f"{prefix}_2"
                )
                out = _conv(out, out_filters, 1, f"{prefix}_conv3", weight_decay)
            else:
                out = _bn_relu(
                    _conv(x, filters, 3, f"{prefix}_conv1", weight_decay, stride), f"{prefix}_1"
                )
                out = _conv(out, filters, 3, f"{prefix}_conv2", weight_decay)
            out = layers.BatchNormalization(name=f"{prefix}_out_bn")(out)
            x = layers.ReLU(name=f"{prefix}_relu")(layers.Add(name=f"{prefix}_add")([out, shortcut]))
    return _head(x, inputs, num_classes, weight_decay, name)


def densenet(
    blocks: Sequence[int] = (3, 3, 3),
    growth_rate: int = 8,
    compression: float = 0.5,
    bottleneck: bool = True,
    input_shape: Sequence[int] = (32, 32, 3),
    num_classes: int = 10,
    normalization: Normalization = "cifar10",
    weight_decay: float = 0.0,
    name: str | None = None,
) -> keras.Model:
    """DenseNet-BC (Huang et al. 2017) with a CIFAR stem.

    Dense blocks of `blocks[i]` layers (BN-ReLU-Conv1x1(4k)-BN-ReLU-Conv3x3(k)
    with `bottleneck`, else BN-ReLU-Conv3x3(k)), each layer's k = `growth_rate`
    new maps concatenated to its input; transitions (BN-ReLU-Conv1x1 to
    `compression` times the channels, 2x2 average pooling) between blocks.
    `blocks=(6, 12, 24, 16), growth_rate=32` is DenseNet-121.

    Args:
        blocks: layers per dense block.
        growth_rate: k, maps each layer adds.
        compression: theta, channel factor of the transitions, in (0, 1].
        bottleneck: 1x1 bottleneck convolution (4k maps) in each layer.
        input_shape: (height, width, channels) of the [0, 1] images.
        num_classes: number of logits.
        normalization: see `keras_robust.backbones.small_cnn`.
        weight_decay: L2 factor on kernels.
        name: the model's name (default "densenet{depth}").

    Returns:
        A functional `keras.Model` from images to float32 logits.

    Example:

    >>> model = densenet((3, 3, 3), growth_rate=8)
    """
    num_classes = check_positive_int(num_classes, "num_classes", 2)
    growth_rate = check_positive_int(growth_rate, "growth_rate")
    blocks = tuple(check_positive_int(b, "blocks") for b in blocks)
    if not blocks:
        raise ValueError("`blocks` must name at least one dense block, e.g. (6, 12, 24, 16).")
    if not 0 < compression <= 1:
        raise ValueError(f"`compression` must be in (0, 1], got {compression}.")
    depth = (2 if bottleneck else 1) * sum(blocks) + len(blocks) + 1
    name = name or f"densenet{depth}"
    inputs, x = backbones._inputs_and_normalization(input_shape, normalization, name)
    x = _conv(x, 2 * growth_rate, 3, "stem_conv", weight_decay)
    for index, count in enumerate(blocks):
        for layer in range(count):
            prefix = f"block{index + 1}_layer{layer + 1}"
            out = x
            if bottleneck:
                out = _conv(_bn_relu(out, f"{prefix}_1"), 4 * growth_rate, 1, f"{prefix}_conv1",
                            weight_decay)
            out = _conv(_bn_relu(out, f"{prefix}_2"), growth_rate, 3, f"{prefix}_conv2", weight_decay)
            x = layers.Concatenate(name=f"{prefix}_concat")([x, out])
        if index < len(blocks) - 1:
            channels = max(1, int(int(x.shape[-1]) * compression))
            x = _conv(_bn_relu(x, f"transition{index + 1}"), channels, 1,
                      f"transition{index + 1}_conv", weight_decay)
            x = layers.AveragePooling2D(2, name=f"transition{index + 1}_pool")(x)
    x = _bn_relu(x, "final")
    return _head(x, inputs, num_classes, weight_decay, name)


# (expansion t, output channels c, repeats n, first stride s) of MobileNetV2,
# with the CIFAR strides of the second stage set to 1 (32x32 inputs).
_MOBILENET_V2_STAGES = (
    (1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2),
    (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1),
)


def _make_divisible(value: float, divisor: int = 8) -> int:
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def mobilenet_v2(
    width_multiplier: float = 1.0,
    repeats: Sequence[int] | None = None,
    last_channels: int = 1280,
    input_shape: Sequence[int] = (32, 32, 3),
    num_classes: int = 10,
    normalization: Normalization = "cifar10",
    weight_decay: float = 0.0,
    name: str | None = None,
) -> keras.Model:
    """MobileNetV2 (Sandler et al. 2018) for small images.

    Inverted residual blocks (1x1 expansion, 3x3 depthwise, linear 1x1
    projection, identity shortcut when shapes allow) in the seven stages of
    the paper; the stem and the second stage keep stride 1 so 32x32 inputs
    end at 4x4.

    Args:
        width_multiplier: scales every stage's channels (rounded to
            multiples of 8).
        repeats: blocks per stage (7 numbers); default the paper's
            (1, 2, 3, 4, 3, 3, 1).
        last_channels: channels of the final 1x1 convolution (scaled by
            `width_multiplier` when above 1).
        input_shape: (height, width, channels) of the [0, 1] images.
        num_classes: number of logits.
        normalization: see `keras_robust.backbones.small_cnn`.
        weight_decay: L2 factor on kernels.
        name: the model's name (default "mobilenet_v2_{width}").

    Returns:
        A functional `keras.Model` from images to float32 logits.

    Example:

    >>> model = mobilenet_v2(0.25, repeats=(1,) * 7, last_channels=256)
    """
    num_classes = check_positive_int(num_classes, "num_classes", 2)
    if not width_multiplier > 0:
        raise ValueError(f"`width_multiplier` must be > 0, got {width_multiplier}.")
    repeats = tuple(n for _, _, n, _ in _MOBILENET_V2_STAGES) if repeats is None else tuple(repeats)
    if len(repeats) != len(_MOBILENET_V2_STAGES):
        raise ValueError(f"`repeats` must give 7 block counts (one per stage), got {repeats}.")
    repeats = tuple(check_positive_int(n, "repeats") for n in repeats)
    last_channels = check_positive_int(last_channels, "last_channels")
    name = name or f"mobilenet_v2_{width_multiplier:g}"
    inputs, x = backbones._inputs_and_normalization(input_shape, normalization, name)
    x = _bn_relu(_conv(x, _make_divisible(32 * width_multiplier), 3, "stem_conv", weight_decay),
                 "stem", relu6=True)
    for stage, ((expansion, channels, _, stride), count) in enumerate(
            zip(_MOBILENET_V2_STAGES, repeats)):
        out_channels = _make_divisible(channels * width_multiplier)
        for block in range(count):
            prefix = f"stage{stage + 1}_block{block + 1}"
            block_stride = stride if block == 0 else 1
            in_channels = int(x.shape[-1])
            out = x
            if expansion != 1:
                out = _bn_relu(_conv(out, in_channels * expansion, 1, f"{prefix}_expand",
                                     weight_decay), f"{prefix}_expand", relu6=True)
            out = layers.DepthwiseConv2D(
                3, strides=block_stride, padding="same", use_bias=False,
                name=f"{prefix}_depthwise", depthwise_regularizer=_l2(weight_decay),
            )(out)
            out = _bn_relu(out, f"{prefix}_depthwise", relu6=True)
            out = _conv(out, out_channels, 1, f"{prefix}_project", weight_decay)
            out = layers.BatchNormalization(name=f"{prefix}_project_bn")(out)
            if block_stride == 1 and in_channels == out_channels:
                out = layers.Add(name=f"{prefix}_add")([x, out])
            x = out
    final = _make_divisible(last_channels * max(1.0, width_multiplier))
    x = _bn_relu(_conv(x, final, 1, "final_conv", weight_decay), "final", relu6=True)
    return _head(x, inputs, num_classes, weight_decay, name)


def _presets() -> dict[str, dict[str, Callable[..., keras.Model]]]:
    return {
        "small": {
            "resnet": lambda **kw: resnet((1, 1, 1), 16, name="resnet8", **kw),
            "wide_resnet": lambda **kw: backbones.wide_resnet(10, 2, name="wrn_10_2", **kw),
            "densenet": lambda **kw: densenet((2, 2, 2), 8, name="densenet_bc16_k8", **kw),
            "vgg": lambda **kw: backbones.vgg(11, width_multiplier=0.125, name="vgg11_w0.125",
                                              **kw),
            "mobilenet": lambda **kw: mobilenet_v2(
                0.25, (1,) * 7, 256, name="mobilenet_v2_0.25_short", **kw),
        },
        "paper": {
            "resnet": lambda **kw: resnet((3, 4, 6, 3), 64, bottleneck=True, name="resnet50", **kw),
            "wide_resnet": lambda **kw: backbones.wide_resnet(28, 10, **kw),
            "densenet": lambda **kw: densenet((6, 12, 24, 16), 32, name="densenet121", **kw),
            "vgg": lambda **kw: backbones.vgg(16, **kw),
            "mobilenet": lambda **kw: mobilenet_v2(1.0, name="mobilenet_v2", **kw),
        },
    }


def build(
    kind: str,
    preset: str = "small",
    *,
    input_shape: Sequence[int] = (32, 32, 3),
    num_classes: int = 10,
    normalization: Normalization = "cifar10",
    weight_decay: float = 0.0,
    name: str | None = None,
) -> keras.Model:
    """Builds one surrogate of the paper's five kinds.

    Args:
        kind: one of `SURROGATE_KINDS` ("resnet", "wide_resnet", "densenet",
            "vgg", "mobilenet").
        preset: "small" (CPU variants) or "paper" (the paper's sizes); see the
            module docstring for the architectures.
        input_shape: (height, width, channels) of the [0, 1] images.
        num_classes: number of logits.
        normalization: see `keras_robust.backbones.small_cnn`.
        weight_decay: L2 factor on kernels.
        name: the model's name (default: the architecture's, e.g. "resnet8").

    Returns:
        An untrained functional `keras.Model` from images to float32 logits.

    Example:

    >>> model = build("densenet", "small", num_classes=10)
    >>> model.name
    'densenet_bc16_k8'
    """
    check_choice(kind, SURROGATE_KINDS, "surrogate kind")
    check_choice(preset, PRESETS, "surrogate preset")
    model = _presets()[preset][kind](
        input_shape=tuple(input_shape), num_classes=num_classes, normalization=normalization,
        weight_decay=weight_decay,
    )
    if name is not None:
        model.name = name
    return model


def multiply_adds(model: keras.Model) -> int:
    """Multiply-adds of one forward pass on one image (convolutions and dense layers).

    A rough cost measure to choose surrogates by: an attack step costs about
    three forward passes per surrogate.

    Args:
        model: a built functional Keras model.

    Returns:
        The number of multiply-adds.

    Example:

    >>> multiply_adds(build("resnet")) < 20_000_000
    True
    """
    total = 0
    for layer in model.layers:
        if isinstance(layer, layers.DepthwiseConv2D):
            _, h, w, c = layer.output.shape
            total += h * w * c * int(np.prod(layer.kernel_size))
        elif isinstance(layer, layers.Conv2D):
            _, h, w, c = layer.output.shape
            total += h * w * c * int(np.prod(layer.kernel_size)) * int(layer.input.shape[-1])
        elif isinstance(layer, layers.Dense):
            total += int(layer.input.shape[-1]) * int(layer.units)
    return int(total)


def train_surrogates(
    kinds: Sequence[str | keras.Model],
    train_dataset: tf.data.Dataset,
    epochs: int,
    *,
    directory: str | None = None,
    preset: str = "small",
    num_classes: int = 10,
    normalization: Normalization = "cifar10",
    learning_rate: float = 0.05,
    weight_decay: float = 5e-4,
    validation_data: Any = None,
    strategy: tf.distribute.Strategy | None = None,
    seed: int | None = 0,
    name_suffix: str = "",
    verbose: int = 2,
) -> list[keras.Model]:
    """Trains surrogates (plain training, SGD with a cosine schedule) and saves them.

    Each surrogate is saved as `directory/<name>.keras` when it finishes; a
    surrogate whose file exists already is loaded instead of trained, so a
    killed run continues where it stopped.

    Args:
        kinds: surrogate kinds (see `SURROGATE_KINDS`) or untrained Keras
            models mapping [0, 1] images to logits.
        train_dataset: batched `(float32 images in [0, 1], int labels)`, e.g.
            `keras_robust.data.load(source, "train", augment=True)`.
        epochs: training epochs per surrogate.
        directory: where to save (and look for) the trained models; None
            keeps them in memory only.
        preset: "small" or "paper" (see `build`).
        num_classes: number of classes.
        normalization: see `keras_robust.backbones.small_cnn`.
        learning_rate: initial SGD learning rate (momentum 0.9, cosine to 0).
        weight_decay: decoupled weight decay.
        validation_data: passed to `fit`.
        strategy: build and train inside this distribution strategy.
        seed: with an int, `keras.utils.set_random_seed(seed + i)` before
            surrogate i (this sets Python's, NumPy's and TensorFlow's global
            seeds); None leaves the seeds alone.
        name_suffix: appended to every model name (and file name), e.g.
            "_test" for a second, independent ensemble.
        verbose: `fit` verbosity.

    Returns:
        The trained surrogates (the backbones, not wrapped), in `kinds` order.

    Raises:
        ValueError: an unknown kind, names that collide, or bad arguments.

    Example:

    >>> train = keras_robust.data.load(source, "train", augment=True)
    >>> models = train_surrogates(["resnet", "vgg"], train, epochs=3, directory="runs/sur")
    """
    from keras_robust import experiment
    from keras_robust.defenses.base import RobustModel

    epochs = check_positive_int(epochs, "epochs")
    kinds = list(kinds)
    if not kinds:
        raise ValueError("`kinds` is empty; expected surrogate kinds such as ['resnet', 'vgg'].")
    if not isinstance(train_dataset, tf.data.Dataset):
        raise TypeError(
            "`train_dataset` must be a batched tf.data.Dataset of (images, labels), got "
            f"{type(train_dataset).__name__}; use keras_robust.data.from_arrays for arrays."
        )
    image_spec = train_dataset.element_spec[0]
    if image_spec.shape.rank != 4 or None in image_spec.shape[1:]:
        raise ValueError(
            "`train_dataset` must yield batched images [batch, H, W, C] with known H, W, C, got "
            f"{image_spec.shape}."
        )
    input_shape = tuple(int(d) for d in image_spec.shape[1:])
    steps = int(train_dataset.cardinality())
    if steps < 1:
        steps = sum(1 for _ in train_dataset)
    strategy = strategy or tf.distribute.get_strategy()
    models, names = [], set()
    for index, kind in enumerate(kinds):
        if seed is not None:
            keras.utils.set_random_seed(int(seed) + index)
        with strategy.scope():
            if isinstance(kind, keras.Model):
                backbone = kind
            else:
                backbone = build(kind, preset, input_shape=input_shape, num_classes=num_classes,
                                 normalization=normalization)
            if name_suffix:
                backbone.name = backbone.name + name_suffix
        if backbone.name in names:
            backbone.name = f"{backbone.name}_{index}"
        names.add(backbone.name)
        path = os.path.join(directory, f"{backbone.name}.keras") if directory else None
        if path and os.path.isfile(path):
            print(f"surrogate {backbone.name}: loading {path} (already trained)", file=sys.stderr)
            with strategy.scope():
                models.append(keras.saving.load_model(path, safe_mode=True))
            continue
        with strategy.scope():
            model = RobustModel(backbone, seed=None if seed is None else int(seed) + index)
            model.compile(
                optimizer=experiment.sgd(epochs, steps, learning_rate, "cosine",
                                         weight_decay=weight_decay),
                metrics=["accuracy"],
            )
        print(f"surrogate {backbone.name}: training {epochs} epochs "
              f"({multiply_adds(backbone) / 1e6:.1f}M multiply-adds per image)", file=sys.stderr)
        model.fit(train_dataset, epochs=epochs, validation_data=validation_data, verbose=verbose)
        if path:
            os.makedirs(directory, exist_ok=True)
            temporary = f"{path}.tmp-{os.getpid()}.keras"
            backbone.save(temporary)
            os.replace(temporary, path)
        models.append(backbone)
    return models


def load_surrogates(directory: str, names: Sequence[str] | None = None) -> list[keras.Model]:
    """Loads surrogates saved by `train_surrogates` (every `.keras` file, sorted by name).

    Args:
        directory: the folder `train_surrogates` wrote.
        names: model names to load (file names without `.keras`); None loads all.

    Returns:
        The models.

    Raises:
        FileNotFoundError: the folder or a named model is missing.

    Example:

    >>> models = load_surrogates("runs/surrogates", ["resnet8", "vgg11_w0.125"])
    """
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"No surrogate folder at {directory!r}.")
    if names is None:
        names = sorted(f[:-len(".keras")] for f in os.listdir(directory)
                       if f.endswith(".keras") and ".tmp-" not in f)
        if not names:
            raise FileNotFoundError(f"No .keras surrogates in {directory!r}.")
    models = []
    for name in names:
        path = os.path.join(directory, f"{name}.keras")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"No surrogate {name!r} at {path!r}.")
        models.append(keras.saving.load_model(path, safe_mode=True))
    return models


__all__ = [
    "PRESETS", "SURROGATE_KINDS", "build", "densenet", "load_surrogates", "mobilenet_v2",
    "multiply_adds", "resnet", "train_surrogates",
]
