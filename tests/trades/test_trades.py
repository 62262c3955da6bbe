"""TRADES: the loss and its gradient against a NumPy transcription of the authors'
`trades_loss`, the KL attack against their inner loop (L-inf and L2), and the
wiring: beta 0 is the clean-CE step, the attack moves the images from the
Gaussian start and refuses to run without it, BatchNorm statistics stay."""
from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_robust as kr
from keras_robust.attacks import AttackConfig
from keras_robust.attacks.common import fold_seed, gaussian_start
from keras_robust.attacks.engine import AttackResult, run_attack
from tests import reference_paired as ref
from tests.helpers import linear_model, tiny_cnn

SHAPE = (4, 4, 1)
CLASSES = 10


def _data(n=8, seed=0, low=0.0, high=1.0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(low, high, (n, *SHAPE)).astype("float32")
    x_adv = np.clip(x + rng.uniform(-0.1, 0.1, x.shape), 0, 1).astype("float32")
    return x, x_adv, (np.arange(n) * 3 % CLASSES).astype("int32")


def _fixed_attack(model, x_adv):
    """Makes `model` train on the given x' (the loss tests fix the attack's output)."""
    model.adversarial_examples = lambda x, y: AttackResult(tf.constant(x_adv), None, None)


def _weights(model):
    W, b = model.backbone.get_layer("linear").get_weights()
    return W.astype(np.float64), b.astype(np.float64)


def test_trades_loss_matches_the_authors_function():
    x, x_adv, y = _data()
    model = kr.TRADESModel(linear_model(SHAPE, CLASSES, scale=0.5), beta=6.0, seed=0)
    model.compile(optimizer="sgd")
    _fixed_attack(model, x_adv)
    batch = model.training_batch(tf.constant(x), model.label_probabilities(y), None)
    loss = float(model.training_loss(batch, model.training_logits(batch)))
    W, b = _weights(model)
    assert loss == pytest.approx(ref.trades_loss(W, b, x, x_adv, y, 6.0), abs=1e-5)


def test_trades_step_follows_the_gradient_through_both_distributions():
    """One SGD step of `fit` equals W - lr * the numerical gradient of the authors' loss;
    the gradient with p(x) detached in the KL differs far beyond the tolerance."""
    x, x_adv, y = _data()
    model = kr.TRADESModel(linear_model(SHAPE, CLASSES, scale=0.5), beta=6.0, seed=0)
    model.compile(optimizer=keras.optimizers.SGD(0.5))
    _fixed_attack(model, x_adv)
    W, b = _weights(model)
    grad_W, grad_b = ref.numeric_gradient(lambda W_, b_: ref.trades_loss(W_, b_, x, x_adv, y, 6.0),
                                          W.copy(), b.copy())
    model.fit(x, y, batch_size=len(x), epochs=1, shuffle=False, verbose=0)
    new_W, new_b = _weights(model)
    np.testing.assert_allclose(new_W, W - 0.5 * grad_W, atol=2e-5)
    np.testing.assert_allclose(new_b, b - 0.5 * grad_b, atol=2e-5)

    p_fixed = ref.softmax(ref.linear_logits(W, b, x))

    def detached(W_, b_):  # p(x) held constant in the KL: a plausible wrong wiring
        natural = -ref.log_softmax(ref.linear_logits(W_, b_, x))[np.arange(len(x)), y].mean()
        log_q = ref.log_softmax(ref.linear_logits(W_, b_, x_adv))
        return natural + 6.0 * ref.kl_div_sum(log_q, p_fixed).sum() / len(x)

    wrong_W, _ = ref.numeric_gradient(detached, W.copy(), b.copy())
    assert np.abs(wrong_W - grad_W).max() > 100 * 2e-5


def test_beta_zero_is_the_clean_cross_entropy_step():
    x, _, y = _data(seed=1)
    backbone = tiny_cnn(SHAPE, CLASSES)
    plain_backbone = keras.models.clone_model(backbone)
    plain_backbone.set_weights(backbone.get_weights())
    trades = kr.TRADESModel(backbone, beta=0.0, steps=2, step_size=2 / 255, seed=0)
    plain = kr.RobustModel(plain_backbone, seed=0)
    for model in (trades, plain):
        model.compile(optimizer=keras.optimizers.SGD(0.1))
        model.fit(x, y, batch_size=len(x), epochs=2, verbose=0)
    for got, want in zip(backbone.trainable_weights, plain_backbone.trainable_weights):
        np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-6)


def _attack_inputs(low=0.0, high=1.0):
    x, _, y = _data(n=6, seed=2, low=low, high=high)
    model = linear_model(SHAPE, CLASSES, scale=0.5)
    W, b = _weights_of(model)
    seed = tf.constant([3, 4], tf.int64)
    noise = (gaussian_start(tf.constant(x), 0.001, fold_seed(seed, 1)).numpy() - x).astype(np.float64)
    return model, W, b, x, y, seed, noise


def _weights_of(backbone):
    W, b = backbone.get_layer("linear").get_weights()
    return W.astype(np.float64), b.astype(np.float64)


def test_kl_attack_matches_the_authors_linf_loop():
    model, W, b, x, y, seed, noise = _attack_inputs()
    config = AttackConfig(epsilon=8 / 255, step_size=2 / 255, steps=5, loss="kl", start="gaussian")
    got = run_attack(model, tf.constant(x), y, config, seed=seed).x_adv.numpy()
    want = ref.trades_attack_linf(W, b, x.astype(np.float64), noise, 8 / 255, 2 / 255, 5)
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_kl_attack_matches_the_authors_l2_loop():
    """Images in [0.3, 0.7]: neither clamp to [0, 1] binds, so the order of the two
    projections (theirs: clamp then renorm; the engine's: ball then clamp) cannot differ."""
    model, W, b, x, y, seed, noise = _attack_inputs(0.3, 0.7)
    step = float(kr.TRADESModel.default_step_size(AttackConfig(norm="l2", epsilon=0.25, steps=4)))
    config = AttackConfig(norm="l2", epsilon=0.25, step_size=step, steps=4, loss="kl",
                          start="gaussian")
    got = run_attack(model, tf.constant(x), y, config, seed=seed).x_adv.numpy()
    want = ref.trades_attack_l2(W, b, x.astype(np.float64), noise, 0.25, 4)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_the_training_attack_moves_the_images_and_keeps_batchnorm_statistics():
    rng = np.random.default_rng(3)
    x = rng.random((16, 8, 8, 3), dtype=np.float32)
    y = rng.integers(0, CLASSES, 16)
    for attack_batchnorm in ("moving", "batch"):
        model = kr.TRADESModel(tiny_cnn((8, 8, 3), CLASSES), steps=3, step_size=3 / 255,
                               attack_batchnorm=attack_batchnorm, seed=0)
        model.compile(optimizer="sgd")
        before = [w.numpy().copy() for w in model.backbone.non_trainable_weights]
        batch = model.training_batch(tf.constant(x), model.label_probabilities(y), None)
        x_adv = batch.x[16:].numpy()
        assert np.abs(x_adv - x).mean() >= 0.5 * 8 / 255
        assert np.abs(x_adv - x).max() <= 8 / 255 + 1e-6 and x_adv.min() >= 0 and x_adv.max() <= 1
        for want, got in zip(before, model.backbone.non_trainable_weights):
            np.testing.assert_array_equal(got.numpy(), want)


def test_the_kl_objective_is_flat_at_x_and_refused_without_a_random_start():
    """The trap TRADES' Gaussian start avoids: at x' = x the KL's gradient is 0 (float32
    rounding left), three orders of magnitude below its value at x + 0.001 N(0, 1)."""
    model = linear_model(SHAPE, CLASSES)
    x, _, _ = _data(n=2)
    x = tf.constant(x)
    reference = tf.nn.softmax(model(x))

    def largest_gradient(x_adv):
        with tf.GradientTape() as tape:
            tape.watch(x_adv)
            kl = tf.reduce_sum(kr.attacks.objective("kl", model(x_adv), tf.constant([0, 1]),
                                                    reference=reference))
        return float(tf.reduce_max(tf.abs(tape.gradient(kl, x_adv))))

    at_start = largest_gradient(gaussian_start(x, 0.001, tf.constant([0, 1])))
    assert largest_gradient(x) < 1e-6 < 1e-3 * at_start
    with pytest.raises(ValueError, match="zero gradient at x' = x"):
        kr.TRADESModel(tiny_cnn(SHAPE, CLASSES), random_start=False)
    with pytest.raises(ValueError, match="zero gradient"):
        kr.attacks.pgd(model, x, [0, 1], 8 / 255, loss="kl", random_start=False)


def test_presets_and_settings_round_trip():
    assert kr.TRADESModel.list_presets() == ["trades", "trades-cifar10", "trades-l2", "trades-awp"]
    awp = kr.TRADESModel.from_preset("trades-awp", tiny_cnn(SHAPE, CLASSES))
    assert (awp.weight_perturbation.gamma, awp.weight_perturbation.warmup_epochs) == (0.005, 10)
    assert kr.PGDATModel.from_preset("at-awp", tiny_cnn(SHAPE, CLASSES)).weight_perturbation.gamma == 0.01
    authors = kr.TRADESModel.from_preset("trades-cifar10", tiny_cnn(SHAPE, CLASSES))
    assert (authors.beta, authors.attack.epsilon, authors.attack.step_size, authors.attack.steps,
            authors.attack.loss, authors.attack.start) == (6.0, 0.031, 0.007, 10, "kl", "gaussian")
    l2 = kr.TRADESModel.from_preset("trades-l2", tiny_cnn(SHAPE, CLASSES))
    assert l2.attack.step_size == pytest.approx(2 * 0.5 / 10)
    model = kr.TRADESModel(tiny_cnn(SHAPE, CLASSES), beta=2.5, clean_batchnorm="frozen", seed=1)
    again = kr.TRADESModel.from_config(model.get_config())
    assert (again.beta, again.clean_batchnorm, again.attack) == (2.5, "frozen", model.attack)
    with pytest.raises(ValueError, match="beta"):
        kr.TRADESModel(tiny_cnn(SHAPE, CLASSES), beta=-1.0)
    with pytest.raises(ValueError, match="clean_batchnorm"):
        kr.TRADESModel(tiny_cnn(SHAPE, CLASSES), clean_batchnorm="moving")


def test_frozen_clean_pass_leaves_the_moving_statistics_to_the_adversarial_pass():
    """With clean_batchnorm="frozen" one step moves the BatchNorm averages exactly as one
    training pass on x' alone; with "update" they differ (the clean pass updated them too)."""
    rng = np.random.default_rng(4)
    x = rng.random((8, 8, 8, 3), dtype=np.float32)
    y = rng.integers(0, CLASSES, 8)
    for mode in ("frozen", "update"):
        backbone = tiny_cnn((8, 8, 3), CLASSES)
        model = kr.TRADESModel(backbone, clean_batchnorm=mode, steps=1, step_size=2 / 255, seed=0)
        model.compile(optimizer=keras.optimizers.SGD(0.0))
        start = [w.numpy().copy() for w in backbone.weights]
        batch = model.training_batch(tf.constant(x), model.label_probabilities(y), None)
        x_adv = batch.x[8:]
        backbone(x_adv, training=True)  # what the adversarial pass alone does
        expected = [w.numpy().copy() for w in backbone.non_trainable_weights]
        for w, value in zip(backbone.weights, start):
            w.assign(value)
        model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
        same = all(np.allclose(w.numpy(), e, atol=1e-6)
                   for w, e in zip(backbone.non_trainable_weights, expected))
        assert same == (mode == "frozen")
