"""Bad input fails where it enters, with a message naming what was expected."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import keras_robust as kr
from tests.helpers import linear_model, tiny_cnn

EPSILON_TAKERS = {
    "PGDATModel": lambda eps: kr.PGDATModel(tiny_cnn(), epsilon=eps),
    "BATModel": lambda eps: kr.BATModel(tiny_cnn(), epsilon=eps),
    "AFSModel": lambda eps: kr.AFSModel([tiny_cnn()], epsilon=eps),
    "pgd": lambda eps: kr.attacks.pgd(linear_model(), np.zeros((2, 8, 8, 1), np.float32), [0, 1], eps),
    "fgsm": lambda eps: kr.attacks.fgsm(linear_model(), np.zeros((2, 8, 8, 1), np.float32), [0, 1], eps),
    "mi_fgsm": lambda eps: kr.attacks.mi_fgsm(linear_model(), np.zeros((2, 8, 8, 1), np.float32), [0, 1], eps),
    "apgd": lambda eps: kr.attacks.apgd(linear_model(), np.zeros((2, 8, 8, 1), np.float32), [0, 1], eps),
    "square": lambda eps: kr.attacks.square(linear_model(), np.zeros((2, 8, 8, 1), np.float32), [0, 1], eps),
    "report": lambda eps: kr.evaluate.robustness_report(
        linear_model(), (np.zeros((2, 8, 8, 1), np.float32), [0, 1]), epsilon=eps, progress=False),
}


@pytest.mark.parametrize("taker", sorted(EPSILON_TAKERS))
@pytest.mark.parametrize("epsilon", [0.0, -0.1, 1.5, float("nan")])
def test_bad_budgets_are_refused_at_once(taker, epsilon):
    with pytest.raises(ValueError, match="epsilon"):
        EPSILON_TAKERS[taker](epsilon)


@pytest.mark.parametrize(
    "call,valid",
    [
        (lambda: kr.PGDATModel(tiny_cnn(), target="most_likely"), "'mc'"),
        (lambda: kr.PGDATModel(tiny_cnn(), loss="hinge"), "'dlr'"),
        (lambda: kr.BATModel(tiny_cnn(), label="mixup"), "'adversarial'"),
        (lambda: kr.attacks.pgd(linear_model(), np.zeros((2, 8, 8, 1), np.float32), [0, 1], 0.1,
                                norm="l1"), "'linf'"),
        (lambda: kr.evaluate.robustness_report(
            linear_model(), (np.zeros((2, 8, 8, 1), np.float32), [0, 1]), attacks="fast",
            progress=False), "'standard'"),
        (lambda: kr.evaluate.robustness_report(
            linear_model(), (np.zeros((2, 8, 8, 1), np.float32), [0, 1]), attacks=None,
            corruptions=["acid_rain"], progress=False), "'gaussian_noise'"),
        (lambda: kr.corruptions.corrupt(np.zeros((1, 8, 8, 3), np.uint8), "acid_rain"), "gaussian_noise"),
        (lambda: kr.backbones.get("resnet_9000"), "'small_cnn'"),
        (lambda: kr.defenses.get("magic", tiny_cnn()), "'pgd_at'"),
        (lambda: kr.experiment.strategy("tpu_pod"), "'mirrored'"),
    ],
)
def test_unknown_names_list_the_valid_ones(call, valid):
    with pytest.raises(ValueError) as info:
        call()
    assert valid in str(info.value)


def test_uint8_images_passed_by_mistake():
    model = linear_model()
    pixels = (np.random.default_rng(0).random((2, 8, 8, 1)) * 255).astype(np.uint8)
    with pytest.raises(TypeError, match="255"):
        kr.attacks.pgd(model, pixels, [0, 1], 8 / 255)
    with pytest.raises(ValueError, match="255"):
        kr.attacks.pgd(model, pixels.astype(np.float32), [0, 1], 8 / 255)
    with pytest.raises(TypeError, match="uint8"):
        kr.corruptions.corrupt(pixels.astype(np.float32) / 255, "fog")


def test_labels_out_of_range_and_nan_everywhere():
    model = linear_model(num_classes=3)
    x = np.random.default_rng(0).random((4, 8, 8, 1), dtype=np.float32)
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        kr.evaluate.robustness_report(model, (x, [0, 1, 2, 7]), attacks=["fgsm"], progress=False)
    defence = kr.RobustModel(model, seed=0)
    defence.compile(optimizer="sgd")
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        defence.fit(x, np.array([0, 1, 2, -1]), verbose=0)
    bad = x.copy()
    bad[1, 2, 3, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        defence.fit(bad, np.array([0, 1, 2, 0]), verbose=0)
    with pytest.raises(ValueError, match="NaN"):
        kr.evaluate.robustness_report(model, (bad, [0, 1, 2, 0]), attacks=["fgsm"], progress=False)


def test_empty_data_everywhere():
    model = linear_model()
    empty = np.zeros((0, 8, 8, 1), np.float32)
    with pytest.raises(ValueError, match="[Ee]mpty|No images"):
        kr.evaluate.robustness_report(model, (empty, np.zeros(0, int)), progress=False)
    with pytest.raises(ValueError, match="empty"):
        kr.evaluate.robustness_report(
            model, tf.data.Dataset.from_tensor_slices((empty, np.zeros(0, int))), progress=False)
    with pytest.raises(ValueError, match="empty"):
        kr.data.from_arrays(empty, np.zeros(0))
    defence = kr.RobustModel(model, seed=0)
    defence.compile(optimizer="sgd")
    with pytest.raises(ValueError, match="empty"):
        defence.fit(tf.data.Dataset.from_tensor_slices((empty, np.zeros(0, int))).batch(2), verbose=0)
