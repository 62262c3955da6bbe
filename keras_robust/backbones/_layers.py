"""The building blocks every backbone shares.

The input and its normalisation, the L2 kernel regulariser, the convolution,
BatchNorm-ReLU (or ReLU6) and the head (global average pooling and float32
logits). Layer names are part of saved `.keras` files and of seeded runs, so
each helper names its layers exactly as the backbones always have.
"""
from __future__ import annotations

from typing import Sequence

import keras
from keras import layers

from keras_robust._validation import check_choice

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


def _l2(weight_decay: float):
    return keras.regularizers.L2(weight_decay) if weight_decay else None


def _conv(
    x, filters: int, kernel: int, name: str, weight_decay: float, stride: int = 1,
    padding: str = "same",
):
    return layers.Conv2D(
        filters, kernel, strides=stride, padding=padding, use_bias=False, name=name,
        kernel_regularizer=_l2(weight_decay),
    )(x)


def check_activation(activation: str) -> str:
    """Returns `activation` if Keras knows the name ("relu", "swish", "gelu", ...).

    Only names are accepted (not callables), so models keep loading with
    `safe_mode=True` and their configs stay plain JSON.
    """
    if not isinstance(activation, str) or not activation:
        raise ValueError(
            f"`activation` must be the name of a Keras activation such as 'relu' or 'swish', "
            f"got {activation!r}."
        )
    try:
        keras.activations.get(activation)
    except (ValueError, TypeError):
        raise ValueError(
            f"Unknown activation {activation!r}: not a name `keras.activations.get` knows. "
            "Use 'relu' (the default) or 'swish' (the leaderboard recipe), or another Keras "
            "activation name such as 'gelu' or 'elu'."
        ) from None
    return activation


def _activate(x, name: str, activation: str = "relu", relu6: bool = False, suffix: str = ""):
    """ReLU (or ReLU6) as `{name}_relu{suffix}`, else `keras.layers.Activation` as
    `{name}_{activation}{suffix}`.

    The default keeps the `ReLU` layers and names every saved model has, so
    `activation="relu"` builds exactly the models built before the argument.
    """
    if activation == "relu" or relu6:
        return layers.ReLU(6.0 if relu6 else None, name=f"{name}_relu{suffix}")(x)
    return layers.Activation(activation, name=f"{name}_{activation}{suffix}")(x)


def _bn_relu(x, name: str, relu6: bool = False, activation: str = "relu"):
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return _activate(x, name, activation, relu6)


def _conv_bn_relu(
    x, filters: int, name: str, weight_decay: float, stride: int = 1, activation: str = "relu"
):
    """A 3x3 convolution `{name}_conv`, then `{name}_bn` and `{name}_relu` (or the activation)."""
    return _bn_relu(
        _conv(x, filters, 3, f"{name}_conv", weight_decay, stride), name, activation=activation
    )


def _head(x, inputs, num_classes: int, weight_decay: float, name: str) -> keras.Model:
    """Global average pooling ("features") and the logits; returns the model."""
    x = layers.GlobalAveragePooling2D(name="features")(x)
    # float32 so logits (and every loss built on them) stay float32 under mixed precision.
    logits = layers.Dense(
        num_classes, name="logits", dtype="float32", kernel_regularizer=_l2(weight_decay)
    )(x)
    return keras.Model(inputs, logits, name=name)
