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

`mixed(real, extra, batch_size, extra_fraction=0.7, ...)` mixes a real set with
an extra (e.g. generated) set at a fixed share of every batch, as the
leaderboard recipe (Gowal et al. 2020, Rebuffi et al. 2021) trains; it returns
the dataset and its `steps_per_epoch` (one pass over the real set).

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


Source = tf.data.Dataset | tuple[np.ndarray, np.ndarray]


def mixed(
    real: Source,
    extra: Source,
    batch_size: int,
    *,
    extra_fraction: float = 0.7,
    label_smoothing_extra: float = 0.0,
    num_classes: int | None = None,
    seed: int | None = None,
    augment: bool = False,
    epochs: int | None = None,
    shuffle_buffer: int = 50_000,
) -> tuple[tf.data.Dataset, int]:
    """Batches that mix a real set with an extra (e.g. generated) set at a fixed ratio.

    The data of the leaderboard recipe (Gowal et al. 2020, Rebuffi et al.
    2021): every batch holds exactly `n_extra = round(batch_size *
    extra_fraction)` extra examples (Python's `round`) and `n_real =
    batch_size - n_extra` real ones, real rows first. Each source is shuffled
    (each pass a new order), repeated and augmented on its own, so every pass
    over a source visits each of its examples once, whatever the other's size.

    An epoch is one pass over the real set: `steps_per_epoch =
    ceil(len(real) / n_real)` batches. (The leaderboard code counts an epoch
    as `len(real) / batch_size` steps, `1 - extra_fraction` times fewer; to
    follow its schedules take `epochs * len(real) // batch_size` steps.)

    Args:
        real: the real set: `(images, labels)` arrays (as `from_arrays`
            takes them) or an unbatched finite `tf.data.Dataset` of
            `(image, class index)`.
        extra: the extra set, in the same forms, with the same image shape.
        batch_size: examples per batch (real and extra together).
        extra_fraction: the share of each batch from `extra`, in [0, 1).
        label_smoothing_extra: `s` in [0, 1): extra rows get the labels
            `(1 - s) * one_hot + s / num_classes`. When `s > 0` every label is
            a float32 row [num_classes] (real rows one-hot), else an int32
            class index.
        num_classes: number of classes; default: the largest real label + 1
            (arrays only; needed with `tf.data` sources and `s > 0`).
        seed: seed of both shuffles and augmentations (`seed`, `seed + 1`).
        augment: pad-4 random crop and random horizontal flip, on both parts.
        epochs: None for an endless dataset, else `epochs * steps_per_epoch`
            batches.
        shuffle_buffer: the largest shuffle buffer (a source no larger is
            fully permuted).

    Returns:
        `(dataset, steps_per_epoch)`: batches of `(float32 images in [0, 1],
        labels)`, `n_real` real rows then `n_extra` extra rows.

    Raises:
        ValueError: a fraction or smoothing outside [0, 1), an empty source,
            images of other shapes, labels outside the real set's classes, or
            a batch with no real row.

    Example:

    >>> real = (np.zeros((10, 8, 8, 3), np.uint8), np.arange(10) % 5)
    >>> extra = (np.full((30, 8, 8, 3), 255, np.uint8), np.arange(30) % 5)
    >>> ds, steps = mixed(real, extra, 10, extra_fraction=0.7, seed=0)
    >>> steps   # 10 real images, 3 a batch
    4
    >>> images, labels = next(iter(ds))
    >>> images.numpy().reshape(10, -1).max(axis=1).tolist()
    [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    """
    batch_size = check_positive_int(batch_size, "batch_size")
    n_real, n_extra = mixed_batch_split(batch_size, extra_fraction)
    smoothing = float(label_smoothing_extra)
    if not 0.0 <= smoothing < 1.0:
        raise ValueError(f"`label_smoothing_extra` must be in [0, 1), got {label_smoothing_extra}.")
    real_ds, real_size, real_shape, real_top = _mixed_source(real, "real")
    extra_ds, extra_size, extra_shape, extra_top = _mixed_source(extra, "extra")
    if real_shape != extra_shape:
        raise ValueError(f"The real images have shape {real_shape} but the extra images "
                         f"{extra_shape}; both sources need images of one shape.")
    num_classes = _mixed_num_classes(num_classes, real_top, extra_top, smoothing)
    seeds = (None, None) if seed is None else (int(seed), int(seed) + 1)
    parts = [_mixed_stream(real_ds, n_real, seeds[0], augment, shuffle_buffer, real_size)]
    if n_extra:
        parts.append(_mixed_stream(extra_ds, n_extra, seeds[1], augment, shuffle_buffer,
                                   extra_size))
    dataset = tf.data.Dataset.zip(tuple(parts)).map(
        functools.partial(_mix_batch, num_classes=num_classes, smoothing=smoothing),
        num_parallel_calls=tf.data.AUTOTUNE)
    steps_per_epoch = -(-real_size // n_real)
    if epochs is not None:
        dataset = dataset.take(check_positive_int(epochs, "epochs") * steps_per_epoch)
    return dataset.prefetch(tf.data.AUTOTUNE), steps_per_epoch


def mixed_batch_split(batch_size: int, extra_fraction: float) -> tuple[int, int]:
    """`(n_real, n_extra)` of a `mixed` batch: `n_extra = round(batch_size * extra_fraction)`.

    Args:
        batch_size: examples per batch.
        extra_fraction: the extra share, in [0, 1).

    Returns:
        `(batch_size - n_extra, n_extra)`.

    Raises:
        ValueError: a fraction outside [0, 1), or one that leaves no real row.

    Example:

    >>> mixed_batch_split(1024, 0.7)
    (307, 717)
    """
    batch_size = check_positive_int(batch_size, "batch_size")
    if isinstance(extra_fraction, bool) or not isinstance(extra_fraction, (int, float, np.number)):
        raise TypeError(f"`extra_fraction` must be a number in [0, 1), got {extra_fraction!r}.")
    if not 0.0 <= float(extra_fraction) < 1.0:
        raise ValueError(f"`extra_fraction` must be in [0, 1) (the extra share of each batch), "
                         f"got {extra_fraction}.")
    n_extra = int(round(batch_size * float(extra_fraction)))
    if n_extra >= batch_size:
        raise ValueError(f"extra_fraction={extra_fraction} of batch_size={batch_size} leaves no "
                         "real example in a batch; use a larger batch or a smaller fraction.")
    return batch_size - n_extra, n_extra


def _mixed_source(source: Source, what: str) -> tuple[tf.data.Dataset, int, tuple, int | None]:
    """`(float examples, size, image shape, largest label or None)` of a `mixed` source."""
    top = None
    if isinstance(source, tf.data.Dataset):
        spec = source.element_spec
        if not isinstance(spec, tuple) or len(spec) != 2 or spec[0].shape.rank != 3:
            raise ValueError(f"The {what} dataset must yield unbatched (image [H, W, C], label) "
                             f"examples, got element_spec {spec}.")
        size = int(source.cardinality())
        if size == tf.data.INFINITE_CARDINALITY:
            raise ValueError(f"The {what} dataset is infinite; pass it before `.repeat()`.")
        if size < 0:  # unknown: count it once
            size = int(source.reduce(0, lambda count, _: count + 1))
        dataset = source.map(example_to_float, num_parallel_calls=tf.data.AUTOTUNE)
    elif isinstance(source, (tuple, list)) and len(source) == 2:
        images, labels = source
        if len(images) == 0:
            raise ValueError(f"The {what} set is empty; expected at least one example.")
        dataset = from_arrays(images, labels, batch_size=None)
        size, labels = len(images), np.asarray(labels)
        if np.any(labels < 0):
            raise ValueError(f"The {what} labels must be class indices >= 0.")
        top = int(labels.max())
    else:
        raise TypeError(f"`{what}` must be (images, labels) arrays or a tf.data.Dataset, "
                        f"got {type(source).__name__}.")
    if size == 0:
        raise ValueError(f"The {what} set is empty; expected at least one example.")
    return dataset, size, tuple(dataset.element_spec[0].shape), top


def _mixed_num_classes(
    num_classes: int | None, real_top: int | None, extra_top: int | None, smoothing: float
) -> int | None:
    """The class count of a `mixed` dataset; refuses extra labels beyond the real classes."""
    if num_classes is None and real_top is not None:
        num_classes = real_top + 1
    if num_classes is None:
        if smoothing:
            raise ValueError("`label_smoothing_extra` needs `num_classes` with tf.data sources.")
        return None
    num_classes = check_positive_int(num_classes, "num_classes")
    for what, top in (("real", real_top), ("extra", extra_top)):
        if top is not None and top >= num_classes:
            raise ValueError(f"The {what} labels go up to {top} but there are {num_classes} "
                             "classes (the real set's, or `num_classes`); the sources must "
                             "share one class list.")
    return num_classes


def _mixed_stream(
    dataset: tf.data.Dataset, count: int, seed: int | None, augment: bool, shuffle_buffer: int,
    size: int,
) -> tf.data.Dataset:
    """One source of `mixed`: shuffled each pass, repeated, augmented, in batches of `count`."""
    buffer = min(check_positive_int(shuffle_buffer, "shuffle_buffer"), size)
    dataset = dataset.shuffle(buffer, seed=seed, reshuffle_each_iteration=True).repeat()
    if augment and seed is None:
        dataset = dataset.map(pad_crop_flip, num_parallel_calls=tf.data.AUTOTUNE)
    elif augment:  # stateless draws, one seed pair per example: reproducible in parallel maps
        pairs = tf.data.Dataset.random(seed=seed).batch(2)
        dataset = tf.data.Dataset.zip((dataset, pairs)).map(
            _stateless_pad_crop_flip, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.batch(count, drop_remainder=True)


def _stateless_pad_crop_flip(example, pair: tf.Tensor):
    """`pad_crop_flip` with stateless draws seeded by `pair` (int64 [2])."""
    image, label = example
    padded = tf.pad(image, [[4, 4], [4, 4], [0, 0]])
    image = tf.image.stateless_random_crop(padded, tf.shape(image), seed=pair)
    image = tf.image.stateless_random_flip_left_right(image, seed=tf.reverse(pair, [0]))
    return image, label


def _mix_batch(*parts, num_classes: int | None, smoothing: float):
    """Concatenates the real part and the extra part; labels become rows when smoothing."""
    images = tf.concat([part[0] for part in parts], axis=0)
    labels = [tf.cast(part[1], tf.int32) for part in parts]
    if num_classes is not None:
        checks = [tf.debugging.assert_less(y, num_classes, message="mixed: a label is outside "
                                           "the classes of the real set") for y in labels]
        with tf.control_dependencies(checks):
            labels = [tf.identity(y) for y in labels]
    if not smoothing:
        return images, tf.concat(labels, axis=0)
    rows = [tf.one_hot(y, num_classes, dtype=tf.float32) for y in labels]
    if len(rows) == 2:
        rows[1] = (1.0 - smoothing) * rows[1] + smoothing / num_classes
    return images, tf.concat(rows, axis=0)


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
