"""Backbones map [0, 1] images to float32 logits and own their normalisation."""
from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_robust import backbones


@pytest.mark.parametrize(
    "build",
    [
        lambda: backbones.small_cnn((32, 32, 3), 10),
        lambda: backbones.preact_resnet18((32, 32, 3), 10),
        lambda: backbones.wide_resnet(10, 1, (32, 32, 3), 10),
        lambda: backbones.vgg(11, (32, 32, 3), 10, width_multiplier=0.125),
        lambda: backbones.small_cnn((28, 28, 1), 10, normalization="mnist"),
    ],
)
def test_backbones_give_float32_logits(build):
    model = build()
    x = np.random.default_rng(0).random((2, *model.input_shape[1:]), dtype=np.float32)
    logits = model(x, training=False)
    assert logits.shape == (2, 10) and logits.dtype == "float32"
    assert any(isinstance(layer, keras.layers.Normalization) for layer in model.layers)


def test_small_cnn_is_three_blocks_of_two_convs():
    model = backbones.small_cnn()
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [c.filters for c in convs] == [32, 32, 64, 64, 128, 128]
    assert all(c.kernel_size == (3, 3) for c in convs)
    assert sum(isinstance(layer, keras.layers.MaxPooling2D) for layer in model.layers) == 3
    assert sum(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers) == 6


def test_wide_resnet_depth_rule_and_names():
    assert backbones.wide_resnet(28, 10).count_params() > 36_000_000
    with pytest.raises(ValueError, match="6n"):
        backbones.wide_resnet(27, 2)
    with pytest.raises(ValueError, match="small_cnn"):
        backbones.get("resnet_9000")


def test_mixed_precision_keeps_logits_float32():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = backbones.small_cnn((16, 16, 3), 10)
        logits = model(np.zeros((1, 16, 16, 3), np.float32))
        assert logits.dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_normalization_must_match_channels():
    with pytest.raises(ValueError, match="channel"):
        backbones.small_cnn((32, 32, 1), 10, normalization=((0.1, 0.2, 0.3), (1.0, 1.0, 1.0)))
    model = backbones.small_cnn((32, 32, 3), 10, normalization=None)
    assert not any(isinstance(layer, keras.layers.Normalization) for layer in model.layers)


@pytest.mark.parametrize(
    "build",
    [
        lambda: backbones.resnet((1, 1), 4, input_shape=(16, 16, 3), num_classes=5),
        lambda: backbones.resnet((1, 1), 4, bottleneck=True, input_shape=(16, 16, 3), num_classes=5),
        lambda: backbones.densenet((1, 1), 4, input_shape=(16, 16, 3), num_classes=5),
        lambda: backbones.mobilenet_v2(0.25, (1,) * 7, 32, input_shape=(16, 16, 3), num_classes=5),
    ],
)
def test_surrogate_architectures_live_in_backbones(build):
    from keras_robust.datacentric import surrogates

    assert surrogates.resnet is backbones.resnet
    assert surrogates.densenet is backbones.densenet
    assert surrogates.mobilenet_v2 is backbones.mobilenet_v2
    model = build()
    x = np.random.default_rng(0).random((2, 16, 16, 3), dtype=np.float32)
    logits = model(x, training=False)
    assert logits.shape == (2, 5) and logits.dtype == "float32"
    assert isinstance(model.layers[1], keras.layers.Normalization)


def test_registry_names_the_new_architectures():
    assert backbones.get("resnet20", input_shape=(16, 16, 3)).name == "resnet20"
    assert backbones.get("resnet", blocks=(1,), width=4).name == "resnet4"
    assert backbones.get("densenet", blocks=(1,), growth_rate=4).name == "densenet4"
    assert backbones.get("mobilenet_v2", width_multiplier=0.25, repeats=(1,) * 7,
                         last_channels=32).name == "mobilenet_v2_0.25"
    for name in ("resnet50", "densenet121"):
        assert name in backbones.BACKBONES
