"""`pgd(..., early_stop=True)`: the plain attack's path, cut at each sample's first success."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import keras_robust as kr
from keras_robust.attacks.common import as_logits_fn
from keras_robust.attacks.engine import early_stop_attack
from tests.helpers import assert_in_ball, mlp

EPS = 8 / 255


@pytest.fixture(scope="module")
def model_and_data():
    tf.keras.utils.set_random_seed(0)
    model = mlp(num_classes=4, width=16)
    rng = np.random.default_rng(0)
    x = rng.random((48, 8, 8, 1), dtype=np.float32)
    y = np.argmax(model.predict(x, verbose=0), -1).astype(np.int32)  # all clean-correct
    return model, x, y


def _predict(model, x):
    return np.argmax(model.predict(np.asarray(x), verbose=0), -1)


def _fooled(model, x, y, target):
    predicted = _predict(model, x)
    return predicted == target if target is not None else predicted != y


@pytest.mark.parametrize(
    "norm,eps,loss,target",
    [("linf", EPS, "ce", None), ("linf", EPS, "cw", None), ("l2", 0.3, "ce", None),
     ("linf", EPS, "ce", "tensor")],
)
def test_early_stop_returns_the_first_fooling_iterate_of_the_plain_path(
    model_and_data, norm, eps, loss, target
):
    model, x, y = model_and_data
    target = (y + 1) % 4 if target == "tensor" else None
    steps, step = 8, eps / 4
    kwargs = dict(norm=norm, loss=loss, target=target, random_start=False, seed=0)
    # Without a random start, PGD with k steps is the k-th iterate of the path.
    path = [x] + [np.asarray(kr.attacks.pgd(model, x, y, eps, step, k, **kwargs))
                  for k in range(1, steps + 1)]
    expected = path[-1].copy()
    done = np.zeros(len(x), bool)
    for iterate in path[:-1]:
        first = _fooled(model, iterate, y, target) & ~done
        expected[first] = iterate[first]
        done |= first
    early = np.asarray(kr.attacks.pgd(model, x, y, eps, step, steps, early_stop=True, **kwargs))
    assert 0 < done.sum() < len(x)  # the case is not trivial
    np.testing.assert_allclose(early, expected, atol=1e-6)
    assert_in_ball(early, x, eps, norm)


@pytest.mark.parametrize("restarts", [1, 3])
@pytest.mark.parametrize("norm,eps", [("linf", EPS), ("l2", 0.3)])
def test_early_stop_never_raises_robust_accuracy(model_and_data, norm, eps, restarts):
    model, x, y = model_and_data
    kwargs = dict(norm=norm, restarts=restarts, seed=4)
    plain = np.asarray(kr.attacks.pgd(model, x, y, eps, eps / 4, 10, **kwargs))
    early = np.asarray(kr.attacks.pgd(model, x, y, eps, eps / 4, 10, early_stop=True, **kwargs))
    assert_in_ball(early, x, eps, norm)
    robust_plain, robust_early = _predict(model, plain) == y, _predict(model, early) == y
    assert not np.any(robust_early & ~robust_plain)  # robust there -> robust here
    if restarts > 1:
        single = np.asarray(kr.attacks.pgd(model, x, y, eps, eps / 4, 10, early_stop=True,
                                           norm=norm, seed=4))
        assert np.mean(robust_early) <= np.mean(_predict(model, single) == y)


class _RowCounter:
    """A model that counts the images it is asked to classify (inside the graph)."""

    def __init__(self, model):
        self.model = model
        self.rows = tf.Variable(0, dtype=tf.int64)

    def __call__(self, images):
        self.rows.assign_add(tf.cast(tf.shape(images)[0], tf.int64))
        return self.model(images, training=False)


def test_fooled_samples_leave_the_batch(model_and_data):
    model, x, y = model_and_data
    steps = 10
    counted = _RowCounter(model)
    kr.attacks.pgd(counted, x, y, EPS, EPS / 4, steps, seed=1)
    assert int(counted.rows.numpy()) == steps * len(x)
    counted.rows.assign(0)
    early = kr.attacks.pgd(counted, x, y, EPS, EPS / 4, steps, seed=1, early_stop=True)
    fooled = int(np.sum(_predict(model, early) != y))
    assert fooled > len(x) // 4
    # Each fooled image is classified once more at most after its fooling iterate.
    assert int(counted.rows.numpy()) < steps * len(x) - fooled
    # Everything fooled: no step past the first runs at all.
    counted.rows.assign(0)
    kr.attacks.pgd(counted, x, (y + 1) % 4, EPS, EPS / 4, steps, random_start=False,
                   early_stop=True)
    assert int(counted.rows.numpy()) == len(x)


def test_early_stop_refuses_what_it_cannot_do(model_and_data):
    model, x, y = model_and_data
    with pytest.raises(ValueError, match="XLA"):
        kr.attacks.pgd(model, x, y, EPS, EPS / 4, 2, early_stop=True, jit_compile=True)
    with pytest.raises(ValueError, match="input diversity"):
        kr.attacks.AttackConfig(epsilon=EPS, step_size=EPS / 4, steps=2, input_diversity=0.5,
                                early_stop=True)
    config = kr.attacks.AttackConfig(epsilon=EPS, steps=2, input_diversity=0.5)
    with pytest.raises(ValueError, match="input diversity"):
        early_stop_attack(as_logits_fn(model), tf.constant(x), y, config)


class _CountingModel:
    """A model wrapper that counts the image rows it is called on (inside tf.function too)."""

    def __init__(self, model):
        self.model = model
        self.rows = tf.Variable(0, dtype=tf.int64, trainable=False)

    def __call__(self, x, training=False):
        self.rows.assign_add(tf.cast(tf.shape(x)[0], tf.int64))
        return self.model(x, training=training)


@pytest.fixture(scope="module")
def ten_class_case():
    tf.keras.utils.set_random_seed(1)
    model = mlp(num_classes=10, width=32)
    x = np.random.default_rng(1).random((64, 8, 8, 1), dtype=np.float32)
    y = np.argmax(model.predict(x, verbose=0), -1).astype(np.int32)  # all clean-correct
    return model, x, y


@pytest.mark.parametrize("attack", ["apgd_ce"] + [pytest.param(a, marks=pytest.mark.slow)
                                                  for a in ("apgd_dlr", "apgd_t", "apgd_l2")])
def test_apgd_early_stop_breaks_the_same_samples_with_fewer_evaluations(ten_class_case, attack):
    """APGD with early_stop: the same samples broken as the plain run, each returned image
    adversarial, the unbroken ones' highest-objective points equal, fewer rows evaluated."""
    model, x, y = ten_class_case
    eps, norm = (0.3, "l2") if attack == "apgd_l2" else (2 / 255, "linf")
    if attack == "apgd_t":
        run = lambda m, **kw: kr.attacks.apgd_targeted(m, x, y, eps, steps=25, num_targets=3,  # noqa: E731
                                                        seed=0, **kw)
    else:
        loss = "dlr" if attack == "apgd_dlr" else "ce"
        run = lambda m, **kw: kr.attacks.apgd(m, x, y, eps, steps=25, loss=loss, norm=norm,  # noqa: E731
                                               seed=0, **kw)
    plain_model, early_model = _CountingModel(model), _CountingModel(model)
    plain = np.asarray(run(plain_model))
    early = np.asarray(run(early_model, early_stop=True))
    plain_broken = _predict(model, plain) != y
    early_broken = _predict(model, early) != y
    assert 0 < plain_broken.sum() < len(x)  # the case is not trivial
    np.testing.assert_array_equal(early_broken, plain_broken)
    np.testing.assert_allclose(early[~plain_broken], plain[~plain_broken], atol=1e-5)
    assert_in_ball(early, x, eps, norm)
    assert int(early_model.rows.numpy()) < int(plain_model.rows.numpy())


def test_apgd_early_stop_refuses_xla_and_non_booleans(ten_class_case):
    model, x, y = ten_class_case
    with pytest.raises(ValueError, match="XLA"):
        kr.attacks.apgd(model, x, y, 8 / 255, steps=2, early_stop=True, jit_compile=True)
    with pytest.raises(TypeError, match="True or False"):
        kr.attacks.apgd_targeted(model, x, y, 8 / 255, steps=2, num_targets=2, early_stop="yes")
    with pytest.raises(TypeError, match="True or False"):
        kr.attacks.AttackConfig(epsilon=EPS, steps=2, early_stop="yes")
    # NumPy's booleans are booleans (a flag read back from an array or a config file).
    config = kr.attacks.AttackConfig(epsilon=EPS, steps=2, early_stop=np.True_)
    assert config.early_stop is True
    kr.attacks.apgd(model, x[:2], y[:2], 2 / 255, steps=2, early_stop=np.True_)


def test_the_report_cascade_runs_apgd_with_early_stop(ten_class_case):
    """The cascade's APGD stages (quick and standard suites) take the early-stopping path:
    the images the plain attack breaks, with fewer rows evaluated; "rand" keeps the plain path."""
    model, x, y = ten_class_case
    for suite in ("quick", "standard"):
        stages = {s.key: s for s in kr.evaluate.build_suite(suite, 2 / 255).cascade}
        counted, plain_model = _CountingModel(model), _CountingModel(model)
        x_cascade = np.asarray(stages["apgd_ce"].run(counted, x, y))
        steps = 100 if suite == "standard" else 50
        x_plain = np.asarray(kr.attacks.apgd(plain_model, x, y, 2 / 255, steps=steps, loss="ce",
                                             seed=0))
        np.testing.assert_array_equal(_predict(model, x_cascade) != y,
                                      _predict(model, x_plain) != y)
        assert int(counted.rows.numpy()) < int(plain_model.rows.numpy()), suite
    # "rand" keeps every image in the batch: as many rows as the plain run at its settings.
    rand = {s.key: s for s in kr.evaluate.build_suite("rand", 2 / 255).cascade}
    counted, plain_model = _CountingModel(model), _CountingModel(model)
    rand["apgd_ce"].run(counted, x, y)
    kr.attacks.apgd(plain_model, x, y, 2 / 255, steps=100, loss="ce", seed=0,
                    config=kr.attacks.APGDConfig(eot_iter=kr.evaluate.suites.RAND_EOT_ITER))
    assert int(counted.rows.numpy()) == int(plain_model.rows.numpy())
