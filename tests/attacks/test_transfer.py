"""The transfer attack: crafted on the surrogate only, then scored on the target.
"""
from __future__ import annotations

import functools

import numpy as np
import pytest

import keras_robust as kr
from tests.attacks._helpers import _accuracy
from tests.helpers import assert_in_ball, linear_model


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
