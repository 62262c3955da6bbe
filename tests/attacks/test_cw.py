"""CW-L2: Carlini and Wagner's preset against the closed form of a linear model, smaller
perturbations than a large fixed budget, the confidence and the fallback."""
from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_robust as kr
from keras_robust.attacks.cw import CW_PRESETS, cw_margin
from tests.attacks._helpers import _accuracy


def _linear_problem(n=12, scale=0.3):
    """A 10-class linear model on 4x4 images near 0.5 and, per sample, the closed form of
    the untargeted minimal L2 perturbation, d* = min_{j != y} (z_y - z_j) / ||w_y - w_j||,
    and of the smallest c at which C&W's loss ||d||^2 + c * max(z_y - z_j, 0) has its
    minimum on the boundary for some class j: c* = min_j 2 (z_y - z_j) / ||w_y - w_j||^2.
    Samples are kept whose nearest class is unambiguous and whose c* lies in [0.13, 0.33]: c = 1e-3, 1e-2 and 0.1 (the first
    three steps of C&W's search, x10 while it fails) cannot fool them, c = 1 can."""
    rng = np.random.default_rng(0)
    weights = rng.normal(size=(16, 10)) * scale
    bias = rng.normal(size=10) * 0.5 * scale
    x = rng.uniform(0.4, 0.6, (256, 16))
    z = x @ weights + bias
    y = z.argmax(1)
    margin = z[np.arange(len(x)), y][:, None] - z
    diff = np.linalg.norm(weights[:, y].T[:, :, None] - weights[None], axis=1)
    others = np.eye(10)[y] == 0
    distances = np.where(others, margin / np.where(others, diff, 1), np.inf)
    thresholds = np.where(others, 2 * margin / np.where(others, diff, 1) ** 2, np.inf)
    distance, threshold = distances.min(1), thresholds.min(1)
    # One class is at once the runner-up, the nearest and the cheapest, so the descent
    # cannot be drawn to a farther boundary first.
    unambiguous = (distances.argmin(1) == thresholds.argmin(1)) & (
        distances.argmin(1) == np.where(others, z, -np.inf).argmax(1))
    keep = np.flatnonzero(unambiguous & (threshold > 0.13) & (threshold < 0.33))[:n]
    assert len(keep) == n
    inputs = keras.Input((4, 4, 1))
    dense = keras.layers.Dense(10)
    model = keras.Model(inputs, dense(keras.layers.Flatten()(inputs)))
    dense.set_weights([weights.astype(np.float32), bias.astype(np.float32)])
    images = x[keep].reshape(-1, 4, 4, 1).astype(np.float32)
    return model, images, y[keep], distance[keep]


STEPS = 100  # per search step (C&W: 10,000); the linear problem converges in fewer


def _l2(a, b):
    return np.linalg.norm((np.asarray(a) - b).reshape(len(b), -1), axis=1)


def test_the_preset_holds_carlini_and_wagners_settings():
    # Carlini & Wagner 2017 (section VI) and their l2_attack.py defaults
    assert CW_PRESETS["carlini_wagner"] == dict(
        confidence=0.0, steps=10_000, learning_rate=1e-2, initial_const=1e-3,
        binary_search_steps=9, fallback="input", abort_early=True)
    with pytest.raises(ValueError, match="carlini_wagner"):
        kr.attacks.cw_l2(lambda v: v, np.zeros((1, 2, 2, 1), np.float32), [0], preset="paper")


def test_the_papers_binary_search_finds_the_closed_form_minimal_perturbation():
    model, x, y, distance = _linear_problem()
    x_adv = kr.attacks.cw_l2(model, x, y, preset="carlini_wagner", steps=STEPS)
    found = _l2(x_adv, x)
    assert np.all(np.argmax(model(x_adv), -1) != y)
    assert np.all(found >= distance - 1e-4)  # nothing beats the closed form
    np.testing.assert_allclose(found, distance, rtol=0.01)


def test_c_grows_tenfold_from_1e_3_and_without_success_the_input_comes_back():
    model, x, y, _ = _linear_problem()
    # Three search steps try c = 1e-3, 1e-2, 0.1: all below every sample's c*, so
    # no sample is fooled and C&W return the unperturbed image.
    x_three = np.asarray(kr.attacks.cw_l2(model, x, y, preset="carlini_wagner", steps=STEPS,
                                          binary_search_steps=3))
    np.testing.assert_array_equal(x_three, x)
    # The fourth step tries c = 1 and fools every sample.
    x_four = kr.attacks.cw_l2(model, x, y, preset="carlini_wagner", steps=STEPS,
                              binary_search_steps=4)
    assert np.all(np.argmax(model(x_four), -1) != y)
    # A fixed c of 1e-3 (the preset's start, one step) fools nothing either.
    x_one = np.asarray(kr.attacks.cw_l2(model, x, y, preset="carlini_wagner", steps=STEPS,
                                        binary_search_steps=1))
    np.testing.assert_array_equal(x_one, x)


class _Counting:
    """Counts the image rows a model is called on (inside tf.function too)."""

    def __init__(self, model):
        import tensorflow as tf

        self.model, self.rows = model, tf.Variable(0, dtype=tf.int64, trainable=False)

    def __call__(self, x, training=False):
        import tensorflow as tf

        self.rows.assign_add(tf.cast(tf.shape(x)[0], tf.int64))
        return self.model(x, training=training)


def test_the_early_abort_stops_stalled_search_steps_and_still_finds_the_closed_form():
    """C&W's ABORT_EARLY (on in their preset): search steps whose loss stalls end early, so
    far fewer forward passes; the minimal perturbation of the linear model is still found."""
    model, x, y, distance = _linear_problem()
    full, early = _Counting(model), _Counting(model)
    x_full = kr.attacks.cw_l2(full, x, y, preset="carlini_wagner", steps=1000,
                              abort_early=False)
    x_early = kr.attacks.cw_l2(early, x, y, preset="carlini_wagner", steps=1000)
    for x_adv in (x_full, x_early):
        assert np.all(np.argmax(model(x_adv), -1) != y)
        np.testing.assert_allclose(_l2(x_adv, x), distance, rtol=0.01)
    # 9 search steps x 1000 iterations (+ one pass each for the last iterate) without it.
    assert int(full.rows.numpy()) == 9 * 1001 * len(x)
    assert int(early.rows.numpy()) < 0.5 * int(full.rows.numpy())
    with pytest.raises(TypeError, match="abort_early"):
        kr.attacks.cw_l2(model, x, y, abort_early="yes")


@pytest.mark.parametrize("targeted", [False, True])
def test_the_hand_written_gradient_equals_automatic_differentiation(targeted):
    """C&W's gradient in the tanh space is written out by hand (the model's gradient of
    the hinge, then dx'/dw = (1 - tanh(w)^2) / 2); it must equal TensorFlow's gradient
    of the whole objective sum ||x' - x||^2 + c max(kappa - margin, 0), written here
    from the paper with its own margin. kappa > 0 with margins on both sides of it
    and of 0, so a missing kappa or a missing tanh derivative changes the gradient."""
    import tensorflow as tf

    from keras_robust.attacks.cw import cw_objective
    from tests.helpers import linear_model

    rng = np.random.default_rng(2)
    model = linear_model(input_shape=(4, 4, 1), num_classes=10, scale=1.0, seed=6)
    x = rng.uniform(0.2, 0.8, (16, 4, 4, 1)).astype(np.float32)
    x_adv = np.clip(x + rng.normal(0, 0.1, x.shape), 0.05, 0.95).astype(np.float32)
    w = tf.constant(np.arctanh(2 * x_adv - 1), tf.float32)
    logits = np.asarray(model(tf.constant(x_adv)))
    ranked = np.argsort(-logits, 1)
    # Half the labels are the predicted class (margin < 0), half the runner-up
    # (margin > 0); toward a target, the same with the margin's sign flipped.
    y = np.where(np.arange(16) % 2 == 0, ranked[:, 0], ranked[:, 1]).astype(np.int32)
    targets = np.where(np.arange(16) % 2 == 0, ranked[:, 1], ranked[:, 0]).astype(np.int32)
    const = tf.constant(rng.uniform(0.5, 2.0, 16), tf.float32)
    hot = np.eye(10, dtype=bool)[targets if targeted else y]
    z_label = logits[hot]
    best_other = np.where(hot, -np.inf, logits).max(1)
    margins = (z_label - best_other) if targeted else (best_other - z_label)
    kappa = float(np.median(margins[margins > 0]))
    between = (margins > 0) & (margins < kappa)
    assert between.sum() >= 2 and np.sum(margins < 0) >= 4 and np.sum(margins > kappa) >= 2

    _, distance, margin, grad = cw_objective(
        model, w, tf.constant(x), tf.constant(y), tf.constant(targets) if targeted else None,
        const, kappa)
    np.testing.assert_allclose(np.asarray(margin), margins, atol=1e-5)
    with tf.GradientTape() as tape:
        tape.watch(w)
        image = (tf.tanh(w) + 1.0) / 2.0
        z = model(image)
        mask = tf.constant(hot)
        z_label = tf.boolean_mask(z, mask)
        other = tf.reduce_max(tf.where(mask, -np.inf, z), axis=1)
        reference_margin = z_label - other if targeted else other - z_label
        objective = tf.reduce_sum(tf.square(image - x)) + tf.reduce_sum(
            const * tf.nn.relu(kappa - reference_margin))
    reference = tape.gradient(objective, w)
    np.testing.assert_allclose(np.asarray(distance),
                               np.sum((np.asarray(image) - x) ** 2, axis=(1, 2, 3)), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(grad), np.asarray(reference), rtol=1e-4, atol=1e-6)


def test_cw_finds_smaller_perturbations_than_a_large_fixed_budget(separable):
    model, x, y = separable
    x_cw = np.asarray(kr.attacks.cw_l2(model, x, y, steps=100, learning_rate=0.05))
    assert x_cw.dtype == np.float32 and x_cw.min() >= 0.0 and x_cw.max() <= 1.0
    assert _accuracy(model, x_cw, y) == 0.0
    l2_cw = np.linalg.norm((x_cw - x).reshape(len(x), -1), axis=1)
    x_pgd = np.asarray(kr.attacks.pgd(model, x, y, 3.0, 0.3, 20, norm="l2", loss="cw", seed=0))
    assert _accuracy(model, x_pgd, y) == 0.0
    l2_pgd = np.linalg.norm((x_pgd - x).reshape(len(x), -1), axis=1)
    assert np.all(l2_cw < l2_pgd)
    # The binary search over c never does worse than a fixed c.
    x_bs = np.asarray(kr.attacks.cw_l2(model, x, y, steps=100, learning_rate=0.05,
                                       binary_search_steps=4))
    l2_bs = np.linalg.norm((x_bs - x).reshape(len(x), -1), axis=1)
    assert _accuracy(model, x_bs, y) == 0.0
    assert np.median(l2_bs) <= np.median(l2_cw) + 1e-3


def test_cw_respects_its_confidence_and_its_fallback(separable):
    model, x, y = separable
    x_adv = np.asarray(kr.attacks.cw_l2(model, x, y, confidence=3.0, steps=100,
                                        learning_rate=0.05))
    margin = cw_margin(model(x_adv), tf.constant(y)).numpy()
    moved = np.abs(x_adv - x).reshape(len(x), -1).max(axis=1) > 1e-4
    assert moved.all()
    assert np.all(margin >= 3.0 - 1e-3)
    # Unreachable confidence: "input" returns x, "misclassified" (the default)
    # the closest misclassified iterate.
    kwargs = dict(confidence=1e4, steps=20, learning_rate=0.05)
    x_in = np.asarray(kr.attacks.cw_l2(model, x, y, fallback="input", **kwargs))
    np.testing.assert_allclose(x_in, x, atol=1e-5)
    x_mis = np.asarray(kr.attacks.cw_l2(model, x, y, **kwargs))
    assert _accuracy(model, x_mis, y) == 0.0
    assert np.all(cw_margin(model(x_mis), tf.constant(y)).numpy() > 0)
    # Targeted: the target wins by the margin.
    target = (y + 1) % 4
    x_t = np.asarray(kr.attacks.cw_l2(model, x, y, target=target, confidence=1.0, steps=100,
                                      learning_rate=0.05))
    np.testing.assert_array_equal(np.argmax(model.predict(x_t, verbose=0), -1), target)
    assert np.all(cw_margin(model(x_t), tf.constant(y), tf.constant(target)).numpy() >= 1.0 - 1e-3)
