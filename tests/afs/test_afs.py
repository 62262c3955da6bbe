"""AFS: frozen extractors, eq. 5 by hand, feature order, export, and the tools."""
from __future__ import annotations

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_robust as kr
from keras_robust import afs


def _extractor(seed, width=6, classes=3, batchnorm=True):
    """A small classifier whose layer -2 is a named feature layer."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((6, 6, 1))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    if batchnorm:
        x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Flatten()(x)
    features = keras.layers.Dense(width, activation="relu", name="features")(x)
    return keras.Model(inputs, keras.layers.Dense(classes, name="logits")(features),
                       name=f"net{seed}")


def _data(n=32, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 6, 6, 1), dtype=np.float32), (np.arange(n) % 3).astype(np.int32)


def test_only_the_merger_changes_during_fit():
    extractors = [_extractor(1), _extractor(2, width=4)]
    before = [[w.copy() for w in e.get_weights()] for e in extractors]
    model = kr.AFSModel(extractors, alpha=0.5, epsilon=0.05, steps=2, seed=0)
    model.compile(optimizer=keras.optimizers.SGD(0.5, momentum=0.9))
    merger_before = [w.copy() for w in model.merger.get_weights()]
    x, y = _data()
    model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    for extractor, weights in zip(extractors, before):
        for a, b in zip(extractor.get_weights(), weights):  # incl. BatchNorm moving statistics
            np.testing.assert_array_equal(a, b)
    assert {id(w) for w in model.trainable_weights} == {id(w) for w in model.merger.weights}
    assert any(not np.array_equal(a, b) for a, b in zip(model.merger.get_weights(), merger_before))


@pytest.mark.parametrize("index", [0, 1, -1])
def test_warm_start_makes_the_stack_compute_that_extractors_logits(index):
    extractors = [_extractor(1, width=6), _extractor(2, width=4), _extractor(3, width=5)]
    model = kr.AFSModel(extractors, warm_start=index, steps=1)
    x, _ = _data(8)
    np.testing.assert_allclose(np.asarray(model(x)), np.asarray(extractors[index](x, training=False)),
                               rtol=1e-5, atol=1e-5)
    kernel = np.asarray(model.merger.kernel)
    rows = np.split(kernel, [6, 10])                 # the rows of each extractor's features
    for i, block in enumerate(rows):
        assert (np.any(block != 0) if i == index % 3 else np.all(block == 0))
    # the merger trains from there, and the setting survives a config round trip
    model.compile(optimizer=keras.optimizers.SGD(0.5))
    model.fit(x, np.arange(8) % 3, batch_size=4, epochs=1, verbose=0)
    assert not np.array_equal(np.asarray(model.merger.kernel), kernel)
    assert model.get_config()["warm_start"] == index


def test_warm_start_refuses_what_it_cannot_copy():
    extractors = [_extractor(1), _extractor(2)]
    with pytest.raises(ValueError, match="not an index"):
        kr.AFSModel(extractors, warm_start=2)
    with pytest.raises(TypeError, match="an extractor index"):
        kr.AFSModel(extractors, warm_start=True)
    with pytest.raises(ValueError, match="feature_layer=-2"):
        kr.AFSModel(extractors, warm_start=0, feature_layer=-3)
    inputs = keras.Input((6, 6, 1))
    features = keras.layers.Dense(4, name="features")(keras.layers.Flatten()(inputs))
    softmax_head = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(features))
    with pytest.raises(ValueError, match="linear Dense"):
        kr.AFSModel([extractors[0], softmax_head], warm_start=1)


def test_features_concatenate_in_extractor_order():
    extractors = [_extractor(1, width=6), _extractor(2, width=4), _extractor(3, width=5)]
    model = kr.AFSModel(extractors, steps=1)
    x, _ = _data(4)
    stacked = keras.Model(model.backbone.inputs, model.backbone.get_layer("features").output)(x)
    expected = np.concatenate(
        [keras.Model(e.inputs, e.get_layer("features").output)(x, training=False) for e in extractors],
        axis=-1)
    np.testing.assert_allclose(np.asarray(stacked), expected, atol=1e-6)
    assert [int(e.output_shape[-1]) for e in model.extractors] == [6, 4, 5]


def test_loss_matches_eq5_by_hand():
    extractors = [_extractor(1, batchnorm=False), _extractor(2, batchnorm=False)]
    alpha, eps = 0.3, 0.05
    model = kr.AFSModel(extractors, alpha=alpha, epsilon=eps, steps=3, random_start=False, seed=0)
    model.compile(optimizer=keras.optimizers.SGD(0.0))
    x, y = _data(8)
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    x_adv = kr.attacks.pgd(model.backbone, x, y, eps, eps / 4, 3, random_start=False)

    def cross_entropy(images):
        logits = model.backbone.predict(np.asarray(images), verbose=0)
        log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
        return -np.mean(log_probs[np.arange(len(y)), y])

    expected = alpha * cross_entropy(x) + (1 - alpha) * cross_entropy(x_adv)
    np.testing.assert_allclose(history.history["loss"][0], expected, rtol=1e-4)


def test_save_load_and_export_round_trips(tmp_path):
    model = kr.AFSModel([_extractor(1), _extractor(2)], epsilon=0.05, steps=1, seed=0)
    model.compile(optimizer="sgd")
    x, y = _data()
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    model.save(str(tmp_path / "afs.keras"))
    loaded = keras.saving.load_model(str(tmp_path / "afs.keras"), safe_mode=True)
    assert isinstance(loaded, kr.AFSModel) and len(loaded.extractors) == 2
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)
    model.export(str(tmp_path / "served"), verbose=False)
    served = tf.saved_model.load(str(tmp_path / "served"))
    np.testing.assert_allclose(served.serve(x).numpy(), model.predict(x, verbose=0), atol=1e-5)


def test_importance_ratios_sum_to_one_and_follow_the_weights(tmp_path):
    model = kr.AFSModel([_extractor(1, width=6), _extractor(2, width=4)], steps=1)
    kernel, bias = model.merger.get_weights()
    kernel[:6] = 3.0
    kernel[6:] = 1.0
    model.merger.set_weights([kernel, bias])
    ratios = afs.importance(model, plot=str(tmp_path / "importance.png"))
    np.testing.assert_allclose(ratios, [18 / 22, 4 / 22])
    assert os.path.getsize(tmp_path / "importance.png") > 0


def test_delta_z_grows_with_the_budget_and_curve_rules(tmp_path):
    model = _extractor(1)
    x, _ = _data(16)
    small, large = afs.delta_z(model, x, 1 / 255), afs.delta_z(model, x, 16 / 255)
    assert 0 < small < large
    curve = afs.delta_z_curve([model, model], x, budgets=[0.0, 0.01], epsilon=4 / 255,
                              plot=str(tmp_path / "dz.png"))
    assert [p["budget"] for p in curve] == [0.0, 0.01] and os.path.exists(tmp_path / "dz.png")
    points = [{"budget": b, "delta_z": d} for b, d in [(0, 10), (1, 6), (2, 4), (3, 3.5), (4, 3.2)]]
    assert afs.concave_budgets(points) == []          # convex everywhere: nothing to stack
    points = [{"budget": b, "delta_z": d} for b, d in [(0, 10), (1, 9.5), (2, 8.5), (3, 7)]]
    assert afs.concave_budgets(points) == [0, 1, 2, 3]


def test_train_extractors_is_resumable(tmp_path, monkeypatch):
    x, y = _data(32)
    dataset = kr.data.from_arrays(x, y, batch_size=16)
    builder = lambda: _extractor(1)  # noqa: E731
    first = afs.train_extractors(builder, [0.0, 2 / 255], dataset, epochs=1, steps=1,
                                 output_dir=str(tmp_path), verbose=0)
    assert os.path.exists(afs.extractor_path(str(tmp_path), 2 / 255))
    assert isinstance(first[0], kr.RobustModel) and isinstance(first[1], kr.PGDATModel)

    def refuse(*args, **kwargs):
        raise AssertionError("a finished extractor was trained again")

    monkeypatch.setattr(kr.RobustModel, "fit", refuse)
    again = afs.train_extractors(builder, [0.0, 2 / 255], dataset, epochs=1, steps=1,
                                 output_dir=str(tmp_path), verbose=0)
    np.testing.assert_allclose(again[1].predict(x, verbose=0), first[1].predict(x, verbose=0),
                               atol=1e-6)
    assert again[1].attack.epsilon == pytest.approx(2 / 255)


def _dropout_extractor(seed, width=6, classes=3):
    """Like `_extractor`, with BatchNorm and a Dropout(0.5) before the feature layer."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((6, 6, 1))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Flatten()(keras.layers.ReLU()(x))
    x = keras.layers.Dropout(0.5)(x)
    features = keras.layers.Dense(width, activation="relu", name="features")(x)
    return keras.Model(inputs, keras.layers.Dense(classes, name="logits")(features),
                       name=f"drop{seed}")


def test_frozen_extractors_run_in_inference_mode_whatever_the_training_flag():
    # Keras 3 passes the outer call's `training` to every nested layer, which once
    # switched the extractors' Dropout on (and BatchNorm to batch statistics) during
    # the merger's training: frozen extractors must always run in inference mode.
    extractors = [_dropout_extractor(1), _dropout_extractor(2, width=4)]
    for e in extractors:  # moving statistics away from their (0, 1) start
        bn = next(layer for layer in e.layers if isinstance(layer, keras.layers.BatchNormalization))
        bn.moving_mean.assign(np.full(4, 0.3, "float32"))
        bn.moving_variance.assign(np.full(4, 2.0, "float32"))
    model = kr.AFSModel(extractors, alpha=0.5, epsilon=0.05, steps=2, random_start=False, seed=0)
    x, y = _data(16)
    features = keras.Model(model.backbone.inputs, model.backbone.get_layer("features").output)
    reference = np.concatenate(   # each extractor alone, in inference mode
        [keras.Model(e.inputs, e.get_layer("features").output)(x, training=False) for e in extractors],
        axis=-1)
    for training in (False, True):
        np.testing.assert_allclose(np.asarray(features(x, training=training)), reference, atol=1e-6)
        np.testing.assert_allclose(np.asarray(model.backbone(x, training=training)),
                                   np.asarray(model.backbone(x, training=False)), atol=1e-6)
    # One train step: the merger's gradient is that of eq. 5 on the inference-mode
    # features (no dropout noise), so two models from the same weights take the same
    # step, equal to a hand-computed one; the BN moving statistics do not move.
    stats = [[w.copy() for w in e.get_weights()] for e in extractors]
    kernel, bias = (w.copy() for w in model.merger.get_weights())
    model.compile(optimizer=keras.optimizers.SGD(1.0))
    x_adv = np.asarray(kr.attacks.pgd(model.backbone, x, y, 0.05, 0.05 / 4, 2, random_start=False))
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False)
    for e, weights in zip(extractors, stats):
        for a, b in zip(e.get_weights(), weights):
            np.testing.assert_array_equal(a, b)

    def grad(images):  # mean CE of a linear merger on fixed features, by hand (NumPy)
        f = np.concatenate([keras.Model(e.inputs, e.get_layer("features").output)(
            images, training=False) for e in extractors], -1)
        logits = f @ kernel + bias
        p = np.exp(logits - logits.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        d = (p - np.eye(3)[y]) / len(y)
        return f.T @ d, d.sum(0)

    (gk_clean, gb_clean), (gk_adv, gb_adv) = grad(x), grad(x_adv)
    np.testing.assert_allclose(model.merger.get_weights()[0],
                               kernel - (0.5 * gk_clean + 0.5 * gk_adv), atol=1e-5)
    np.testing.assert_allclose(model.merger.get_weights()[1],
                               bias - (0.5 * gb_clean + 0.5 * gb_adv), atol=1e-5)
