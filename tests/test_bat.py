"""BAT: eq. 14 / 18 against hand computation, and BATModel's training pairs."""
from __future__ import annotations

import functools

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_robust as kr
from keras_robust.losses import adversarial_label_budget, adversarial_labels, smoothed_labels
from tests.helpers import mlp, robust_feature_data, tiny_cnn


def _numpy_reference(probs, c, beta, gamma):
    """Eq. 13, 14 and 18 written out with NumPy, one sample."""
    n = len(probs)
    v = -np.log(probs)
    others = [k for k in range(n) if k != c]
    v_mc, v_ll = min(v[k] for k in others), max(v[k] for k in others)
    mean = sum(v[k] for k in others) / (n - 1)
    eps = 1 / (1 + beta / (n - 1) * (v_ll - v_mc + gamma) / (mean - v_mc + gamma))
    y = np.zeros(n)
    for k in others:
        y[k] = eps / (n - 1) * (v[k] - v_mc + gamma) / (mean - v_mc + gamma)
    y[c] = 1 - eps
    return y, eps


def test_equal_other_probabilities_give_label_smoothing_eq15_eq19():
    n, beta = 10, 9.0
    logits = np.zeros((3, n), np.float32)
    logits[:, 2] = [4.0, 1.0, 0.0]  # others all equal
    labels = adversarial_labels(tf.constant(logits), [2, 2, 2], beta=beta).numpy()
    eps = 1 / (1 + beta / (n - 1))  # eq. 19: 0.5 for beta = 9, n = 10
    assert eps == pytest.approx(0.5)
    for row in labels:
        np.testing.assert_allclose(row[2], 1 - eps, atol=1e-6)
        np.testing.assert_allclose(np.delete(row, 2), eps / (n - 1), atol=1e-6)
    np.testing.assert_allclose(labels, smoothed_labels([2, 2, 2], n, eps).numpy(), atol=1e-6)
    for beta, expected in ((81.0, 0.1), (1.0, 0.9)):  # the paper's other two CIFAR-10 pairs
        budget = adversarial_label_budget(tf.constant(logits), [2, 2, 2], beta=beta).numpy()
        np.testing.assert_allclose(budget, expected, atol=1e-6)


def test_matches_a_hand_computed_example():
    probs = np.array([0.6, 0.25, 0.1, 0.05])
    logits = tf.constant(np.log(probs)[None], tf.float32)
    labels = adversarial_labels(logits, [0], beta=9.0, gamma=0.01).numpy()[0]
    expected, eps = _numpy_reference(probs, 0, 9.0, 0.01)
    np.testing.assert_allclose(labels, expected, rtol=1e-5, atol=1e-7)
    # By hand: v = -log p = (0.511, 1.386, 2.303, 2.996); v_MC = 1.386, v_LL = 2.996,
    # mean_{k!=c} v = 2.228; eps_y = 1 / (1 + 9/3 * 1.620 / 0.852) = 0.1491.
    assert eps == pytest.approx(0.1491, abs=1e-3)
    assert labels[0] == pytest.approx(1 - 0.1491, abs=1e-3)


@pytest.mark.parametrize("seed", range(5))
def test_labels_on_simplex_with_beta_ratio_and_mc_smallest(seed):
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=3.0, size=(64, 10)).astype(np.float32)
    y = rng.integers(0, 10, 64)
    for beta in (1.0, 9.0, 100.0):
        labels = adversarial_labels(tf.constant(logits), y, beta=beta).numpy()
        assert labels.min() >= 0
        np.testing.assert_allclose(labels.sum(-1), 1.0, atol=1e-5)
        for i in range(64):
            others = np.delete(labels[i], y[i])
            # eq. 16 holds with equality at eq. 18's budget
            np.testing.assert_allclose(labels[i, y[i]], beta * others.max(), rtol=1e-4)
            masked = logits[i].copy()
            masked[y[i]] = -np.inf
            mc, ll = np.argmax(masked), np.argmin(np.where(np.isinf(masked), np.inf, masked))
            assert labels[i, mc] == pytest.approx(np.delete(labels[i], y[i]).min())
            assert labels[i, ll] == pytest.approx(others.max())
        # eq. 21: the budget lies in (1/(1+beta), 1/(1+beta/(n-1))]
        eps = 1 - labels[np.arange(64), y]
        assert np.all(eps > 1 / (1 + beta) - 1e-6) and np.all(eps <= 1 / (1 + beta / 9) + 1e-6)


def test_budget_reaches_the_lower_bound_of_eq21_as_in_eq20():
    # eq. 20's extreme: (v_LL - v_MC) / (mean_{k!=c} v_k - v_MC) -> n - 1, which happens
    # when one other class is far less likely than the rest (all equal): eps_y -> 1/(1+beta).
    logits = np.zeros((1, 10), np.float32)
    logits[0, 9] = -60.0
    eps = adversarial_label_budget(tf.constant(logits), [0], beta=9.0).numpy()[0]
    assert eps == pytest.approx(1 / (1 + 9.0), abs=2e-3)


def test_soft_and_one_hot_labels_give_the_same_result():
    logits = tf.constant(np.random.default_rng(0).normal(size=(8, 5)), tf.float32)
    y = np.arange(8) % 5
    a = adversarial_labels(logits, y).numpy()
    b = adversarial_labels(logits, np.eye(5)[y]).numpy()
    np.testing.assert_allclose(a, b)


def test_keras_loss_matches_hand_computation_and_serialises():
    logits = np.random.default_rng(1).normal(size=(4, 6)).astype(np.float32)
    y = np.eye(6, dtype=np.float32)[[0, 1, 2, 3]]
    loss = kr.losses.AdversarialLabelCrossentropy(beta=9.0)
    target = adversarial_labels(tf.constant(logits), y).numpy()
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = -np.mean(np.sum(target * log_probs, -1))
    np.testing.assert_allclose(float(loss(y, logits)), expected, rtol=1e-5)
    clone = kr.losses.AdversarialLabelCrossentropy.from_config(loss.get_config())
    assert clone.beta == 9.0
    ls = kr.losses.SmoothedLabelCrossentropy(0.5)
    smooth = smoothed_labels(y, 6, 0.5).numpy()
    np.testing.assert_allclose(float(ls(y, logits)),
                               -np.mean(np.sum(smooth * log_probs, -1)), rtol=1e-5)


def test_training_batch_holds_only_perturbed_pairs():
    x, y = robust_feature_data(32, seed=0)
    model = kr.BATModel(mlp(), epsilon=0.1, seed=0)
    model.compile(optimizer="sgd")
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)  # builds the optimizer step counter
    rows = tf.one_hot(y, 2)
    batch = model.training_batch(tf.constant(x), rows, None)
    delta = np.abs(batch.x.numpy() - x).reshape(32, -1).max(-1)
    assert np.all(delta <= 0.1 + 1e-6) and np.all(delta > 0)
    assert batch.x.shape[0] == 32  # only the perturbed images, no clean copies
    labels = batch.y.numpy()
    np.testing.assert_allclose(labels.sum(-1), 1.0, atol=1e-5)
    # two classes: the other class's share is the whole budget, at most 1/(1+beta)... 1/2
    assert np.all(labels[np.arange(32), y] >= 0.5)
    assert np.all(labels[np.arange(32), y] < 1.0)


def test_label_sources_agree_without_random_start():
    x, y = robust_feature_data(16, seed=0)
    rows = tf.one_hot(y, 2)
    outputs = []
    for source in ("start", "clean"):
        keras.utils.set_random_seed(0)
        model = kr.BATModel(tiny_cnn(num_classes=2), epsilon=0.1, random_start=False,
                            label_source=source, seed=0)
        model.compile(optimizer="sgd")
        model.build(None)
        model.optimizer.build(model.trainable_variables)
        outputs.append(model.training_batch(tf.constant(x), rows, None))
    np.testing.assert_allclose(outputs[0].x.numpy(), outputs[1].x.numpy(), atol=1e-6)
    np.testing.assert_allclose(outputs[0].y.numpy(), outputs[1].y.numpy(), atol=1e-6)


def test_variants_are_constructor_arguments_away():
    backbone = mlp()
    names = {"R-FGSM", "R-LL", "R-MC", "R-FGSM-LS", "R-MC-LS", "R-MC-LA", "Madry-LA"}
    assert set(kr.defenses.BAT_VARIANTS) == names
    madry = kr.BATModel.variant("Madry-LA", backbone)
    assert (madry.steps, madry.target, madry.label) == (7, None, "adversarial")
    assert madry.step_size == pytest.approx(2 / 255)
    r_fgsm = kr.BATModel.variant("R-FGSM", backbone)
    assert (r_fgsm.steps, r_fgsm.target, r_fgsm.label) == (1, None, "onehot")
    assert r_fgsm.step_size == pytest.approx(8 / 255)
    assert isinstance(madry, kr.PGDATModel)
    with pytest.raises(ValueError, match="R-MC-LA"):
        kr.BATModel.variant("R-XX", backbone)
    with pytest.raises(ValueError, match="adversarial"):
        kr.BATModel(backbone, label="mixup")


def test_bat_is_more_robust_than_plain_training():
    x, y = robust_feature_data(2048, seed=0)
    x_test, y_test = robust_feature_data(512, seed=1)
    attack = functools.partial(kr.attacks.pgd, epsilon=0.1, step_size=0.025, steps=10, seed=0)
    scores = {}
    for name, make in (("plain", lambda: kr.RobustModel(mlp(), seed=0)),
                       ("bat", lambda: kr.BATModel(mlp(), epsilon=0.1, seed=0))):
        keras.utils.set_random_seed(0)
        model = make()
        model.compile(optimizer=keras.optimizers.Adam(3e-3), metrics=["accuracy"])
        model.fit(x, y, batch_size=64, epochs=8, verbose=0)
        scores[name] = kr.evaluate.robust_accuracy(model, x_test, y_test, attack)
    assert scores["bat"] > scores["plain"] + 0.2, scores
