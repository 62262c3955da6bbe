"""MobileNetV2 for small images."""
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
    _l2,
)

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
        normalization: see `small_cnn`.
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
    inputs, x = _inputs_and_normalization(input_shape, normalization, name)
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
