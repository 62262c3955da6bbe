"""keras_robust.data: every source gives float32 [0, 1] pipelines; offline fails fast."""
from __future__ import annotations

import os
import time

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

import keras_robust as kr
from keras_robust import data
from tests.helpers import jpeg_npz


def _check_batch(images, labels, batch, shape):
    assert images.dtype == tf.float32 and labels.dtype == tf.int32
    assert tuple(images.shape) == (batch, *shape)
    assert float(tf.reduce_min(images)) >= 0.0 and float(tf.reduce_max(images)) <= 1.0


def test_from_arrays_scales_uint8_and_keeps_floats():
    x = np.random.default_rng(0).integers(0, 256, (10, 8, 8, 3), dtype=np.uint8)
    images, labels = next(iter(data.from_arrays(x, np.arange(10), batch_size=4)))
    _check_batch(images, labels, 4, (8, 8, 3))
    np.testing.assert_allclose(images.numpy(), x[:4] / 255.0, atol=1e-6)
    images, _ = next(iter(data.from_arrays(x / 255.0, np.arange(10), batch_size=4)))
    np.testing.assert_allclose(images.numpy(), x[:4] / 255.0, atol=1e-6)


def test_from_arrays_refuses_bad_input():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        data.from_arrays(np.full((4, 8, 8, 3), 200.0), np.zeros(4))
    with pytest.raises(ValueError, match="labels"):
        data.from_arrays(np.zeros((4, 8, 8, 3), np.uint8), np.zeros(3))
    with pytest.raises(ValueError, match="empty"):
        data.from_arrays(np.zeros((0, 8, 8, 3), np.uint8), np.zeros(0))


def test_augmentation_keeps_shape_range_and_changes_images():
    x = np.random.default_rng(0).integers(0, 256, (64, 32, 32, 3), dtype=np.uint8)
    images, _ = next(iter(data.from_arrays(x, np.zeros(64), batch_size=64, augment=True, seed=1)))
    _check_batch(images, tf.zeros([64], tf.int32), 64, (32, 32, 3))
    changed = np.mean(np.abs(images.numpy() - x / 255.0).reshape(64, -1).max(1) > 0)
    assert changed > 0.5


def test_local_jpeg_copy_loads_both_splits(tmp_path):
    path = jpeg_npz(str(tmp_path / "copy.npz"))
    train = data.load(path, "train", batch_size=8, augment=True, seed=0)
    images, labels = next(iter(train))
    _check_batch(images, labels, 8, (32, 32, 3))
    x, y = data.load_arrays(path, "test")
    assert x.dtype == np.uint8 and x.shape == (10, 32, 32, 3) and y.tolist() == list(range(10))
    assert data.info(path).num_classes == 10
    x5, _ = data.load_arrays(path, "test", limit=5)
    assert len(x5) == 5
    with pytest.raises(ValueError, match="train"):
        data.load(path, "validation")


def test_image_folder_loads_split_class_layout(tmp_path):
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for name in ("cat", "dog"):
            os.makedirs(tmp_path / split / name)
            for i in range(3):
                image = rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)
                tf.io.write_file(str(tmp_path / split / name / f"{i}.png"), tf.io.encode_png(image))
    dataset = data.load(str(tmp_path), "train", batch_size=6, shuffle=False)
    images, labels = next(iter(dataset))
    _check_batch(images, labels, 6, (12, 12, 3))
    assert sorted(labels.numpy().tolist()) == [0, 0, 0, 1, 1, 1]
    info = data.info(str(tmp_path))
    assert info.class_names == ("cat", "dog") and info.image_shape == (12, 12, 3)


@pytest.mark.parametrize("name,shape", [("cifar10", (32, 32, 3)), ("mnist", (28, 28, 1)),
                                        ("svhn", (32, 32, 3)), ("fashion_mnist", (28, 28, 1))])
def test_tfds_names_through_mock_data(name, shape):
    with tfds.testing.mock_data(num_examples=12):
        dataset = data.load(name, "train", batch_size=4, augment=True)
        images, labels = next(iter(dataset))
    _check_batch(images, labels, 4, shape)


def test_tfds_offline_fails_fast_and_names_the_offline_option(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "_reachable", lambda host, timeout=5.0: False)
    start = time.time()
    with pytest.raises(data.DatasetUnavailableError) as info:
        data.load("cifar10", "train", data_dir=str(tmp_path))
    assert time.time() - start < 30
    message = str(info.value)
    assert "cifar10_jpeg.npz" in message and "--data" in message


def test_unknown_sources_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError):
        data.load(str(tmp_path / "missing.npz"))
    with pytest.raises(ValueError, match="TFDS"):
        data.load("not_a_dataset_anywhere")


def test_auto_source_prefers_a_local_copy(tmp_path, monkeypatch):
    path = jpeg_npz(str(tmp_path / "copy.npz"))
    monkeypatch.setenv("KERAS_ROBUST_CIFAR10", path)
    assert kr.experiment.resolve_source("auto") == path
    monkeypatch.setenv("KERAS_ROBUST_CIFAR10", str(tmp_path / "none.npz"))
    monkeypatch.chdir(tmp_path)
    assert kr.experiment.resolve_source("auto") == "cifar10"


def test_load_arrays_start_selects_disjoint_ranges(tmp_path):
    """`start` with `limit`: examples start..start+limit-1, in order, from an .npz copy and
    from an image folder alike; a start past the split or below 0 is refused."""
    archive = jpeg_npz(str(tmp_path / "cifar.npz"), n_train=8, n_test=16)
    x_all, y_all = data.load_arrays(archive, "test")
    x, y = data.load_arrays(archive, "test", start=10, limit=4)
    np.testing.assert_array_equal(x, x_all[10:14])
    np.testing.assert_array_equal(y, y_all[10:14])
    x, _ = data.load_arrays(archive, "test", start=12, limit=100)  # fewer left: the rest
    assert len(x) == 4 and len(data.load_arrays(archive, "test", start=3)[0]) == 13
    with pytest.raises(ValueError, match="skips every 'test' image"):
        data.load_arrays(archive, "test", start=16, limit=4)
    with pytest.raises(ValueError, match="`start` must be"):
        data.load_arrays(archive, "test", start=-1, limit=4)
    for i in range(5):
        os.makedirs(tmp_path / "folder" / "test" / f"c{i}")
        tf.io.write_file(str(tmp_path / "folder" / "test" / f"c{i}" / "0.png"),
                         tf.io.encode_png(np.full((4, 4, 3), 40 * i, np.uint8)))
    x, y = data.load_arrays(str(tmp_path / "folder"), "test", start=1, limit=3)
    assert y.tolist() == [1, 2, 3] and x[:, 0, 0, 0].tolist() == [40, 80, 120]


# ---------------------------------------------------------------------------- damaged archives


def test_a_truncated_npz_names_the_file_and_the_remedy(tmp_path):
    path = jpeg_npz(str(tmp_path / "copy.npz"))
    with open(path, "rb") as f:
        content = f.read()
    with open(path, "wb") as f:
        f.write(content[:len(content) // 2])
    with pytest.raises(data.CorruptFileError, match=r"copy\.npz.*truncated.*Re-download") as info:
        data.load_arrays(path, "test")
    assert info.value.path == path
    with pytest.raises(data.CorruptFileError, match=r"copy\.npz"):
        data.load(path, "train")


def test_flipped_bytes_in_an_npz_name_the_file(tmp_path):
    path = jpeg_npz(str(tmp_path / "flipped.npz"), n_test=4)
    with open(path, "rb") as f:
        content = bytearray(f.read())
    start = content.index(b"\xff\xd8\xff", 2000)  # a JPEG inside the stored train_jpeg member
    content[start + 200:start + 260] = bytes(b ^ 0xFF for b in content[start + 200:start + 260])
    with open(path, "wb") as f:
        f.write(bytes(content))
    with pytest.raises(data.CorruptFileError, match=r"flipped\.npz.*Re-download"):
        data.load_arrays(path, "train")


def test_an_npz_with_a_broken_jpeg_or_offsets_names_the_file(tmp_path):
    path = jpeg_npz(str(tmp_path / "good.npz"), n_test=4)
    with np.load(path) as archive:
        arrays = dict(archive)
    broken = dict(arrays, test_jpeg=arrays["test_jpeg"].copy())
    broken["test_jpeg"][arrays["test_offsets"][1]:arrays["test_offsets"][2]] = 7  # image 1
    np.savez(str(tmp_path / "jpeg.npz"), **broken)  # a valid zip: the JPEG itself is broken
    with pytest.raises(data.CorruptFileError, match=r"jpeg\.npz.*'test' JPEG does not decode"):
        data.load_arrays(str(tmp_path / "jpeg.npz"), "test")
    short = dict(arrays, test_offsets=arrays["test_offsets"][:-1])  # one offset missing
    np.savez(str(tmp_path / "offsets.npz"), **short)
    with pytest.raises(data.CorruptFileError, match=r"offsets\.npz.*test_offsets"):
        data.load_arrays(str(tmp_path / "offsets.npz"), "test")


# ------------------------------------------------------------------ mixed real + extra batches

def _tagged(count: int, flag: float, num_classes: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Float images [count, 4, 4, 2]: channel 0 is `flag` (0 real, 1 extra), channel 1 the id / 100."""
    images = np.zeros((count, 4, 4, 2), np.float32)
    images[..., 0] = flag
    images[..., 1] = (np.arange(count, dtype=np.float32) / 100.0)[:, None, None]
    return images, np.arange(count) % num_classes


def _rows(images) -> tuple[np.ndarray, np.ndarray]:
    """(flag, id) of each image of a batch."""
    images = np.asarray(images)
    return images[:, 0, 0, 0], np.round(images[:, 0, 0, 1] * 100).astype(int)


@pytest.mark.parametrize("batch_size,fraction", [(10, 0.7), (7, 0.5), (16, 0.3), (5, 0.0)])
def test_mixed_puts_exactly_round_b_times_fraction_extra_rows_in_every_batch(batch_size, fraction):
    n_extra = round(batch_size * fraction)
    assert data.mixed_batch_split(batch_size, fraction) == (batch_size - n_extra, n_extra)
    dataset, steps = data.mixed(_tagged(11, 0.0), _tagged(23, 1.0), batch_size,
                                extra_fraction=fraction, seed=0)
    assert steps == -(-11 // (batch_size - n_extra))
    for images, labels in dataset.take(3 * steps):
        assert images.shape == (batch_size, 4, 4, 2) and labels.dtype == tf.int32
        flags, _ = _rows(images)
        assert flags.tolist() == [0.0] * (batch_size - n_extra) + [1.0] * n_extra


def test_mixed_smooths_only_the_extra_labels_to_the_closed_form():
    s, k = 0.1, 5
    dataset, _ = data.mixed(_tagged(9, 0.0, k), _tagged(20, 1.0, k), 10, extra_fraction=0.7,
                            label_smoothing_extra=s, seed=1)
    for images, labels in dataset.take(4):
        flags, ids = _rows(images)
        one_hot = np.eye(k, dtype=np.float32)[ids % k]
        expected = np.where(flags[:, None] == 1.0, (1 - s) * one_hot + s / k, one_hot)
        assert labels.dtype == tf.float32 and labels.shape == (10, k)
        np.testing.assert_allclose(labels.numpy(), expected, atol=1e-7)
        np.testing.assert_array_equal(labels.numpy()[:3], one_hot[:3])  # real rows stay one-hot


@pytest.mark.parametrize("augment", [False, True])
def test_mixed_is_reproducible_with_a_seed(augment):
    def first_batches(seed):
        dataset, _ = data.mixed(_tagged(12, 0.0), _tagged(30, 1.0), 8, seed=seed, augment=augment)
        return [images.numpy() for images, _ in dataset.take(6)]

    same, again, other = first_batches(3), first_batches(3), first_batches(4)
    assert all(np.array_equal(a, b) for a, b in zip(same, again))
    assert not all(np.array_equal(a, b) for a, b in zip(same, other))


def test_mixed_visits_each_source_fully_in_each_pass():
    # 10 real at 3 a batch: one pass is 4 batches; 14 extra at 7 a batch: one pass is 2 batches.
    dataset, steps = data.mixed(_tagged(10, 0.0), _tagged(14, 1.0), 10, extra_fraction=0.7,
                                seed=2, epochs=2)
    assert steps == 4
    batches = [_rows(images)[1] for images, _ in dataset]
    assert len(batches) == 2 * steps
    real = np.concatenate([ids[:3] for ids in batches])
    extra = np.concatenate([ids[3:] for ids in batches])
    for start in range(0, len(real) - 9, 10):  # 24 rows: passes at 0 and 10
        assert sorted(real[start:start + 10]) == list(range(10))
    for start in range(0, len(extra) - 13, 14):
        assert sorted(extra[start:start + 14]) == list(range(14))
    assert not np.array_equal(real[:10], real[10:20])  # a new order each pass


def test_mixed_takes_tf_data_sources():
    real = tf.data.Dataset.from_tensor_slices(_tagged(6, 0.0)).filter(lambda x, y: True)
    extra = tf.data.Dataset.from_tensor_slices(_tagged(9, 1.0))
    dataset, steps = data.mixed(real, extra, 4, extra_fraction=0.5, num_classes=5,
                                label_smoothing_extra=0.2, seed=0)
    assert steps == 3  # the unknown cardinality of `real` was counted
    images, labels = next(iter(dataset))
    assert _rows(images)[0].tolist() == [0, 0, 1, 1] and labels.shape == (4, 5)


def test_mixed_refuses_bad_input_clearly():
    real, extra = _tagged(6, 0.0), _tagged(9, 1.0)
    for fraction in (-0.1, 1.0, 1.5):
        with pytest.raises(ValueError, match=r"extra_fraction.*\[0, 1\)"):
            data.mixed(real, extra, 8, extra_fraction=fraction)
    with pytest.raises(ValueError, match="no real example"):
        data.mixed(real, extra, 2, extra_fraction=0.9)
    with pytest.raises(ValueError, match="label_smoothing_extra"):
        data.mixed(real, extra, 8, label_smoothing_extra=1.0)
    with pytest.raises(ValueError, match="shape"):
        data.mixed(real, (np.zeros((9, 8, 8, 2), np.float32), extra[1]), 8)
    with pytest.raises(ValueError, match="labels go up to 6 but there are 5 classes"):
        data.mixed(real, (extra[0], np.arange(9) % 7), 8)
    with pytest.raises(ValueError, match="empty"):
        data.mixed(real, (np.zeros((0, 4, 4, 2), np.float32), np.zeros(0)), 8)
    with pytest.raises(ValueError, match="empty"):
        data.mixed(tf.data.Dataset.from_tensor_slices(real).take(0), extra, 8)
    with pytest.raises(ValueError, match="infinite"):
        data.mixed(tf.data.Dataset.from_tensor_slices(real).repeat(), extra, 8)
    with pytest.raises(ValueError, match="num_classes"):
        data.mixed(tf.data.Dataset.from_tensor_slices(real), tf.data.Dataset.from_tensor_slices(
            extra), 8, label_smoothing_extra=0.1)
