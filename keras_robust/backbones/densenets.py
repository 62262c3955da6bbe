"""DenseNet-BC for small images."""
from __future__ import annotations

from typing import Sequence

import keras
from keras import layers

from keras_robust._validation import check_positive_int
from keras_robust.backbones._layers import (
    Normalization,
    _bn_relu,
    _conv,
    _head,
    _inputs_and_normalization,
)

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
        normalization: see `small_cnn`.
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
    inputs, x = _inputs_and_normalization(input_shape, normalization, name)
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
