"""Image classification data as `tf.data` pipelines of float32 images in [0, 1].

Sources, all through `load(source, split, ...)`:

- a TFDS name: "cifar10", "cifar100", "svhn" (TFDS `svhn_cropped`), "mnist",
  "fashion_mnist" (any other TFDS image classification name works too), with
  `data_dir`;
- a local CIFAR-10 copy stored as JPEG bytes in an `.npz` file (the format of
  `cifar10_jpeg.npz`: `{split}_jpeg`, `{split}_offsets`, `{split}_labels`,
  `label_names`), for machines without internet;
- an image folder laid out as `root/split/class/*.jpg|png`;
- NumPy arrays, through `from_arrays`.

Every pipeline yields `(images, labels)` with float32 NHWC images in [0, 1] and
int32 class indices; `augment=True` adds the standard CIFAR augmentation (pad 4,
random crop, random horizontal flip).

Example:

```python
import keras_robust as kr
train = kr.data.load("cifar10", "train", batch_size=128, augment=True)
test = kr.data.load("../shared/datasets/cifar10_jpeg.npz", "test", limit=1000)
```
"""
from __future__ import annotations

import dataclasses
import functools
import glob
import os
import socket
import zipfile
import zlib
from typing import Any, Sequence

import numpy as np
import tensorflow as tf

from keras_robust._validation import check_positive_int

TFDS_NAMES = {
    "cifar10": "cifar10",
    "cifar100": "cifar100",
    "svhn": "svhn_cropped",
    "svhn_cropped": "svhn_cropped",
    "mnist": "mnist",
    "fashion_mnist": "fashion_mnist",
}

# Where each TFDS builder downloads from; probed before a download so that an
# offline machine fails in seconds, not after minutes of retries.
_DOWNLOAD_HOSTS = {
    "cifar10": "www.cs.toronto.edu",
    "cifar100": "www.cs.toronto.edu",
    "svhn_cropped": "ufldl.stanford.edu",
    "mnist": "storage.googleapis.com",
    "fashion_mnist": "fashion-mnist.s3-website.eu-central-1.amazonaws.com",
}

_IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")


class DatasetUnavailableError(RuntimeError):
    """Raised when a dataset is neither prepared locally nor downloadable."""


class CorruptFileError(ValueError):
    """Raised when a data file cannot be read back: truncated, corrupted or altered.

    The message names the file and how to recover (re-download it, re-run
    what wrote it); `path` holds the file's path. A `ValueError`, so code
    that catches bad input catches it too.

    Args:
        path: the unreadable file.
        problem: what is wrong with it (e.g. the original error).
        remedy: how to recover.

    Example:

    >>> import tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "copy.npz")
    >>> with open(path, "wb") as f:
    ...     _ = f.write(b"half of an archive")
    >>> try:
    ...     load_arrays(path, "test")
    ... except CorruptFileError as error:
    ...     print(os.path.basename(error.path), "Re-download" in str(error))
    copy.npz True
    """

    def __init__(self, path: str, problem: str, remedy: str):
        self.path = path
        super().__init__(f"{path!r} is unreadable: {problem}. {remedy}")


# What reading a damaged .npz raises: a truncated zip, a bad CRC-32, a damaged
# compressed stream, a damaged .npy header or too few bytes.
NPZ_READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError)

_NPZ_REMEDY = (
    "Re-download or re-copy the archive (compare its size and SHA-256 with the source's); "
    "the layout is that of cifar10_jpeg.npz (see datasets/README.md)."
)


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a source holds.

    Attributes:
        name: the source as given.
        num_classes: number of classes.
        image_shape: (height, width, channels).
        class_names: the class names, in label order.
        normalization: the `keras_robust.backbones.NORMALIZATION_STATS` key that
            fits the data, or None.
    """

    name: str
    num_classes: int
    image_shape: tuple[int, int, int]
    class_names: tuple[str, ...]
    normalization: str | None


def info(source: str, data_dir: str | None = None) -> DatasetInfo:
    """Describes a source without building a pipeline.

    Args:
        source: a TFDS name, an `.npz` JPEG copy or an image folder root.
        data_dir: TFDS data directory.

    Returns:
        A `DatasetInfo`.

    Example:

    >>> info("../shared/datasets/cifar10_jpeg.npz").num_classes
    10
    """
    kind = _source_kind(source)
    if kind == "npz":
        archive = _open_npz(source)
        names = tuple(str(s) for s in archive["label_names"])
        return DatasetInfo(source, len(names), (32, 32, 3), names, "cifar10")
    if kind == "folder":
        split = _folder_splits(source)[0]
        classes = _folder_classes(os.path.join(source, split))
        first = _folder_files(os.path.join(source, split), classes)[0][0]
        image = tf.io.decode_image(tf.io.read_file(first), expand_animations=False)
        return DatasetInfo(source, len(classes), tuple(image.shape), tuple(classes), None)
    import tensorflow_datasets as tfds

    builder = tfds.builder(TFDS_NAMES.get(source, source), data_dir=data_dir)
    features = builder.info.features
    label = features["label"]
    normalization = source if source in ("cifar10", "cifar100", "mnist", "fashion_mnist") else None
    if TFDS_NAMES.get(source) == "svhn_cropped":
        normalization = "svhn"
    return DatasetInfo(
        source, label.num_classes, tuple(features["image"].shape), tuple(label.names), normalization
    )


def load(
    source: str,
    split: str = "train",
    *,
    batch_size: int | None = 128,
    augment: bool = False,
    shuffle: bool | None = None,
    limit: int | None = None,
    data_dir: str | None = None,
    seed: int | None = None,
    drop_remainder: bool = False,
    cache: bool = True,
) -> tf.data.Dataset:
    """Builds a `tf.data` pipeline of `(float32 images in [0, 1], int32 labels)`.

    Args:
        source: a TFDS name ("cifar10", "cifar100", "svhn", "mnist",
            "fashion_mnist", ...), a path to a JPEG `.npz` copy, or the root of
            an image folder (`root/split/class/*.jpg`).
        split: "train" or "test" (TFDS split strings such as "train[:10%]"
            work for TFDS sources).
        batch_size: batch size, or None for unbatched examples.
        augment: pad-4 random crop and random horizontal flip.
        shuffle: shuffle examples each epoch; default True for "train".
        limit: keep only the first `limit` examples (before shuffling).
        data_dir: TFDS data directory (where prepared datasets live).
        seed: seed for shuffling and augmentation.
        drop_remainder: drop the last partial batch.
        cache: keep decoded images in memory after the first epoch.

    Returns:
        A `tf.data.Dataset`.

    Raises:
        DatasetUnavailableError: a TFDS dataset is not prepared in `data_dir`
            and cannot be downloaded (no network); the message names the
            offline options.
        ValueError: an unknown source, split or a bad argument.

    Example:

    >>> train = load("cifar10", "train", batch_size=128, augment=True)
    """
    if limit is not None:
        limit = check_positive_int(limit, "limit")
    kind = _source_kind(source)
    if kind == "npz":
        images, labels = load_arrays(source, split, limit=limit)
        dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    elif kind == "folder":
        dataset = _folder_dataset(source, split)
    else:
        dataset = _tfds_dataset(source, split, data_dir)
    if limit is not None and kind != "npz":
        dataset = dataset.take(limit)
    return pipeline(
        dataset,
        batch_size=batch_size,
        augment=augment,
        shuffle=(split.startswith("train") if shuffle is None else shuffle),
        seed=seed,
        drop_remainder=drop_remainder,
        cache=cache,
    )


def from_arrays(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    batch_size: int | None = 128,
    augment: bool = False,
    shuffle: bool = False,
    seed: int | None = None,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """Builds a pipeline from NumPy arrays.

    Args:
        images: uint8 NHWC in 0..255 or float NHWC in [0, 1] (NHW grey
            images get a channel axis).
        labels: integer class indices, shape [N].
        batch_size: batch size, or None for unbatched examples.
        augment: pad-4 random crop and random horizontal flip.
        shuffle: shuffle examples each epoch.
        seed: seed for shuffling and augmentation.
        drop_remainder: drop the last partial batch.

    Returns:
        A `tf.data.Dataset` of `(float32 images in [0, 1], int32 labels)`.

    Example:

    >>> x = np.random.randint(0, 256, (8, 32, 32, 3), np.uint8)
    >>> ds = from_arrays(x, np.arange(8) % 10, batch_size=4)
    """
    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4:
        raise ValueError(f"`images` must be NHWC (or NHW), got shape {images.shape}.")
    if labels.ndim == 2 and labels.shape[-1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1 or len(labels) != len(images):
        raise ValueError(
            f"`labels` must be class indices of shape [{len(images)}], got shape {labels.shape}."
        )
    if len(images) == 0:
        raise ValueError("`images` is empty; expected at least one example.")
    if images.dtype != np.uint8:
        if not np.issubdtype(images.dtype, np.floating):
            raise TypeError(
                f"`images` must be uint8 (0..255) or float in [0, 1], got dtype {images.dtype}."
            )
        if np.isnan(images).any() or images.min() < 0 or images.max() > 1:
            raise ValueError(
                "Float `images` must lie in [0, 1] without NaN; got values in "
                f"[{np.nanmin(images):.4g}, {np.nanmax(images):.4g}]. Pass uint8 for 0..255 pixels."
            )
        images = images.astype(np.float32)
    dataset = tf.data.Dataset.from_tensor_slices((images, labels.astype(np.int32)))
    return pipeline(
        dataset, batch_size=batch_size, augment=augment, shuffle=shuffle, seed=seed,
        drop_remainder=drop_remainder, cache=False,
    )


def pipeline(
    dataset: tf.data.Dataset,
    *,
    batch_size: int | None = 128,
    augment: bool = False,
    shuffle: bool = False,
    seed: int | None = None,
    drop_remainder: bool = False,
    cache: bool = False,
    shuffle_buffer: int = 50_000,
) -> tf.data.Dataset:
    """Turns a dataset of `(image, label)` examples into a training pipeline.

    Images may be uint8 (scaled to [0, 1]) or float in [0, 1]; labels become
    int32.

    Args:
        dataset: unbatched `(image, label)` examples.
        batch_size: batch size, or None for unbatched examples.
        augment: pad-4 random crop and random horizontal flip.
        shuffle: shuffle examples each epoch.
        seed: seed for shuffling and augmentation.
        drop_remainder: drop the last partial batch.
        cache: cache converted examples in memory.
        shuffle_buffer: shuffle buffer size.

    Returns:
        The pipeline.

    Example:

    >>> ds = pipeline(tf.data.Dataset.from_tensor_slices((x, y)), batch_size=64)
    """
    dataset = dataset.map(example_to_float, num_parallel_calls=tf.data.AUTOTUNE)
    if cache:
        dataset = dataset.cache()
    if shuffle:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if augment:
        augment_fn = functools.partial(pad_crop_flip, seed=seed)
        dataset = dataset.map(augment_fn, num_parallel_calls=tf.data.AUTOTUNE)
    if batch_size is not None:
        batch_size = check_positive_int(batch_size, "batch_size")
        dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    return dataset.prefetch(tf.data.AUTOTUNE)


def load_arrays(
    source: str,
    split: str = "test",
    *,
    limit: int | None = None,
    data_dir: str | None = None,
    start: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Loads a split as uint8 NHWC images and int32 labels in memory.

    Used where a whole split must be at hand (corruption benchmarks, data-set
    enhancement, evaluation). Decoded `.npz` copies are cached per process.

    Args:
        source: see `load`.
        split: "train" or "test".
        limit: keep only `limit` examples (from `start`; fewer when the split
            ends first).
        data_dir: TFDS data directory.
        start: skip the first `start` examples, so that `start` and `limit`
            pick disjoint sets for repeated checks (e.g. images 5000-5499 with
            `start=5000, limit=500`).

    Returns:
        `(images, labels)`: uint8 [N, H, W, C] and int32 [N] (read-only arrays
        for `.npz` sources).

    Raises:
        ValueError: a negative `start`, a `limit` below 1, or a `start` that
            skips every example of the split.

    Example:

    >>> x, y = load_arrays("../shared/datasets/cifar10_jpeg.npz", "test", limit=1000)
    >>> later, _ = load_arrays("../shared/datasets/cifar10_jpeg.npz", "test", start=5000, limit=500)
    >>> len(later)
    500
    """
    if limit is not None:
        limit = check_positive_int(limit, "limit")
    if isinstance(start, bool) or not isinstance(start, (int, np.integer)) or start < 0:
        raise ValueError(f"`start` must be a whole number >= 0, got {start!r}.")
    start = int(start)
    if start:
        end = None if limit is None else start + limit
        images, labels = load_arrays(source, split, limit=end, data_dir=data_dir)
        if len(images) <= start:
            raise ValueError(f"start={start} skips every {split!r} image: {source} has "
                             f"{len(images)}; give a smaller start.")
        return images[start:], labels[start:]
    if _source_kind(source) == "npz":
        images, labels = _decode_npz(os.path.abspath(source), split)
        return (images[:limit], labels[:limit]) if limit else (images, labels)
    dataset = load(
        source, split, batch_size=1024, shuffle=False, limit=limit, data_dir=data_dir, cache=False
    )
    images, labels = [], []
    for x, y in dataset:
        images.append(np.round(x.numpy() * 255).astype(np.uint8))
        labels.append(y.numpy())
    if not images:
        raise ValueError(f"Split {split!r} of {source!r} is empty.")
    return np.concatenate(images), np.concatenate(labels).astype(np.int32)


def to_float(images: np.ndarray) -> np.ndarray:
    """uint8 0..255 images to float32 [0, 1] (float images pass through)."""
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return images.astype(np.float32) / 255.0
    return images.astype(np.float32)


def example_to_float(image: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """One example as the pipelines yield it: float32 [0, 1] image (uint8 / 255), int32 label."""
    if image.dtype == tf.uint8:
        image = tf.cast(image, tf.float32) / 255.0
    else:
        image = tf.cast(image, tf.float32)
    return image, tf.cast(label, tf.int32)


def pad_crop_flip(image: tf.Tensor, label: Any, seed: int | None = None) -> tuple[tf.Tensor, Any]:
    """Pad 4 pixels with zeros, crop back at random, flip at random."""
    shape = tf.shape(image)
    padded = tf.pad(image, [[4, 4], [4, 4], [0, 0]])
    image = tf.image.random_crop(padded, shape, seed=seed)
    image = tf.image.random_flip_left_right(image, seed=seed)
    return image, label


def _source_kind(source: str) -> str:
    if not isinstance(source, str) or not source:
        raise ValueError(f"`source` must be a TFDS name or a path, got {source!r}.")
    if source.endswith(".npz"):
        if not os.path.isfile(source):
            raise FileNotFoundError(
                f"No local dataset copy at {source!r} (expected a JPEG .npz such as "
                "cifar10_jpeg.npz)."
            )
        return "npz"
    if os.path.isdir(source):
        return "folder"
    if os.sep in source:
        raise FileNotFoundError(f"No dataset folder or .npz file at {source!r}.")
    return "tfds"


@functools.lru_cache(maxsize=4)
def _open_npz(path: str):
    try:
        archive = np.load(path)
    except NPZ_READ_ERRORS as error:
        problem = f"not a readable .npz archive ({type(error).__name__}: {error})"
        raise CorruptFileError(path, problem + "; it is truncated or corrupted",
                               _NPZ_REMEDY) from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise CorruptFileError(path, "a single .npy array, not an .npz archive", _NPZ_REMEDY)
    missing = {"train_jpeg", "train_offsets", "train_labels", "test_jpeg", "test_offsets",
               "test_labels", "label_names"} - set(archive.files)
    if missing:
        raise ValueError(
            f"{path!r} is not a JPEG dataset copy: missing keys {sorted(missing)} "
            "(expected the cifar10_jpeg.npz layout)."
        )
    return archive


@functools.lru_cache(maxsize=4)
def _decode_npz(path: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    if split not in ("train", "test"):
        raise ValueError(f"A JPEG .npz copy has splits 'train' and 'test', got {split!r}.")
    archive = _open_npz(path)
    try:
        blob = archive[f"{split}_jpeg"]
        offsets = archive[f"{split}_offsets"]
        labels = archive[f"{split}_labels"].astype(np.int32)
    except NPZ_READ_ERRORS as error:
        raise CorruptFileError(path, f"the {split!r} arrays cannot be read ({type(error).__name__}: "
                                     f"{error}); the archive is corrupted", _NPZ_REMEDY) from None
    if offsets.ndim != 1 or len(offsets) != len(labels) + 1 or (
            len(offsets) and (offsets[0] < 0 or offsets[-1] > len(blob)
                              or np.any(np.diff(offsets) <= 0))):
        raise CorruptFileError(
            path, f"{split}_offsets do not cut {split}_jpeg ({len(blob)} bytes) into "
                  f"{len(labels)} images", _NPZ_REMEDY)
    encoded = [blob[offsets[i]:offsets[i + 1]].tobytes() for i in range(len(labels))]
    decoded = (
        tf.data.Dataset.from_tensor_slices(encoded)
        .map(lambda b: tf.io.decode_jpeg(b, channels=3), num_parallel_calls=tf.data.AUTOTUNE)
        .batch(2048)
    )
    try:
        images = np.concatenate([batch.numpy() for batch in decoded])
    except (tf.errors.InvalidArgumentError, tf.errors.DataLossError) as error:
        raise CorruptFileError(path, f"a {split!r} JPEG does not decode ({error.message.strip()})",
                               _NPZ_REMEDY) from None
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def _folder_splits(root: str) -> list[str]:
    splits = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    if not splits:
        raise ValueError(f"Image folder {root!r} has no split folders (expected root/split/class/*.jpg).")
    return splits


def _folder_classes(split_dir: str) -> list[str]:
    classes = sorted(d for d in os.listdir(split_dir) if os.path.isdir(os.path.join(split_dir, d)))
    if not classes:
        raise ValueError(f"{split_dir!r} has no class folders (expected split/class/*.jpg).")
    return classes


def _folder_files(split_dir: str, classes: Sequence[str]) -> tuple[list[str], list[int]]:
    files, labels = [], []
    for index, name in enumerate(classes):
        found = sorted(
            f for f in glob.glob(os.path.join(split_dir, name, "*"))
            if f.lower().endswith(_IMAGE_EXTENSIONS)
        )
        files += found
        labels += [index] * len(found)
    if not files:
        raise ValueError(f"No images ({', '.join(_IMAGE_EXTENSIONS)}) under {split_dir!r}.")
    return files, labels


def _folder_dataset(root: str, split: str) -> tf.data.Dataset:
    split_dir = os.path.join(root, split)
    if not os.path.isdir(split_dir):
        raise ValueError(
            f"Image folder {root!r} has no split {split!r}; found {_folder_splits(root)}."
        )
    classes = _folder_classes(split_dir)
    files, labels = _folder_files(split_dir, classes)
    # Fixed order (sorted by class then file); pipeline() shuffles when asked.
    first = tf.io.decode_image(tf.io.read_file(files[0]), expand_animations=False)
    channels = int(first.shape[-1])

    def read(path, label):
        image = tf.io.decode_image(tf.io.read_file(path), channels=channels, expand_animations=False)
        image.set_shape(first.shape)
        return image, label

    return tf.data.Dataset.from_tensor_slices((files, labels)).map(
        read, num_parallel_calls=tf.data.AUTOTUNE
    )


def _tfds_dataset(source: str, split: str, data_dir: str | None) -> tf.data.Dataset:
    import tensorflow_datasets as tfds

    name = TFDS_NAMES.get(source, source)
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as error:  # tfds raises DatasetNotFoundError and others
        raise ValueError(
            f"Unknown dataset source {source!r}: not a TFDS name, an .npz copy or an image "
            f"folder. TFDS names used by this library: {sorted(TFDS_NAMES)}. ({error})"
        ) from None
    try:  # prepared already (or mocked by tfds.testing.mock_data): no network needed
        return builder.as_dataset(split=split, as_supervised=True, shuffle_files=False)
    except (ValueError, KeyError) as error:
        if "split" in str(error).lower():
            raise ValueError(f"{source!r} has no split {split!r}: {error}") from None
    except Exception:  # not prepared: tfds raises AssertionError and others
        pass
    host = _DOWNLOAD_HOSTS.get(name)
    if host is not None and not _reachable(host):
        raise DatasetUnavailableError(_offline_message(source, data_dir, host))
    try:
        builder.download_and_prepare()
    except Exception as error:  # network and download errors of many kinds
        raise DatasetUnavailableError(
            _offline_message(source, data_dir, host) + f" Download error: {error}"
        ) from error
    return builder.as_dataset(split=split, as_supervised=True, shuffle_files=False)


def _reachable(host: str, timeout: float = 5.0) -> bool:
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def _offline_message(source: str, data_dir: str | None, host: str | None) -> str:
    where = data_dir or "~/tensorflow_datasets"
    return (
        f"TFDS dataset {source!r} is not prepared in {where!r} and cannot be downloaded"
        f"{f' ({host} is unreachable)' if host else ''}. Offline options: pass a local copy "
        "as the source, e.g. load('../shared/datasets/cifar10_jpeg.npz', ...) for CIFAR-10 "
        "(examples: --data=PATH.npz), an image folder root/split/class/*.jpg, or "
        "keras_robust.data.from_arrays(images, labels); or prepare the dataset on a machine "
        "with internet and pass its data_dir."
    )
