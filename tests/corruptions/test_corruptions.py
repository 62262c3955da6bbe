"""Tests for keras_robust.corruptions: every kind, every severity, every entry point."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import keras_robust.corruptions as kc
from keras_robust.corruptions import params
from keras_robust.corruptions._imgaug import ElasticTransformation, ia, iaa, iap

# imgaug's JpegCompression goes through imageio's v2 API; the package filters
# these two warnings at import, but pytest resets filters per test.
pytestmark = [
    pytest.mark.filterwarnings("ignore:Starting with ImageIO v3:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:`pilmode` is deprecated:DeprecationWarning"),
]

# Corruptions whose output does not depend on the seed.
DETERMINISTIC = {
    "defocus_blur",
    "zoom_blur",
    "brightness",
    "contrast",
    "pixelate",
    "jpeg_compression",
    "gaussian_blur",
    "saturate",
}


def scene(n: int, size: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    """Natural-looking test images: smooth colour gradients plus hard-edged shapes."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / (size - 1)
    out = []
    for i in range(n):
        a, b = rng.uniform(0.2, 0.8, 2)
        img = np.stack(
            [0.25 + 0.5 * xx * a + 0.1 * np.sin(6 * yy + i), 0.3 + 0.4 * yy * b, 0.55 - 0.3 * xx * yy], -1
        )
        cy, cx = rng.uniform(0.3, 0.7, 2)
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < 0.04] = [0.85, 0.75, 0.3]
        y0, x0 = rng.uniform(0.05, 0.45, 2)
        img[(yy > y0) & (yy < y0 + 0.3) & (xx > x0) & (xx < x0 + 0.2)] = [0.15, 0.2, 0.45]
        out.append(img)
    x = np.clip(np.stack(out), 0, 1)
    if channels == 1:
        x = (x @ np.float32([0.299, 0.587, 0.114]))[..., None]
    return np.rint(x * 255).astype(np.uint8)


def mad(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


SMALL = scene(4, 32)
LARGE = scene(2, 96, seed=1)


# ------------------------------------------------------------------ names


def test_name_sets():
    imagenet_c = {
        "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur",
        "motion_blur", "zoom_blur", "snow", "frost", "fog", "brightness", "contrast",
        "elastic_transform", "pixelate", "jpeg_compression",
    }
    extras = {"occlusion", "color_distortion", "rotation", "translation"}
    assert imagenet_c | extras | {"rain", "gaussian_blur"} <= set(kc.NAMES)
    assert len(set(kc.NAMES)) == len(kc.NAMES)
    assert len(kc.MTLAT_19) == 19 and set(kc.MTLAT_19) == imagenet_c | extras
    assert kc.MTLAT_19[:8] == (
        "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur",
        "glass_blur", "motion_blur", "zoom_blur", "snow",
    )
    assert kc.MTLAT_19[-4:] == ("occlusion", "color_distortion", "translation", "rotation")
    assert len(kc.DATACENTRIC_14) == 14 == len(set(kc.DATACENTRIC_14))
    assert {"rain", "snow", "frost", "gaussian_blur", "gaussian_noise", "elastic_transform"} <= set(
        kc.DATACENTRIC_14
    )
    assert set(kc.DATACENTRIC_14) <= set(kc.NAMES)


def test_severity_tables_are_complete():
    for name in kc.NAMES:
        for table in ("cifar", "imagenet"):
            assert len(params.TABLES[name][table]) == 5, (name, table)
    assert params.geometry(32, 32).table == "cifar" and params.geometry(64, 80).table == "cifar"
    assert params.geometry(96, 96).table == "imagenet"
    assert params.geometry(224, 224).scale == pytest.approx(1.0)
    # M-TLAT ranges (section 4.1), spread linearly
    assert params.TABLES["rotation"]["cifar"] == pytest.approx((8, 16, 24, 32, 40))
    assert params.TABLES["occlusion"]["imagenet"][0] * 224 == pytest.approx(60)
    assert params.TABLES["occlusion"]["imagenet"][4] * 224 == pytest.approx(127)
    assert params.TABLES["translation"]["imagenet"][4] * 224 == pytest.approx(62)
    assert params.TABLES["color_distortion"]["cifar"] == pytest.approx((0.08, 0.135, 0.19, 0.245, 0.30))


# ------------------------------------------------------------------ every kind


@pytest.mark.parametrize("name", kc.NAMES)
def test_every_kind_every_severity(name):
    for x in (SMALL, LARGE):
        distortion = []
        differs_by_seed = False
        for severity in range(1, 6):
            out = kc.corrupt(x, name, severity, seed=0)
            assert out.shape == x.shape and out.dtype == np.uint8
            again = kc.corrupt(x, name, severity, seed=0)
            np.testing.assert_array_equal(out, again, err_msg=f"{name} s{severity} not deterministic")
            other = kc.corrupt(x, name, severity, seed=1)
            differs_by_seed |= not np.array_equal(out, other)
            distortion.append(np.mean([mad(kc.corrupt(x, name, severity, seed=s), x) for s in (0, 1, 2)]))
        assert distortion[0] > 0, f"{name} severity 1 leaves {x.shape} images unchanged"
        if name in DETERMINISTIC:
            assert not differs_by_seed
        else:
            assert differs_by_seed, f"{name}: seeds 0 and 1 give identical output"
        if name != "elastic_transform":
            assert distortion[4] > distortion[0], f"{name} {x.shape}: {distortion}"
    np.testing.assert_array_equal(SMALL, scene(4, 32), err_msg=f"{name} modified its input")
    np.testing.assert_array_equal(LARGE, scene(2, 96, seed=1), err_msg=f"{name} modified its input")


def _roughness(images: np.ndarray) -> float:
    """Mean |discrete Laplacian|: ~0 on a linear ramp and after any affine map of it."""
    x = images.astype(np.float32)
    lap = 4 * x[:, 1:-1, 1:-1] - x[:, :-2, 1:-1] - x[:, 2:, 1:-1] - x[:, 1:-1, :-2] - x[:, 1:-1, 2:]
    return float(np.abs(lap[:, 4:-4, 4:-4]).mean())


@pytest.mark.parametrize("size", [32, 96])
def test_elastic_severity_means_local_warping(size):
    # In the published tables severity 1 is a strong random affine and
    # severities 2..5 add ever rougher elastic warps with a weaker affine, so
    # the mean pixel change falls with severity. What grows is the local,
    # non-affine distortion: measure it as the roughness of a warped ramp.
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    ramp = np.stack([xx, yy, xx + yy], -1) * (200.0 / (2 * size)) + 20
    ramp = np.repeat(np.rint(ramp)[None].astype(np.uint8), 4, axis=0)
    rough = [
        np.mean([_roughness(kc.corrupt(ramp, "elastic_transform", s, seed=k)) for k in range(3)])
        for s in (1, 5)
    ]
    assert rough[1] > 2 * rough[0] + 0.1, rough


def test_single_image_and_input_untouched():
    image = SMALL[0].copy()
    out = kc.corrupt(image, "glass_blur", 3, seed=0)
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, kc.corrupt(image[None], "glass_blur", 3, seed=0)[0])
    np.testing.assert_array_equal(image, SMALL[0])


def test_seed_none_draws_fresh_randomness():
    a = kc.corrupt(SMALL, "gaussian_noise", 3)
    b = kc.corrupt(SMALL, "gaussian_noise", 3)
    assert not np.array_equal(a, b)


@pytest.mark.parametrize("name", kc.NAMES)
def test_grey_images(name):
    grey = scene(3, 32, channels=1)
    out = kc.corrupt(grey, name, 5, seed=0)
    assert out.shape == grey.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out, kc.corrupt(grey, name, 5, seed=0))
    assert mad(out, grey) > 0
    single = kc.corrupt(grey[0], name, 2, seed=0)
    assert single.shape == (32, 32, 1)


def test_non_square_and_mixed_size_lists():
    x = scene(2, 48)[:, :, :40]  # 48x40
    for name in ("frost", "snow", "fog", "occlusion", "translation", "zoom_blur", "pixelate"):
        assert kc.corrupt(x, name, 4, seed=0).shape == x.shape
    aug = kc.augmenter("shot_noise", 3, seed=0)
    out = aug(images=[SMALL[0], LARGE[0]])
    assert [o.shape for o in out] == [(32, 32, 3), (96, 96, 3)]


# ------------------------------------------------------------------ errors


def test_bad_inputs_have_clear_errors():
    x = SMALL
    with pytest.raises(TypeError, match=r"uint8.*float32.*np\.round\(np\.clip\(x, 0, 1\) \* 255\)"):
        kc.corrupt(x.astype(np.float32) / 255, "fog", 1)
    with pytest.raises(TypeError, match="uint8"):
        kc.corrupt(x.astype(np.int32), "fog", 1)
    with pytest.raises(ValueError, match=r"\(N, H, W, C\).*rank 2"):
        kc.corrupt(x[0, :, :, 0], "fog", 1)
    with pytest.raises(ValueError, match=r"1 \(grey\) or 3 \(RGB\) channels.*got 4"):
        kc.corrupt(np.zeros((2, 32, 32, 4), np.uint8), "fog", 1)
    with pytest.raises(ValueError, match="at least 8x8"):
        kc.corrupt(np.zeros((2, 4, 4, 3), np.uint8), "fog", 1)
    with pytest.raises(ValueError, match=r"Unknown corruption 'smog'.*gaussian_noise.*rain"):
        kc.corrupt(x, "smog", 1)
    with pytest.raises(TypeError, match="str"):
        kc.corrupt(x, 3, 1)
    for bad in (0, 6, -1):
        with pytest.raises(ValueError, match="1 to 5"):
            kc.corrupt(x, "fog", bad)
    with pytest.raises(TypeError, match="int from 1 to 5"):
        kc.corrupt(x, "fog", 2.0)
    with pytest.raises(ValueError, match="seed"):
        kc.corrupt(x, "fog", 1, seed=-3)
    with pytest.raises(ValueError, match="Unknown corruption"):
        kc.augmenter("smog", 1)
    with pytest.raises(ValueError, match="empty"):
        kc.corrupt_random(x, names=[])
    with pytest.raises(TypeError, match="uint8"):
        kc.augmenter("fog", 1)(images=np.zeros((1, 32, 32, 3), np.float32))


# ------------------------------------------------------------------ corrupt_random


def test_corrupt_random_records_reproduce_the_images():
    x = scene(12, 32, seed=3)
    out, names, severities = kc.corrupt_random(x, seed=11)
    assert out.shape == x.shape and out.dtype == np.uint8
    assert len(names) == len(severities) == len(x)
    assert set(names) <= set(kc.DATACENTRIC_14) and set(severities.tolist()) <= {1, 2, 3, 4, 5}
    assert len(set(names)) > 3
    for i in range(len(x)):
        again = kc.corrupt(x[i], str(names[i]), int(severities[i]), seed=kc.derive_seed(11, i))
        np.testing.assert_array_equal(out[i], again)
    out2, names2, sev2 = kc.corrupt_random(x, seed=11)
    np.testing.assert_array_equal(out, out2)
    assert names.tolist() == names2.tolist() and severities.tolist() == sev2.tolist()
    _, names3, _ = kc.corrupt_random(x, seed=12)
    assert names3.tolist() != names.tolist()


def test_corrupt_random_custom_choices_and_single_image():
    out, names, sev = kc.corrupt_random(SMALL, names=["fog", "rain"], severities=[5], seed=0)
    assert set(names) <= {"fog", "rain"} and sev.tolist() == [5] * 4
    one, n1, s1 = kc.corrupt_random(SMALL[0], seed=0)
    assert one.shape == (32, 32, 3) and len(n1) == len(s1) == 1


# ------------------------------------------------------------------ imgaug


def test_augmenter_composes_with_imgaug():
    pipeline = iaa.Sequential([kc.augmenter("fog", 2), iaa.Fliplr(0.5), kc.augmenter("snow", 1)])
    pipeline.seed_(5)
    a = pipeline(images=SMALL)
    pipeline.seed_(5)
    np.testing.assert_array_equal(a, pipeline(images=SMALL))
    det = kc.augmenter("rotation", 3, seed=2)
    assert not np.array_equal(det(images=SMALL), det(images=SMALL))  # advances, like imgaug
    np.testing.assert_array_equal(
        kc.augmenter("rotation", 3, seed=2)(images=SMALL), kc.corrupt(SMALL, "rotation", 3, seed=2)
    )
    with pytest.raises(ValueError, match="images only"):
        kc.augmenter("rotation", 3, seed=0)(images=SMALL, keypoints=[[(1, 1)]] * 4)


def test_numpy_is_not_modified_by_the_import():
    code = (
        "import numpy as np\n"
        "import keras_robust.corruptions._imgaug as c\n"
        "import imgaug.parameters as p\n"
        "assert not hasattr(np, 'sctypes') and not hasattr(np, 'complex')\n"
        "assert p.np is not np and p.np.complex is complex and p.np.float32 is np.float32\n"
        "print('ok')\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and res.stdout.strip().endswith("ok"), res.stderr[-2000:]
    assert not hasattr(np, "sctypes") and not hasattr(np, "complex")


def test_imgaug_weather_and_elastic_run_on_this_stack():
    x = SMALL
    for aug in (
        iaa.Fog(seed=0),
        iaa.Clouds(seed=0),
        iaa.BlendAlphaFrequencyNoise(foreground=iaa.Add(40), seed=0),
        iaa.Rain(seed=0),
        iaa.Snowflakes(seed=0),
        ElasticTransformation(alpha=4.0, sigma=1.0, seed=0),
    ):
        out = aug(images=x)
        assert out.shape == x.shape and out.dtype == np.uint8 and mad(out, x) > 0, aug.name
    assert isinstance(ia.__version__, str) and isinstance(iap.Normal(0, 1), iap.StochasticParameter)


# ------------------------------------------------------------------ tf.data


def test_corrupt_tf_float_and_uint8():
    import tensorflow as tf

    xf = tf.constant(SMALL.astype(np.float32) / 255)
    out = kc.corrupt_tf(xf, "shot_noise", 3, seed=4)
    assert out.dtype == tf.float32 and out.shape == xf.shape
    expected = kc.corrupt(SMALL, "shot_noise", 3, seed=4).astype(np.float32) / 255
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-6)
    out8 = kc.corrupt_tf(tf.constant(SMALL), "shot_noise", 3, seed=4)
    assert out8.dtype == tf.uint8
    np.testing.assert_array_equal(out8.numpy(), kc.corrupt(SMALL, "shot_noise", 3, seed=4))

    @tf.function(input_signature=[tf.TensorSpec([None, 32, 32, 3], tf.float32)])
    def graph(x):
        return kc.corrupt_tf(x, "snow", 2)

    assert graph.get_concrete_function().structured_outputs.shape.as_list() == [None, 32, 32, 3]
    assert graph(xf).shape == (4, 32, 32, 3)
    with pytest.raises(TypeError, match="uint8 images or float"):
        kc.corrupt_tf(tf.zeros([1, 32, 32, 3], tf.int32), "fog", 1)


def test_corrupt_dataset_is_deterministic_and_keeps_structure():
    import tensorflow as tf

    x = scene(10, 32, seed=5).astype(np.float32) / 255
    y = np.arange(10)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(4)

    def collect(d):
        return [(a.numpy(), b.numpy()) for a, b in d]

    par = collect(kc.corrupt_dataset(ds, "frost", 3, seed=9))
    seq = collect(kc.corrupt_dataset(ds, "frost", 3, seed=9, num_parallel_calls=None))
    assert [a.shape for a, _ in par] == [(4, 32, 32, 3), (4, 32, 32, 3), (2, 32, 32, 3)]
    for (a, la), (b, lb), lab in zip(par, seq, np.split(y, [4, 8])):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(la, lab)
        assert a.dtype == np.float32 and 0 <= a.min() and a.max() <= 1
    other = collect(kc.corrupt_dataset(ds, "frost", 3, seed=10))
    assert not np.array_equal(other[0][0], par[0][0])
    # batches get different seeds: the same images in two batches differ
    same = tf.data.Dataset.from_tensor_slices(np.repeat(x[:1], 4, axis=0)).batch(2)
    b0, b1 = [b.numpy() for b in kc.corrupt_dataset(same, "gaussian_noise", 2, seed=0)]
    assert not np.array_equal(b0, b1)
    spec = kc.corrupt_dataset(ds, "fog", 1, seed=0).element_spec
    assert spec[0].shape.as_list() == [None, 32, 32, 3] and spec[0].dtype == tf.float32
    dict_ds = tf.data.Dataset.from_tensor_slices({"image": SMALL, "label": np.arange(4)}).batch(2)
    first = next(iter(kc.corrupt_dataset(dict_ds, "contrast", 5, seed=0)))
    np.testing.assert_array_equal(first["label"].numpy(), [0, 1])
    np.testing.assert_array_equal(first["image"].numpy(), kc.corrupt(SMALL[:2], "contrast", 5))


# ------------------------------------------------------------------ Keras layer


def test_random_corruption_layer_training_and_inference():
    import tensorflow as tf

    x = tf.constant(scene(6, 32, seed=2).astype(np.float32) / 255)
    layer = kc.RandomCorruption(names=["gaussian_noise", "fog", "rotation"], severity=(2, 4), seed=3)
    np.testing.assert_array_equal(layer(x).numpy(), x.numpy())
    np.testing.assert_array_equal(layer(x, training=False).numpy(), x.numpy())
    trained = layer(x, training=True).numpy()
    assert trained.shape == x.shape and trained.dtype == np.float32
    assert all(np.abs(trained[i] - x.numpy()[i]).mean() > 1e-3 for i in range(6))
    assert layer.compute_output_shape((None, 32, 32, 3)) == (None, 32, 32, 3)
    assert not layer.supports_jit
    # seeded layers repeat; probability 0 is the identity
    a = kc.RandomCorruption(seed=1)(x, training=True).numpy()
    b = kc.RandomCorruption(seed=1)(x, training=True).numpy()
    np.testing.assert_array_equal(a, b)
    off = kc.RandomCorruption(probability=0.0, seed=0)(x, training=True).numpy()
    np.testing.assert_array_equal(off, x.numpy())
    # inside tf.data
    ds = tf.data.Dataset.from_tensor_slices(x).batch(3).map(lambda t: layer(t, training=True))
    assert [t.shape[0] for t in ds] == [3, 3]
    with pytest.raises(ValueError, match="severity"):
        kc.RandomCorruption(severity=(4, 2))
    with pytest.raises(ValueError, match="Unknown corruption"):
        kc.RandomCorruption(names=["smog"])


def test_random_corruption_layer_serialization(tmp_path):
    import keras

    inputs = keras.Input((32, 32, 3))
    h = kc.RandomCorruption(names=["snow", "contrast"], severity=(1, 3), probability=0.5, seed=7)(inputs)
    outputs = keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(h))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(SMALL.astype(np.float32) / 255, np.arange(4) % 3, epochs=1, batch_size=2, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    layer = loaded.layers[1]
    assert isinstance(layer, kc.RandomCorruption)
    assert layer.get_config()["names"] == ["snow", "contrast"]
    assert layer.get_config()["severity"] == [1, 3] and layer.probability == 0.5 and layer.seed == 7
    x = SMALL.astype(np.float32) / 255
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    clone = kc.RandomCorruption.from_config(kc.RandomCorruption(names="all").get_config())
    assert clone.corruption_names == kc.NAMES


# ------------------------------------------------------------------ evaluation


def test_corruption_accuracy(capsys, monkeypatch):
    # capsys' stderr is not a terminal: force the progress lines (tests/test_progress.py
    # checks that they stay off by default there).
    monkeypatch.setenv("KERAS_ROBUST_PROGRESS", "1")
    labels = np.array([0, 0, 1, 2])

    def constant_class_zero(x):
        assert x.dtype == np.float32 and x.max() <= 1.0
        return np.tile(np.array([[5.0, 0.0, 0.0]], np.float32), (len(x), 1))

    res = kc.corruption_accuracy(
        constant_class_zero, SMALL, labels, names=["fog", "rain"], severities=[1, 5], batch_size=3
    )
    assert list(res) == [("fog", 1), ("fog", 5), ("rain", 1), ("rain", 5)]
    assert all(v == pytest.approx(0.5) for v in res.values())
    err = capsys.readouterr().err
    assert "fog" in err and "rain" in err and "s5=0.500" in err
    one_hot = np.eye(3)[labels]
    again = kc.corruption_accuracy(constant_class_zero, SMALL, one_hot, names=["fog"], progress=False)
    assert len(again) == 5
    with pytest.raises(ValueError, match="labels"):
        kc.corruption_accuracy(constant_class_zero, SMALL, labels[:2], names=["fog"])


def test_corruption_accuracy_is_seeded_per_name():
    seen = {}

    def record(x):
        seen.setdefault(len(seen), x.copy())
        return np.zeros((len(x), 2), np.float32)

    kc.corruption_accuracy(record, SMALL, np.zeros(4), names=["snow", "fog"], severities=[2], progress=False)
    first = seen[0]
    seen.clear()
    kc.corruption_accuracy(record, SMALL, np.zeros(4), names=["fog", "snow"], severities=[2], progress=False)
    np.testing.assert_array_equal(seen[1], first)  # snow is the same whatever the order


def test_docstring_examples():
    import doctest
    import importlib

    modules = [
        "keras_robust.corruptions", "keras_robust.corruptions.api", "keras_robust.corruptions.augmenters",
        "keras_robust.corruptions.catalogue", "keras_robust.corruptions.names",
        "keras_robust.corruptions.params", "keras_robust.corruptions.ops",
        "keras_robust.corruptions.tf_data", "keras_robust.corruptions.layers",
        "keras_robust.corruptions.accuracy", "keras_robust.corruptions._imgaug",
    ]
    for module in modules:
        result = doctest.testmod(importlib.import_module(module))
        assert result.failed == 0, module


# ------------------------------------------------------------------ slow


@pytest.mark.slow
@pytest.mark.parametrize("name", kc.NAMES)
def test_imagenet_size_every_severity(name):
    x = scene(2, 224, seed=4)
    previous = None
    for severity in range(1, 6):
        out = kc.corrupt(x, name, severity, seed=severity)
        assert out.shape == x.shape and out.dtype == np.uint8 and mad(out, x) > 0
        if previous is not None and name not in ("elastic_transform",):
            assert not np.array_equal(out, previous)
        previous = out


# ------------------------------------------------------------------ no silent wrong answer

_UNIT = scene(4, 32, seed=6).astype(np.float32) / 255
_NAN = _UNIT.copy()
_NAN[1, 3, 3, 0] = np.nan


def test_corrupt_tf_refuses_0_255_floats_and_nan():
    import tensorflow as tf

    # before: 0..255 floats were clipped to a white image, NaN became a pixel
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\].*divide by 255"):
        kc.corrupt_tf(tf.constant(_UNIT * 255), "contrast", 1, seed=0)
    with pytest.raises(ValueError, match="contains inf/NaN"):
        kc.corrupt_tf(tf.constant(_NAN), "contrast", 1, seed=0)
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        kc.corrupt_tf(tf.constant(_UNIT[0] - 0.5), "contrast", 1, seed=0)  # one image, rank 3
    graph = tf.function(lambda x: kc.corrupt_tf(x, "contrast", 1, seed=0))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"must lie in \[0, 1\]"):
        graph(tf.constant(_UNIT * 255))
    with pytest.raises(tf.errors.InvalidArgumentError, match="contains inf/NaN"):
        graph(tf.constant(_NAN))
    # the bounds themselves and empty batches are fine, eagerly and in a graph
    edges = np.clip(np.round(_UNIT), 0, 1).astype(np.float32)
    assert graph(tf.constant(edges)).shape == (4, 32, 32, 3)
    assert kc.corrupt_tf(tf.constant(edges), "contrast", 1, seed=0).shape == (4, 32, 32, 3)
    assert graph(tf.zeros([0, 32, 32, 3])).shape == (0, 32, 32, 3)


def test_corrupt_dataset_refuses_0_255_floats_and_nan():
    import tensorflow as tf

    for bad, message in ((_UNIT * 255, r"must lie in \[0, 1\]"), (_NAN, "contains inf/NaN")):
        ds = kc.corrupt_dataset(tf.data.Dataset.from_tensor_slices(bad).batch(2), "fog", 1, seed=0)
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            next(iter(ds))


def test_random_corruption_refuses_0_255_floats_and_nan():
    import tensorflow as tf

    layer = kc.RandomCorruption(names=["contrast"], severity=1, seed=0)
    for bad, message in ((_UNIT * 255, r"must lie in \[0, 1\]"), (_NAN, "contains inf/NaN")):
        with pytest.raises(ValueError, match=message):
            layer(tf.constant(bad), training=True)
        ds = tf.data.Dataset.from_tensor_slices(bad).batch(2).map(lambda t: layer(t, training=True))
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            next(iter(ds))
    # inference stays the identity, unchecked (nothing is quantised there)
    np.testing.assert_array_equal(layer(tf.constant(_UNIT * 255)).numpy(), _UNIT * 255)


def test_corruption_accuracy_refuses_labels_and_predictions_it_would_miscount():
    x = SMALL
    called = []

    def ten_classes(batch):
        called.append(len(batch))
        return np.tile(np.eye(10, dtype=np.float32)[:1], (len(batch), 1))

    def run(labels, predict=ten_classes):
        return kc.corruption_accuracy(predict, x, labels, names=["fog"], severities=[1], progress=False)

    # before: each of these returned an accuracy (0.5 or 1.0)
    with pytest.raises(ValueError, match=r"class indices in \[0, 10\), got values in \[0, 10\]"):
        run(np.array([0, 0, 10, 10]))
    called.clear()
    with pytest.raises(ValueError, match=r"class indices >= 0"):
        run(np.array([0, 0, -1, 3]))
    with pytest.raises(ValueError, match="whole class indices"):
        run(np.array([0, 0, 0.5, 1.0]))
    with pytest.raises(ValueError, match="NaN"):
        run(np.array([0, 0, np.nan, 1.0]))
    with pytest.raises(ValueError, match="rows must sum to 1"):
        run(np.full((4, 10), 0.5))
    assert not called  # refused before any corruption or prediction ran
    with pytest.raises(ValueError, match="dense with 3 columns but the model has 10 classes"):
        run(np.eye(3)[[0, 0, 1, 2]])
    with pytest.raises(ValueError, match="NaN or infinite"):
        run(np.zeros(4, int), lambda b: np.full((len(b), 10), np.nan, np.float32))
    with pytest.raises(ValueError, match=r"shape \(batch, classes\)"):
        run(np.zeros(4, int), lambda b: np.zeros(len(b), np.float32))
    # valid labels of every accepted form still score
    assert run(np.array([0, 0, 9, 9]))[("fog", 1)] == 0.5
    assert run(np.array([[0], [0], [9], [9]]))[("fog", 1)] == 0.5
    assert run(np.eye(10)[[0, 0, 9, 9]])[("fog", 1)] == 0.5
    assert run(np.array([0.0, 0.0, 9.0, 9.0]))[("fog", 1)] == 0.5
