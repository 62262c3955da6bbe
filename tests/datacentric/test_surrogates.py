"""Surrogate builders of the paper's five kinds and their training helper."""
from __future__ import annotations

import os

import keras
import numpy as np
import pytest

from keras_robust import data
from keras_robust.datacentric import surrogates


@pytest.mark.parametrize("kind", surrogates.SURROGATE_KINDS)
def test_small_surrogates_map_images_to_float32_logits_and_own_their_normalisation(kind, tmp_path):
    model = surrogates.build(kind, "small", num_classes=10)
    x = np.random.default_rng(0).random((2, 32, 32, 3), dtype=np.float32)
    logits = model(x, training=False)
    assert logits.shape == (2, 10) and logits.dtype == "float32"
    assert isinstance(model.layers[1], keras.layers.Normalization)
    assert surrogates.multiply_adds(model) < 50_000_000  # CPU-sized
    path = str(tmp_path / f"{model.name}.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(loaded(x, training=False), logits, rtol=1e-5, atol=1e-5)


def test_builders_follow_their_architecture_arguments():
    resnet20 = surrogates.resnet((3, 3, 3), 16)
    assert resnet20.name == "resnet20"
    convs = [l for l in resnet20.layers if isinstance(l, keras.layers.Conv2D) and l.kernel_size == (3, 3)]
    assert len(convs) == 19  # stem + 9 blocks x 2
    dense = surrogates.densenet((2, 2), growth_rate=4, compression=0.5, bottleneck=False,
                                input_shape=(16, 16, 3))
    concats = [l for l in dense.layers if isinstance(l, keras.layers.Concatenate)]
    # stem 2k = 8 maps, + 2 layers x k -> 16, transition halves -> 8, + 2 x k -> 16
    assert len(concats) == 4 and concats[-1].output.shape[-1] == 16
    mobile = surrogates.mobilenet_v2(0.5, repeats=(1, 1, 2, 1, 1, 1, 1), last_channels=64)
    depthwise = [l for l in mobile.layers if isinstance(l, keras.layers.DepthwiseConv2D)]
    assert len(depthwise) == 8
    assert any(isinstance(l, keras.layers.Add) for l in mobile.layers)  # identity shortcuts
    assert mobile.get_layer("features").input.shape[1:3] == (4, 4)
    with pytest.raises(ValueError, match="surrogate kind"):
        surrogates.build("inception")
    with pytest.raises(ValueError, match="preset"):
        surrogates.build("resnet", "huge")
    with pytest.raises(ValueError, match="7 block counts"):
        surrogates.mobilenet_v2(repeats=(1, 1))
    with pytest.raises(ValueError, match="compression"):
        surrogates.densenet(compression=0)


@pytest.mark.slow
def test_paper_presets_have_the_papers_sizes():
    expected = {"resnet": (23.0e6, 24.0e6), "wide_resnet": (36.0e6, 37.0e6),
                "densenet": (6.9e6, 7.1e6), "vgg": (14.5e6, 15.5e6), "mobilenet": (2.2e6, 2.4e6)}
    for kind, (low, high) in expected.items():
        model = surrogates.build(kind, "paper", num_classes=10)
        assert low < model.count_params() < high, (kind, model.count_params())
        assert model.output_shape == (None, 10)


def test_train_surrogates_saves_and_then_skips_finished_models(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (64, 16, 16, 3), dtype=np.uint8)
    y = rng.integers(0, 4, 64)
    train = data.from_arrays(x, y, batch_size=32, shuffle=True)
    directory = str(tmp_path / "surrogates")

    def dense(name):
        return keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Flatten(),
                                 keras.layers.Dense(4, name="logits")], name=name)

    models = surrogates.train_surrogates(["vgg", dense("custom"), dense("custom")], train,
                                         epochs=1, num_classes=4, directory=directory, verbose=0)
    names = [m.name for m in models]
    assert names == ["vgg11_w0.125", "custom", "custom_2"]
    assert sorted(os.listdir(directory)) == sorted(f"{n}.keras" for n in names)
    assert models[0].input_shape == (None, 16, 16, 3) and models[0].output_shape == (None, 4)
    again = surrogates.train_surrogates(["vgg"], train, epochs=1, num_classes=4,
                                        directory=directory, verbose=0)  # loaded, not trained
    for a, b in zip(again[0].weights, models[0].weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    loaded = surrogates.load_surrogates(directory)
    assert sorted(m.name for m in loaded) == sorted(names)
    suffixed = surrogates.train_surrogates([dense("custom")], train, epochs=1, num_classes=4,
                                           name_suffix="_test", verbose=0)
    assert suffixed[0].name == "custom_test"
    with pytest.raises(TypeError, match="tf.data.Dataset"):
        surrogates.train_surrogates(["vgg"], (x, y), epochs=1)
    with pytest.raises(FileNotFoundError, match="nothing"):
        surrogates.load_surrogates(directory, ["nothing"])
