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


# Found by an audit of the docstrings: each of these used to give a wrong answer or garbage
# without a word.
def test_accuracy_refuses_a_label_count_other_than_the_image_count():
    model, x = linear_model(), np.zeros((4, 8, 8, 1), np.float32)
    with pytest.raises(ValueError, match="one label per image"):
        kr.evaluate.accuracy(model, x, [1])  # used to broadcast one label over four images
    with pytest.raises(ValueError, match="one label per image"):
        kr.evaluate.robust_accuracy(model, x, [0, 1, 0], lambda m, xb, yb: xb)
    assert kr.evaluate.accuracy(model, x, np.eye(3)[[0, 1, 2, 0]]) in (0.0, 0.25, 0.5, 0.75, 1.0)


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


# Each of these used to return plausible output or a deep TensorFlow trace.
def _pooling_model(num_classes=10):
    """Conv + global pooling: it would take images of any height and width without complaint."""
    import keras

    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(num_classes)(x), name="pooling")


ATTACKS = {
    "fgsm": lambda m, x, y: kr.attacks.fgsm(m, x, y, 8 / 255),
    "pgd": lambda m, x, y: kr.attacks.pgd(m, x, y, 8 / 255, steps=1),
    "mi_fgsm": lambda m, x, y: kr.attacks.mi_fgsm(m, x, y, 8 / 255, steps=1),
    "cw_l2": lambda m, x, y: kr.attacks.cw_l2(m, x, y, steps=1),
    "apgd": lambda m, x, y: kr.attacks.apgd(m, x, y, 8 / 255, steps=1),
    "apgd_targeted": lambda m, x, y: kr.attacks.apgd_targeted(m, x, y, 8 / 255, steps=1,
                                                              num_targets=1),
    "square": lambda m, x, y: kr.attacks.square(m, x, y, 8 / 255, queries=1, seed=0),
    "transfer": lambda m, x, y: kr.attacks.transfer_attack("fgsm", m, m, x, y, epsilon=8 / 255),
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_attacks_refuse_images_the_model_does_not_take_even_after_retracing(attack):
    # Before: PGD returned (4, 6, 6, 3) "adversarial" images. Every attack is checked at the
    # same entry (engine.compiled_attack), so the retracing warm-up runs for the cheap ones only.
    model, rng = _pooling_model(), np.random.default_rng(0)
    for batch in (2, 3) if attack in ("pgd", "fgsm") else ():
        # retracing at other batch sizes loosens the traced shape
        ATTACKS[attack](model, rng.random((batch, 8, 8, 3), dtype=np.float32), np.arange(batch))
    with pytest.raises(ValueError, match=r"shape \(6, 6, 3\) but the model 'pooling' takes "
                                         r"images of shape \(8, 8, 3\)"):
        ATTACKS[attack](model, rng.random((4, 6, 6, 3), dtype=np.float32), np.arange(4))


def test_a_defence_wrapper_is_checked_against_its_backbone():
    defence = kr.RobustModel(_pooling_model(), seed=0)
    with pytest.raises(ValueError, match="model 'pooling' takes images of shape"):
        kr.attacks.pgd(defence, np.zeros((2, 6, 6, 3), np.float32), [0, 1], 8 / 255, steps=1)


def test_an_ensemble_member_that_takes_other_images_is_named():
    members = [_pooling_model(), linear_model((6, 6, 3), num_classes=10)]
    x = np.zeros((2, 6, 6, 3), np.float32)
    with pytest.raises(ValueError, match="model 'pooling' takes images of shape"):
        kr.attacks.pgd(kr.attacks.Ensemble(members), x, [0, 1], 8 / 255, steps=1)


def _logits_callable(model):
    return lambda images: model(images)  # a plain callable: no declared shapes


LABEL_CASES = {
    "out of range": ([0, 10, 1, 2], r"class indices in \[0, 10\), got values in \[0, 10\]"),
    "negative": ([0, -1, 1, 2], r"class indices in \[0, 10\), got values in \[-1, 2\]"),
    "one-hot of the wrong width": (np.eye(7)[[0, 1, 2, 3]], "dense with 7 columns but the model "
                                                           "has 10 classes"),
    "fewer labels than images": ([0, 1, 2], "`x` has 4 images but `y` has 3 labels"),
    "NaN label": (np.array([0.0, np.nan, 1.0, 2.0]), r"`y` contains inf/NaN at index \(1,\)"),
}


@pytest.mark.parametrize("wrap", [False, True], ids=["keras model", "plain callable"])
@pytest.mark.parametrize("case", sorted(LABEL_CASES))
def test_attacks_refuse_bad_labels_clearly(case, wrap):
    model = linear_model((8, 8, 1), num_classes=10)
    labels, message = LABEL_CASES[case]
    x = np.random.default_rng(0).random((4, 8, 8, 1), dtype=np.float32)
    with pytest.raises(ValueError, match=message):
        kr.attacks.pgd(_logits_callable(model) if wrap else model, x, labels, 8 / 255, steps=1)


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_every_attack_refuses_labels_out_of_range_and_empty_batches(attack):
    model = _pooling_model()
    x = np.random.default_rng(0).random((3, 8, 8, 3), dtype=np.float32)
    with pytest.raises(ValueError, match=r"class indices in \[0, 10\)"):
        ATTACKS[attack](model, x, [0, 10, 1])
    with pytest.raises(ValueError, match=r"`x` is empty \(0 images\)"):
        ATTACKS[attack](model, x[:0], np.zeros(0, np.int32))


def test_infinite_pixels_are_not_taken_for_0_255_images():
    model = linear_model()
    x = np.full((3, 8, 8, 1), 0.5, np.float32)
    x[2, 1, 4, 0] = np.inf
    for images in (x, tf.constant(x)):
        with pytest.raises(ValueError,
                           match=r"`x` contains inf/NaN at index \(2, 1, 4, 0\)") as info:
            kr.attacks.pgd(model, images, [0, 1, 2], 8 / 255)
        assert "255" not in str(info.value)
    defence = kr.RobustModel(model, seed=0)
    defence.compile(optimizer="sgd")
    with pytest.raises(ValueError, match=r"`fit images` contains inf/NaN at index \(2, 1, 4, 0\)"):
        defence.fit(x, np.array([0, 1, 2]), verbose=0)


def _later_bad_batch(what: str) -> tf.data.Dataset:
    """Three clean batches of 4, then one with a label 10 (of 10 classes) or a NaN pixel."""
    rng = np.random.default_rng(0)
    x = rng.random((16, 8, 8, 1), dtype=np.float32)
    y = rng.integers(0, 10, 16).astype(np.int32)
    if what == "label":
        y[13] = 10
    else:
        x[13, 2, 2, 0] = np.nan
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(4)


LATER_BATCH_MESSAGES = {"label": r"`fit labels` must be class indices in \[0, 10\), got values "
                                  r"in \[\d, 10\]",
                        "nan": r"`fit images` contains inf/NaN"}


@pytest.mark.parametrize("mode", ["graph", "xla", "eager"])
@pytest.mark.parametrize("what", ["label", "nan"])
def test_fit_checks_every_batch_of_a_dataset(what, mode):
    # XLA drops tf.debugging assertions: there the dataset is checked in its pipeline.
    defence = kr.RobustModel(linear_model(num_classes=10), seed=0)
    defence.compile(optimizer="sgd", jit_compile=mode == "xla", run_eagerly=mode == "eager")
    with pytest.raises(ValueError, match=LATER_BATCH_MESSAGES[what]):
        defence.fit(_later_bad_batch(what), epochs=1, verbose=0)
    with pytest.raises(ValueError, match=LATER_BATCH_MESSAGES[what].replace("fit", "evaluate")):
        defence.evaluate(_later_bad_batch(what), verbose=0)


def test_fit_checks_every_batch_under_mirrored_strategy(mirrored_strategy):
    with mirrored_strategy.scope():
        defence = kr.RobustModel(linear_model(num_classes=10), seed=0)
        defence.compile(optimizer="sgd")
    with pytest.raises(ValueError, match=LATER_BATCH_MESSAGES["label"]):
        defence.fit(_later_bad_batch("label"), epochs=1, verbose=0)


def test_fit_on_a_clean_dataset_still_trains_and_evaluates():
    defence = kr.RobustModel(linear_model(num_classes=10), seed=0)
    defence.compile(optimizer="sgd", metrics=["accuracy"])
    rng = np.random.default_rng(0)
    x, y = rng.random((8, 8, 8, 1), dtype=np.float32), rng.integers(0, 10, 8)
    data = tf.data.Dataset.from_tensor_slices((x, np.eye(10, dtype=np.float32)[y])).batch(4)
    history = defence.fit(data, epochs=1, verbose=0, validation_data=data)
    assert np.isfinite(history.history["loss"][0]) and "val_accuracy" in history.history


@pytest.mark.parametrize("labels,match", [
    (np.eye(5, dtype=np.float32)[[0, 1, 2, 3]], "5 columns but the model has 10 classes"),
    (np.array([0, 1, 2, 10]), r"class indices in \[0, 10\)"),
])
def test_accuracy_refuses_labels_of_another_width_or_range(labels, match):
    """A one-hot row of the wrong width used to be argmaxed into a plausible class."""
    model = linear_model((8, 8, 3), num_classes=10)
    x = np.random.default_rng(0).random((4, 8, 8, 3), "float32")
    with pytest.raises(ValueError, match=match):
        kr.evaluate.accuracy(model, x, labels)


@pytest.mark.parametrize("attack", ["pgd", "apgd", "cw_l2"])
@pytest.mark.parametrize("target,match", [
    (np.array([1, 2, 3, 10]), r"`target` must be class indices in \[0, 10\)"),
    (np.array([1, 2, 3]), "`target` has 3 labels"),
    (np.eye(4, dtype=np.float32)[[1, 2, 3, 0]], "`target` are dense with 4 columns"),
])
def test_targeted_attacks_refuse_target_labels_the_model_cannot_have(attack, target, match):
    model = linear_model((8, 8, 3), num_classes=10)
    x = np.random.default_rng(0).random((4, 8, 8, 3), "float32")
    y = np.array([0, 1, 2, 3])
    kwargs = {"pgd": dict(epsilon=8 / 255, step_size=2 / 255, steps=2),
              "apgd": dict(epsilon=8 / 255, steps=2), "cw_l2": dict(steps=2)}[attack]
    with pytest.raises(ValueError, match=match):
        getattr(kr.attacks, attack)(model, x, y, target=target, **kwargs)
