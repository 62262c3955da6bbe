"""The shared defence wrapper's contract, checked on plain training and PGD-AT."""
from __future__ import annotations


import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_robust as kr
from tests.defense_cases import CASES
from tests.helpers import tiny_cnn

# Every defence of tests/defense_cases.py (one line there adds a defence here).
WRAPPERS = [(name, case.make) for name, case in CASES.items()]


def _data(n=64, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 8, 8, 1), dtype=np.float32), rng.integers(0, classes, n).astype(np.int32)


def _fitted(make, classes=3):
    model = make(lambda: tiny_cnn(num_classes=classes))
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), metrics=["accuracy"])
    x, y = _data(classes=classes)
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    return model, x, y


@pytest.mark.parametrize("name,make", WRAPPERS)
def test_save_load_round_trip_matches(tmp_path, name, make):
    model, x, y = _fitted(make)
    path = str(tmp_path / f"{name}.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert type(loaded) is type(model)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)
    # The optimizer state and compile config come back: training resumes.
    assert loaded.optimizer is not None
    assert int(loaded.optimizer.iterations.numpy()) == int(model.optimizer.iterations.numpy())
    loaded.fit(x, y, batch_size=16, epochs=1, verbose=0)


@pytest.mark.parametrize("name,make", WRAPPERS)
def test_config_round_trip(name, make):
    model = make(tiny_cnn)
    config = model.get_config()
    clone = type(model).from_config(config)
    assert clone.get_config()["seed"] == config["seed"]
    for key, value in config.items():
        if key not in ("backbone", "name"):
            assert clone.get_config()[key] == value, key


@pytest.mark.parametrize("labels", ["sparse", "column", "onehot", "soft"])
def test_default_loss_takes_every_label_form(labels):
    x, y = _data()
    if labels == "column":
        y = y[:, None]
    elif labels == "onehot":
        y = np.eye(3, dtype=np.float32)[y]
    elif labels == "soft":
        y = 0.8 * np.eye(3, dtype=np.float32)[y] + 0.2 / 3
    model = kr.RobustModel(tiny_cnn(num_classes=3), seed=0)
    model.compile(optimizer="sgd", metrics=["accuracy"])
    history = model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    # An untrained 3-class model starts near log(3).
    assert 0.5 < history.history["loss"][0] < 3.0


def test_loss_is_cross_entropy_by_hand():
    x, y = _data(n=16)
    model = kr.RobustModel(tiny_cnn(num_classes=3), seed=0)
    model.compile(optimizer=keras.optimizers.SGD(0.0))
    logits = model.predict(x, verbose=0)
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = -np.mean(log_probs[np.arange(16), y])
    result = model.evaluate(x, y, batch_size=16, verbose=0, return_dict=True)
    np.testing.assert_allclose(result["loss"], expected, rtol=1e-4)


def test_sparse_losses_are_refused():
    model = kr.RobustModel(tiny_cnn(), seed=0)
    with pytest.raises(ValueError, match="probability rows"):
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")


def test_training_only_changes_the_backbone_and_call_is_the_backbone():
    model, x, _ = _fitted(WRAPPERS[1][1])
    np.testing.assert_allclose(model(x, training=False).numpy(),
                               model.backbone(x, training=False).numpy(), atol=1e-6)
    assert {id(w) for w in model.trainable_weights} == {id(w) for w in model.backbone.trainable_weights}


@pytest.mark.parametrize(
    "mutate,error,match",
    [
        (lambda x, y: (x * 255, y), ValueError, "255"),
        (lambda x, y: ((x * 255).astype(np.uint8), y), TypeError, "float"),
        (lambda x, y: (np.repeat(x, 3, axis=-1), y), ValueError, "channels"),
        (lambda x, y: (x, y + 5), ValueError, r"\[0, 3\)"),
        (lambda x, y: (np.where(np.arange(x.size).reshape(x.shape) == 0, np.nan, x), y), ValueError, "NaN"),
        (lambda x, y: (x[:0], y[:0]), ValueError, "empty"),
    ],
)
def test_bad_arrays_fail_where_they_enter(mutate, error, match):
    x, y = mutate(*_data())
    model = kr.PGDATModel(tiny_cnn(num_classes=3), epsilon=0.05, step_size=0.02, steps=1, seed=0)
    model.compile(optimizer="sgd")
    with pytest.raises(error, match=match):
        model.fit(x, y, epochs=1, verbose=0)


def test_bad_datasets_fail_where_they_enter():
    x, y = _data()
    model = kr.RobustModel(tiny_cnn(num_classes=3), seed=0)
    model.compile(optimizer="sgd")
    uint8 = tf.data.Dataset.from_tensor_slices(((x * 255).astype(np.uint8), y)).batch(8)
    with pytest.raises(TypeError, match="uint8"):
        model.fit(uint8, epochs=1, verbose=0)
    scaled = tf.data.Dataset.from_tensor_slices((x * 255, y)).batch(8)
    with pytest.raises(ValueError, match="255"):
        model.fit(scaled, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="empty"):
        model.fit(tf.data.Dataset.from_tensor_slices((x, y)).take(0).batch(8), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="batch"):
        model.fit(tf.data.Dataset.from_tensor_slices((x, y)), epochs=1, verbose=0)


@pytest.mark.parametrize(
    "kwargs,error",
    [(dict(epsilon=0.0), ValueError), (dict(epsilon=2.0), ValueError), (dict(steps=0), ValueError),
     (dict(target="most_likely"), ValueError), (dict(loss="mse"), ValueError),
     (dict(step_size=-1.0), ValueError)],
)
def test_constructor_refuses_bad_arguments(kwargs, error):
    with pytest.raises(error):
        kr.PGDATModel(tiny_cnn(), **kwargs)


def test_backbone_must_be_a_built_model():
    with pytest.raises(TypeError, match="keras.Model"):
        kr.RobustModel(lambda x: x)
    with pytest.raises(ValueError, match="logits"):
        inputs = keras.Input((8, 8, 1))
        kr.RobustModel(keras.Model(inputs, inputs))


def test_fit_under_mirrored_strategy_on_two_cpu_devices(mirrored_strategy):
    x, y = _data(n=64)
    assert mirrored_strategy.num_replicas_in_sync == 2
    with mirrored_strategy.scope():
        model = kr.PGDATModel(tiny_cnn(num_classes=3), epsilon=0.05, step_size=0.02, steps=2, seed=0)
        model.compile(optimizer="sgd", metrics=["accuracy"])
    history = model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    # The reported loss is the global mean, not divided by the replica count:
    # an untrained 3-class model sits near log(3) = 1.1, not 0.55.
    assert 0.8 < history.history["loss"][0] < 2.5


def test_untrained_wrapper_exports_with_a_known_input_shape(tmp_path):
    model = kr.PGDATModel(tiny_cnn(num_classes=3), seed=0)
    model.export(str(tmp_path / "served"), verbose=False)
    loaded = tf.saved_model.load(str(tmp_path / "served"))
    x = np.zeros((2, 8, 8, 1), np.float32)
    np.testing.assert_allclose(loaded.serve(x).numpy(), model.backbone.predict(x, verbose=0),
                               atol=1e-6)
    assert model.get_build_config()["input_shape"] == (None, 8, 8, 1)


def test_fit_on_a_dataset_does_not_warn_about_shuffle():
    """Keras warns "`shuffle=True` was passed, but will be ignored" on every fit with a
    tf.data.Dataset (fit's default); the wrapper passes what happens (False), unless told."""
    import warnings

    x, y = _data(n=32)
    model = kr.PGDATModel(tiny_cnn(num_classes=3), epsilon=0.05, step_size=0.02, steps=1, seed=0)
    model.compile(optimizer="sgd")
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(dataset, epochs=1, verbose=0)
    assert [str(w.message) for w in caught if "shuffle" in str(w.message)] == []
    with warnings.catch_warnings(record=True) as caught:  # an explicit True is the caller's
        warnings.simplefilter("always")
        model.fit(dataset, epochs=1, verbose=0, shuffle=True)
    assert any("shuffle" in str(w.message) for w in caught)


# ------------------------------------------------------------------ soft labels reach the loss
def _soft_label_defences():
    from tests.helpers import linear_model

    def backbone():
        return linear_model(num_classes=5, scale=2.0, seed=4)

    return {
        # the user's own soft rows, unchanged by the plain wrapper
        "plain": lambda: kr.RobustModel(backbone(), seed=0),
        # BAT's adversarial labels (eq. 14/18) and its label-smoothing variant
        "bat_adversarial": lambda: kr.BATModel(backbone(), epsilon=0.05, random_start=False,
                                               seed=0),
        "bat_smoothing": lambda: kr.BATModel(backbone(), epsilon=0.05, label="smoothing",
                                             random_start=False, seed=0),
        # M-TLAT's Mixup and TLAT label mixing, with its half weights
        "mtlat": lambda: kr.MTLATModel(backbone(), epsilon_max=0.05, seed=0),
    }


@pytest.mark.parametrize("name", sorted(_soft_label_defences()))
def test_fit_trains_on_the_soft_rows_the_defence_built(name):
    """The loss `fit` reports is cross-entropy by hand on the soft rows the defence
    built, not on their argmax: a label normalisation that turned soft rows into
    one-hot ones would silently train BAT, M-TLAT and user soft labels as one-hot.

    The hand computation reads the rows from the defence's own `training_batch`
    at the same step (fit's first step draws the same with a fixed seed); for the
    plain wrapper the rows must be the user's soft labels themselves.
    """
    rng = np.random.default_rng(3)
    x = rng.random((16, 8, 8, 1), dtype=np.float32)
    y = rng.integers(0, 5, 16).astype(np.int32)
    soft = (0.6 * np.eye(5, dtype=np.float32)[y] + 0.4 * rng.dirichlet(np.ones(5), 16)).astype(
        np.float32)
    labels = soft if name == "plain" else y
    model = _soft_label_defences()[name]()
    model.compile(optimizer=keras.optimizers.SGD(0.0))
    batch = model.training_batch(tf.constant(x), model.label_probabilities(labels), None)
    rows = np.asarray(batch.y, np.float64)
    if name == "plain":
        np.testing.assert_allclose(rows, soft, atol=1e-7)
    # The fixture tells soft from one-hot training: rows far from one-hot (M-TLAT's
    # Beta draws leave most rows near one-hot), and losses that differ below.
    assert np.any(rows.max(-1) < 0.9), rows.max(-1)
    logits = np.asarray(model.backbone(batch.x, training=True), np.float64)
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    per_row = -(rows * log_probs).sum(-1)
    one_hot = -log_probs[np.arange(len(rows)), rows.argmax(-1)]
    weights = (np.ones(len(rows)) if batch.sample_weight is None
               else np.asarray(batch.sample_weight, np.float64))
    expected = float(np.sum(weights * per_row) / len(rows))
    wrong = float(np.sum(weights * one_hot) / len(rows))
    assert abs(expected - wrong) > 0.02  # the two readings differ on this fixture
    history = model.fit(x, labels, batch_size=16, epochs=1, shuffle=False, verbose=0)
    assert history.history["loss"][0] == pytest.approx(expected, rel=1e-4)
