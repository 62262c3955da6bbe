"""Residual backbones: PreAct-ResNet-18, Wide ResNet and the post-activation ResNet."""
from __future__ import annotations

from typing import Sequence

import keras
from keras import layers

from keras_robust._validation import check_positive_int
from keras_robust.backbones._layers import (
    Normalization,
    _activate,
    _bn_relu,
    _conv,
    _head,
    _inputs_and_normalization,
    check_activation,
)


def _preact_block(
    x, filters: int, stride: int, name: str, weight_decay: float, dropout: float = 0.0,
    activation: str = "relu",
):
    """A pre-activation residual block (He et al. 2016), as used by PreAct-ResNet and WRN."""
    out = layers.BatchNormalization(name=f"{name}_bn1")(x)
    out = _activate(out, name, activation, suffix="1")
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        shortcut = _conv(out, filters, 1, f"{name}_shortcut", weight_decay, stride, padding="valid")
    out = _conv(out, filters, 3, f"{name}_conv1", weight_decay, stride)
    out = layers.BatchNormalization(name=f"{name}_bn2")(out)
    out = _activate(out, name, activation, suffix="2")
    if dropout:
        out = layers.Dropout(dropout, name=f"{name}_dropout")(out)
    out = _conv(out, filters, 3, f"{name}_conv2", weight_decay)
    return layers.Add(name=f"{name}_add")([out, shortcut])


def _preact_resnet(
    stem_filters: int,
    stage_filters: Sequence[int],
    blocks: int,
    input_shape: Sequence[int],
    num_classes: int,
    normalization: Normalization,
    weight_decay: float,
    name: str,
    dropout: float = 0.0,
    activation: str = "relu",
) -> keras.Model:
    """A 3x3 stem, stages of `blocks` pre-activation blocks, BN-ReLU and the head."""
    inputs, x = _inputs_and_normalization(input_shape, normalization, name)
    x = _conv(x, stem_filters, 3, "stem_conv", weight_decay)
    for stage, filters in enumerate(stage_filters):
        for block in range(blocks):
            stride = 2 if (stage > 0 and block == 0) else 1
            x = _preact_block(
                x, filters, stride, f"stage{stage + 1}_block{block + 1}", weight_decay, dropout,
                activation,
            )
    x = _bn_relu(x, "final", activation=activation)
    return _head(x, inputs, num_classes, weight_decay, name)


def preact_resnet18(
    input_shape: Sequence[int] = (32, 32, 3),
    num_classes: int = 10,
    normalization: Normalization = "cifar10",
    weight_decay: float = 0.0,
    name: str = "preact_resnet18",
    activation: str = "relu",
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
        activation: the activation of every block and of the head: "relu"
            (the default, `keras.layers.ReLU` layers) or "swish" (SiLU, the
            activation of the Gowal et al. / Rebuffi et al. leaderboard
            WRNs), or any other name `keras.activations.get` knows
            (`keras.layers.Activation` layers named `..._{activation}`).

    Returns:
        A functional `keras.Model` from images to float32 logits.

    Raises:
        ValueError: an activation name Keras does not know.

    Example:

    >>> model = preact_resnet18(num_classes=100, normalization="cifar100")
    >>> swish = preact_resnet18(activation="swish")
    >>> swish.get_layer("final_swish").get_config()["activation"]
    'silu'
    """
    num_classes = check_positive_int(num_classes, "num_classes", 2)
    activation = check_activation(activation)
    return _preact_resnet(
        64, (64, 128, 256, 512), 2, input_shape, num_classes, normalization, weight_decay, name,
        activation=activation,
    )


def wide_resnet(
    depth: int = 28,
    width: int = 10,
    input_shape: Sequence[int] = (32, 32, 3),
    num_classes: int = 10,
    dropout: float = 0.0,
    normalization: Normalization = "cifar10",
    weight_decay: float = 0.0,
    name: str | None = None,
    activation: str = "relu",
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
        activation: the activation of every block and of the head: "relu"
            (the default, `keras.layers.ReLU` layers) or "swish" (SiLU, the
            activation of the Gowal et al. / Rebuffi et al. leaderboard
            WRNs), or any other Keras activation name
            (see `preact_resnet18`).

    Returns:
        A functional `keras.Model` from images to float32 logits.

    Example:

    >>> model = wide_resnet(28, 10)
    >>> leaderboard_style = wide_resnet(10, 1, activation="swish")
    """
    num_classes = check_positive_int(num_classes, "num_classes", 2)
    depth = check_positive_int(depth, "depth", 10)
    width = check_positive_int(width, "width", 1)
    if (depth - 4) % 6:
        raise ValueError(f"Wide ResNet depth must be 6n + 4 (e.g. 28 or 34), got {depth}.")
    activation = check_activation(activation)
    return _preact_resnet(
        16, (16 * width, 32 * width, 64 * width), (depth - 4) // 6, input_shape, num_classes,
        normalization, weight_decay, name or f"wrn_{depth}_{width}", dropout, activation,
    )


def resnet(
    blocks: Sequence[int] = (1, 1, 1),
    width: int = 16,
    bottleneck: bool = False,
    input_shape: Sequence[int] = (32, 32, 3),
    num_classes: int = 10,
    normalization: Normalization = "cifar10",
    weight_decay: float = 0.0,
    name: str | None = None,
    activation: str = "relu",
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
        normalization: see `small_cnn`.
        weight_decay: L2 factor on kernels.
        name: the model's name (default "resnet{depth}").
        activation: the activation after the stem, inside the blocks and
            after each residual sum: "relu" (default), "swish" or any other
            Keras activation name (see `preact_resnet18`).

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
    activation = check_activation(activation)
    depth = (3 if bottleneck else 2) * sum(blocks) + 2
    name = name or f"resnet{depth}"
    inputs, x = _inputs_and_normalization(input_shape, normalization, name)
    x = _bn_relu(_conv(x, width, 3, "stem_conv", weight_decay), "stem", activation=activation)
    for stage, count in enumerate(blocks):
        for block in range(count):
            x = _post_block(
                x, width * 2**stage, 2 if (stage > 0 and block == 0) else 1, bottleneck,
                f"stage{stage + 1}_block{block + 1}", weight_decay, activation,
            )
    return _head(x, inputs, num_classes, weight_decay, name)


def _post_block(
    x, filters: int, stride: int, bottleneck: bool, prefix: str, weight_decay: float,
    activation: str,
):
    """A post-activation residual block: two 3x3 convs, or 1x1-3x3-1x1 (expansion 4)."""
    out_filters = filters * 4 if bottleneck else filters
    shortcut = x
    if stride != 1 or x.shape[-1] != out_filters:
        shortcut = _conv(x, out_filters, 1, f"{prefix}_shortcut", weight_decay, stride)
        shortcut = layers.BatchNormalization(name=f"{prefix}_shortcut_bn")(shortcut)
    if bottleneck:
        out = _bn_relu(_conv(x, filters, 1, f"{prefix}_conv1", weight_decay), f"{prefix}_1",
                       activation=activation)
        out = _bn_relu(_conv(out, filters, 3, f"{prefix}_conv2", weight_decay, stride),
                       f"{prefix}_2", activation=activation)
        out = _conv(out, out_filters, 1, f"{prefix}_conv3", weight_decay)
    else:
        out = _bn_relu(_conv(x, filters, 3, f"{prefix}_conv1", weight_decay, stride),
                       f"{prefix}_1", activation=activation)
        out = _conv(out, filters, 3, f"{prefix}_conv2", weight_decay)
    out = layers.BatchNormalization(name=f"{prefix}_out_bn")(out)
    return _activate(layers.Add(name=f"{prefix}_add")([out, shortcut]), prefix, activation)
