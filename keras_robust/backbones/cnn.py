"""Plain convolutional backbones: the CPU workhorse `small_cnn` and VGG."""
from __future__ import annotations

from typing import Sequence

import keras
from keras import layers

from keras_robust._validation import check_positive_int
from keras_robust.backbones._layers import (
    Normalization,
    _conv_bn_relu,
    _head,
    _inputs_and_normalization,
    check_activation,
)


def small_cnn(
    input_shape: Sequence[int] = (32, 32, 3),
    num_classes: int = 10,
    filters: Sequence[int] = (32, 64, 128),
    normalization: Normalization = "cifar10",
    weight_decay: float = 0.0,
    name: str = "small_cnn",
    activation: str = "relu",
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
        activation: "relu" (default), "swish" or any other name
            `keras.activations.get` knows, after every BatchNorm (see
            `keras_robust.backbones.preact_resnet18`).

    Returns:
        A functional `keras.Model` from images to float32 logits.

    Example:

    >>> model = small_cnn(num_classes=10)
    >>> model.output_shape
    (None, 10)
    """
    num_classes = check_positive_int(num_classes, "num_classes", 2)
    activation = check_activation(activation)
    inputs, x = _inputs_and_normalization(input_shape, normalization, name)
    for block, width in enumerate(filters):
        for conv in range(2):
            x = _conv_bn_relu(x, width, f"block{block + 1}_{conv + 1}", weight_decay,
                              activation=activation)
        x = layers.MaxPooling2D(2, name=f"block{block + 1}_pool")(x)
    return _head(x, inputs, num_classes, weight_decay, name)


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
    activation: str = "relu",
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
        activation: see `small_cnn`.

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
    activation = check_activation(activation)
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
            x = _conv_bn_relu(x, filters, f"conv{index + 1}", weight_decay, activation=activation)
    return _head(x, inputs, num_classes, weight_decay, name)


def vgg16(
    input_shape: Sequence[int] = (32, 32, 3),
    num_classes: int = 10,
    normalization: Normalization = "cifar10",
    weight_decay: float = 0.0,
    name: str = "vgg16",
) -> keras.Model:
    """VGG-16 with BatchNorm; see `vgg` for the arguments.

    `vgg(16, ...)` at full width (`width_multiplier=1`): 13 3x3 conv +
    BatchNorm + ReLU layers in five blocks (64 to 512 filters), 2x2
    max-pooling after each block while the feature map is at least 2 px
    high, then global average pooling and the float32 logits layer.

    Args:
        input_shape: (height, width, channels) of the [0, 1] images.
        num_classes: number of logits (>= 2).
        normalization: see `small_cnn` (its statistics must match the
            channels: "mnist" for 1-channel images).
        weight_decay: L2 factor on kernels (0 for none).
        name: the model's name.

    Returns:
        A functional `keras.Model` from images to float32 logits.

    Raises:
        TypeError, ValueError: `num_classes` not an integer >= 2, a bad
            `input_shape`, or normalization statistics for another number of
            channels.

    Example:

    >>> model = vgg16(num_classes=10)
    >>> model.output_shape
    (None, 10)
    >>> vgg16(input_shape=(28, 28, 1), normalization="mnist").output_shape
    (None, 10)
    """
    return vgg(16, input_shape, num_classes, 1.0, normalization, weight_decay, name)
