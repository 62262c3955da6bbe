"""Invariants and hand-checked equations of the first-order attacks (PGD, FGSM, MI-FGSM)
and of the engine they share: targets, objectives, unrolled steps, the L2 random start."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import keras_robust as kr
from keras_robust.attacks import objectives
from keras_robust.attacks.config import AttackConfig
from keras_robust.attacks.engine import run_attack
from tests.helpers import assert_in_ball, linear_model

EPS = 8 / 255


@pytest.fixture
def model_and_data():
    model = linear_model(scale=0.5)
    rng = np.random.default_rng(1)
    x = rng.random((12, 8, 8, 1), dtype=np.float32)
    y = rng.integers(0, 3, 12).astype(np.int32)
    return model, x, y


@pytest.mark.parametrize("loss", ["ce", "cw", "dlr", "logit"])
@pytest.mark.parametrize("target", [None, "mc", "ll", "random", "tensor"])
def test_pgd_linf_stays_in_ball_for_every_loss_and_target(model_and_data, loss, target):
    _, x, y = model_and_data
    model = linear_model(num_classes=4, scale=0.5)
    if target == "tensor":
        target = (y + 1) % 4
    x_adv = kr.attacks.pgd(model, x, y, EPS, 2 / 255, 3, loss=loss, target=target, seed=3)
    assert_in_ball(x_adv, x, EPS, "linf")


@pytest.mark.parametrize("restarts,random_start", [(1, False), (1, True), (3, True)])
@pytest.mark.parametrize("norm,eps", [("linf", EPS), ("l2", 0.5)])
def test_pgd_norms_restarts_and_starts_stay_in_ball(model_and_data, norm, eps, restarts, random_start):
    model, x, y = model_and_data
    x_adv = kr.attacks.pgd(model, x, y, eps, eps / 4, 5, norm=norm, restarts=restarts,
                           random_start=random_start, loss="cw", seed=5)
    assert_in_ball(x_adv, x, eps, norm)


def test_per_sample_epsilon_is_respected(model_and_data):
    model, x, y = model_and_data
    eps = np.linspace(0.0, 0.1, len(x)).astype(np.float32)
    eps[0] = 1e-4
    x_adv = kr.attacks.pgd(model, x, y, eps, eps / 2, 4, seed=0)
    assert_in_ball(x_adv, x, eps, "linf")


def test_fgsm_matches_closed_form_on_a_linear_model(model_and_data):
    model, x, y = model_and_data
    weights, bias = model.get_layer("linear").get_weights()
    flat = x.reshape(len(x), -1)
    logits = flat @ weights + bias
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    # d CE / d x = W (p - onehot(y)); FGSM steps along its sign.
    grad = (probs - np.eye(3)[y]) @ weights.T
    expected = np.clip(flat + EPS * np.sign(grad), 0, 1).reshape(x.shape)
    x_adv = kr.attacks.fgsm(model, x, y, EPS)
    np.testing.assert_allclose(np.asarray(x_adv), expected, atol=1e-6)
    # Targeted FGSM descends the CE of the target instead.
    target = (y + 1) % 3
    grad_t = (probs - np.eye(3)[target]) @ weights.T
    expected_t = np.clip(flat - EPS * np.sign(grad_t), 0, 1).reshape(x.shape)
    np.testing.assert_allclose(np.asarray(kr.attacks.fgsm(model, x, y, EPS, target=target)),
                               expected_t, atol=1e-6)


def _reference_pgd(model, x, y, eps, step, steps, decay=None, norm="linf"):
    """Madry's PGD (or MI-FGSM with `decay`) from x, by hand in NumPy on the linear model."""
    weights, bias = model.get_layer("linear").get_weights()
    flat, x_adv = x.reshape(len(x), -1), x.reshape(len(x), -1).copy()
    velocity = np.zeros_like(flat)
    for _ in range(steps):
        logits = x_adv @ weights + bias
        probs = np.exp(logits - logits.max(1, keepdims=True))
        probs /= probs.sum(1, keepdims=True)
        grad = (probs - np.eye(weights.shape[1])[y]) @ weights.T
        if decay is not None:
            velocity = decay * velocity + grad / (np.abs(grad).sum(1, keepdims=True) + 1e-12)
            grad = velocity
        if norm == "linf":
            x_adv = np.clip(np.clip(x_adv + step * np.sign(grad), flat - eps, flat + eps), 0, 1)
        else:
            x_adv = x_adv + step * grad / (np.linalg.norm(grad, axis=1, keepdims=True) + 1e-12)
            delta = x_adv - flat
            delta *= np.minimum(1.0, eps / (np.linalg.norm(delta, axis=1, keepdims=True) + 1e-12))
            x_adv = np.clip(flat + delta, 0, 1)
    return x_adv.reshape(x.shape)


@pytest.mark.parametrize("steps", [1, 10, 11, 12, 21, 25])
def test_pgd_runs_exactly_its_steps_across_the_unrolled_chunks(model_and_data, steps):
    # The engine unrolls UNROLLED_STEPS steps per loop iteration and the rest
    # after the loop; every count must match the plain loop, momentum carried.
    from keras_robust.attacks import common

    assert common.UNROLLED_STEPS == 10  # the step counts above straddle it
    model, x, y = model_and_data
    eps, step = 0.3, 0.01  # the ball never binds for the first ~30 steps: each step shows
    x_adv = kr.attacks.pgd(model, x, y, eps, step, steps, random_start=False)
    np.testing.assert_allclose(np.asarray(x_adv), _reference_pgd(model, x, y, eps, step, steps),
                               atol=1e-5)
    x_mi = kr.attacks.mi_fgsm(model, x, y, eps, step, steps, decay=0.5)
    np.testing.assert_allclose(np.asarray(x_mi),
                               _reference_pgd(model, x, y, eps, step, steps, decay=0.5),
                               atol=1e-5)
    x_l2 = kr.attacks.pgd(model, x, y, 0.5, 0.05, steps, norm="l2", random_start=False)
    np.testing.assert_allclose(np.asarray(x_l2),
                               _reference_pgd(model, x, y, 0.5, 0.05, steps, norm="l2"),
                               atol=1e-5)


def test_unrolling_changes_no_result(monkeypatch):
    # One iteration per while-loop pass (the plain loop) and ten unrolled give
    # the same seeded PGD, MI-FGSM, APGD (whose body reads its iteration) and CW-L2.
    from keras_robust.attacks import common

    rng = np.random.default_rng(2)
    x = rng.random((6, 8, 8, 1), dtype=np.float32)
    y = rng.integers(0, 4, 6).astype(np.int32)

    def attacks():
        model = linear_model(num_classes=4, scale=0.5)  # a fresh model: a fresh trace
        return [
            kr.attacks.pgd(model, x, y, EPS, 1 / 255, 23, seed=4),
            kr.attacks.mi_fgsm(model, x, y, EPS, 1 / 255, 13, input_diversity=0.5, seed=4),
            kr.attacks.apgd(model, x, y, EPS, 27, loss="dlr", seed=4),
            kr.attacks.cw_l2(model, x, y, steps=12, binary_search_steps=2),
        ]

    unrolled = attacks()
    monkeypatch.setattr(common, "UNROLLED_STEPS", 1)
    for a, b in zip(unrolled, attacks()):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.fixture(scope="module")
def ten_classes():
    """A 10-class linear model, 24 images and labels: 20 labelled with the clean
    prediction, 4 with another class (so "mc" is then the predicted class)."""
    model = linear_model(num_classes=10, seed=3)
    weights, bias = model.get_layer("linear").get_weights()
    # Columns of zero sum and small biases: the classes' order changes from image to
    # image, and an L-inf budget of 0.25 can lift any class above all the others.
    weights, bias = weights - weights.mean(0, keepdims=True), 0.2 * bias
    model.get_layer("linear").set_weights([weights, bias])
    weights, bias = weights.astype(np.float64), bias.astype(np.float64)
    rng = np.random.default_rng(2)
    x = (0.25 + 0.5 * rng.random((24, 8, 8, 1))).astype(np.float32)
    logits = x.reshape(len(x), -1).astype(np.float64) @ weights + bias
    y = logits.argmax(1).astype(np.int32)
    y[20:] = np.argsort(logits[20:], axis=1)[:, -4]  # the 4th most likely class
    return model, x, y, logits


def _numpy_targets(logits, y):
    """"mc" / "ll" by a NumPy argsort: the first / last class of the descending order
    that is not the true one."""
    order = np.argsort(-logits, axis=1, kind="stable")
    others = [row[row != label] for row, label in zip(order, y)]
    return np.array([o[0] for o in others]), np.array([o[-1] for o in others])


def test_mc_and_ll_pick_the_classes_a_numpy_argsort_picks(ten_classes):
    from keras_robust.attacks.targets import select_target

    _, _, y, logits = ten_classes
    more = np.random.default_rng(0).normal(size=(200, 10))
    labels = np.random.default_rng(1).integers(0, 10, 200)  # true class anywhere in the order
    for z, t in ((logits, y), (more, labels)):
        mc, ll = _numpy_targets(z, t)
        z32, t32 = tf.constant(z, tf.float32), tf.constant(t, tf.int32)
        np.testing.assert_array_equal(select_target("mc", t32, 10, z32).numpy(), mc)
        np.testing.assert_array_equal(select_target("ll", t32, 10, z32).numpy(), ll)
    assert np.any(mc != more.argmax(1)) and np.any(mc == more.argmax(1))


# APGD ascends the targeted CE here: the targeted DLR only raises z_t over z_y (it is
# APGD-T's loss, judged by misclassification) and, measured, left 3 of these 24 images
# on a third class after 5 steps.
_TARGETED = {
    "pgd": lambda m, x, y, target: kr.attacks.pgd(m, x, y, 0.25, 0.1, 5, target=target, seed=1),
    "apgd": lambda m, x, y, target: kr.attacks.apgd(m, x, y, 0.25, 5, loss="ce", target=target,
                                                    seed=1),
    "square": lambda m, x, y, target: kr.attacks.square(m, x, y, 0.25, 300, target=target,
                                                        seed=1),
}


@pytest.mark.parametrize("attack", sorted(_TARGETED))
def test_targeted_attacks_reach_their_target_class(ten_classes, attack):
    # With a budget that reaches every class of this linear model, "mc" and "ll" attacks
    # end in the class a NumPy argsort of the clean logits names, a "random" one in a
    # class other than the true one, spread over the classes (not silently "mc").
    model, x, y, logits = ten_classes
    mc, ll = _numpy_targets(logits, y)
    assert np.all(mc != ll)
    run = _TARGETED[attack]
    for mode, expected in (("mc", mc), ("ll", ll)):
        x_adv = np.asarray(run(model, x, y, mode))
        assert_in_ball(x_adv, x, 0.25, "linf")
        reached = np.argmax(model.predict(x_adv, verbose=0), -1)
        np.testing.assert_array_equal(reached, expected, err_msg=f"{attack} {mode}")
    reached = np.argmax(model.predict(np.asarray(run(model, x, y, "random")), verbose=0), -1)
    assert np.all(reached != y)
    assert len(set(reached)) >= 5 and np.mean(reached == mc) < 0.5 and np.mean(reached == ll) < 0.5
    if attack == "pgd":  # labels given as they are
        chosen = (y + 2) % 10
        reached = np.argmax(model.predict(np.asarray(run(model, x, y, chosen)), verbose=0), -1)
        np.testing.assert_array_equal(reached, chosen)


def test_more_steps_and_restarts_never_help_the_model():
    model = linear_model(scale=0.3, seed=4)
    rng = np.random.default_rng(3)
    x = rng.random((64, 8, 8, 1), dtype=np.float32)
    y = np.argmax(model.predict(x, verbose=0), -1)

    def acc(**kwargs):
        x_adv = kr.attacks.pgd(model, x, y, 2 / 255, seed=0, **kwargs)
        return np.mean(np.argmax(model.predict(np.asarray(x_adv), verbose=0), -1) == y)

    one_step = acc(step_size=2 / 255, steps=1, random_start=False)
    many = acc(step_size=0.5 / 255, steps=20)
    restarts = acc(step_size=0.5 / 255, steps=20, restarts=4)
    assert many <= one_step + 1e-9
    assert restarts <= many + 1e-9


def test_objectives_match_hand_computation():
    logits = tf.constant([[3.0, 1.0, 0.5, -1.0]])
    y = tf.constant([1])
    t = tf.constant([2])
    np.testing.assert_allclose(objectives.objective("cw", logits, y), [3.0 - 1.0])
    np.testing.assert_allclose(objectives.objective("logit", logits, y), [-1.0])
    np.testing.assert_allclose(objectives.objective("logit", logits, y, t), [0.5])
    np.testing.assert_allclose(objectives.objective("cw", logits, y, t), [0.5 - 3.0])
    # DLR: -(z_y - max_{j!=y} z_j) / (z_pi1 - z_pi3) = -(1 - 3) / (3 - 0.5)
    np.testing.assert_allclose(objectives.objective("dlr", logits, y), [2.0 / 2.5], rtol=1e-6)
    # Targeted DLR: -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2) = -(1 - 0.5) / (3 + 0.25)
    np.testing.assert_allclose(objectives.objective("dlr", logits, y, t), [-0.5 / 3.25], rtol=1e-6)
    ce = -np.log(np.exp(1.0) / np.exp([3.0, 1.0, 0.5, -1.0]).sum())
    np.testing.assert_allclose(objectives.objective("ce", logits, y), [ce], rtol=1e-6)
    # KL(p || softmax(z)) = sum p log p - sum p log q, with 0 log 0 = 0 (PyTorch's KLDivLoss).
    p = np.array([0.5, 0.5, 0.0, 0.0])
    log_q = np.log(np.exp([3.0, 1.0, 0.5, -1.0]) / np.exp([3.0, 1.0, 0.5, -1.0]).sum())
    kl = 0.5 * np.log(0.5) * 2 - 0.5 * (log_q[0] + log_q[1])
    np.testing.assert_allclose(
        objectives.objective("kl", logits, y, reference=tf.constant([p], tf.float32)), [kl],
        rtol=1e-6)
    with pytest.raises(ValueError, match="reference distributions"):
        objectives.objective("kl", logits, y)


def test_targets_never_pick_the_true_class():
    logits = tf.constant(np.random.default_rng(0).normal(size=(200, 5)), tf.float32)
    y = tf.constant(np.argmax(logits, -1), tf.int32)
    from keras_robust.attacks.targets import select_target

    for mode in ("mc", "ll", "random"):
        t = select_target(mode, y, 5, logits, tf.constant([1, 2], tf.int64)).numpy()
        assert np.all(t != y.numpy())
    mc = select_target("mc", y, 5, logits).numpy()
    second = np.argsort(logits.numpy(), -1)[:, -2]
    np.testing.assert_array_equal(mc, second)


def test_seeded_attacks_are_reproducible(model_and_data):
    model, x, y = model_and_data
    a = kr.attacks.pgd(model, x, y, EPS, 2 / 255, 3, seed=7)
    b = kr.attacks.pgd(model, x, y, EPS, 2 / 255, 3, seed=7)
    c = kr.attacks.pgd(model, x, y, EPS, 2 / 255, 3, seed=8)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(a), np.asarray(c))


def test_ensembles_average_logits(model_and_data):
    _, x, y = model_and_data
    m1, m2 = linear_model(seed=1), linear_model(seed=2)
    ensemble = kr.attacks.Ensemble([m1, m2])
    expected = (m1.predict(x, verbose=0) + m2.predict(x, verbose=0)) / 2
    np.testing.assert_allclose(np.asarray(ensemble(tf.constant(x))), expected, rtol=1e-5, atol=1e-5)
    x_adv = kr.attacks.pgd([m1, m2], x, y, EPS, 2 / 255, 2, seed=0)
    assert_in_ball(x_adv, x, EPS, "linf")


@pytest.mark.parametrize(
    "kwargs,error",
    [
        (dict(epsilon=0.0), ValueError),
        (dict(epsilon=1.5), ValueError),
        (dict(epsilon=-0.1), ValueError),
        (dict(loss="hinge"), ValueError),
        (dict(target="most_likely"), ValueError),
        (dict(norm="l1"), ValueError),
        (dict(steps=0), ValueError),
        (dict(restarts=0), ValueError),
    ],
)
def test_bad_arguments_fail_at_once_with_the_valid_choices(model_and_data, kwargs, error):
    model, x, y = model_and_data
    args = dict(epsilon=EPS, step_size=2 / 255, steps=2)
    args.update(kwargs)
    with pytest.raises(error) as info:
        kr.attacks.pgd(model, x, y, **args)
    if "loss" in kwargs:
        assert "'ce'" in str(info.value) and "'dlr'" in str(info.value)


def test_bad_images_are_refused_with_a_hint(model_and_data):
    model, x, y = model_and_data
    with pytest.raises(ValueError, match="255"):
        kr.attacks.pgd(model, x * 255, y, EPS)
    with pytest.raises(TypeError, match="float"):
        kr.attacks.pgd(model, (x * 255).astype(np.uint8), y, EPS)
    with pytest.raises(ValueError, match="rank 4"):
        kr.attacks.pgd(model, x[0], y, EPS)
    bad = x.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        kr.attacks.pgd(model, bad, y, EPS)


def test_mi_fgsm_with_diversity_and_smoothing_stays_in_ball(model_and_data):
    model, x, y = model_and_data
    x8 = np.repeat(np.repeat(x, 2, axis=1), 2, axis=2)[:, :8, :8]
    for norm, eps, step in (("linf", EPS, 2 / 255), ("l2", 1.0, 0.025)):
        x_adv = kr.attacks.mi_fgsm(model, x8, y, eps, step, 5, norm=norm, loss="logit",
                                   input_diversity=0.7, smoothing_kernel=3, seed=1)
        assert_in_ball(x_adv, x8, eps, norm)


def test_dlr_needs_enough_classes(model_and_data):
    model, x, y = model_and_data  # 3 classes: untargeted DLR works, targeted does not
    kr.attacks.pgd(model, x, y, EPS, 2 / 255, 1, loss="dlr")
    with pytest.raises(ValueError, match="at least 4 classes"):
        kr.attacks.pgd(model, x, y, EPS, 2 / 255, 1, loss="dlr", target="mc")


def _identity_logits(images: tf.Tensor) -> tf.Tensor:
    """A "model" whose logits are its input pixels, so the start logits show the start."""
    return tf.reshape(images, [tf.shape(images)[0], -1])


def test_l2_random_start_has_a_uniform_radius_and_direction():
    # The L2 random start as `pgd` documents it: "a uniform direction at a uniformly
    # drawn radius", so ||delta|| / eps ~ U(0, 1) and the direction has mean 0. Pixels in
    # [0.3, 0.7] and eps 0.2 keep the [0, 1] clip out of the way; the engine's start
    # logits are then the start image itself.
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    n, eps = 400, 0.2
    x = tf.constant(0.3 + 0.4 * rng.random((n, 4, 4, 1)), tf.float32)
    y = tf.constant(rng.integers(0, 16, n), tf.int32)
    config = AttackConfig(norm="l2", epsilon=eps, step_size=eps / 4, steps=1, random_start=True)
    result = run_attack(_identity_logits, x, y, config, seed=tf.constant([3, 4], tf.int64))
    delta = result.start_logits.numpy().astype(np.float64) - x.numpy().reshape(n, -1)
    radius = np.linalg.norm(delta, axis=1) / eps
    assert radius.max() <= 1 + 1e-5
    # Kolmogorov-Smirnov against U(0, 1); a start on the sphere (radius 1) has p ~ 0.
    assert scipy_stats.kstest(radius, "uniform").pvalue > 1e-3
    direction = delta / np.linalg.norm(delta, axis=1, keepdims=True)
    # No preferred direction: each coordinate of the mean within 4 standard errors of 0.
    assert np.abs(direction.mean(axis=0)).max() < 4 / np.sqrt(n * direction.shape[1])
