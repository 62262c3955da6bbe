"""Image classifiers that map [0, 1] NHWC images to logits.

Every backbone owns its normalisation (a `Normalization` layer right after the
input), so attacks and defences only ever see [0, 1] pixels, and its last layer
computes in float32, so logits stay float32 under a `mixed_float16` policy.

Example:

```python
import keras_robust as kr
model = kr.backbones.small_cnn(input_shape=(32, 32, 3), num_classes=10)
same = kr.backbones.get("small_cnn", num_classes=10)
```
"""
from __future__ import annotations

from typing import Callable, Sequence

import keras
from keras import layers

from keras_robust._validation import check_choice, check_positive_int

# Per-channel mean and standard deviation of the training sets, on [0, 1] pixels.
NORMALIZATION_STATS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "svhn": ((0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970)),
    "mnist": ((0.1307,), (0.3081,)),
    "fashion_mnist": ((0.2860,), (0.3530,)),
}

Normalization = str | tuple[Sequence[float], Sequence[float]] | None


def _inputs_and_normalization(
    input_shape: Sequence[int], normalization: Normalization, name: str
) -> tuple[keras.KerasTensor, keras.KerasTensor]:
    if len(input_shape) != 3:
        raise ValueError(f"`input_shape` must be (height, width, channels), got {input_shape}.")
    inputs = keras.Input(shape=tuple(input_shape), dtype="float32", name="images")
    if normalization is None:
        return inputs, inputs
    if isinstance(normalization, str):
        check_choice(normalization, NORMALIZATION_STATS, "normalization")
        mean, std = NORMALIZATION_STATS[normalization]
    else:
        mean, std = normalization
    channels = input_shape[-1]
    if len(mean) == 1 and channels > 1:
        mean, std = tuple(mean) * channels, tuple(std) * channels
    if len(mean) != channels or len(std) != channels:
        raise ValueError(
            f"normalization has {len(mean)} channel statistics but the images have {channels} "
            "channels; pass (mean, std) with one value per channel or normalization=None."
        )
    variance = [float(s) ** 2 for s in std]
    x = layers.Normalization(mean=list(mean), variance=variance, name=f"{name}_normalize")(inputs)
    return inputs, x


def _conv_bn_relu(x, filters: int, name: str, weight_decay: float, stride: int = 1):
    x = layers.Conv2D(
        filters, 3, strides=stride, padding="same", use_bias=False, name=f"{name}_conv",
        kernel_regularizer=_l2(weight_decay),
    )(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def _l2(weight_decay: float):
    return keras.regularizers.L2(weight_decay) if weight_decay else None


def _logits(x, num_classes: int, weight_decay: float):
    # float32 so logits (and every loss built on them) stay float32 under mixed precision.
    return layers.Dense(
        num_classes, name="logits", dtype="float32", kernel_regularizer=_l2(weight_decay)
    )(x)


def small_cnn(
    input_shape: Sequence[int] = (32, 32, 3),
    num_classes: int = 10,
    filters: Sequence[int] = (32, 64, 128),
    normalization: Normalization = "cifar10",
    weight_decay: float = 0.0,
    name: str = "small_cnn",
) -> keras.Model:
    """The CPU workhorse: three blocks of two 3x3 conv + BatchNorm + ReLU.

    Blocks have 32, 64 and 128 filters and end with 2x2 max-pooling; then
    global average pooling and a dense layer give the logits. Every acceptance
    figure of this library that runs on a CPU uses it.

    Args:
        input_shape: (height, width, channels) of the [0, 1] images.
        num_classes: number of logits.
        filters: filters of the three blocks.
        normalization: a key of `NORMALIZATION_STATS`, `(mean, std)` per
            channel on [0, 1] pixels, or None.
        weight_decay: L2 factor on kernels (0 for none).
        name: the model's name.

    Returns:
        A functional `keras.Model` from images to float32 logits.

    Example:

    >>> model = small_cnn(num_classes=10)
    >>> model.output_shape
    (None, 10)
    """
    num_classes = check_positive_int(num_classes, "num_classes", 2)
    inputs, x = _inputs_and_normalization(input_shape, normalization, name)
    for block, width in enumerate(filters):
        for conv in range(2):
            x = _conv_bn_relu(x, width, f"block{block + 1}_{conv + 1}", weight_decay)
        x = layers.MaxPooling2D(2, name=f"block{block + 1}_pool")(x)
    x = layers.GlobalAveragePooling2D(name="features")(x)
    return keras.Model(inputs, _logits(x, num_classes, weight_decay), name=name)


def _preact_block(x, filters: int, stride: int, name: str, weight_decay: float, dropout: float = 0.0):
    """A pre-activation residual block (He et al. 2016), as used by PreAct-ResNet and WRN."""
    out = layers.BatchNormalization(name=f"{name}_bn1")(x)
    out = layers.ReLU(name=f"{name}_relu1")(out)
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        shortcut = layers.Conv2D(
            filters, 1, strides=stride, use_bias=False, name=f"{name}_shortcut",
            kernel_regularizer=_l2(weight_decay),
        )(out)
    out = layers.Conv2D(
        filters, 3, strides=stride, padding="same", use_bias=False, name=f"{name}_conv1",
        kernel_regularizer=_l2(weight_decay),
    )(out)
    out = layers.BatchNormalization(name=f"{name}_bn2")(out)
    out = layers.ReLU(name=f"{name}_relu2")(out)
    if dropout:
        out = layers.Dropout(dropout, name=f"{name}_dropout")(out)
    out = layers.Conv2D(
        filters, 3, padding="same", use_bias=False, name=f"{name}_conv2",
        kernel_regularizer=_l2(weight_decay),
    )(out)
    return layers.Add(name=f"{name}_add")([out, shortcut])


def preact_resnet18(
    input_shape: Sequence[int] = (32, 32, 3),
    num_classes: int = 10,
    normalization: Normalization = "cifar10",
    weight_decay: float = 0.0,
    name: str = "preact_resnet18",
) -> keras.Model:
    """PreAct-ResNet-18 for 32x32 images (He et al., "Identity mappings", 2016).

    Four stages of two pre-activation blocks with 64, 128, 256 and 512
    filters; the backbone of most fast adversarial-training papers.

    Args:
        input_shape: (height, width, channels) of the [0, 1] images.
        num_classes: number of logits.
        normalization: see `small_cnn`.
        weight_decay: L2 factor on kernels.
        name: the model's name.

    Returns:
        A functional `keras.Model` from images to float32 logits.

    Example:

    >>> model = preact_resnet18(num_classes=100, normalization="cifar100")
    """
    num_classes = check_positive_int(num_classes, "num_classes", 2)
    inputs, x = _inputs_and_normalization(input_shape, normalization, name)
    x = layers.Conv2D(
        64, 3, padding="same", use_bias=False, name="stem_conv", kernel_regularizer=_l2(weight_decay)
    )(x)
    for stage, filters in enumerate((64, 128, 256, 512)):
        for block in range(2):
            stride = 2 if (stage > 0 and block == 0) else 1
            x = _preact_block(x, filters, stride, f"stage{stage + 1}_block{block + 1}", weight_decay)
    x = layers.BatchNormalization(name="final_bn")(x)
    x = layers.ReLU(name="final_relu")(x)
    x = layers.GlobalAveragePooling2D(name="features")(x)
    return keras.Model(inputs, _logits(x, num_classes, weight_decay), name=name)


def wide_resnet(
    depth: int = 28,
    width: int = 10,
    input_shape: Sequence[int] = (32, 32, 3),
    num_classes: int = 10,
    dropout: float = 0.0,
    normalization: Normalization = "cifar10",
    weight_decay: float = 0.0,
    name: str | None = None,
) -> keras.Model:
    """Wide ResNet WRN-depth-width (Zagoruyko & Komodakis, 2016).

    WRN-28-10 is the backbone of BAT and AFS, WRN-34-10 that of most
    robustness leaderboards. `depth` must be 6n + 4.

    Args:
        depth: total depth, 6n + 4 (28 or 34 in the papers).
        width: widening factor k (filters 16k, 32k, 64k).
        input_shape: (height, width, channels) of the [0, 1] images.
        num_classes: number of logits.
        dropout: dropout rate inside blocks (0 in the papers here).
        normalization: see `small_cnn`.
        weight_decay: L2 factor on kernels.
        name: the model's name (default "wrn_{depth}_{width}").

    Returns:
        A functional `keras.Model` from images to float32 logits.

    Example:

    >>> model = wide_resnet(28, 10)
    """
    num_classes = check_positive_int(num_classes, "num_classes", 2)
    depth = check_positive_int(depth, "depth", 10)
    width = check_positive_int(width, "width", 1)
    if (depth - 4) % 6:
        raise ValueError(f"Wide ResNet depth must be 6n + 4 (e.g. 28 or 34), got {depth}.")
    name = name or f"wrn_{depth}_{width}"
    blocks = (depth - 4) // 6
    inputs, x = _inputs_and_normalization(input_shape, normalization, name)
    x = layers.Conv2D(
        16, 3, padding="same", use_bias=False, name="stem_conv", kernel_regularizer=_l2(weight_decay)
    )(x)
    for stage, filters in enumerate((16 * width, 32 * width, 64 * width)):
        for block in range(blocks):
            stride = 2 if (stage > 0 and block == 0) else 1
            x = _preact_block(
                x, filters, stride, f"stage{stage + 1}_block{block + 1}", weight_decay, dropout
            )
    x = layers.BatchNormalization(name="final_bn")(x)
    x = layers.ReLU(name="final_relu")(x)
    x = layers.GlobalAveragePooling2D(name="features")(x)
    return keras.Model(inputs, _logits(x, num_classes, weight_decay), name=name)


_VGG_CONFIGS = {
    11: (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    13: (64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    16: (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
    19: (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
         512, 512, 512, 512, "M"),
}


def vgg(
    depth: int = 16,
    input_shape: Sequence[int] = (32, 32, 3),
    num_classes: int = 10,
    width_multiplier: float = 1.0,
    normalization: Normalization = "cifar10",
    weight_decay: float = 0.0,
    name: str | None = None,
) -> keras.Model:
    """VGG with BatchNorm for small images (Simonyan & Zisserman, 2014).

    The surrogate of the M-TLAT black-box attacks. `width_multiplier` < 1
    gives the narrow variants that train in minutes on a CPU.

    Args:
        depth: 11, 13, 16 or 19.
        input_shape: (height, width, channels) of the [0, 1] images.
        num_classes: number of logits.
        width_multiplier: scales every layer's filters.
        normalization: see `small_cnn`.
        weight_decay: L2 factor on kernels.
        name: the model's name (default "vgg{depth}").

    Returns:
        A functional `keras.Model` from images to float32 logits.

    Example:

    >>> surrogate = vgg(11, width_multiplier=0.25)
    """
    num_classes = check_positive_int(num_classes, "num_classes", 2)
    if depth not in _VGG_CONFIGS:
        raise ValueError(f"VGG depth must be one of {sorted(_VGG_CONFIGS)}, got {depth!r}.")
    if not width_multiplier > 0:
        raise ValueError(f"`width_multiplier` must be > 0, got {width_multiplier}.")
    name = name or f"vgg{depth}"
    inputs, x = _inputs_and_normalization(input_shape, normalization, name)
    pools = 0
    for index, item in enumerate(_VGG_CONFIGS[depth]):
        if item == "M":
            # Stop pooling once the feature map is 1x1 (small inputs such as MNIST).
            if x.shape[1] is not None and x.shape[1] >= 2:
                x = layers.MaxPooling2D(2, name=f"pool{pools + 1}")(x)
            pools += 1
        else:
            filters = max(8, int(round(item * width_multiplier)))
            x = _conv_bn_relu(x, filters, f"conv{index + 1}", weight_decay)
    x = layers.GlobalAveragePooling2D(name="features")(x)
    return keras.Model(inputs, _logits(x, num_classes, weight_decay), name=name)


def vgg16(
    input_shape: Sequence[int] = (32, 32, 3),
    num_classes: int = 10,
    normalization: Normalization = "cifar10",
    weight_decay: float = 0.0,
    name: str = "vgg16",
) -> keras.Model:
    """VGG-16 with BatchNorm; see `vgg` for the arguments.

    Example:

    >>> model = vgg16(num_classes=10)
    """
    return vgg(16, input_shape, num_classes, 1.0, normalization, weight_decay, name)


BACKBONES: dict[str, Callable[..., keras.Model]] = {
    "small_cnn": small_cnn,
    "preact_resnet18": preact_resnet18,
    "wide_resnet": wide_resnet,
    "wrn_28_10": lambda **kw: wide_resnet(28, 10, **kw),
    "wrn_34_10": lambda **kw: wide_resnet(34, 10, **kw),
    "vgg": vgg,
    "vgg16": vgg16,
}


def get(name: str, **kwargs) -> keras.Model:
    """Builds a backbone by name.

    Args:
        name: one of `BACKBONES` ("small_cnn", "preact_resnet18",
            "wide_resnet", "wrn_28_10", "wrn_34_10", "vgg", "vgg16").
        **kwargs: passed to the builder (`input_shape`, `num_classes`, ...).

    Returns:
        The backbone.

    Example:

    >>> model = get("small_cnn", num_classes=10)
    """
    check_choice(name, BACKBONES, "backbone")
    return BACKBONES[name](**kwargs)


def batchnorm_layers(model: keras.Model) -> list[keras.layers.BatchNormalization]:
    """Every BatchNormalization layer of a model, nested ones included.

    Args:
        model: any Keras model.

    Returns:
        The layers, in the model's order.

    Example:

    >>> len(batchnorm_layers(small_cnn(num_classes=10)))
    6
    """
    return [
        layer for layer in model._flatten_layers(include_self=False)
        if isinstance(layer, keras.layers.BatchNormalization)
    ]


def set_batchnorm_momentum(model: keras.Model, momentum: float) -> keras.Model:
    """Sets the momentum of every BatchNormalization layer of a model, in place.

    Keras' default is 0.99 (the moving statistics average about 100 steps);
    PyTorch's default `momentum=0.1` is 0.9 here. Call it before the first
    `fit`, since the value is read when the training step is traced. The
    momentum is part of each layer's config, so `.keras` files keep it.

    Args:
        model: a backbone.
        momentum: in [0, 1).

    Returns:
        The same model.

    Example:

    >>> model = set_batchnorm_momentum(small_cnn(num_classes=10), 0.9)
    """
    momentum = float(momentum)
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"`momentum` must be in [0, 1), got {momentum}.")
    layers_found = batchnorm_layers(model)
    if not layers_found:
        raise ValueError(f"Model {model.name!r} has no BatchNormalization layer.")
    for layer in layers_found:
        layer.momentum = momentum
    return model
