"""PGD adversarial training makes a model measurably more robust."""
from __future__ import annotations

import functools

import keras
import numpy as np

import keras_robust as kr
from tests.helpers import mlp, robust_feature_data


def _train(model, x, y):
    model.compile(optimizer=keras.optimizers.Adam(3e-3), metrics=["accuracy"])
    model.fit(x, y, batch_size=64, epochs=8, verbose=0)
    return model


def test_pgd_at_is_more_robust_than_plain_training():
    x, y = robust_feature_data(2048, seed=0)
    x_test, y_test = robust_feature_data(512, seed=1)
    attack = functools.partial(kr.attacks.pgd, epsilon=0.1, step_size=0.025, steps=10, seed=0)
    keras.utils.set_random_seed(0)
    plain = _train(kr.RobustModel(mlp(), seed=0), x, y)
    keras.utils.set_random_seed(0)
    robust = _train(kr.PGDATModel(mlp(), epsilon=0.1, step_size=0.04, steps=3, seed=0), x, y)
    plain_robust = kr.evaluate.robust_accuracy(plain, x_test, y_test, attack)
    pgd_robust = kr.evaluate.robust_accuracy(robust, x_test, y_test, attack)
    assert kr.evaluate.accuracy(robust, x_test, y_test) > 0.7
    assert pgd_robust > 0.7
    assert pgd_robust > plain_robust + 0.25, (plain_robust, pgd_robust)


def test_training_attack_is_reproducible_per_step():
    x, y = robust_feature_data(256, seed=0)
    weights = []
    for _ in range(2):
        keras.utils.set_random_seed(0)
        model = kr.PGDATModel(mlp(), epsilon=0.1, step_size=0.04, steps=2, seed=3)
        model.compile(optimizer=keras.optimizers.SGD(0.05))
        model.fit(x, y, batch_size=64, epochs=1, verbose=0, shuffle=False)
        weights.append(model.get_weights())
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)
