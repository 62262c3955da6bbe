"""Refusals the attacks share: a model without gradients, bad arguments (each with a clear message).
"""
from __future__ import annotations

import pytest
import tensorflow as tf

import keras_robust as kr
from tests.attacks._helpers import EPS


def test_gradient_attacks_say_when_a_model_has_no_gradient(four_class):
    model, x, y = four_class
    frozen = lambda images: tf.stop_gradient(model(images))  # noqa: E731
    with pytest.raises(ValueError, match="square"):
        kr.attacks.apgd(frozen, x, y, EPS, 2)
    with pytest.raises(ValueError, match="gradient"):
        kr.attacks.cw_l2(frozen, x, y, steps=2)


@pytest.mark.parametrize(
    "call,error,match",
    [
        (lambda m, x, y: kr.attacks.apgd(m, x, y, 0.0), ValueError, "epsilon"),
        (lambda m, x, y: kr.attacks.apgd(m, x, y, EPS, loss="cw"), ValueError, "'dlr'"),
        (lambda m, x, y: kr.attacks.apgd(m, x, y, EPS, norm="l1"), ValueError, "'l2'"),
        (lambda m, x, y: kr.attacks.apgd(m, x, y, EPS, steps=0), ValueError, "steps"),
        (lambda m, x, y: kr.attacks.apgd(m, x, y, EPS, config=kr.attacks.APGDConfig(rho=1.5)),
         ValueError, "rho"),
        (lambda m, x, y: kr.attacks.apgd(m, x, y, EPS, config=kr.attacks.APGDConfig(rule="code")),
         ValueError, "'paper'"),
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
