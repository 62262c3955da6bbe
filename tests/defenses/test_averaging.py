"""Weight averaging (an EMA of the weights) over any defence.

The references are independent of the code: the SGD steps of a linear softmax
model replayed in NumPy with the closed-form cross-entropy gradients and the
averaging rule min(tau, (1 + t) / (10 + t)) applied by hand; the values the
variables held before a swap; NumPy batch statistics of a BatchNorm's inputs;
an uninterrupted run for the resumed one; the run without averaging.
"""
from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_robust as kr
from tests.helpers import linear_model, tiny_cnn

LR = 0.1


def _images(n, shape, seed=0, classes=10):
    rng = np.random.default_rng(seed)
    return rng.random((n, *shape), dtype=np.float32), rng.integers(0, classes, n).astype(np.int32)


def _values(variables):
    return [np.array(v.numpy()) for v in variables]


def _softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _replay(x, y, w, b, steps, batch, tau, warmup):
    """SGD on mean softmax cross-entropy in float64, and the average after each step."""
    x = x.reshape(len(x), -1).astype(np.float64)
    onehot = np.eye(w.shape[1])[y]
    w, b = w.astype(np.float64), b.astype(np.float64)
    avg_w, avg_b = w.copy(), b.copy()
    for t in range(steps):
        xb, yb = x[t * batch:(t + 1) * batch], onehot[t * batch:(t + 1) * batch]
        residual = _softmax(xb @ w + b) - yb
        w, b = w - LR * xb.T @ residual / len(xb), b - LR * residual.mean(axis=0)
        decay = min(tau, (1 + t) / (10 + t)) if warmup else tau
        avg_w, avg_b = decay * avg_w + (1 - decay) * w, decay * avg_b + (1 - decay) * b
    return (w, b), (avg_w, avg_b)


# ----------------------------------------------------------------------------- the rule
@pytest.mark.parametrize("tau,warmup", [(0.3, True), (0.8, True), (0.8, False), (0.995, True)],
                         ids=["warmup-reaches-tau", "warmup", "constant-tau", "leaderboard-tau"])
def test_the_averages_follow_the_rule_replayed_in_numpy(tau, warmup):
    steps, batch = 6, 8
    x, y = _images(steps * batch, (4, 4, 1))
    backbone = linear_model((4, 4, 1), num_classes=10, scale=0.3)
    w0, b0 = (v.copy() for v in backbone.get_layer("linear").get_weights())
    model = kr.RobustModel(backbone, seed=0,
                           weight_averaging=kr.AveragingConfig(tau=tau, warmup=warmup))
    model.compile(optimizer=keras.optimizers.SGD(LR))
    model.fit(x, y, batch_size=batch, epochs=1, shuffle=False, verbose=0)
    assert int(model.optimizer.iterations.numpy()) == steps
    (w, b), (avg_w, avg_b) = _replay(x, y, w0, b0, steps, batch, tau, warmup)
    _, (other_w, _) = _replay(x, y, w0, b0, steps, batch, tau, not warmup)
    if tau >= 0.8:  # (with tau 0.3 the two differ by 7e-5 only: the decay reaches tau at t = 3)
        assert np.abs(avg_w - other_w).max() > 1e-2  # the warm-up changes the average measurably
    assert np.abs(avg_w - w).max() > 1e-3         # and the average is not the weights
    np.testing.assert_allclose(model.backbone.get_layer("linear").get_weights()[0], w, atol=1e-5)
    got_w, got_b = _values(model.weight_averages)
    np.testing.assert_allclose(got_w, avg_w, atol=1e-5)
    np.testing.assert_allclose(got_b, avg_b, atol=1e-5)


# ----------------------------------------------------------------------------- using the average
def _small_cnn_run(**kwargs):
    backbone = kr.backbones.small_cnn(input_shape=(8, 8, 3), num_classes=10, filters=(4, 4, 4))
    model = kr.RobustModel(backbone, seed=0, **kwargs)
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9))
    x, y = _images(16, (8, 8, 3), seed=1)
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    return model, x


def test_inside_averaged_weights_the_backbone_holds_the_averages_and_the_raw_statistics():
    model, x = _small_cnn_run(weight_averaging=0.995)
    trainable = model.backbone.trainable_variables
    moving = [v for layer in kr.backbones.batchnorm_layers(model.backbone)
              for v in (layer.moving_mean, layer.moving_variance)]
    assert len(trainable) == 20 and len(moving) == 12 and len(model.backbone.weights) == 32
    raw, averages, stats = _values(trainable), _values(model.weight_averages), _values(moving)
    everything = _values(model.weights)
    assert any(not np.array_equal(r, a) for r, a in zip(raw, averages))
    raw_logits = model.predict(x, verbose=0)
    with model.averaged_weights():
        for variable, value in zip(moving, stats):  # BatchNorm statistics: the raw run's
            assert np.array_equal(variable.numpy(), value), variable.path
        for variable, average in zip(trainable, averages):
            assert np.array_equal(variable.numpy(), average), variable.path
        assert not np.allclose(model.predict(x, verbose=0), raw_logits)
    for variable, value in zip(model.weights, everything):
        assert np.array_equal(variable.numpy(), value), variable.path
    model.swap_averaged_weights()
    assert all(np.array_equal(v.numpy(), a) for v, a in zip(trainable, averages))
    model.swap_averaged_weights()
    assert all(np.array_equal(v.numpy(), r) for v, r in zip(trainable, raw))


def test_averaged_evaluation_validates_on_the_average_and_can_leave_it_in():
    x, y = _images(16, (4, 4, 1))
    model, twin = _linear(kr.AveragingConfig(tau=0.9)), _linear(kr.AveragingConfig(tau=0.9))
    history = model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0,
                        validation_data=(x, y), callbacks=[kr.AveragedEvaluation()]).history
    twin.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(model.weights, twin.weights):  # the callback changed nothing for good
        assert np.array_equal(a.numpy(), b.numpy()), a.path
    with model.averaged_weights():
        averaged_loss = model.evaluate(x, y, verbose=0)
    assert history["val_loss"][0] == pytest.approx(averaged_loss, rel=1e-6)
    assert history["val_loss"][0] != pytest.approx(model.evaluate(x, y, verbose=0), rel=1e-3)
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0,
              callbacks=[kr.AveragedEvaluation(swap_on_end=True)])
    twin.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    for backbone, average in ((model.backbone.trainable_variables, twin.weight_averages),
                              (model.weight_averages, twin.backbone.trainable_variables)):
        for a, b in zip(backbone, average):
            assert np.array_equal(a.numpy(), b.numpy()), a.path


# ----------------------------------------------------------------------------- off is off
def _pgd_at_run(weights, averaging):
    keras.utils.set_random_seed(0)
    backbone = tiny_cnn((8, 8, 3), num_classes=10)
    backbone.set_weights(weights)
    model = kr.PGDATModel(backbone, epsilon=0.05, step_size=0.02, steps=2, seed=0,
                          weight_averaging=averaging)
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), metrics=["accuracy"])
    x, y = _images(24, (8, 8, 3), seed=1)
    history = model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0).history
    return model, _values(backbone.weights), history


def test_without_averaging_the_step_is_bit_identical_and_averaging_leaves_training_alone():
    weights = tiny_cnn((8, 8, 3), num_classes=10).get_weights()
    plain, plain_weights, plain_logs = _pgd_at_run(weights, None)
    averaged, averaged_weights, averaged_logs = _pgd_at_run(weights, kr.AveragingConfig(tau=0.9))
    assert plain.weight_averages == [] and len(plain.weights) == len(plain.backbone.weights)
    assert len(averaged.weight_averages) == len(averaged.backbone.trainable_variables) == 6
    for before, after in zip(plain_weights, averaged_weights):
        assert np.array_equal(before, after)
    assert plain_logs == averaged_logs
    assert plain.get_config()["weight_averaging"] is None


# ----------------------------------------------------------------------------- saving and resuming
def _linear(averaging=None):
    model = kr.RobustModel(linear_model((4, 4, 1), num_classes=10, scale=0.3), seed=0,
                           weight_averaging=averaging or kr.AveragingConfig(tau=0.5))
    model.compile(optimizer=keras.optimizers.SGD(LR))
    return model


def test_the_averages_round_trip_through_keras_files_and_continue(tmp_path):
    x, y = _images(16, (4, 4, 1))
    model = _linear(kr.AveragingConfig(tau=0.5, warmup=False, batchnorm="raw"))
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    model.save(tmp_path / "ema.keras")
    loaded = keras.saving.load_model(tmp_path / "ema.keras")
    assert type(loaded) is kr.RobustModel and loaded.weight_averaging == model.weight_averaging
    assert model.get_config()["weight_averaging"] == {"tau": 0.5, "warmup": False,
                                                      "batchnorm": "raw"}
    for saved, restored in zip(model.weight_averages, loaded.weight_averages):
        assert np.array_equal(saved.numpy(), restored.numpy())
    assert int(loaded.optimizer.iterations.numpy()) == 2
    for run in (model, loaded):
        run.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    for saved, restored in zip(model.weight_averages, loaded.weight_averages):
        np.testing.assert_allclose(saved.numpy(), restored.numpy(), atol=1e-7)


def test_a_run_resumed_by_backup_and_restore_continues_the_average(tmp_path):
    x, y = _images(24, (4, 4, 1))
    straight = _linear()
    straight.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    first = _linear()
    backup = str(tmp_path / "backup")
    first.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0,
              callbacks=[keras.callbacks.BackupAndRestore(backup, delete_checkpoint=False)])
    after_one = _values(first.weight_averages)
    resumed = _linear()
    resumed.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0,
                callbacks=[keras.callbacks.BackupAndRestore(backup)])
    assert int(resumed.optimizer.iterations.numpy()) == 6  # 3 restored steps and 3 more
    assert not np.allclose(after_one[0], _values(straight.weight_averages)[0])
    for expected, got in zip(straight.weight_averages, resumed.weight_averages):
        np.testing.assert_allclose(got.numpy(), expected.numpy(), atol=1e-7)


# ----------------------------------------------------------------------------- replicas
def test_every_replica_holds_the_same_average(mirrored_strategy):
    x, y = _images(16, (8, 8, 3), seed=2)
    with mirrored_strategy.scope():
        model = kr.PGDATModel(tiny_cnn((8, 8, 3), num_classes=10), epsilon=0.05, step_size=0.02,
                              steps=1, seed=0, weight_averaging=kr.AveragingConfig(tau=0.9))
        model.compile(optimizer=keras.optimizers.SGD(0.05))
        initial = _values(model.weight_averages)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    for average, start in zip(model.weight_averages, initial):
        first, *others = mirrored_strategy.experimental_local_results(average.value)
        assert others and not np.array_equal(np.asarray(first), start), average.path
        for other in others:
            assert np.array_equal(np.asarray(first), np.asarray(other)), average.path


# ----------------------------------------------------------------------------- BatchNorm statistics
def test_reestimated_batchnorm_statistics_are_those_of_the_averaged_model():
    inputs = keras.Input((4, 4, 1))
    hidden = keras.layers.Dense(6, name="hidden")(keras.layers.Flatten()(inputs))
    normalised = keras.layers.BatchNormalization(momentum=0.9, name="bn")(hidden)
    model = kr.RobustModel(keras.Model(inputs, keras.layers.Dense(3)(normalised)), seed=0,
                           weight_averaging=kr.AveragingConfig(tau=0.9, batchnorm="reestimate"))
    model.compile(optimizer=keras.optimizers.SGD(0.5))
    x, y = _images(32, (4, 4, 1), classes=3)
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    layer = model.backbone.get_layer("bn")
    raw_stats = _values([layer.moving_mean, layer.moving_variance])
    avg_kernel, avg_bias = _values(model.weight_averages[:2])
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)  # 4 batches; 3 are used
    features = [xb.reshape(8, -1).astype(np.float64) @ avg_kernel + avg_bias
                for xb in np.split(x[:24], 3)]
    mean = np.mean([f.mean(axis=0) for f in features], axis=0)
    variance = np.mean([f.var(axis=0) for f in features], axis=0)
    raw_features = x[:24].reshape(24, -1) @ model.backbone.get_layer("hidden").get_weights()[0]
    assert np.abs(raw_features.mean(axis=0) - mean).max() > 1e-3  # the weights matter here
    with model.averaged_weights(batchnorm_data=data, batches=3):
        np.testing.assert_allclose(layer.moving_mean.numpy(), mean, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(layer.moving_variance.numpy(), variance, rtol=1e-5)
        assert layer.momentum == 0.9
    for variable, value in zip((layer.moving_mean, layer.moving_variance), raw_stats):
        assert np.array_equal(variable.numpy(), value)
    with pytest.raises(ValueError, match="batchnorm='reestimate': pass training images"):
        with model.averaged_weights():
            pass


# ----------------------------------------------------------------------------- settings
@pytest.mark.parametrize("settings,error,words", [
    (dict(tau=0.0), ValueError, r"`tau` must be in \(0, 1\)"),
    (dict(tau=1.0), ValueError, r"`tau` must be in \(0, 1\)"),
    (dict(tau=float("nan")), ValueError, r"`tau` must be in \(0, 1\)"),
    (dict(tau="0.99"), TypeError, r"`tau` must be a number in \(0, 1\)"),
    (dict(tau=True), TypeError, r"`tau` must be a number in \(0, 1\)"),
    (dict(warmup="yes"), TypeError, "`warmup` must be True"),
    (dict(batchnorm="average"), ValueError, "batchnorm"),
], ids=["zero", "one", "nan", "text", "bool", "text-warmup", "unknown-batchnorm"])
def test_bad_settings_are_refused_with_what_was_expected(settings, error, words):
    with pytest.raises(error, match=words):
        kr.AveragingConfig(**settings)


def test_bad_arguments_around_the_config_are_refused():
    backbone = linear_model((4, 4, 1), num_classes=10)
    with pytest.raises(TypeError, match="must be an AveragingConfig, its config dict, a float"):
        kr.RobustModel(backbone, weight_averaging="ema")
    with pytest.raises(ValueError, match=r"`tau` must be in \(0, 1\)"):
        kr.RobustModel(backbone, weight_averaging=1.5)
    with pytest.raises(TypeError, match="Unknown AveragingConfig keys"):
        kr.AveragingConfig.from_config({"tau": 0.9, "decay": 0.9})
    plain = kr.RobustModel(backbone)
    with pytest.raises(ValueError, match="keeps no averaged weights; build it with"):
        with plain.averaged_weights():
            pass
    with pytest.raises(ValueError, match="keeps no averaged weights"):
        plain.swap_averaged_weights()
    with pytest.raises(TypeError, match="must be a tf.data.Dataset of images"):
        kr.reestimate_batchnorm(plain, [1, 2, 3])
    assert kr.RobustModel(backbone, weight_averaging=0.99).weight_averaging == kr.AveragingConfig(
        tau=0.99)
