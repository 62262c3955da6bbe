"""APGD, APGD-T, Square, CW-L2 and the transfer helper: invariants and strength."""
from __future__ import annotations

import functools

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_robust as kr
from keras_robust.attacks.common import as_logits_fn
from keras_robust.attacks.apgd import apgd_run, apgd_start, checkpoints
from keras_robust.attacks.cw import cw_margin
from keras_robust.attacks.square import p_schedule, square_attack, square_side
from tests import reference_autoattack as ref
from tests.helpers import assert_in_ball, linear_model, mlp, robust_feature_data

EPS = 8 / 255


def _accuracy(model, x, y):
    return float(np.mean(np.argmax(np.asarray(model(tf.constant(np.asarray(x)))), -1) == y))


@pytest.fixture
def four_class():
    model = linear_model(num_classes=4, scale=0.5, seed=2)
    rng = np.random.default_rng(1)
    x = rng.random((12, 8, 8, 1), dtype=np.float32)
    y = rng.integers(0, 4, 12).astype(np.int32)
    return model, x, y


@pytest.fixture(scope="module")
def trained_mlp():
    """A plainly trained MLP on the robust/non-robust feature task: ~80% clean,
    well below under an L-inf attack of 0.1."""
    keras.utils.set_random_seed(0)
    x, y = robust_feature_data(n=1024, seed=0)
    model = mlp(num_classes=2, width=32)
    model.compile(keras.optimizers.Adam(1e-2),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=4, batch_size=64, verbose=0)
    x_test, y_test = robust_feature_data(n=256, seed=1)
    return model, x_test, y_test


def test_checkpoints_follow_the_p_schedule():
    # p = 0, .22, .41, .57, .70, .80, .87, .93, .99 for N = 100.
    assert [i + 1 for i, _ in checkpoints(100)] == [22, 41, 57, 70, 80, 87, 93, 99]
    assert [n for _, n in checkpoints(100)] == [22, 19, 16, 13, 10, 7, 6, 6]
    assert all(i < 7 for i, _ in checkpoints(7))
    assert checkpoints(1) == [(0, 1)]


def test_checkpoints_match_the_reference_counter_and_the_paper():
    # The authors' code checks when its counter reaches k (k = int(0.22 N), shrinking by
    # int(0.03 N) to int(0.06 N)); the paper's w_j = p_j N (whole for N = 100, 1000) agrees.
    for steps in range(1, 301):
        assert [i for i, _ in checkpoints(steps)] == ref.apgd_checkpoint_iterations(steps), steps
    p = ref.apgd_p_schedule(9)[1:]
    for steps in (100, 1000):
        assert [i + 1 for i, _ in checkpoints(steps)] == [round(pj * steps) for pj in p]


@pytest.fixture(scope="module")
def tanh_net():
    """A 10-class one-hidden-layer tanh network, as a Keras model and as its NumPy twin
    (`reference_autoattack.TanhNet`, gradients by hand), with 8 inputs and an APGD start."""
    rng = np.random.default_rng(0)
    shape, hidden, classes = (6, 6, 1), 16, 10
    weights = [(rng.normal(size=(36, hidden)) * 0.8).astype("float32"),
               (rng.normal(size=hidden) * 0.3).astype("float32"),
               (rng.normal(size=(hidden, classes)) * 1.5).astype("float32"),
               (rng.normal(size=classes) * 0.3).astype("float32")]
    inputs = keras.Input(shape)
    h = keras.layers.Dense(hidden, activation="tanh", name="hidden")(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, keras.layers.Dense(classes, name="out")(h))
    model.get_layer("hidden").set_weights(weights[:2])
    model.get_layer("out").set_weights(weights[2:])
    net = ref.TanhNet(*weights)
    x = (0.2 + 0.6 * rng.random((8, *shape))).astype("float32")
    y = net.logits(x.reshape(8, -1)).argmax(1).astype("int32")
    seed = tf.constant([1, 2], tf.int64)
    eps = 0.05
    x_start = apgd_start(tf.constant(x), tf.fill([8, 1, 1, 1], eps), "linf", seed).numpy()
    return model, net, x, y, eps, seed, x_start


# Step counts around the checkpoints' integer rounding and the 10-step unrolled chunks.
_APGD_STEPS = (1, 4, 5, 9, 10, 14, 23)


# The port's switches for each rule of `apgd_run` (see apgd.py): the authors' code
# (`<=` and a zero before the first step) and the paper (`<` and the start's objective).
_PORT_SWITCHES = {"reference": dict(strict=False, first_compare="zero"),
                  "paper": dict(strict=True, first_compare="start")}


@pytest.mark.parametrize("rule", ["reference", "paper"])
@pytest.mark.parametrize("loss", ["ce", "dlr", "dlr-targeted"])
def test_apgd_matches_a_numpy_port_of_the_reference_run(tanh_net, loss, rule):
    # reference_autoattack.apgd_linf_single_run ports AutoAttack's attack_single_run
    # (L-inf): step 2 eps, momentum 0.75, halving + restart from the best point at the
    # checkpoints on condition 1 or 2. From the same start, the best objective after
    # every step count (and the best point while steps are not yet tiny) agree, under
    # each rule with the port's matching switches.
    model, net, x, y, eps, seed, x_start = tanh_net
    flat, start = x.reshape(len(x), -1).astype(np.float64), x_start.reshape(len(x), -1)
    target = np.argsort(net.logits(flat), axis=1)[:, -3]  # the 3rd most likely class (not y)
    assert np.all(target != y)
    targeted = loss == "dlr-targeted"
    runs = {}
    for steps in _APGD_STEPS:
        result = apgd_run(
            as_logits_fn(model), tf.constant(x), tf.constant(y), tf.constant(eps), steps,
            loss="dlr" if targeted else loss, target=tf.constant(target) if targeted else None,
            seed=seed, success="misclassified", rule=rule,
        )
        port = ref.apgd_linf_single_run(net, flat, y, start, eps, steps, loss,
                                        target if targeted else None, **_PORT_SWITCHES[rule])
        np.testing.assert_allclose(result.best_objective.numpy(), port["loss_best"],
                                   rtol=1e-5, atol=1e-5, err_msg=f"{steps} steps")
        np.testing.assert_array_equal(result.found.numpy(), ~port["acc"], err_msg=f"{steps}")
        if steps <= 10:  # later the halved steps are ~1e-6 and ties in the objective decide
            np.testing.assert_allclose(result.x_best.numpy().reshape(len(x), -1), port["x_best"],
                                       atol=1e-5, err_msg=f"{steps} steps")
        runs[steps] = port
    # The schedule acted: some samples halved at some checkpoints and not at others.
    halvings = runs[23]["halvings"]
    assert halvings.max() > 0 and halvings.min() < len(checkpoints(23))
    if loss != "ce":
        # The other rule (which only matters for an objective that can be negative or
        # a rise count at the threshold) gives other best objectives here, so the
        # comparison above tells the two rules apart.
        other = _PORT_SWITCHES["paper" if rule == "reference" else "reference"]
        literal = [ref.apgd_linf_single_run(net, flat, y, start, eps, steps, loss,
                                            target if targeted else None, **other)["loss_best"]
                   for steps in _APGD_STEPS]
        assert any(np.abs(a - runs[s]["loss_best"]).max() > 1e-4
                   for a, s in zip(literal, _APGD_STEPS))


def test_apgd_default_rule_is_the_reference_code(tanh_net):
    # apgd's default is the authors' code: with the same seed, rule="reference" and the
    # default give the same images, and rule="paper" is accepted (DLR, where they differ).
    model, _, x, y, eps, _, _ = tanh_net
    default = kr.attacks.apgd(model, x, y, eps, steps=23, loss="dlr", seed=3)
    reference = kr.attacks.apgd(model, x, y, eps, steps=23, loss="dlr", seed=3,
                                config=kr.attacks.APGDConfig(rule="reference"))
    paper = kr.attacks.apgd(model, x, y, eps, steps=23, loss="dlr", seed=3,
                            config=kr.attacks.APGDConfig(rule="paper"))
    np.testing.assert_array_equal(default.numpy(), reference.numpy())
    assert_in_ball(paper, x, eps, "linf")


@pytest.mark.parametrize(
    "norm,eps,loss,target,restarts",
    [
        ("linf", EPS, "ce", None, 1),
        ("linf", EPS, "dlr", None, 2),
        ("linf", EPS, "dlr", "mc", 1),
        ("linf", EPS, "ce", "tensor", 1),
        ("l2", 0.5, "ce", None, 2),
        ("l2", 0.5, "dlr", "random", 1),
        ("l2", 0.5, "dlr", "ll", 1),
    ],
)
def test_apgd_stays_in_its_ball(four_class, norm, eps, loss, target, restarts):
    model, x, y = four_class
    if target == "tensor":
        target = (y + 1) % 4
    x_adv = kr.attacks.apgd(model, x, y, eps, 6, norm=norm, loss=loss, target=target,
                            restarts=restarts, seed=3)
    assert_in_ball(x_adv, x, eps, norm)


@pytest.mark.parametrize("norm,eps", [("linf", EPS), ("l2", 0.5)])
def test_apgd_targeted_stays_in_its_ball(four_class, norm, eps):
    model, x, y = four_class
    x_adv = kr.attacks.apgd_targeted(model, x, y, eps, 5, num_targets=3, norm=norm, seed=1)
    assert_in_ball(x_adv, x, eps, norm)


def test_apgd_per_sample_epsilon_and_one_hot_labels(four_class):
    model, x, y = four_class
    eps = np.linspace(0.001, 0.1, len(x)).astype(np.float32)
    x_adv = kr.attacks.apgd(model, x, np.eye(4, dtype=np.float32)[y], eps, 5, seed=0)
    assert_in_ball(x_adv, x, eps, "linf")


def test_apgd_breaks_at_least_as_many_samples_as_pgd(trained_mlp):
    model, x, y = trained_mlp
    clean = _accuracy(model, x, y)
    assert clean > 0.7
    results = {}
    for steps in (5, 10):
        pgd = _accuracy(model, kr.attacks.pgd(model, x, y, 0.09, 0.09 / 4, steps, seed=0), y)
        apgd = _accuracy(model, kr.attacks.apgd(model, x, y, 0.09, steps, seed=0), y)
        assert apgd <= pgd + 1e-9, (steps, apgd, pgd)
        results[steps] = apgd, pgd
    assert results[10][1] < clean - 0.15  # the model is not robust
    # With few steps the adaptive step (2 eps, then halved) is far ahead
    # (measured: 0.40 against PGD's 0.73 at 5 steps).
    assert results[5][0] < results[5][1] - 0.1
    restarts = _accuracy(model, kr.attacks.apgd(model, x, y, 0.09, 10, restarts=3, seed=0), y)
    assert restarts <= results[10][0] + 1e-9  # more restarts never help the model


def test_apgd_returns_adversarial_points_it_found_and_keeps_clean_errors(four_class):
    model, x, y = four_class
    predicted = np.argmax(model.predict(x, verbose=0), -1)
    x_adv = np.asarray(kr.attacks.apgd(model, x, y, 0.3, 10, seed=0))
    # Samples misclassified at x are returned unchanged.
    wrong = predicted != y
    assert wrong.any()
    np.testing.assert_array_equal(x_adv[wrong], x[wrong])
    assert _accuracy(model, x_adv, y) == 0.0


def test_apgd_targeted_reaches_its_targets_on_a_linear_model():
    model = linear_model(num_classes=5, scale=2.0, seed=3)
    rng = np.random.default_rng(2)
    x = 0.25 + 0.5 * rng.random((24, 8, 8, 1), dtype=np.float32)
    y = np.argmax(model.predict(x, verbose=0), -1)
    target = (y + 2) % 5
    x_adv = kr.attacks.apgd(model, x, y, 0.25, 20, loss="dlr", target=target, seed=0)
    assert_in_ball(x_adv, x, 0.25, "linf")
    np.testing.assert_array_equal(np.argmax(model.predict(np.asarray(x_adv), verbose=0), -1),
                                  target)
    # APGD-T over the top-k classes misclassifies everything at that budget.
    x_t = kr.attacks.apgd_targeted(model, x, y, 0.25, 10, num_targets=4, seed=0)
    assert _accuracy(model, x_t, y) == 0.0


def test_apgd_is_reproducible_and_runs_inside_a_graph(four_class):
    model, x, y = four_class
    a = kr.attacks.apgd(model, x, y, EPS, 5, seed=7)
    b = kr.attacks.apgd(model, x, y, EPS, 5, seed=7)
    c = kr.attacks.apgd(model, x, y, EPS, 5, seed=8)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(a), np.asarray(c))

    @tf.function
    def inside(images, labels):
        return kr.attacks.apgd(model, images, labels, EPS, 5, seed=7)

    np.testing.assert_allclose(np.asarray(inside(tf.constant(x), tf.constant(y))), np.asarray(a),
                               atol=1e-6)


def test_apgd_with_xla_matches_the_ball(four_class):
    model, x, y = four_class
    x_adv = kr.attacks.apgd(model, x, y, EPS, 4, restarts=2, seed=0, jit_compile=True)
    assert_in_ball(x_adv, x, EPS, "linf")


def test_gradient_attacks_say_when_a_model_has_no_gradient(four_class):
    model, x, y = four_class
    frozen = lambda images: tf.stop_gradient(model(images))  # noqa: E731
    with pytest.raises(ValueError, match="square"):
        kr.attacks.apgd(frozen, x, y, EPS, 2)
    with pytest.raises(ValueError, match="gradient"):
        kr.attacks.cw_l2(frozen, x, y, steps=2)


@pytest.mark.parametrize(
    "loss,target", [("margin", None), ("ce", None), ("margin", "random"), ("ce", "tensor")]
)
def test_square_stays_in_its_ball(four_class, loss, target):
    model, x, y = four_class
    if target == "tensor":
        target = (y + 1) % 4
    x_adv = kr.attacks.square(model, x, y, EPS, 30, loss=loss, target=target, seed=0)
    assert_in_ball(x_adv, x, EPS, "linf")


def test_square_needs_no_gradients_and_breaks_a_plain_model(trained_mlp):
    model, x, y = trained_mlp
    no_gradient = lambda images: tf.stop_gradient(model(images))  # noqa: E731
    clean = _accuracy(model, x, y)
    x_adv = kr.attacks.square(no_gradient, x, y, 0.1, 300, seed=0)
    assert_in_ball(x_adv, x, 0.1, "linf")
    assert _accuracy(model, x_adv, y) < clean - 0.15
    # It is no stronger than it should be: not far below the white-box attack.
    pgd = _accuracy(model, kr.attacks.pgd(model, x, y, 0.1, 0.025, 20, seed=0), y)
    assert _accuracy(model, x_adv, y) >= pgd - 0.1


def _linear_worst_margin(weights, bias, flat, y, eps):
    """min over the L-inf ball (and [0, 1]) of z_y - max_{j!=y} z_j for a linear model:
    per class j the minimiser moves each pixel by -eps sign(w_y - w_j), then clips."""
    worst = np.full(len(flat), np.inf)
    for j in range(weights.shape[1]):
        v = (weights[:, y] - weights[:, [j]]).T
        corner = np.where(v > 0, np.maximum(flat - eps, 0.0), np.minimum(flat + eps, 1.0))
        margin = (v * corner).sum(1) + bias[y] - bias[j]
        worst = np.minimum(worst, np.where(y == j, np.inf, margin))
    return worst


def test_square_finds_the_closed_form_worst_case_of_a_linear_model():
    # On a 10-class linear model the smallest margin reachable in the ball is known in
    # closed form: Square must never report less (it stays in the ball and reports the
    # true margin), must break every sample whose worst case is clearly adversarial,
    # none whose worst case is not, and should get close to the worst case elsewhere.
    model = linear_model(num_classes=10, scale=0.3, seed=7)
    weights, bias = (a.astype(np.float64) for a in model.get_layer("linear").get_weights())
    rng = np.random.default_rng(5)
    x = (0.25 + 0.5 * rng.random((32, 8, 8, 1))).astype(np.float32)
    flat = x.reshape(len(x), -1).astype(np.float64)
    y = (flat @ weights + bias).argmax(1).astype(np.int32)
    eps, queries = 0.05, 500
    worst = _linear_worst_margin(weights, bias, flat, y, eps)
    assert (worst < -0.1).sum() >= 5 and (worst > 0.05).sum() >= 15  # both kinds present
    attack = tf.function(lambda images, labels: square_attack(
        as_logits_fn(model), images, labels, eps, queries, seed=tf.constant([3, 4], tf.int64)))
    result = attack(tf.constant(x), tf.constant(y))
    x_adv = result.x_adv.numpy()
    assert_in_ball(x_adv, x, eps, "linf")
    logits = x_adv.reshape(len(x), -1).astype(np.float64) @ weights + bias
    others = np.where(np.eye(10, dtype=bool)[y], -np.inf, logits)
    true_margin = logits[np.arange(len(y)), y] - others.max(1)
    margin = result.margin.numpy()
    np.testing.assert_allclose(margin, true_margin, atol=1e-4)
    assert np.all(margin >= worst - 1e-4)
    assert np.all(margin[worst < -0.1] <= 0.0)
    assert np.all(margin[worst > 1e-3] > 0.0)
    # Random search reaches the worst-case corner on most unbroken samples
    # (measured: median gap ~1e-7, largest 0.12).
    assert np.median((margin - worst)[margin > 0]) < 0.01
    # Broken samples stop spending queries; the others spend all (+2: clean, stripes).
    spent = result.queries.numpy()
    assert np.all(spent[margin > 0] == queries + 2)
    assert np.all(spent[margin <= 0] < queries + 2) and spent.min() >= 2


def test_square_p_schedule_matches_the_reference_p_selection():
    # p_selection of the authors' code: p_init halved after iterations 10, 50, 200,
    # 500, 1000, 2000, 4000, 6000, 8000 of 10,000, rescaled to the query budget.
    for queries in (1, 7, 37, 100, 300, 1000, 5000, 10000):
        iterations = np.arange(queries)
        expected = [ref.square_p_selection(0.8, int(i), queries) for i in iterations]
        np.testing.assert_allclose(p_schedule(tf.constant(iterations), queries, 0.8).numpy(),
                                   expected, rtol=1e-6, err_msg=f"{queries} queries")
    # A few values by hand: 10,000 queries, iterations 10 / 11 / 8001; 1000 queries, 5 / 801.
    np.testing.assert_allclose(p_schedule(tf.constant([10, 11, 8001]), 10000, 0.8).numpy(),
                               [0.8, 0.4, 0.8 / 512], rtol=1e-6)
    np.testing.assert_allclose(p_schedule(tf.constant([5, 801]), 1000, 0.8).numpy(),
                               [0.4, 0.8 / 512], rtol=1e-6)


@pytest.mark.parametrize("height,width,channels", [(32, 32, 3), (8, 8, 1), (4, 4, 3), (28, 28, 1)])
@pytest.mark.parametrize("p_init", [0.05, 0.3, 0.8, 1.0])
def test_square_side_matches_the_reference(height, width, channels, p_init):
    # round(sqrt(p * n_features / c)) clipped to [1, h - 1], at every p of the schedule.
    ps = [p_init / 2**k for k in range(10)]
    expected = [ref.square_side(p, height, width, channels) for p in ps]
    assert [int(square_side(p, height, width)) for p in ps] == expected


def test_square_starts_from_vertical_stripes():
    # Before any square: x + eps * s with s = +-1 drawn per (column, channel) and constant
    # down each column, then clipped to [0, 1]. A model whose margin never reaches 0
    # keeps every sample on its starting point when no iteration runs.
    rng = np.random.default_rng(0)
    x = rng.random((16, 12, 10, 3)).astype(np.float32)
    x[:8] = 0.3 + 0.4 * x[:8]  # no clipping on the first half
    eps = 0.1
    constant = lambda images: tf.one_hot(tf.zeros(tf.shape(images)[:1], tf.int32), 10) * 5.0  # noqa: E731
    result = square_attack(constant, tf.constant(x), tf.zeros(16, tf.int32), eps, 0,
                           seed=tf.constant([7, 8], tf.int64))
    start = result.x_adv.numpy()
    up = np.all(np.isclose(start, np.clip(x + eps, 0, 1), atol=1e-6), axis=1)  # [B, W, C]
    down = np.all(np.isclose(start, np.clip(x - eps, 0, 1), atol=1e-6), axis=1)
    assert np.all(up ^ down)  # every column and channel moved by +eps or -eps throughout
    np.testing.assert_allclose(np.abs(start[:8] - x[:8]), eps, atol=1e-6)
    # The signs vary across columns, channels and samples.
    assert 0.3 < up.mean() < 0.7
    assert len({tuple(column.ravel()) for column in up}) == 16
    assert not np.all(up == up[:, :, :1]) and not np.all(up == up[:, :1, :])
    np.testing.assert_array_equal(result.queries.numpy(), 2)


def test_square_is_reproducible_and_xla_compiles(four_class):
    model, x, y = four_class
    a = kr.attacks.square(model, x, y, EPS, 20, seed=5)
    b = kr.attacks.square(model, x, y, EPS, 20, seed=5)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    c = kr.attacks.square(model, x, y, EPS, 20, seed=5, jit_compile=True)
    assert_in_ball(c, x, EPS, "linf")


@pytest.fixture
def separable():
    model = linear_model(num_classes=4, scale=0.5, seed=5)
    rng = np.random.default_rng(4)
    x = 0.25 + 0.5 * rng.random((16, 8, 8, 1), dtype=np.float32)
    y = np.argmax(model.predict(x, verbose=0), -1)
    return model, x, y


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


def test_transfer_attack_crafts_on_the_surrogate_only(separable):
    target_model, x, y = separable
    surrogate = linear_model(num_classes=4, scale=0.5, seed=6)
    attack = functools.partial(kr.attacks.mi_fgsm, epsilon=0.1, steps=5)
    result = kr.attacks.transfer_attack(attack, surrogate, target_model, x, y, batch_size=5)
    assert set(result) == {"x_adv", "accuracy", "clean_accuracy", "surrogate_accuracy",
                           "transfer_rate"}
    assert_in_ball(result["x_adv"], x, 0.1, "linf")
    np.testing.assert_allclose(
        np.asarray(attack(surrogate, x[:5], y[:5])), result["x_adv"][:5], atol=1e-6
    )
    assert result["clean_accuracy"] == 1.0
    assert result["accuracy"] == pytest.approx(_accuracy(target_model, result["x_adv"], y))
    assert result["surrogate_accuracy"] == pytest.approx(_accuracy(surrogate, result["x_adv"], y))
    assert result["transfer_rate"] == pytest.approx(1.0 - result["accuracy"])
    # White-box (surrogate == target) is at least as strong; names work too.
    white = kr.attacks.transfer_attack("pgd", target_model, target_model, x, y, epsilon=0.1,
                                       steps=5, seed=0)
    assert white["accuracy"] <= result["accuracy"]


@pytest.mark.parametrize(
    "call,error,match",
    [
        (lambda m, x, y: kr.attacks.apgd(m, x, y, 0.0), ValueError, "epsilon"),
        (lambda m, x, y: kr.attacks.apgd(m, x, y, EPS, loss="cw"), ValueError, "'dlr'"),
        (lambda m, x, y: kr.attacks.apgd(m, x, y, EPS, norm="l1"), ValueError, "'l2'"),
        (lambda m, x, y: kr.attacks.apgd(m, x, y, EPS, steps=0), ValueError, "steps"),
        (lambda m, x, y: kr.attacks.apgd(m, x, y, EPS, config=kr.attacks.APGDConfig(rho=1.5)), ValueError, "rho"),
        (lambda m, x, y: kr.attacks.apgd(m, x, y, EPS, config=kr.attacks.APGDConfig(rule="code")), ValueError, "'paper'"),
        (lambda m, x, y: kr.attacks.apgd_targeted(m, x, y, EPS, num_targets=2,
                                                    config=kr.attacks.APGDTargetedConfig(rule="<=")),
         ValueError, "'reference'"),
        (lambda m, x, y: kr.attacks.apgd(m, x, y, EPS, target="most"), ValueError, "'mc'"),
        (lambda m, x, y: kr.attacks.apgd(m, x, y, EPS, restarts=1.5), TypeError, "restarts"),
        (lambda m, x, y: kr.attacks.apgd_targeted(m, x, y, EPS, num_targets=4), ValueError,
         "num_targets"),
        (lambda m, x, y: kr.attacks.apgd_targeted(m, x, y, EPS, num_targets=0), ValueError,
         "num_targets"),
        (lambda m, x, y: kr.attacks.square(m, x, y, EPS, queries=0), ValueError, "queries"),
        (lambda m, x, y: kr.attacks.square(m, x, y, EPS, p_init=0.0), ValueError, "p_init"),
        (lambda m, x, y: kr.attacks.square(m, x, y, EPS, loss="dlr"), ValueError, "'margin'"),
        (lambda m, x, y: kr.attacks.square(m, x, y, 2.0), ValueError, "epsilon"),
        (lambda m, x, y: kr.attacks.cw_l2(m, x, y, confidence=-1.0), ValueError, "confidence"),
        (lambda m, x, y: kr.attacks.cw_l2(m, x, y, learning_rate=0), ValueError, "learning_rate"),
        (lambda m, x, y: kr.attacks.cw_l2(m, x, y, binary_search_steps=0), ValueError, "binary"),
        (lambda m, x, y: kr.attacks.cw_l2(m, x, y, fallback="last"), ValueError, "'input'"),
        (lambda m, x, y: kr.attacks.cw_l2(m, x * 255, y), ValueError, "255"),
        (lambda m, x, y: kr.attacks.transfer_attack("deepfool", m, m, x, y), ValueError, "'pgd'"),
        (lambda m, x, y: kr.attacks.transfer_attack(3, m, m, x, y), TypeError, "callable"),
        (lambda m, x, y: kr.attacks.transfer_attack("pgd", m, "vgg", x, y, epsilon=EPS),
         TypeError, "model"),
    ],
)
def test_bad_arguments_fail_with_clear_messages(four_class, call, error, match):
    model, x, y = four_class
    with pytest.raises(error, match=match):
        call(model, x, y)


def test_apgd_t_attacks_the_most_likely_other_classes_first():
    """With fewer targets than classes minus one the order of the targets decides the
    figure: APGD-T must attack the k classes with the highest clean logits. On a
    10-class linear model the reference is closed form: an image can be moved to
    class j within an L-inf ball of radius eps (the box [0, 1] not binding) iff
    z_y - z_j <= eps ||w_y - w_j||_1. Every image breakable toward one of its two
    most likely other classes (with 10% slack) must be broken with 2 targets, and
    no image beyond the closed form may be; on this fixture no image is breakable
    toward its two least likely classes, so attacking those would break nothing."""
    model = linear_model(num_classes=10, scale=0.5, seed=5)
    weights, bias = (v.astype(np.float64) for v in model.get_layer("linear").get_weights())
    rng = np.random.default_rng(4)
    x = (0.3 + 0.4 * rng.random((48, 8, 8, 1))).astype(np.float32)
    logits = x.reshape(48, -1).astype(np.float64) @ weights + bias
    y = logits.argmax(1)
    gaps = logits[np.arange(48), y][:, None] - logits                           # z_y - z_j
    dual = np.abs(weights[:, y].T[:, :, None] - weights[None]).sum(1)          # ||w_y - w_j||_1
    radius = np.where(np.eye(10, dtype=bool)[y], np.inf, gaps / np.maximum(dual, 1e-12))
    order = np.argsort(np.where(np.eye(10, dtype=bool)[y], -np.inf, logits), axis=1)[:, ::-1]
    top2 = np.take_along_axis(radius, order[:, :2], 1).min(1)
    bottom2 = np.take_along_axis(radius, order[:, 7:9], 1).min(1)
    eps = float(np.quantile(top2, 0.5))
    assert eps < 0.25  # the box does not bind for x in [0.3, 0.7]
    must_break = top2 < 0.9 * eps
    assert must_break.sum() >= 10 and not np.any(bottom2 <= eps)
    x_adv = np.asarray(kr.attacks.apgd_targeted(model, x, y, eps, 20, num_targets=2, seed=0))
    assert_in_ball(x_adv, x, eps, "linf")
    broken = np.argmax(np.asarray(model(tf.constant(x_adv))), -1) != y
    assert np.all(broken[must_break]), np.flatnonzero(must_break & ~broken)
    assert not np.any(broken[radius.min(1) > eps])


def test_square_uses_the_scheduled_square_size_at_every_iteration():
    """The side the attack draws at iteration i is the reference's
    square_side(p_selection(p_init, i, n_iters)): the schedule and the side are
    each checked against the authors' code above, this checks that the attack feeds
    the one into the other. Each image gets a logit that turns it adversarial at the
    first proposal raising its pixel sum (one query later it stops), so the rows
    that proposal changed are one square's rows and `queries` says at which
    iteration it was drawn."""
    n, side, queries, p_init, eps = 64, 16, 100, 0.8, 0.1
    x = tf.fill([n, side, side, 1], 0.5)
    y = tf.zeros([n], tf.int32)
    seed = tf.constant([3, 4], tf.int64)

    def never_better(images):
        return tf.tile(tf.constant([[1.0, 0.0]]), [tf.shape(images)[0], 1])

    start = square_attack(never_better, x, y, eps, 1, p_init=p_init, seed=seed,
                          compact=False).x_adv
    threshold = tf.reduce_sum(start, axis=[1, 2, 3]) + 0.5 * eps

    def breaks_on_a_higher_sum(images):
        # margin = threshold - sum (a proposal that flips one pixel up goes below 0),
        # plus 100 at the clean image (every other point is 0.5 +- eps).
        clean = tf.cast(tf.reduce_max(tf.abs(images - 0.5), axis=[1, 2, 3]) < 0.5 * eps,
                        tf.float32)
        margin = threshold - tf.reduce_sum(images, axis=[1, 2, 3]) + 100.0 * clean
        return tf.stack([margin, tf.zeros([n])], 1)

    result = square_attack(breaks_on_a_higher_sum, x, y, eps, queries, p_init=p_init, seed=seed,
                           compact=False)
    broken = np.asarray(result.margin) <= 0.0
    assert broken.all()
    iteration = np.asarray(result.queries) - 3  # 2 queries before the loop, 1 per iteration
    changed = np.any(np.asarray(result.x_adv) != np.asarray(start), axis=(2, 3))  # [n, H] rows
    expected = [ref.square_side(ref.square_p_selection(p_init, int(i), queries), side, side, 1)
                for i in iteration]
    np.testing.assert_array_equal(changed.sum(1), expected)
    assert len(set(expected)) >= 3  # several points of the schedule are checked
