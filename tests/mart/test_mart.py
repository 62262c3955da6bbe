"""MART: the loss and its gradient against a NumPy transcription of the authors'
`mart_loss`, with nothing detached; the attack is CE from the Gaussian start."""
from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_robust as kr
from keras_robust.attacks.engine import AttackResult
from tests import reference_paired as ref
from tests.helpers import linear_model, tiny_cnn

SHAPE = (4, 4, 1)
CLASSES = 10


def _setup(lam=5.0, lr=0.0):
    rng = np.random.default_rng(5)
    x = rng.uniform(0, 1, (8, *SHAPE)).astype("float32")
    x_adv = np.clip(x + rng.uniform(-0.1, 0.1, x.shape), 0, 1).astype("float32")
    y = (np.arange(8) * 7 % CLASSES).astype("int32")
    model = kr.MARTModel(linear_model(SHAPE, CLASSES, scale=0.5), lam=lam, seed=0)
    model.compile(optimizer=keras.optimizers.SGD(lr))
    model.adversarial_examples = lambda x_, y_: AttackResult(tf.constant(x_adv), None, None)
    W, b = (w.astype(np.float64) for w in model.backbone.get_layer("linear").get_weights())
    return model, x, x_adv, y, W, b


def test_mart_loss_matches_the_authors_function():
    model, x, x_adv, y, W, b = _setup()
    batch = model.training_batch(tf.constant(x), model.label_probabilities(y), None)
    loss = float(model.training_loss(batch, model.training_logits(batch)))
    assert loss == pytest.approx(ref.mart_loss(W, b, x, x_adv, y, 5.0), abs=1e-5)


def test_mart_step_follows_the_gradient_of_every_term():
    """One SGD step equals W - lr * the numerical gradient of the authors' loss; holding the
    KL weight 1 - p_y(x) constant (a plausible wrong wiring) moves W far beyond the tolerance."""
    model, x, x_adv, y, W, b = _setup(lr=0.5)
    loss = lambda W_, b_: ref.mart_loss(W_, b_, x, x_adv, y, 5.0)  # noqa: E731
    grad_W, grad_b = ref.numeric_gradient(loss, W.copy(), b.copy())
    model.fit(x, y, batch_size=len(x), epochs=1, shuffle=False, verbose=0)
    new_W, new_b = (w.astype(np.float64) for w in model.backbone.get_layer("linear").get_weights())
    np.testing.assert_allclose(new_W, W - 0.5 * grad_W, atol=2e-5)
    np.testing.assert_allclose(new_b, b - 0.5 * grad_b, atol=2e-5)

    true_fixed = ref.softmax(ref.linear_logits(W, b, x))[np.arange(8), y]

    def detached_weight(W_, b_):
        full = ref.mart_loss(W_, b_, x, x_adv, y, 0.0)
        nat = ref.softmax(ref.linear_logits(W_, b_, x))
        adv = ref.softmax(ref.linear_logits(W_, b_, x_adv))
        kl = ref.kl_div_sum(np.log(adv + 1e-12), nat).sum(axis=1)
        return full + 5.0 * np.mean(kl * (1.0000001 - true_fixed))

    wrong_W, _ = ref.numeric_gradient(detached_weight, W.copy(), b.copy())
    assert np.abs(wrong_W - grad_W).max() > 100 * 2e-5


def test_mart_attacks_with_ce_from_the_gaussian_start_and_reports_the_adversarial_half():
    model = kr.MARTModel(tiny_cnn(SHAPE, CLASSES))
    model.compile(optimizer="sgd")
    assert (model.attack.loss, model.attack.start, model.lam) == ("ce", "gaussian", 6.0)
    assert [kr.MARTModel.presets[name]["lam"] for name in ("mart-wrn", "mart-resnet")] == [6.0, 5.0]
    resnet = kr.MARTModel.from_preset("mart-resnet", tiny_cnn(SHAPE, CLASSES))
    assert (resnet.attack.epsilon, resnet.attack.step_size, resnet.attack.steps) == (0.031, 0.007, 10)
    batch = model.training_batch(tf.zeros([2, *SHAPE]), model.label_probabilities([0, 1]), None)
    assert batch.sample_weight.numpy().tolist() == [0.0, 0.0, 2.0, 2.0]
    again = kr.MARTModel.from_config(model.get_config())
    assert (again.lam, again.attack) == (model.lam, model.attack)
    with pytest.raises(ValueError, match="lam"):
        kr.MARTModel(tiny_cnn(SHAPE, CLASSES), lam=-0.5)
