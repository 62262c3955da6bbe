"""The enhanced data set as a TensorFlow Datasets (TFDS) data set.

`write_tfds` copies a finished output folder of `enhance` / `enhance_dataset`
into the TFDS layout (`<data_dir>/<name>/<version>/`: TFRecord shards,
`dataset_info.json`, `features.json`), which `tfds.builder_from_directory`
and `tfds.load(name, data_dir=...)` read without any download or builder
code. Every example keeps its provenance: the part, the corruption, its
severity and seed, the attack seed and the perturbation norms.

Example:

```python
folder = dc.write_tfds("runs/enhanced", "~/tensorflow_datasets")
train = tfds.builder_from_directory(folder).as_dataset(split="train")
train = tfds.load("keras_robust_enhanced", data_dir="~/tensorflow_datasets", split="train")
```
"""
from __future__ import annotations

import contextlib
import io
import os
import re

import numpy as np
import tensorflow as tf

from keras_robust import progress as _progress
from keras_robust.datacentric import records
from keras_robust.datacentric.plan import PARTS

DEFAULT_NAME = "keras_robust_enhanced"
# Provenance fields absent from a record (e.g. `severity` of a clean example) hold these.
MISSING_INT = -1
MISSING_FLOAT = -1.0
_INT_FIELDS = ("index", "severity", "seed", "attack_seed")
_FLOAT_FIELDS = ("linf_norm", "l2_norm")


def _features(tfds, image_shape: tuple[int, ...], image_dtype: str):
    if image_dtype == "uint8" and len(image_shape) == 3 and image_shape[-1] in (1, 3, 4):
        image = tfds.features.Image(shape=image_shape, dtype=np.uint8)  # lossless PNG
    else:
        image = tfds.features.Tensor(shape=image_shape, dtype=np.dtype(image_dtype))
    return tfds.features.FeaturesDict({
        "image": image,
        "label": tfds.features.Scalar(np.int64, doc="class index"),
        "part": tfds.features.ClassLabel(names=list(PARTS)),
        "corruption": tfds.features.Text(doc="corruption name; empty unless corrupted"),
        **{name: tfds.features.Scalar(np.int64, doc=f"{name}; {MISSING_INT} when absent")
           for name in _INT_FIELDS},
        **{name: tfds.features.Scalar(np.float32, doc=f"{name}; {MISSING_FLOAT} when absent")
           for name in _FLOAT_FIELDS},
    })


def _examples(output_dir: str, plan: dict, provenance: list[dict]):
    """(key, example) pairs in example order, from the shards and their sidecars."""
    shape = [int(d) for d in plan["image_shape"]]
    dtype = records._DTYPES[plan["image_dtype"]]
    files = [os.path.join(output_dir, s["file"]) for s in plan["shards"]]
    spec = {"image": tf.io.FixedLenFeature([], tf.string),
            "label": tf.io.FixedLenFeature([], tf.int64),
            "index": tf.io.FixedLenFeature([], tf.int64)}
    serialized = tf.data.TFRecordDataset(files)
    for position, raw in enumerate(serialized.as_numpy_iterator()):
        example = tf.io.parse_single_example(raw, spec)
        record = provenance[position]
        index = int(example["index"])
        if record["index"] != index:
            raise records.IncompleteOutputError(
                f"{output_dir!r}: example {position} is index {index} in its shard but "
                f"{record['index']} in the sidecars; rewrite the folder with `enhance`.")
        image = tf.reshape(tf.io.decode_raw(example["image"], dtype), shape).numpy()
        yield index, {
            "image": image,
            "label": int(example["label"]),
            "part": record["part"],
            "corruption": record.get("corruption", ""),
            **{name: int(record.get(name, MISSING_INT)) for name in _INT_FIELDS},
            **{name: float(record.get(name, MISSING_FLOAT)) for name in _FLOAT_FIELDS},
        }


def write_tfds(
    output_dir: str,
    data_dir: str,
    *,
    name: str = DEFAULT_NAME,
    version: str = "1.0.0",
    split: str = "train",
    progress: bool = True,
) -> str:
    """Writes a finished enhanced data set in the TensorFlow Datasets layout.

    Reads the output folder of `enhance` / `enhance_dataset` (checking every
    shard's SHA-256) and writes `<data_dir>/<name>/<version>/`, which
    `tfds.builder_from_directory(folder).as_dataset(split=split)` and
    `tfds.load(name, data_dir=data_dir, split=split)` read, in example order
    (no shuffling). Each example is a dict:

    - `image`: the enhanced image as stored (uint8 `(H, W, C)`, a PNG-encoded
      `tfds.features.Image` for 1, 3 or 4 channels; float32 a Tensor);
    - `label`: the int64 class index;
    - `part`: 0 clean, 1 adversarial, 2 corrupted (a `ClassLabel` named by
      `PARTS`);
    - provenance (as `read_records` gives it): `index` (in the original
      data), `corruption` (empty unless corrupted), `severity` and `seed` of
      the corruption, `attack_seed`, `linf_norm` and `l2_norm` of the
      adversarial perturbation; -1 where a field does not apply.

    The attack settings (shared by every adversarial example) are in the
    folder's `metadata.json`; `description` of the TFDS info names them.

    Args:
        output_dir: a finished folder written by `enhance` or `enhance_dataset`.
        data_dir: the TFDS data directory to write into (e.g.
            `~/tensorflow_datasets`).
        name: the data set's TFDS name (lower-case letters, digits and
            underscores, starting with a letter).
        version: its version, "MAJOR.MINOR.PATCH".
        split: the split name.
        progress: show TFDS' progress bars and messages (on stderr when it is a
            terminal, see `keras_robust.datacentric.enhance`).

    Returns:
        The written folder, `<data_dir>/<name>/<version>`.

    Raises:
        IncompleteOutputError: the run is not finished.
        FileNotFoundError: not an output folder.
        keras_robust.data.CorruptFileError: a damaged shard or sidecar.
        ValueError: a bad `name` or `version`.
        FileExistsError: that name and version are already in `data_dir`.

    Example:

    >>> import tempfile
    >>> import tensorflow_datasets as tfds
    >>> from keras_robust.datacentric import RunOptions, enhance, load
    >>> x = np.random.default_rng(0).integers(0, 256, (6, 8, 8, 3), dtype=np.uint8)
    >>> folder = tempfile.mkdtemp()
    >>> _ = enhance(x, np.arange(6), None, ratio=(1, 0, 2),
    ...             options=RunOptions(output_dir=folder, progress=False))
    >>> data_dir = tempfile.mkdtemp()
    >>> written = write_tfds(folder, data_dir, progress=False)
    >>> os.path.relpath(written, data_dir)
    'keras_robust_enhanced/1.0.0'
    >>> train = tfds.builder_from_directory(written).as_dataset(split="train")
    >>> example = next(iter(train))
    >>> sorted(example)
    ['attack_seed', 'corruption', 'image', 'index', 'l2_norm', 'label', 'linf_norm', 'part', 'seed', 'severity']
    >>> [int(e["index"]) for e in train]
    [0, 1, 2, 3, 4, 5]
    >>> sorted(PARTS[int(e["part"])] for e in train)
    ['clean', 'clean', 'corrupted', 'corrupted', 'corrupted', 'corrupted']
    >>> ours = next(iter(load(folder, batch_size=None)))[0]           # float32 in [0, 1]
    >>> bool(np.array_equal(example["image"].numpy(), np.round(ours.numpy() * 255)))
    True
    >>> same = tfds.load("keras_robust_enhanced", data_dir=data_dir, split="train")
    >>> len(same)
    6
    """
    if not re.fullmatch(r"[a-z][a-z0-9_]*", str(name)):
        raise ValueError(f"`name` must be lower-case letters, digits and underscores starting "
                         f"with a letter (a TFDS name), got {name!r}.")
    if not re.fullmatch(r"\d+\.\d+\.\d+", str(version)):
        raise ValueError(f"`version` must be 'MAJOR.MINOR.PATCH', got {version!r}.")
    import tensorflow_datasets as tfds

    plan = records.read_metadata(output_dir)
    records.verify_shards(output_dir, plan["shards"])
    provenance = records.read_records(output_dir)
    target = os.path.join(os.path.expanduser(data_dir), name, version)
    if os.path.exists(os.path.join(target, "dataset_info.json")):
        raise FileExistsError(f"{target!r} already holds a TFDS data set; choose another "
                              "`name`, `version` or `data_dir`, or delete it.")
    attack = plan.get("attack") or {}
    description = (f"keras_robust data-centric enhancement of {plan['num_examples']} images "
                   f"(ratio clean:adversarial:corrupted {plan['ratio']}, seed {plan['seed']}); "
                   f"attack settings {attack}.")
    shown = _progress.stream(progress) is not None
    was_active = getattr(tfds.core.utils.tqdm_utils, "_active", True)
    tfds.display_progress_bar(shown)
    quiet = contextlib.nullcontext() if shown else contextlib.redirect_stdout(io.StringIO())
    try:
        with quiet:
            builder = tfds.dataset_builders.store_as_tfds_dataset(
                name=name, version=version,
                features=_features(tfds, tuple(int(d) for d in plan["image_shape"]),
                                   plan["image_dtype"]),
                split_datasets={split: list(_examples(output_dir, plan, provenance))},
                data_dir=os.path.expanduser(data_dir), description=description,
                disable_shuffling=True,
            )
    finally:
        tfds.display_progress_bar(was_active)
    return os.fspath(builder.data_dir)


__all__ = ["DEFAULT_NAME", "MISSING_FLOAT", "MISSING_INT", "write_tfds"]
