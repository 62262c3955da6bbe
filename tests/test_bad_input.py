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


# Found by the session-8 docstring audit: each of these used to give a wrong answer or garbage
# without a word.
def test_accuracy_refuses_a_label_count_other_than_the_image_count():
    model, x = linear_model(), np.zeros((4, 8, 8, 1), np.float32)
    with pytest.raises(ValueError, match="one label per image"):
        kr.evaluate.accuracy(model, x, [1])  # used to broadcast one label over four images
    with pytest.raises(ValueError, match="one label per image"):
        kr.evaluate.robust_accuracy(model, x, [0, 1, 0], lambda m, xb, yb: xb)
    assert kr.evaluate.accuracy(model, x, np.eye(10)[[0, 1, 2, 3]]) in (0.0, 0.25, 0.5, 0.75, 1.0)


def test_filter_each_needs_one_kernel_per_image():
    from keras_robust.corruptions import ops

    images = np.full((3, 8, 8, 3), 100, np.uint8)
    box = np.ones((3, 3), np.float32) / 9
    with pytest.raises(ValueError, match="one kernel per image: 3 images, 2 kernels"):
        ops.filter_each(images, [box, box])  # the third image used to come back uninitialised
    np.testing.assert_array_equal(ops.filter_each(images, [box] * 3), images)


@pytest.mark.parametrize("radius", [-1.0, float("nan")])
def test_disk_kernel_refuses_a_negative_radius(radius):
    from keras_robust.corruptions import ops

    with pytest.raises(ValueError, match="radius >= 0"):
        ops.disk_kernel(radius, 0.5)  # used to return a kernel of NaNs


def test_a_weighted_ensemble_is_refused_by_eq6_not_attacked_unweighted():
    from keras_robust.datacentric.perturb import as_surrogate_list

    a, b = linear_model(), linear_model()
    assert as_surrogate_list(kr.attacks.Ensemble([a, b])) == [a, b]
    with pytest.raises(ValueError, match="equal weights"):
        as_surrogate_list(kr.attacks.Ensemble([a, b], weights=[3, 1]))


@pytest.mark.parametrize("index,count", [(0, 0), (2, 2), (-1, 2), (0.5, 2)])
def test_a_worker_outside_its_count_is_refused(index, count):
    from keras_robust.datacentric.plan import Worker

    with pytest.raises(ValueError, match="index in \\[0, count\\)"):
        Worker(index=index, count=count)  # count 0 used to fail later with ZeroDivisionError


def test_make_plan_refuses_an_empty_shard():
    from keras_robust.datacentric.plan import make_plan

    with pytest.raises(ValueError, match="shard_size"):
        make_plan(10, (0, 1, 4), seed=0, shard_size=0)
