"""FAB / FAB-T: the projection, minimality on linear models, the epsilon check, strength."""
from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy.optimize import linprog

import keras_robust as kr
from keras_robust.attacks.fab import _project
from tests.helpers import assert_in_ball, linear_model


def _linf_projection_lp(t, w, b):
    """min ||d||_inf s.t. w.(t + d) = b, 0 <= t + d <= 1, as a linear program (None if infeasible)."""
    n = len(t)
    cost = np.r_[np.zeros(n), 1.0]
    bound_rows = np.block([[np.eye(n), -np.ones((n, 1))], [-np.eye(n), -np.ones((n, 1))]])
    done = linprog(cost, A_ub=bound_rows, b_ub=np.zeros(2 * n), A_eq=np.r_[w, 0.0][None],
                   b_eq=[b - w @ t], bounds=[(-ti, 1 - ti) for ti in t] + [(0, None)])
    return done.x[-1] if done.status == 0 else None


def _l2_projection_kkt(t, w, b):
    """The KKT solution d = clip(-lam w, -t, 1 - t) (w oriented), lam by bisection."""
    c = w @ t - b
    w = w if c >= 0 else -w
    reached = lambda lam: -(w @ np.clip(-lam * w, -t, 1 - t))  # noqa: E731
    low, high = 0.0, 1e6
    if reached(high) < abs(c):  # the plane is out of the box: the closest corner
        return np.clip(-high * w, -t, 1 - t)
    for _ in range(200):
        middle = 0.5 * (low + high)
        low, high = (middle, high) if reached(middle) < abs(c) else (low, middle)
    return np.clip(-high * w, -t, 1 - t)


def test_the_projection_onto_a_hyperplane_in_the_box_matches_independent_solvers():
    rng = np.random.default_rng(0)
    t = rng.random((8, 12))
    t[:, :3] = rng.choice([0.0, 1.0, 0.02, 0.98], size=(8, 3))  # the box binds
    w = rng.normal(size=(8, 12))
    w[:, 4] = 0.0
    b = np.sum(w * t, 1) + 1.5 * rng.normal(size=8)
    b[-1] = np.sum(np.abs(w[-1])) * 2  # out of reach inside the box
    args = [tf.constant(v, tf.float32) for v in (t, w, b)]
    d_inf = _project(*args, "linf").numpy()
    d_two = _project(*args, "l2").numpy()
    for i in range(8):
        assert np.all(t[i] + d_inf[i] >= -1e-6) and np.all(t[i] + d_inf[i] <= 1 + 1e-6)
        radius = _linf_projection_lp(t[i], w[i], b[i])
        if radius is None:
            assert i == 7
        else:
            assert np.abs(d_inf[i]).max() == pytest.approx(radius, rel=1e-4, abs=1e-6)
            assert w[i] @ (t[i] + d_inf[i]) == pytest.approx(b[i], abs=1e-4)
        np.testing.assert_allclose(d_two[i], _l2_projection_kkt(t[i], w[i], b[i]), atol=1e-5)
    # Out of reach (b > max of w.z over the box), both go to the corner that maximises w.z.
    corner = np.where(w[7] < 0, -t[7], np.where(w[7] > 0, 1 - t[7], 0.0))
    np.testing.assert_allclose(d_inf[7], corner, atol=1e-6)
    np.testing.assert_allclose(d_two[7], corner, atol=1e-6)


@pytest.fixture(scope="module")
def ten_class_linear():
    """A 10-class linear model, logits W (x - 0.5), and points of several classes in
    [0.3, 0.7] whose margins are not tiny (a relative error needs a distance to measure)."""
    model = linear_model(input_shape=(8, 8, 1), num_classes=10, seed=3, scale=0.5)
    weights = model.get_layer("linear").get_weights()[0].astype(np.float64)
    bias = -0.5 * weights.sum(0)
    model.get_layer("linear").set_weights([weights.astype(np.float32), bias.astype(np.float32)])
    x = (0.3 + 0.4 * np.random.default_rng(0).random((16, 8, 8, 1))).astype(np.float32)
    logits = x.reshape(16, -1).astype(np.float64) @ weights + bias
    y = logits.argmax(1)
    linf, _ = _closed_form(weights, logits, y, "linf")
    keep = linf > 0.004
    assert keep.sum() >= 8 and len(set(y[keep])) >= 3
    return model, x[keep], y[keep], weights, logits[keep]


def _closed_form(weights, logits, y, norm):
    """min over k != y of (z_y - z_k) / ||w_y - w_k||_dual, the distance to misclassification,
    and the largest pixel change of that optimal perturbation (to check the box does not bind)."""
    dual = 1 if norm == "linf" else 2
    distances, moves = [], []
    for i in range(len(y)):
        best = (np.inf, 0.0)
        for k in range(weights.shape[1]):
            if k == y[i]:
                continue
            v = weights[:, y[i]] - weights[:, k]
            distance = (logits[i, y[i]] - logits[i, k]) / np.linalg.norm(v, dual)
            move = distance if norm == "linf" else distance * np.abs(v).max() / np.linalg.norm(v)
            best = min(best, (distance, move))
        distances.append(best[0])
        moves.append(best[1])
    return np.array(distances), np.array(moves)


def _distance(x_adv, x, norm):
    delta = (np.asarray(x_adv, np.float64) - x).reshape(len(x), -1)
    return np.abs(delta).max(1) if norm == "linf" else np.linalg.norm(delta, axis=1)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_fab_t_finds_the_minimal_perturbation_of_a_linear_model(ten_class_linear, norm):
    model, x, y, weights, logits = ten_class_linear
    minimal, moves = _closed_form(weights, logits, y, norm)
    # The optimum moves no pixel (in [0.35, 0.65]) by 0.35 or more, so the box
    # [0, 1] does not bind and the closed form is the constrained minimum too.
    assert moves.max() < 0.3
    big = 1.0 if norm == "linf" else 30.0
    x_adv = kr.attacks.fab(model, x, y, big, norm, steps=20, minimal=True)
    assert_in_ball(x_adv, x, big, norm)
    assert np.all(np.argmax(model(x_adv), -1) != y)
    ratio = _distance(x_adv, x, norm) / minimal
    assert np.all(ratio >= 1 - 1e-4) and np.all(ratio <= 1.01), ratio

    # At an epsilon between the minimal distances, the images whose minimum is
    # within it (by more than FAB's 1%) are broken, those above it cannot be
    # and come back unperturbed.
    eps = float(np.median(minimal))
    x_adv = np.asarray(kr.attacks.fab(model, x, y, eps, norm, steps=20, minimal=True))
    assert_in_ball(x_adv, x, eps, norm)
    broken = np.argmax(model(x_adv), -1) != y
    assert np.all(broken[minimal * 1.01 < eps]) and not np.any(broken[minimal > eps])
    assert 0 < broken.sum() < len(x)
    np.testing.assert_array_equal(x_adv[~broken], x[~broken])


def test_every_returned_image_is_x_or_misclassified_within_epsilon(ten_class_linear):
    """The final check, in AutoAttack's mode: robust images are truly correct and
    unperturbed; broken ones are misclassified within epsilon; images misclassified
    when clean come back as they are."""
    model, x, y, weights, logits = ten_class_linear
    y = y.copy()
    y[:3] = (y[:3] + 1) % 10  # misclassified when clean
    eps = float(np.median(_closed_form(weights, logits, y, "linf")[0][3:]))
    x_adv = np.asarray(kr.attacks.fab(model, x, y, eps, "linf", num_targets=9, steps=10))
    assert_in_ball(x_adv, x, eps, "linf")
    robust = np.argmax(model(x_adv), -1) == y
    np.testing.assert_array_equal(x_adv[robust], x[robust])
    np.testing.assert_array_equal(np.argmax(model(x[robust]), -1), y[robust])
    np.testing.assert_array_equal(x_adv[:3], x[:3])
    assert 0 < robust.sum() < len(x) - 3  # a budget that breaks some images and not others


def test_bad_arguments_are_refused_at_the_entry_point():
    model = linear_model(input_shape=(8, 8, 1), num_classes=4)
    x = np.full((2, 8, 8, 1), 0.5, np.float32)
    with pytest.raises(ValueError, match="num_targets"):
        kr.attacks.fab(model, x, [0, 1], 0.1, num_targets=4)
    with pytest.raises(ValueError, match="eta"):
        kr.attacks.fab(model, x, [0, 1], 0.1, num_targets=3, config=kr.attacks.FABConfig(eta=0.9))
    with pytest.raises(ValueError, match="beta"):
        kr.attacks.fab(model, x, [0, 1], 0.1, num_targets=3, config=kr.attacks.FABConfig(beta=0.0))
    with pytest.raises(ValueError, match="norm"):
        kr.attacks.fab(model, x, [0, 1], 0.1, norm="l1", num_targets=3)
    with pytest.raises(ValueError, match="one label per image"):
        kr.attacks.fab(model, x, [0, 1, 2], 0.1, num_targets=3)
    with pytest.raises(ValueError, match="epsilon"):
        kr.attacks.fab(model, x, [0, 1], 8.0, num_targets=3)
    with pytest.raises(TypeError, match="targeted"):
        kr.attacks.fab(model, x, [0, 1], 0.1, targeted="yes", num_targets=3)


@pytest.mark.slow
def test_fab_t_on_a_trained_cnn_agrees_with_apgd_t():
    """On a small trained CNN, FAB-T's robust accuracy is at most the clean accuracy and
    within 0.1 of APGD-T's. Not equal: FAB-T minimises the norm and keeps what falls
    within epsilon, APGD-T maximises a loss inside the ball; AutoAttack's paper reports
    them a few points apart either way, and on 128 images one image is 0.8 points."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    prototypes = rng.choice([-1.0, 1.0], size=(4, 8, 8, 1))

    def task(n, seed):
        r = np.random.default_rng(seed)
        y = r.integers(0, 4, n)
        x = 0.5 + 0.15 * prototypes[y] + 0.15 * r.normal(size=(n, 8, 8, 1))
        return np.clip(x, 0, 1).astype(np.float32), y.astype(np.int32)

    from tests.helpers import tiny_cnn
    model = tiny_cnn(num_classes=4)
    model.compile(keras.optimizers.Adam(1e-2),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(*task(1024, 1), epochs=3, batch_size=64, verbose=0)
    x, y = task(128, 2)
    eps = 0.06
    accuracy = lambda images: float(np.mean(np.argmax(model(images), -1) == y))  # noqa: E731
    clean = accuracy(x)
    x_fab = kr.attacks.fab(model, x, y, eps, num_targets=3, steps=50)
    x_apgd = kr.attacks.apgd_targeted(model, x, y, eps, steps=50, num_targets=3, seed=0)
    assert_in_ball(x_fab, x, eps, "linf")
    fab_accuracy, apgd_accuracy = accuracy(x_fab), accuracy(x_apgd)
    print(f"clean {clean:.3f} FAB-T {fab_accuracy:.3f} APGD-T {apgd_accuracy:.3f}")
    assert clean > 0.8 and fab_accuracy <= clean
    assert 0.05 < apgd_accuracy < clean - 0.1  # a budget where the attack matters
    assert abs(fab_accuracy - apgd_accuracy) <= 0.1


@pytest.mark.slow
def test_untargeted_fab_also_finds_the_minimal_l2_perturbation(ten_class_linear):
    """Untargeted FAB picks the nearest linearised boundary among all classes (a
    Jacobian per step), so one run reaches the closed-form minimum."""
    model, x, y, weights, logits = ten_class_linear
    minimal, _ = _closed_form(weights, logits, y, "l2")
    x_adv = kr.attacks.fab(model, x, y, 30.0, "l2", targeted=False, steps=20)
    assert np.all(np.argmax(model(x_adv), -1) != y)
    ratio = _distance(x_adv, x, "l2") / minimal
    assert np.all(ratio >= 1 - 1e-4) and np.all(ratio <= 1.01), ratio


@pytest.fixture(scope="module")
def unequal_scales():
    """A 10-class linear model whose class weights have very different norms (each
    column scaled by exp(1.5 N(0, 1))), so the class with the smallest logit gap is
    often not the nearest boundary: the rule that picks a boundary matters here (on
    `ten_class_linear` both rules agree on every point)."""
    rng = np.random.default_rng(0)
    weights = 0.05 * rng.normal(size=(64, 10)) * np.exp(1.5 * rng.normal(size=10))[None]
    bias = -0.5 * weights.sum(0)
    model = linear_model(input_shape=(8, 8, 1), num_classes=10)
    model.get_layer("linear").set_weights([weights.astype(np.float32), bias.astype(np.float32)])
    x = (0.4 + 0.2 * np.random.default_rng(1).random((16, 8, 8, 1))).astype(np.float32)
    logits = x.reshape(16, -1).astype(np.float64) @ weights + bias
    return model, x, logits.argmax(1), weights, logits


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_untargeted_fab_picks_the_nearest_boundary_not_the_smallest_logit_gap(
        unequal_scales, norm):
    """Untargeted FAB ranks the classes by the distance to their linearised boundary,
    |z_k - z_y| / ||grad (z_k - z_y)||_dual; ranking them by the logit gap alone goes
    to another boundary, up to several times farther. The closed-form minimum of a
    linear model is the reference."""
    model, x, y, weights, logits = unequal_scales
    minimal, moves = _closed_form(weights, logits, y, norm)
    assert moves.max() < 0.35  # the box [0, 1] does not bind for x in [0.4, 0.6]
    dual = 1 if norm == "linf" else 2
    gaps = logits[np.arange(len(y)), y][:, None] - logits
    gap_class = np.argmin(np.where(np.eye(10, dtype=bool)[y], np.inf, gaps), 1)
    gap_rule = np.array([gaps[i, k] / np.linalg.norm(weights[:, y[i]] - weights[:, k], dual)
                         for i, k in enumerate(gap_class)])
    assert np.sum(gap_rule > 1.5 * minimal) >= 3  # the two rules differ on this fixture
    big = 1.0 if norm == "linf" else 30.0
    x_adv = kr.attacks.fab(model, x, y, big, norm, targeted=False, steps=10)
    assert np.all(np.argmax(model(x_adv), -1) != y)
    ratio = _distance(x_adv, x, norm) / minimal
    assert np.all(ratio >= 1 - 1e-4) and np.all(ratio <= 1.01), ratio
