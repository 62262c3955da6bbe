"""`activation=`: the default builds today's models exactly; "swish" is swish everywhere."""
from __future__ import annotations

import hashlib
import json

import keras
import numpy as np
import pytest

from keras_robust import backbones

# Small variants of every backbone that takes `activation`, on 16x16 images.
BUILDERS = {
    "small_cnn": lambda **kw: backbones.small_cnn((16, 16, 3), 10, filters=(8, 8, 8), **kw),
    "vgg": lambda **kw: backbones.vgg(11, (16, 16, 3), 10, width_multiplier=0.125, **kw),
    "preact_resnet18": lambda **kw: backbones.preact_resnet18((16, 16, 3), 10, **kw),
    "wide_resnet": lambda **kw: backbones.wide_resnet(10, 1, (16, 16, 3), 10, **kw),
    "resnet": lambda **kw: backbones.resnet((1, 1), 8, input_shape=(16, 16, 3), **kw),
    "resnet_bottleneck": lambda **kw: backbones.resnet(
        (1, 1), 8, bottleneck=True, input_shape=(16, 16, 3), **kw),
}

# sha256[:16] of the (layer name, layer class) list and the (weight path, shape) list of each
# builder above, computed with the code before `activation` existed (commit 76a3ee9).
BEFORE_ACTIVATION = {
    "small_cnn": "8d7716defd26edfe",
    "vgg": "2fe5c8f532878158",
    "preact_resnet18": "ba7f7b5e8edec8a5",
    "wide_resnet": "af253684920a316a",
    "resnet": "531d5004bfe4993e",
    "resnet_bottleneck": "aa03c1c6d140d3c8",
}


def _architecture(model: keras.Model) -> str:
    layers = [(layer.name, type(layer).__name__) for layer in model.layers]
    weights = [(w.path, tuple(w.shape)) for w in model.weights]
    return hashlib.sha256(json.dumps([layers, weights]).encode()).hexdigest()[:16]


def _seeded(build, **kwargs) -> keras.Model:
    keras.utils.set_random_seed(0)
    return build(**kwargs)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_the_default_activation_builds_the_models_of_before(name):
    default = _seeded(BUILDERS[name])
    assert _architecture(default) == BEFORE_ACTIVATION[name]
    explicit = _seeded(BUILDERS[name], activation="relu")
    assert explicit.get_config() == default.get_config()
    for a, b in zip(default.get_weights(), explicit.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_swish_replaces_every_relu_and_keeps_the_weights(name):
    relu = _seeded(BUILDERS[name])
    swish = _seeded(BUILDERS[name], activation="swish")
    relu_names = [layer.name for layer in relu.layers if isinstance(layer, keras.layers.ReLU)]
    assert relu_names
    assert not any(isinstance(layer, keras.layers.ReLU) for layer in swish.layers)
    activations = [layer for layer in swish.layers if isinstance(layer, keras.layers.Activation)]
    assert [layer.name for layer in activations] == [
        n.replace("_relu", "_swish") for n in relu_names]
    assert [w.path for w in swish.weights] == [w.path for w in relu.weights]
    for a, b in zip(relu.get_weights(), swish.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    # Each activation layer's output is x * sigmoid(x) of its input on a probe.
    probe = keras.Model(swish.input, [[layer.input, layer.output] for layer in activations])
    x = np.random.default_rng(0).random((2, 16, 16, 3), dtype=np.float32)
    for inputs, outputs in probe(x, training=False):
        inputs = np.asarray(inputs, np.float64)
        np.testing.assert_allclose(outputs, inputs / (1.0 + np.exp(-inputs)), rtol=1e-5, atol=1e-6)


def test_swish_is_saved_in_the_config_and_reloads(tmp_path):
    model = _seeded(BUILDERS["wide_resnet"], activation="swish")
    config = model.get_layer("final_swish").get_config()
    assert config["activation"] in ("silu", "swish")
    path = str(tmp_path / "swish.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    x = np.random.default_rng(1).random((2, 16, 16, 3), dtype=np.float32)
    np.testing.assert_allclose(loaded(x, training=False), model(x, training=False), atol=1e-6)
    assert backbones.get("wide_resnet", depth=10, width=1, input_shape=(16, 16, 3),
                         activation="gelu").get_layer("final_gelu") is not None


def test_a_swish_backbone_trains_one_step():
    model = _seeded(BUILDERS["wide_resnet"], activation="swish")
    model.compile(keras.optimizers.SGD(0.1),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.default_rng(2).random((8, 16, 16, 3), dtype=np.float32)
    y = np.arange(8) % 10
    before = [w.copy() for w in model.get_weights()]
    loss = model.train_on_batch(x, y)
    assert np.isfinite(loss)
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


@pytest.mark.parametrize("bad", ["swishh", "ReLU", "", None, 3])
def test_an_unknown_activation_is_refused_by_name(bad):
    for name in ("small_cnn", "wide_resnet", "resnet"):
        with pytest.raises(ValueError, match=r"Unknown activation|`activation` must be the name"):
            BUILDERS[name](activation=bad)
