"""Eq. 6 of the data-centric paper against an independent NumPy reference.

The reference recomputes the whole attack in float64 NumPy/SciPy: the ensemble
mean of two tanh MLPs (eq. 5) with its input gradient written out by hand,
input diversity (nearest-neighbour shrink to s x s, zero pad at (top, left),
applied with probability p; eq. 3) as an explicit index map and its adjoint,
the logit loss -z_y (eq. 4), Gaussian smoothing with SciPy's
`ndimage.correlate` over a kernel from `scipy.stats.norm` (Dong et al.'s TI,
Zhao et al.'s 5 x 5 over +-3 sigma; eq. 2), momentum on L1-normalised
gradients (eq. 1), then the L-inf sign step with its box projection or the L2
step with its ball projection, and [0, 1] clipping.

The library's random draws are stateless: the test draws the same ones with
the same `tf.random` stateless calls (seed of the ball -> fold_in(100 + i)
per step -> fold_in(11/12/13/14) for size/top/left/apply), and only the
draws come from TensorFlow. As documented in `keras_robust.datacentric.perturb`
(and in Zhao et al.'s code), each raw gradient is smoothed before the momentum
accumulation; eq. 6 as printed smooths the accumulated momentum, and the test
checks that the two orders give different results here, so it would notice a
change of order.
"""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from scipy import ndimage, stats

import keras
from keras_robust import datacentric as dc
from keras_robust.attacks.common import Ensemble, as_logits_fn
from keras_robust.datacentric.perturb import perturbation_graph

SHAPE = (12, 12, 3)
CLASSES = 10
SEED = np.array([5, 7], np.int64)
SEED_DATA = 2  # data whose attack never takes the sign of a near-zero momentum (see below)


def _tanh_mlp(seed: int) -> keras.Model:
    rng = np.random.default_rng(seed)
    inputs = keras.Input(SHAPE)
    hidden = keras.layers.Dense(16, activation="tanh", name="hidden")(
        keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, keras.layers.Dense(CLASSES, name="out")(hidden))
    dim = int(np.prod(SHAPE))
    model.get_layer("hidden").set_weights([rng.normal(0, 0.3, (dim, 16)).astype("float32"),
                                           rng.normal(0, 0.3, 16).astype("float32")])
    model.get_layer("out").set_weights([rng.normal(0, 1, (16, CLASSES)).astype("float32"),
                                        rng.normal(0, 1, CLASSES).astype("float32")])
    return model


def _weights(model):
    w1, b1 = (np.float64(a) for a in model.get_layer("hidden").get_weights())
    w2, _ = (np.float64(a) for a in model.get_layer("out").get_weights())
    return w1, b1, w2


def _draws(ball_seed, steps, probability):
    """The library's per-step input-diversity draws, from the same stateless calls."""
    height = SHAPE[0]
    low = int(np.floor(0.9 * height))
    draws = []
    for i in range(steps):
        step_seed = tf.random.experimental.stateless_fold_in(ball_seed, 100 + i)
        fold = lambda salt: tf.random.experimental.stateless_fold_in(step_seed, salt)  # noqa: E731
        size = int(tf.random.stateless_uniform([], fold(11), low, height + 1, tf.int32))
        top = int(tf.random.stateless_uniform([], fold(12), 0, height - size + 1, tf.int32))
        left = int(tf.random.stateless_uniform([], fold(13), 0, height - size + 1, tf.int32))
        apply = float(tf.random.stateless_uniform([], fold(14))) < probability
        draws.append((size, top, left, apply))
    return draws


def _source_index(size, full):
    """Nearest-neighbour source row of each of `size` output rows: floor((i + 0.5) * full / size).

    Half-pixel centres, as TensorFlow 2's `resize(method="nearest")`.
    """
    return np.minimum(np.floor((np.arange(size) + 0.5) * full / size).astype(int), full - 1)


def _transform(x, draw):
    """T(x): shrink to size x size (nearest), zero-pad back to H x W at (top, left)."""
    size, top, left, apply = draw
    if not apply:
        return x
    rows, cols = _source_index(size, x.shape[1]), _source_index(size, x.shape[2])
    out = np.zeros_like(x)
    out[:, top:top + size, left:left + size] = x[:, rows][:, :, cols]
    return out


def _transform_adjoint(g, draw):
    """The gradient through T: each output pixel's gradient goes back to its source pixel."""
    size, top, left, apply = draw
    if not apply:
        return g
    rows, cols = _source_index(size, g.shape[1]), _source_index(size, g.shape[2])
    out = np.zeros_like(g)
    inner = g[:, top:top + size, left:left + size]
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            out[:, r, c] += inner[:, i, j]
    return out


def _logit_loss_gradient(models, x, y):
    """d/dx of sum_b -mean_f z_f(x_b)[y_b] for tanh MLPs, by hand."""
    n = len(x)
    u = x.reshape(n, -1)
    grad = np.zeros_like(u)
    for w1, b1, w2 in models:
        h = np.tanh(u @ w1 + b1)                        # [n, 16]
        dz_dh = w2[:, y].T                              # [n, 16]: d z_y / d h
        grad += -(dz_dh * (1 - h ** 2)) @ w1.T          # d(-z_y)/du
    return (grad / len(models)).reshape(x.shape)


def _kernel(size=5, nsig=3.0):
    k1 = stats.norm.pdf(np.linspace(-nsig, nsig, size))
    k = np.outer(k1, k1)
    return k / k.sum()


def _smooth(g, kernel):
    return np.stack([np.stack([ndimage.correlate(g[b, :, :, c], kernel, mode="constant")
                               for c in range(g.shape[3])], -1) for b in range(len(g))])


def _reference(models, x, y, *, norm, eps, alpha, steps, mu, draws, kernel, smooth_momentum=False):
    """The perturbation after `steps` steps, and the smallest |direction| met by a sign step."""
    x = x.astype(np.float64)
    x_adv, velocity, smallest = x.copy(), np.zeros_like(x), np.inf
    for draw in draws[:steps]:
        grad = _transform_adjoint(_logit_loss_gradient(models, _transform(x_adv, draw), y), draw)
        if kernel is not None and not smooth_momentum:
            grad = _smooth(grad, kernel)                # the library / Zhao et al.: W * grad
        l1 = np.abs(grad).reshape(len(x), -1).sum(1)[:, None, None, None]
        velocity = mu * velocity + grad / l1            # eq. 1
        direction = _smooth(velocity, kernel) if smooth_momentum else velocity  # eq. 6: W * g_i
        if norm == "linf":
            nonzero = np.abs(direction)[direction != 0]  # exact zeros: pixels DI never read
            smallest = min(smallest, nonzero.min())
            x_adv = np.clip(x_adv + alpha * np.sign(direction), np.maximum(x - eps, 0),
                            np.minimum(x + eps, 1))
        else:
            l2 = np.sqrt((direction ** 2).reshape(len(x), -1).sum(1))[:, None, None, None]
            delta = x_adv + alpha * direction / l2 - x
            norms = np.sqrt((delta ** 2).reshape(len(x), -1).sum(1))[:, None, None, None]
            x_adv = np.clip(x + delta * np.minimum(1.0, eps / norms), 0, 1)
    return x_adv - x, smallest


@pytest.fixture(scope="module")
def setup():
    models = [_tanh_mlp(1), _tanh_mlp(2)]
    rng = np.random.default_rng(SEED_DATA)
    x = rng.random((6, *SHAPE)).astype(np.float32)
    y = rng.integers(0, CLASSES, 6).astype(np.int32)
    return models, x, y


@pytest.mark.parametrize("kernel_size", [5, 0])
def test_eq6_with_input_diversity_momentum_and_smoothing_matches_a_numpy_reference(
        setup, kernel_size):
    models, x, y = setup
    steps = 8
    settings = dc.Eq6Config().replace(steps=steps, smoothing_kernel=kernel_size)
    # L2 steps that reach the ball's boundary.
    settings = settings.replace(l2=settings.l2.replace(step_size=0.2))
    d_inf, d_2 = perturbation_graph(as_logits_fn(Ensemble(models)), tf.constant(x),
                                       tf.constant(y), settings, tf.constant(SEED))
    weights = [_weights(m) for m in models]
    kernel = _kernel() if kernel_size else None
    for norm, got, salt, eps, alpha in (("linf", d_inf, 1, 8 / 255, 2 / 255),
                                        ("l2", d_2, 2, 1.0, 0.2)):
        ball_seed = tf.random.experimental.stateless_fold_in(tf.constant(SEED), salt)
        draws = _draws(ball_seed, steps, settings.linf.input_diversity)
        # The draws exercise both branches of DI and a real shrink + pad.
        assert any(d[3] and d[0] < SHAPE[0] for d in draws) and not all(d[3] for d in draws)
        want, smallest = _reference(weights, x, y, norm=norm, eps=eps, alpha=alpha, steps=steps,
                                    mu=settings.linf.momentum, draws=draws, kernel=kernel)
        # No sign taken of a near-zero momentum: entries are ~1/432 (L1-normalised), float32
        # rounding ~1e-10, so a sign below 1e-8 could flip and make the comparison ill-posed.
        assert smallest > 1e-8, smallest
        np.testing.assert_allclose(got.numpy(), want, atol=2e-5, err_msg=norm)
        if norm == "l2":
            norms = np.sqrt((want ** 2).reshape(len(x), -1).sum(1))
            assert norms.max() > 0.99  # the projection onto the ball is exercised
        if kernel is not None:
            # Eq. 6 as printed (W * accumulated momentum) differs: the test tells the orders apart.
            printed, _ = _reference(weights, x, y, norm=norm, eps=eps, alpha=alpha, steps=steps,
                                 mu=settings.linf.momentum, draws=draws, kernel=kernel,
                                 smooth_momentum=True)
            assert np.abs(printed - want).max() > 1e-3
