"""GradAlign: the alignment term and its weight gradient (double backprop) against
a NumPy transcription on a linear model (tests/reference_gradalign.py), one
training step against W - grad(CE(x_adv) + lambda * term), lambda 0 against
plain FGSM training, the authors' lambda rule, BatchNorm statistics kept,
refusals and the config round trip."""
from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_robust as kr
from tests import reference_gradalign as ref
from tests.helpers import linear_model, tiny_cnn

SHAPE = (4, 4, 1)
CLASSES = 10
EPS = 0.25  # large, so that the two gradients differ visibly on a linear model
SALT = 4  # GradAlign's step_seed purpose


def _batch(n=8, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 1.0, (n, *SHAPE)).astype("float32")
    x[0, 0, 0, 0], x[1, 0, 0, 0] = 0.0, 1.0  # x + eta leaves [0, 1] here
    return x, (np.arange(n) % CLASSES).astype("int32")


def _linear_setup(grad_align=1.0, lr=1.0):
    backbone = linear_model(SHAPE, CLASSES, scale=2.0)
    model = kr.GradAlignModel(backbone, epsilon=EPS, seed=5, grad_align=grad_align)
    model.compile(optimizer=keras.optimizers.SGD(lr))
    x, y = _batch()
    # The eta draw: epsilon * U(-1, 1) from the step's seed, salt 4, folded with 0 by Philox
    # (step 0), on the 23-bit grid of the XLA-stable uniform (tests/test_random.py).
    seed = tf.random.experimental.stateless_fold_in(model.step_seed(SALT), 0, alg="philox")
    unit = kr.layers.sample_uniform(x.shape, seed, -1.0, 1.0).numpy()
    W, b = (w.astype(np.float64) for w in backbone.get_layer("linear").get_weights())
    return model, W, b, x, y, EPS * unit.astype(np.float64)


def _alignment_and_gradient(model, x, y):
    weights = model.backbone.get_layer("linear").trainable_weights
    with tf.GradientTape() as tape:
        value = model.alignment_loss(tf.constant(x), model.label_probabilities(y))
    gradients = tape.gradient(value, weights)  # None where nothing reaches a weight
    return float(value), [np.zeros(w.shape) if g is None else g.numpy()
                          for g, w in zip(gradients, weights)]


def test_alignment_term_matches_numpy():
    model, W, b, x, y, eta = _linear_setup()
    got, _ = _alignment_and_gradient(model, x, y)
    want = ref.alignment(W, b, x.astype(np.float64), y, eta)
    assert want > 1e-2  # the gradients are not trivially aligned
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_small_and_zero_gradients_use_the_reference_floor():
    model, W, b, x, y, eta = _linear_setup()
    layer = model.backbone.get_layer("linear")
    layer.set_weights([1e-4 * W.astype("float32"), b.astype("float32")])  # |g| ~ 1e-4
    got, _ = _alignment_and_gradient(model, x, y)
    np.testing.assert_allclose(got, ref.alignment(1e-4 * W, b, x.astype(np.float64), y, eta),
                               atol=1e-5)
    layer.set_weights([0 * W.astype("float32"), b.astype("float32")])  # g = 0: cos 0, finite
    got, (dW, db) = _alignment_and_gradient(model, x, y)
    assert got == pytest.approx(1.0) and np.isfinite(dW).all() and np.isfinite(db).all()


def test_alignment_weight_gradient_matches_finite_differences():
    model, W, b, x, y, eta = _linear_setup()
    _, (dW, db) = _alignment_and_gradient(model, x, y)
    x64 = x.astype(np.float64)
    want_W, want_b = ref.finite_differences(lambda w, c: ref.alignment(w, c, x64, y, eta), W, b)
    scale = np.abs(want_W).max()
    assert scale > 5e-3
    np.testing.assert_allclose(dW, want_W, rtol=1e-3, atol=1e-3 * scale)
    np.testing.assert_allclose(db, want_b, rtol=1e-3, atol=1e-3 * scale)
    # Through g(x) alone the term moves too: stopping it there would show.
    half_W, _ = ref.finite_differences(
        lambda w, c: ref.alignment(w, c, x64, y, eta, frozen_first=(W, b)), W, b)
    assert np.abs(half_W - want_W).max() > 0.1 * scale


def test_one_training_step_is_sgd_on_ce_plus_lambda_term():
    lam = 2.0
    model, W, b, x, y, eta = _linear_setup(grad_align=lam)
    x64 = x.astype(np.float64)
    x_adv = ref.fgsm_zero(W, b, x64, y, EPS)
    ce_W, ce_b = ref.ce_weight_gradient(W, b, x_adv, y)
    reg_W, reg_b = ref.finite_differences(lambda w, c: ref.alignment(w, c, x64, y, eta), W, b)
    assert lam * np.abs(reg_W).max() > 1e-2  # the term moves the step visibly
    model.fit(x, y, batch_size=len(x), epochs=1, shuffle=False, verbose=0)
    got_W, got_b = model.backbone.get_layer("linear").get_weights()
    np.testing.assert_allclose(got_W, W - ce_W - lam * reg_W, atol=2e-5)
    np.testing.assert_allclose(got_b, b - ce_b - lam * reg_b, atol=2e-5)
    assert np.abs(got_W - (W - ce_W)).max() > 1e-2  # not the plain FGSM step


def test_the_clean_images_travel_with_the_batch():
    model, _, _, x, y, _ = _linear_setup()
    batch = model.training_batch(tf.constant(x), model.label_probabilities(y), None)
    np.testing.assert_array_equal(batch.clean_x, x)  # the term's point: x, not x_adv
    assert np.abs(batch.x.numpy() - x).max() > 0.1
    logits = model.backbone(batch.x)
    model.training_loss(batch, logits)
    with pytest.raises(ValueError, match="clean_x"):
        model.training_loss(batch._replace(clean_x=None), logits)


@pytest.fixture(scope="module")
def tiny_steps():
    """One SGD step of the same tiny CNN (BatchNorm) under lambda 0, lambda 0.2 and PGDATModel."""
    keras.utils.set_random_seed(3)
    first = tiny_cnn(SHAPE, CLASSES)
    models = {}
    attack = kr.GradAlignModel.presets["grad-align"]["attack"]
    for name in ("zero", "on", "plain"):
        backbone = keras.models.clone_model(first)
        backbone.set_weights(first.get_weights())
        models[name] = (kr.PGDATModel(backbone, attack=attack, attack_batchnorm="batch", seed=2)
                        if name == "plain" else
                        kr.GradAlignModel(backbone, grad_align=0.0 if name == "zero" else 0.2, seed=2))
    x, y = _batch()
    for model in models.values():
        model.compile(optimizer=keras.optimizers.SGD(0.5))
        model.fit(x, y, batch_size=len(x), epochs=1, shuffle=False, verbose=0)
    return models


def test_lambda_zero_is_plain_fgsm_training_bit_for_bit(tiny_steps):
    ours, plain = tiny_steps["zero"].backbone, tiny_steps["plain"].backbone
    for a, b in zip(ours.get_weights(), plain.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_extra_passes_leave_the_moving_statistics_to_the_training_pass(tiny_steps):
    ours, plain = tiny_steps["on"].backbone, tiny_steps["plain"].backbone
    assert any("moving" in w.path for w in ours.non_trainable_weights)
    for a, b in zip(ours.non_trainable_weights, plain.non_trainable_weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-7)
    assert not np.allclose(ours.trainable_weights[0].numpy(), plain.trainable_weights[0].numpy())


def test_the_authors_lambda_rule_and_the_defaults():
    assert kr.gradalign.grad_align_lambda(8 / 255) == pytest.approx(0.2, abs=1e-12)
    # sh/exps_diff_eps_cifar10.sh, eps 1..14 (15 and 16 are rounded further there).
    script = [0.027, 0.036, 0.047, 0.063, 0.084, 0.112, 0.150, 0.200, 0.267, 0.356, 0.474,
              0.632, 0.843, 1.124]
    rule = [kr.gradalign.grad_align_lambda(e / 255) for e in range(1, 15)]
    assert rule == pytest.approx(script, abs=5.1e-4)  # the script's three decimals
    backbone = linear_model(SHAPE, CLASSES)
    model = kr.GradAlignModel(backbone)
    assert model.grad_align == pytest.approx(0.2) and model.attack_batchnorm == "batch"
    assert model.attack.steps == 1 and not model.attack.random_start
    assert model.attack.step_size == pytest.approx(8 / 255)
    assert kr.GradAlignModel(backbone, epsilon=16 / 255).grad_align == pytest.approx(1.998, abs=1e-3)
    assert kr.GradAlignModel.from_preset("grad-align-16", backbone).attack.step_size == \
        pytest.approx(16 / 255)


def test_bad_arguments_are_refused():
    backbone = linear_model(SHAPE, CLASSES)
    with pytest.raises(ValueError, match="grad_align"):
        kr.GradAlignModel(backbone, grad_align=-0.1)
    with pytest.raises(TypeError, match="grad_align"):
        kr.GradAlignModel(backbone, grad_align="0.2")
    with pytest.raises(ValueError, match="linf"):
        kr.GradAlignModel(backbone, norm="l2", epsilon=0.5)


def test_config_round_trip_and_registry():
    backbone = linear_model(SHAPE, CLASSES)
    model = kr.defenses.get("grad_align", backbone, grad_align=0.7, seed=3)
    assert type(model) is kr.GradAlignModel
    config = model.get_config()
    assert config["grad_align"] == 0.7
    again = kr.GradAlignModel.from_config(config)
    assert again.grad_align == 0.7 and again.attack == model.attack and again.seed == 3
    assert again.attack_batchnorm == "batch"
