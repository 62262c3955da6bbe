"""Adversarial weight perturbation (AWP) over the defences.

The references are independent of the code: NumPy norms of the weights, the
closed-form softmax cross-entropy gradients of a linear model, the BatchNorm
update written out in NumPy, and the defence underneath at gamma = 0.
"""
from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_robust as kr
from keras_robust.defenses.awp import awp_kernels, resolve_weight_perturbation
from tests.helpers import linear_model, tiny_cnn

LR = 0.1


def _images(n, shape, seed=0, classes=10):
    rng = np.random.default_rng(seed)
    return rng.random((n, *shape), dtype=np.float32), rng.integers(0, classes, n).astype(np.int32)


def _compiled(model, optimizer=None):
    model.compile(optimizer=optimizer or keras.optimizers.SGD(LR))
    return model


# ----------------------------------------------------------------------------- the perturbation
def test_each_kernel_moves_by_gamma_times_its_norm_and_nothing_else_moves():
    gamma = 0.05
    x, y = _images(8, (8, 8, 1), classes=2)
    model = _compiled(kr.RobustModel(tiny_cnn(), seed=0,
                                     weight_perturbation=kr.AWPConfig(gamma=gamma)))
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)  # builds the compiled loss and optimizer
    before = {v.path: v.numpy().copy() for v in model.weights}
    kernels = {v.path for v in awp_kernels(model)}
    assert kernels == {v.path for v in model.trainable_variables if v.path.endswith("kernel")}
    assert len(kernels) == 2  # the conv and the dense kernel; biases and BatchNorm are not

    batch = model.training_batch(tf.constant(x), model.label_probabilities(y), None)
    saved = model._perturb_weights(batch)
    for variable in model.weights:
        moved = variable.numpy() - before[variable.path]
        if variable.path in kernels:
            np.testing.assert_allclose(np.linalg.norm(moved),
                                       gamma * np.linalg.norm(before[variable.path]), rtol=1e-5)
        else:
            assert np.array_equal(variable.numpy(), before[variable.path]), variable.path
    model._restore_weights(saved)
    for variable in model.weights:
        assert np.array_equal(variable.numpy(), before[variable.path]), variable.path


def _softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _ce_gradients(x, onehot, w, b):
    """dL/dW = X^T (softmax(XW + b) - Y) / B and dL/db = mean(p - y): mean cross-entropy."""
    residual = _softmax(x @ w + b) - onehot
    return x.T @ residual / len(x), residual.mean(axis=0)


def _awp_sgd_step(x, y, w, b, gamma, lr=LR):
    """The expected AWP step in float64: v from the gradient at W, gradient at W + v applied to W."""
    x = x.reshape(len(x), -1).astype(np.float64)
    onehot = np.eye(w.shape[1])[y]
    w, b = w.astype(np.float64), b.astype(np.float64)
    g_w, _ = _ce_gradients(x, onehot, w, b)
    v = gamma * np.linalg.norm(w) * g_w / (np.linalg.norm(g_w) + 1e-20)
    g_w, g_b = _ce_gradients(x, onehot, w + v, b)
    plain_w = w - lr * _ce_gradients(x, onehot, w, b)[0]
    return w - lr * g_w, b - lr * g_b, plain_w


def _check_linear_step(model, x, y, gamma):
    w, b = (v.copy() for v in model.backbone.get_layer("linear").get_weights())
    expected_w, expected_b, plain_w = _awp_sgd_step(x, y, w, b, gamma)
    assert np.abs(expected_w - plain_w).max() > 1e-3  # AWP changes this step measurably
    model.fit(x, y, batch_size=len(x), epochs=1, shuffle=False, verbose=0)
    new_w, new_b = model.backbone.get_layer("linear").get_weights()
    np.testing.assert_allclose(new_w, expected_w, atol=1e-5)
    np.testing.assert_allclose(new_b, expected_b, atol=1e-5)


@pytest.mark.parametrize("jit_compile", [False, True], ids=["graph", "xla"])
def test_the_step_applies_the_gradient_at_w_plus_v_to_w(jit_compile):
    gamma = 0.5
    x, y = _images(8, (4, 4, 1))
    model = kr.RobustModel(linear_model((4, 4, 1), num_classes=10, scale=0.3), seed=0,
                           weight_perturbation=kr.AWPConfig(gamma=gamma))
    model.compile(optimizer=keras.optimizers.SGD(LR), jit_compile=jit_compile)
    _check_linear_step(model, x, y, gamma)


# ----------------------------------------------------------------------------- the defence underneath
def _pgd_at_run(weights, awp):
    keras.utils.set_random_seed(0)
    backbone = tiny_cnn((8, 8, 3), num_classes=10)
    backbone.set_weights(weights)
    model = kr.PGDATModel(backbone, epsilon=0.05, step_size=0.02, steps=2, seed=0,
                          weight_perturbation=awp)
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), metrics=["accuracy"])
    x, y = _images(24, (8, 8, 3), seed=1)
    history = model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0).history
    return [v.numpy() for v in backbone.weights], history


def test_gamma_zero_is_bit_identical_to_the_defence_underneath():
    weights = tiny_cnn((8, 8, 3), num_classes=10).get_weights()
    plain, plain_logs = _pgd_at_run(weights, None)
    awp, awp_logs = _pgd_at_run(weights, kr.AWPConfig(gamma=0.0))
    assert len(plain) == len(awp) == 8  # conv (2), BatchNorm (4, moving statistics included), dense (2)
    for before, after in zip(plain, awp):
        assert np.array_equal(before, after)
    assert awp_logs.pop("awp_gamma") == [0.0, 0.0]
    assert plain_logs == awp_logs


def test_the_ascent_pass_leaves_the_batchnorm_moving_statistics_alone():
    # BatchNorm first: its batch statistics are those of the images, whatever the
    # weights, so the moving ones after one step are known in NumPy: one update.
    inputs = keras.Input((4, 4, 2))
    hidden = keras.layers.BatchNormalization(momentum=0.9)(inputs)
    logits = keras.layers.Dense(3)(keras.layers.Flatten()(hidden))
    model = _compiled(kr.RobustModel(keras.Model(inputs, logits), seed=0,
                                     weight_perturbation=kr.AWPConfig(gamma=0.1)))
    x, y = _images(8, (4, 4, 2), classes=3)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    layer = model.backbone.layers[1]
    mean, variance = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
    np.testing.assert_allclose(layer.moving_mean.numpy(), 0.1 * mean, rtol=1e-5)
    np.testing.assert_allclose(layer.moving_variance.numpy(), 0.9 + 0.1 * variance, rtol=1e-5)


# ----------------------------------------------------------------------------- replicas
def test_replicas_perturb_alike_and_stay_identical(mirrored_strategy):
    gamma = 0.5
    x, y = _images(8, (4, 4, 1))
    with mirrored_strategy.scope():
        linear = _compiled(kr.RobustModel(linear_model((4, 4, 1), num_classes=10, scale=0.3),
                                          seed=0, weight_perturbation=kr.AWPConfig(gamma=gamma)))
        cnn = _compiled(kr.PGDATModel(tiny_cnn((8, 8, 3), num_classes=10), epsilon=0.05,
                                      step_size=0.02, steps=1, seed=0,
                                      weight_perturbation=kr.AWPConfig(gamma=0.05)))
    # The global batch's gradient: each replica's v is the one of all 8 images.
    _check_linear_step(linear, x, y, gamma)
    x_cnn, y_cnn = _images(16, (8, 8, 3), seed=2)
    cnn.fit(x_cnn, y_cnn, batch_size=8, epochs=1, verbose=0)
    # Every variable but BatchNorm's moving statistics, which Keras keeps per replica
    # (each replica's batch statistics: they differ without AWP too).
    moving = {v.path for layer in kr.backbones.batchnorm_layers(cnn.backbone)
              for v in (layer.moving_mean, layer.moving_variance)}
    assert len(moving) == 2
    for variable in [v for v in linear.weights + cnn.weights if v.path not in moving]:
        first, *others = mirrored_strategy.experimental_local_results(variable.value)
        for other in others:
            assert np.array_equal(np.asarray(first), np.asarray(other)), variable.path


# ----------------------------------------------------------------------------- schedule and settings
def test_the_scheduler_holds_gamma_at_zero_through_the_warmup():
    x, y = _images(8, (4, 4, 1))
    model = _compiled(kr.RobustModel(linear_model((4, 4, 1), num_classes=10), seed=0,
                                     weight_perturbation=kr.AWPConfig(gamma=0.02, warmup_epochs=2)))
    history = model.fit(x, y, batch_size=8, epochs=4, verbose=0).history
    np.testing.assert_allclose(history["awp_gamma"], [0.0, 0.0, 0.02, 0.02], rtol=1e-6)
    ramp = kr.AWPScheduler(lambda epoch: 0.01 * (epoch + 1))
    history = model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[ramp]).history
    np.testing.assert_allclose(history["awp_gamma"], [0.01, 0.02], rtol=1e-6)
    assert kr.AWP_PRESETS == {"at-awp": kr.AWPConfig(gamma=0.01, warmup_epochs=0),
                              "trades-awp": kr.AWPConfig(gamma=0.005, warmup_epochs=10)}


@pytest.mark.parametrize("settings,error,words", [
    (dict(gamma=-0.01), ValueError, "`gamma` must be a finite number >= 0"),
    (dict(gamma=float("nan")), ValueError, "`gamma` must be a finite number >= 0"),
    (dict(gamma="0.01"), TypeError, "`gamma` must be a number >= 0"),
    (dict(warmup_epochs=1.5), TypeError, "`warmup_epochs` must be an integer >= 0"),
    (dict(warmup_epochs=-1), ValueError, "`warmup_epochs` must be an integer >= 0"),
], ids=["negative-gamma", "nan-gamma", "text-gamma", "fractional-warmup", "negative-warmup"])
def test_bad_settings_are_refused_with_what_was_expected(settings, error, words):
    with pytest.raises(error, match=words):
        kr.AWPConfig(**settings)


def test_bad_arguments_around_the_config_are_refused():
    backbone = linear_model((4, 4, 1), num_classes=10)
    with pytest.raises(TypeError, match="must be an AWPConfig, its config dict"):
        kr.RobustModel(backbone, weight_perturbation=0.01)
    with pytest.raises(ValueError, match="Unknown AWP preset 'awp'"):
        kr.RobustModel(backbone, weight_perturbation="awp")
    with pytest.raises(TypeError, match="Unknown AWPConfig keys"):
        kr.AWPConfig.from_config({"gamma": 0.01, "beta": 6.0})
    with pytest.raises(TypeError, match="`schedule` must be an AWPConfig"):
        kr.AWPScheduler(0.01)
    scheduler = kr.AWPScheduler()
    scheduler.set_model(kr.RobustModel(backbone))
    with pytest.raises(ValueError, match="needs a defence built with weight perturbation"):
        scheduler.on_epoch_begin(0)
    scheduler = kr.AWPScheduler(lambda epoch: -1.0)
    scheduler.set_model(kr.RobustModel(backbone, weight_perturbation="at-awp"))
    with pytest.raises(ValueError, match="schedule's gamma at epoch 0"):
        scheduler.on_epoch_begin(0)


# ----------------------------------------------------------------------------- saving and defences
def test_a_pgd_at_model_with_awp_round_trips_through_keras_files(tmp_path):
    config = kr.AWPConfig(gamma=0.005, warmup_epochs=3)
    model = kr.PGDATModel(tiny_cnn((8, 8, 3), num_classes=10), epsilon=0.05, step_size=0.02,
                          steps=1, seed=0, weight_perturbation=config)
    assert model.get_config()["weight_perturbation"] == {"gamma": 0.005, "warmup_epochs": 3}
    model.compile(optimizer="sgd")
    x, y = _images(8, (8, 8, 3))
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    model.awp_gamma.assign(0.004)
    model.save(tmp_path / "awp.keras")
    loaded = keras.saving.load_model(tmp_path / "awp.keras")
    assert type(loaded) is kr.PGDATModel and loaded.weight_perturbation == config
    assert float(loaded.awp_gamma.numpy()) == pytest.approx(0.004)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    plain = kr.PGDATModel.from_config(kr.PGDATModel(tiny_cnn((8, 8, 3), 10)).get_config())
    assert plain.weight_perturbation is None and plain.awp_gamma is None
    assert resolve_weight_perturbation("at-awp") is kr.AWP_PRESETS["at-awp"]


@pytest.mark.parametrize("make", [
    lambda b: kr.BATModel(b, epsilon=0.05, seed=0, weight_perturbation="at-awp"),
    lambda b: kr.BPFCModel(b, seed=0, weight_perturbation="at-awp"),
], ids=["bat", "bpfc"])
def test_awp_runs_over_other_defences(make):
    model = make(tiny_cnn((8, 8, 3), num_classes=10))
    model.compile(optimizer="sgd")
    x, y = _images(8, (8, 8, 3))
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0).history
    assert np.isfinite(history["loss"][0]) and history["awp_gamma"] == [pytest.approx(0.01)]
