"""Square Attack, L-inf and L2.

L-inf: the ball, strength without gradients, the closed-form worst case of a linear
model, the p schedule and square side against the reference, the stripes start, the
scheduled size at every iteration. L2: the pseudo-Gaussian window, the ball, a
closed-form bound.

The window is checked against a NumPy transcription of AutoAttack's
`eta_rectangles` / `eta` (square-attack's `pseudo_gaussian_pert_rectangles` /
`meta_pseudo_gaussian_pert`), written from the reference text: a loop over
growing rectangles, where the library uses a closed form.
"""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import keras_robust as kr
from keras_robust.attacks.common import as_logits_fn
from keras_robust.attacks.square import (p_schedule, pseudo_gaussian_window, square_attack,
                                        square_side)
from tests import reference_autoattack as ref
from tests.attacks._helpers import EPS, _accuracy
from tests.helpers import assert_in_ball, linear_model


def _reference_rectangles(rows: int, cols: int) -> np.ndarray:
    """`eta_rectangles(x, y)`: 1/(k+1)^2 added on growing rectangles around the centre."""
    delta = np.zeros([rows, cols])
    centre_r, centre_c = rows // 2 + 1, cols // 2 + 1
    corner = [centre_r - 1, centre_c - 1]
    for k in range(max(centre_r, centre_c)):
        delta[max(corner[0], 0):min(corner[0] + 2 * k + 1, rows),
              max(0, corner[1]):min(corner[1] + 2 * k + 1, cols)] += 1.0 / (k + 1) ** 2
        corner[0] -= 1
        corner[1] -= 1
    norm = np.sqrt((delta**2).sum())
    return delta / norm if norm > 0 else delta  # the empty top half of side 1 stays empty


def _reference_window(side: int, transpose: bool) -> np.ndarray:
    """`eta(s)` / `meta_pseudo_gaussian_pert(s)` with its coin flip given."""
    delta = np.zeros([side, side])
    delta[: side // 2] = _reference_rectangles(side // 2, side)
    delta[side // 2:] = -_reference_rectangles(side - side // 2, side)
    delta /= np.sqrt((delta**2).sum())
    return delta.T if transpose else delta


@pytest.mark.parametrize("side", [1, 2, 3, 4, 5, 6, 7, 9, 16, 29])
def test_pseudo_gaussian_window_matches_the_reference(side):
    height, width = side + 3, side + 5
    top, left = np.array([0, 1, 3, 2]), np.array([0, 2, 5, 1])
    flips = np.array([False, True, False, True])
    got = pseudo_gaussian_window(tf.constant(top), tf.constant(left), tf.constant(side),
                                 tf.constant(flips), height, width).numpy()
    assert got.shape == (4, height, width) and got.dtype == np.float32
    for k in range(4):
        expected = np.zeros([height, width])
        expected[top[k]:top[k] + side, left[k]:left[k] + side] = _reference_window(side, flips[k])
        np.testing.assert_allclose(got[k], expected, atol=1e-6, err_msg=f"side {side}, {k}")


@pytest.mark.parametrize(
    "shape,eps,loss,target,jit",
    [
        ((8, 8, 1), 0.5, "margin", None, False),
        ((8, 8, 1), 3.0, "ce", None, False),          # the box binds: ||delta|| < eps
        ((9, 7, 3), [0.1, 0.5, 1.0, 2.0, 0.3, 0.7], "margin", "random", False),
        ((3, 3, 1), 0.4, "margin", None, True),       # the smallest images it takes, XLA
        ((10, 10, 3), 1.0, "ce", "tensor", False),
    ],
)
def test_square_l2_stays_in_its_ball_and_in_the_box(shape, eps, loss, target, jit):
    rng = np.random.default_rng(0)
    x = rng.random((6, *shape), dtype=np.float32)
    x[:2] = np.round(x[:2])  # pixels at 0 and 1: the box clips half of every move
    model = linear_model(input_shape=shape, num_classes=10, scale=1.0, seed=1)
    y = np.asarray(model(x)).argmax(1).astype(np.int32)  # all correct: all must move
    if target == "tensor":
        target = (y + 3) % 10
    x_adv = kr.attacks.square(model, x, y, eps, 20, loss=loss, target=target, seed=0,
                              jit_compile=jit, norm="l2")
    assert_in_ball(x_adv, x, eps, "l2")  # float32, [0, 1], ||x_adv - x||_2 <= eps + 1e-5
    assert np.all(np.any(np.asarray(x_adv) != x, axis=(1, 2, 3)))


def test_square_l2_never_beats_the_closed_form_and_breaks_the_clearly_breakable():
    # 10-class linear model z = W^T x + b: over the L2 ball the smallest margin against
    # class k is m_k(x) - eps ||w_y - w_k||_2 (the box only raises it), so Square can
    # never report less than min_k of that; it must report the true margin of the image
    # it returns, and break (within 300 queries) every sample whose minimum is clearly
    # negative, below -0.7 (measured with this seed: the 7 such samples broken, the first
    # unbroken one at -0.64; unbroken samples reach 50-70% of the optimal decrease; the
    # 8 x 8 random-weight directions are far from the smooth windows Square proposes).
    model = linear_model(num_classes=10, scale=0.3, seed=7)
    weights, bias = (a.astype(np.float64) for a in model.get_layer("linear").get_weights())
    rng = np.random.default_rng(5)
    x = (0.25 + 0.5 * rng.random((32, 8, 8, 1))).astype(np.float32)
    flat = x.reshape(len(x), -1).astype(np.float64)
    logits = flat @ weights + bias
    y = logits.argmax(1).astype(np.int32)
    eps, queries = 0.5, 300
    others = np.eye(10, dtype=bool)[y]
    margins = logits[np.arange(len(y)), y][:, None] - logits  # m_k, inf-free off y
    distance = np.linalg.norm(weights[:, y].T[:, :, None] - weights[None], axis=1)
    worst = np.where(others, np.inf, margins - eps * distance).min(1)
    breakable = worst < -0.7
    assert breakable.sum() >= 5 and (worst > 0).sum() >= 5  # both kinds present
    attack = tf.function(lambda images, labels: square_attack(
        as_logits_fn(model), images, labels, eps, queries, seed=tf.constant([3, 4], tf.int64),
        norm="l2"))
    result = attack(tf.constant(x), tf.constant(y))
    x_adv = result.x_adv.numpy()
    assert_in_ball(x_adv, x, eps, "l2")
    adv_logits = x_adv.reshape(len(x), -1).astype(np.float64) @ weights + bias
    true_margin = adv_logits[np.arange(len(y)), y] - np.where(others, -np.inf, adv_logits).max(1)
    margin = result.margin.numpy()
    np.testing.assert_allclose(margin, true_margin, atol=1e-4)
    assert np.all(margin >= worst - 1e-4)
    assert np.all(margin[worst > 1e-3] > 0.0)
    assert np.all(margin[breakable] <= 0.0)
    spent = result.queries.numpy()
    assert np.all(spent[margin > 0] == queries + 2)
    assert np.all(spent[margin <= 0] < queries + 2) and spent.min() >= 2


def test_square_l2_starts_from_a_grid_of_windows_of_norm_eps():
    # AutoAttack's start on a 32 x 32 image: windows of side 32 // 5 = 6 on a 5 x 5 grid
    # from pixel 1; each holds +-eta(6) (or its transpose) per channel; norm eps in all.
    rng = np.random.default_rng(0)
    x = (0.3 + 0.4 * rng.random((4, 32, 32, 3))).astype(np.float32)
    constant = lambda images: tf.one_hot(tf.zeros(tf.shape(images)[:1], tf.int32), 10) * 5.0  # noqa: E731
    result = square_attack(constant, tf.constant(x), tf.zeros(4, tf.int32), 1.0, 0,
                           seed=tf.constant([7, 8], tf.int64), norm="l2")
    delta = result.x_adv.numpy() - x
    np.testing.assert_allclose(np.linalg.norm(delta.reshape(4, -1), axis=1), 1.0, atol=1e-5)
    assert np.all(delta[:, [0, 31]] == 0) and np.all(delta[:, :, [0, 31]] == 0)
    plain, flipped = _reference_window(6, False), _reference_window(6, True)
    scale = 1.0 / np.sqrt(25 * 3)  # 25 windows x 3 channels of unit norm
    seen = set()
    for b in range(4):
        for i in range(5):
            for j in range(5):
                for ch in range(3):
                    tile = delta[b, 1 + 6 * i:7 + 6 * i, 1 + 6 * j:7 + 6 * j, ch] / scale
                    matches = [k for k, ref in enumerate((plain, -plain, flipped, -flipped))
                               if np.allclose(tile, ref, atol=1e-4)]
                    assert len(matches) == 1, (b, i, j, ch)
                    seen.add(matches[0])
    assert seen == {0, 1, 2, 3}


def test_square_l2_bad_input_says_what_to_do():
    model = linear_model(input_shape=(2, 2, 1), num_classes=3)
    x = np.zeros((2, 2, 2, 1), np.float32)
    with pytest.raises(ValueError, match="at least 3 x 3"):
        kr.attacks.square(model, x, [0, 1], 0.5, 5, norm="l2")
    with pytest.raises(ValueError, match="norm"):
        kr.attacks.square(model, x, [0, 1], 0.5, 5, norm="L2")
    # An L2 budget may exceed 1; an L-inf one may not.
    big = linear_model(input_shape=(4, 4, 1), num_classes=3)
    x4 = np.full((2, 4, 4, 1), 0.5, np.float32)
    assert_in_ball(kr.attacks.square(big, x4, [0, 1], 1.5, 5, seed=0, norm="l2"), x4, 1.5, "l2")
    with pytest.raises(ValueError, match="epsilon"):
        kr.attacks.square(big, x4, [0, 1], 1.5, 5)


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
