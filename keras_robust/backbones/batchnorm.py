"""BatchNormalization helpers that work on any backbone."""
from __future__ import annotations

import keras

from keras_robust._keras_compat import flatten_layers


def batchnorm_layers(model: keras.Model) -> list[keras.layers.BatchNormalization]:
    """Every BatchNormalization layer of a model, nested ones included.

    Args:
        model: any Keras model.

    Returns:
        The layers, in the model's order.

    Example:

    >>> from keras_robust.backbones import small_cnn
    >>> len(batchnorm_layers(small_cnn(num_classes=10)))
    6
    """
    return [
        layer for layer in flatten_layers(model)
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

    >>> from keras_robust.backbones import small_cnn
    >>> model = set_batchnorm_momentum(small_cnn(num_classes=10), 0.9)
    >>> sorted({layer.momentum for layer in batchnorm_layers(model)})
    [0.9]
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
