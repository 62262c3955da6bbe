"""Single-step adversarial training: the "fgsm-rs" and "n-fgsm" presets of `PGDATModel`.

One training batch of each preset, built by the model's public path, equals a
NumPy transcription of the reference step (tests/reference_single_step.py)
with the same uniform draw; N-FGSM's perturbation leaves the epsilon ball (up
to 3 epsilon) while FGSM-RS's stays inside; the unprojected attack is refused
wherever it would be an evaluation.
"""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import keras_robust as kr
from keras_robust.attacks import AttackConfig
from keras_robust.attacks.common import fold_seed, random_uniform
from tests import reference_single_step as ref
from tests.helpers import linear_model, tiny_cnn

SHAPE = (4, 4, 3)
CLASSES = 10
EPS = 8 / 255


def _batch(n=16, seed=0):
    rng = np.random.default_rng(seed)
    # Some pixels near 0 and 1, so that the [0, 1] clamps bind.
    x = rng.choice([0.0, 0.01, 0.5, 0.99, 1.0], size=(n, *SHAPE)) * rng.uniform(0.9, 1.0, (n, *SHAPE))
    return x.astype("float32"), (np.arange(n) * 7 % CLASSES).astype("int32")


def _model_and_reference_inputs(preset, **overrides):
    backbone = linear_model(SHAPE, CLASSES, scale=0.5)
    model = kr.PGDATModel.from_preset(preset, backbone, seed=5, **overrides)
    model.compile(optimizer="sgd")
    x, y = _batch()
    # The engine's start draw: U(-1, 1) from the step's seed (salt 1 of the attack, 1 of the start).
    unit = random_uniform(x.shape, fold_seed(model.step_seed(1), 1), -1.0, 1.0).numpy()
    unit = unit.astype(np.float64)
    W, b = (w.astype(np.float64) for w in backbone.get_layer("linear").get_weights())
    x_adv = model.training_batch(tf.constant(x), model.label_probabilities(y), None).x.numpy()
    return model, W, b, x.astype(np.float64), y, unit, x_adv


def test_fgsm_rs_step_matches_the_reference():
    model, W, b, x, y, unit, got = _model_and_reference_inputs("fgsm-rs")
    assert model.attack_batchnorm == "batch" and model.attack.steps == 1
    want = ref.fgsm_rs_step(W, b, x, y, unit, EPS, 10 / 255)
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert np.abs(got - x).max() <= EPS + 1e-6


def test_n_fgsm_step_matches_the_reference_and_leaves_the_ball():
    model, W, b, x, y, unit, got = _model_and_reference_inputs("n-fgsm")
    assert model.attack_batchnorm == "batch" and not model.attack.project
    want = ref.n_fgsm_step(W, b, x, y, unit, EPS, EPS)
    np.testing.assert_allclose(got, want, atol=1e-6)
    distance = np.abs(got - x)
    assert distance.max() <= 3 * EPS + 1e-6
    assert (distance > EPS + 1e-6).mean() > 0.2  # a quarter of U(-2, 2) + 1 lies beyond 1


def test_n_fgsm_step_scales_with_the_budget():
    """`rel_stepsize` is fixed against the budget the model is built with."""
    model, W, b, x, y, unit, got = _model_and_reference_inputs("n-fgsm", epsilon=16 / 255)
    assert model.attack.step_size == pytest.approx(16 / 255)
    np.testing.assert_allclose(got, ref.n_fgsm_step(W, b, x, y, unit, 16 / 255, 16 / 255),
                               atol=1e-6)


def test_l2_unprojected_attack_keeps_its_step():
    """Without projection the L2 iterate is the start plus one normalised step, clipped to [0, 1]."""
    x, y = _batch(4)
    x = 0.25 + 0.5 * x  # away from 0 and 1: no clip binds
    model = linear_model(SHAPE, CLASSES)
    config = AttackConfig(norm="l2", epsilon=0.1, step_size=0.5, steps=1, random_start=False,
                          project=False)
    x_adv = kr.attacks.engine.run_attack(model, tf.constant(x), y, config).x_adv.numpy()
    norms = np.sqrt(((x_adv - x) ** 2).reshape(4, -1).sum(axis=1))
    np.testing.assert_allclose(norms, 0.5, rtol=1e-4)


def test_single_step_presets_train_and_keep_batchnorm_statistics():
    rng = np.random.default_rng(1)
    x = rng.random((16, 8, 8, 3), dtype=np.float32)
    y = rng.integers(0, CLASSES, 16)
    for preset in ("fgsm-rs", "n-fgsm"):
        model = kr.PGDATModel.from_preset(preset, tiny_cnn((8, 8, 3), CLASSES), seed=0)
        model.compile(optimizer="sgd")
        before = [w.numpy().copy() for w in model.backbone.non_trainable_weights]
        model.training_batch(tf.constant(x), model.label_probabilities(y), None)
        for want, got in zip(before, model.backbone.non_trainable_weights):
            np.testing.assert_array_equal(got.numpy(), want)
        history = model.fit(x, y, batch_size=8, epochs=1, verbose=0)
        assert np.isfinite(history.history["loss"][-1])


def test_unprojected_attacks_are_refused_as_evaluations():
    config = AttackConfig(epsilon=EPS, steps=1, rel_stepsize=1.0, start_radius=2.0, project=False)
    model = linear_model(SHAPE, CLASSES)
    x, y = _batch(2)
    with pytest.raises(ValueError, match="leaves the epsilon ball"):
        kr.attacks.pgd(model, x, y, None, config=config)
    with pytest.raises(ValueError, match="cannot judge robustness"):
        config.replace(early_stop=True)
    with pytest.raises(ValueError, match="cannot judge robustness"):
        config.replace(restarts=2)
    with pytest.raises(ValueError, match="radius of the uniform random start"):
        AttackConfig(start="gaussian", start_radius=2.0)
    with pytest.raises(ValueError, match="start_radius"):
        AttackConfig(start_radius=0.0)
