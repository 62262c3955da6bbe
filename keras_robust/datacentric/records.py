"""The on-disk form of an enhanced data set: sharded TFRecords, sidecars, metadata.

An output folder holds

- `plan.json`: the run's settings (written first; a restart checks that it
  continues the same run);
- `shard-SSSSS-of-NNNNN.tfrecord`: one `tf.train.Example` per image
  (`image` raw bytes, `label`, `index`, `part`, `corruption`, `severity`);
- `shard-SSSSS-of-NNNNN.json`: the shard's sidecar (example range, counts per
  part, SHA-256 of the TFRecord file, one record per example). A shard is
  finished exactly when its sidecar exists;
- `metadata.json`: written last, once every shard is finished: the plan, the
  counts per part and the per-shard index.

Every file is written under a temporary name, flushed and fsynced, then
renamed into place (atomic on POSIX), so a killed run never leaves a
half-written shard under a final name. Everything written is a function of the
run's settings: an interrupted and restarted run writes the same bytes as an
uninterrupted one.

Example:

```python
train = load("runs/enhanced", batch_size=128, shuffle=True, augment=True)
images, labels, parts = next(iter(load("runs/enhanced", batch_size=8, with_part=True)))
```
"""
from __future__ import annotations

import glob
import hashlib
import json
import os
from typing import Any, Sequence

import numpy as np
import tensorflow as tf

from keras_robust._io import fsync_directory, fsync_file, json_default, save_json, temporary_path
from keras_robust._validation import check_positive_int
from keras_robust.datacentric.plan import PARTS

FORMAT = "keras_robust.datacentric/1"
PLAN_FILE = "plan.json"
METADATA_FILE = "metadata.json"
_DTYPES = {"uint8": tf.uint8, "float32": tf.float32}


class IncompleteOutputError(RuntimeError):
    """Raised when an output folder is read before every shard is finished.

    Resume the run with the same arguments (on every worker), or read the
    finished shards with `load(..., allow_incomplete=True)`.

    Example:

    >>> import tempfile
    >>> from keras_robust.datacentric import RunOptions, enhance
    >>> folder = tempfile.mkdtemp()
    >>> _ = enhance(np.zeros((4, 8, 8, 3), np.uint8), [0, 1, 2, 3], None, ratio=(1, 0, 0),
    ...             options=RunOptions(output_dir=folder, shard_size=2, worker_index=0,
    ...                                num_workers=2, progress=False))  # worker 1 of 2 not run yet
    >>> try:
    ...     train = load(folder)
    ... except IncompleteOutputError:
    ...     print("not finished: reading the finished shards")
    ...     train = load(folder, allow_incomplete=True)
    not finished: reading the finished shards
    >>> [int(label) for _, labels in train for label in labels]      # shard 0 only
    [0, 1]
    """


def shard_stem(shard: int, num_shards: int) -> str:
    """The file stem of a shard, e.g. `shard-00003-of-00013`."""
    return f"shard-{shard:05d}-of-{num_shards:05d}"


def write_json_atomic(path: str, payload: Any) -> None:
    """Writes a file of the format: sorted JSON, written atomically (see `keras_robust._io.save_json`)."""
    save_json(path, payload, indent=1, sort_keys=True, atomic=True)


def normalise(payload: Any) -> Any:
    """`payload` as it reads back from JSON (tuples become lists, NumPy scalars numbers)."""
    return json.loads(json.dumps(payload, sort_keys=True, default=json_default))


def _remedy(path: str) -> str:
    """How to recover a damaged file of an output folder, by its kind."""
    name = os.path.basename(path)
    if name == METADATA_FILE:
        return ("It is rebuilt from the shards' sidecars: run "
                "keras_robust.datacentric.finalize(output_dir), or re-run the enhancement with the "
                "same arguments.")
    if name == PLAN_FILE:
        return ("It holds the run's settings: restore it from a copy, or start again with "
                "overwrite=True (deletes the folder's shards).")
    if name.startswith("shard-"):
        return ("Re-run the enhancement with the same arguments and output_dir (on the worker "
                "that owns this shard): it rewrites every shard whose sidecar is unreadable or "
                "whose SHA-256 does not match, then metadata.json.")
    return "Rewrite it."


def read_json(path: str) -> Any:
    """Reads a JSON file; a damaged one raises `CorruptFileError` naming it and the remedy."""
    from keras_robust.data import CorruptFileError

    try:
        with open(path, "rb") as f:
            return json.loads(f.read().decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CorruptFileError(path, f"not valid JSON ({error}); it is truncated or corrupted",
                               _remedy(path)) from None


def read_sidecar(path: str) -> dict:
    """A shard's sidecar; one damaged or without its "records" list raises `CorruptFileError`."""
    from keras_robust.data import CorruptFileError

    content = read_json(path)
    if not isinstance(content, dict) or not isinstance(content.get("records"), list):
        raise CorruptFileError(path, 'it is valid JSON but has no "records" list', _remedy(path))
    return content


def verify_shards(directory: str, shards: Sequence[dict]) -> None:
    """Checks each shard's TFRecord file against the SHA-256 recorded when it was written.

    Raises:
        FileNotFoundError: a shard file is missing (the message names it).
        keras_robust.data.CorruptFileError: a shard's bytes changed (truncated,
            corrupted); the message names the shard and how to rewrite it.
    """
    from keras_robust.data import CorruptFileError

    for shard in shards:
        path = os.path.join(directory, shard["file"])
        if not os.path.isfile(path):
            raise FileNotFoundError(f"Shard file {path!r} is missing. {_remedy(path)}")
        digest = sha256_of(path)
        if digest != shard.get("sha256"):
            recorded = str(shard.get("sha256"))[:12]
            raise CorruptFileError(
                path, f"its SHA-256 {digest[:12]}... differs from the {recorded}... recorded "
                      "when it was written (truncated, corrupted or altered)",
                _remedy(path) + " Or pass verify=False to read it unchecked.")


def sha256_of(path: str) -> str:
    """The SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _bytes_feature(value: bytes) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _int_feature(value: int) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))


def serialize_example(image: np.ndarray, label: int, index: int, part: int, corruption: str,
                      severity: int) -> bytes:
    """One enhanced example as a deterministic `tf.train.Example` serialisation."""
    example = tf.train.Example(features=tf.train.Features(feature={
        "image": _bytes_feature(np.ascontiguousarray(image).tobytes()),
        "label": _int_feature(label),
        "index": _int_feature(index),
        "part": _int_feature(part),
        "corruption": _bytes_feature(corruption.encode()),
        "severity": _int_feature(severity),
    }))
    return example.SerializeToString(deterministic=True)


def write_shard(
    directory: str,
    shard: int,
    num_shards: int,
    images: np.ndarray,
    labels: np.ndarray,
    indices: np.ndarray,
    parts: np.ndarray,
    records: Sequence[dict],
) -> dict:
    """Writes one shard (TFRecord, then its sidecar), each atomically.

    Returns:
        The sidecar's content without the per-example records.
    """
    stem = shard_stem(shard, num_shards)
    path = os.path.join(directory, f"{stem}.tfrecord")
    temporary = temporary_path(path)
    with tf.io.TFRecordWriter(temporary) as writer:
        for image, label, index, part, record in zip(images, labels, indices, parts, records):
            writer.write(serialize_example(
                image, int(label), int(index), int(part), record.get("corruption", ""),
                int(record.get("severity", 0))))
    fsync_file(temporary)
    os.replace(temporary, path)
    fsync_directory(directory)
    counts = np.bincount(np.asarray(parts, np.int64), minlength=3)
    summary = {
        "shard": int(shard),
        "file": f"{stem}.tfrecord",
        "start": int(indices[0]) if len(indices) else 0,
        "stop": int(indices[-1]) + 1 if len(indices) else 0,
        "examples": int(len(indices)),
        "counts": {name: int(counts[k]) for k, name in enumerate(PARTS)},
        "sha256": sha256_of(path),
    }
    write_json_atomic(os.path.join(directory, f"{stem}.json"), {**summary, "records": list(records)})
    return summary


def finished_shard(directory: str, shard: int, num_shards: int, verify: bool = True) -> dict | None:
    """The sidecar of a finished shard, or None when the shard must be (re)written.

    A shard is finished when its sidecar exists and, with `verify`, the
    TFRecord file's SHA-256 matches the one recorded.
    """
    stem = shard_stem(shard, num_shards)
    sidecar = os.path.join(directory, f"{stem}.json")
    path = os.path.join(directory, f"{stem}.tfrecord")
    if not (os.path.isfile(sidecar) and os.path.isfile(path)):
        return None
    try:
        content = read_sidecar(sidecar)
    except ValueError:  # damaged (CorruptFileError): the shard is written again
        return None
    if verify and content.get("sha256") != sha256_of(path):
        return None
    return content


def remove_stale_temporaries(directory: str, shards: Sequence[int], num_shards: int) -> None:
    """Deletes temporary files left by a killed run for `shards` (this worker's only)."""
    for shard in shards:
        for path in glob.glob(os.path.join(directory, f"{shard_stem(shard, num_shards)}.*.tmp-*")):
            try:
                os.remove(path)
            except FileNotFoundError:
                pass


def read_plan(directory: str) -> dict:
    """The `plan.json` of an output folder.

    `plan.json` is written first, when a run starts, so it exists for
    unfinished runs too (unlike `metadata.json`).

    Args:
        directory: a folder written by `enhance` or `enhance_dataset`.

    Returns:
        The run's settings as a dict: `format`, `num_examples`, `num_shards`,
        `shard_size`, `ratio`, `planned_counts`, `seed`, `image_shape`,
        `image_dtype`, `attack`, `attack_batch_size`, `corruptions`,
        `severities` and `surrogates` (names and weight fingerprints).

    Raises:
        FileNotFoundError: the folder has no `plan.json`.
        ValueError: `plan.json` is not valid JSON or has another `format`
            than `FORMAT`.

    Example:

    >>> import tempfile
    >>> from keras_robust.datacentric import RunOptions, enhance
    >>> folder = tempfile.mkdtemp()
    >>> _ = enhance(np.zeros((4, 8, 8, 3), np.uint8), [0, 1, 2, 3], None, ratio=(1, 0, 0),
    ...             options=RunOptions(output_dir=folder, shard_size=2, progress=False))
    >>> plan = read_plan(folder)
    >>> plan["num_shards"], plan["planned_counts"]
    (2, {'adversarial': 0, 'clean': 4, 'corrupted': 0})
    """
    path = os.path.join(directory, PLAN_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{directory!r} is not an enhanced data set: no {PLAN_FILE} (expected a folder written "
            "by keras_robust.datacentric.enhance or enhance_dataset)."
        )
    plan = read_json(path)
    if plan.get("format") != FORMAT:
        raise ValueError(f"{path!r} has format {plan.get('format')!r}, expected {FORMAT!r}.")
    return upgraded(plan)


def upgraded(plan: Any) -> Any:
    """A plan (or metadata) with its `attack` in the current form (`Eq6Config.get_config()`).

    Files written before eq. 6 used `AttackConfig` hold the former keywords
    (`iterations`, `linf_epsilon`, ...); settings this version does not know
    are left as they are (a resumed run then reports a different run).
    """
    from keras_robust.datacentric.perturb import Eq6Config

    if not isinstance(plan, dict) or not isinstance(plan.get("attack"), dict):
        return plan
    try:
        attack = normalise(Eq6Config.from_config(plan["attack"]).get_config())
    except (TypeError, ValueError):
        return plan
    return {**plan, "attack": attack}


def shards_status(directory: str) -> tuple[dict, list[dict | None]]:
    """The plan and, per shard, its sidecar summary or None when not finished (not verified)."""
    plan = read_plan(directory)
    num_shards = int(plan["num_shards"])
    sidecars = [finished_shard(directory, s, num_shards, verify=False) for s in range(num_shards)]
    return plan, sidecars


def write_metadata(directory: str) -> dict:
    """Writes `metadata.json` once every shard is finished.

    Returns:
        The metadata.

    Raises:
        IncompleteOutputError: some shards are not finished yet.
    """
    plan, sidecars = shards_status(directory)
    missing = [s for s, c in enumerate(sidecars) if c is None]
    if missing:
        raise IncompleteOutputError(
            f"{directory!r}: {len(missing)} of {len(sidecars)} shards are not finished yet "
            f"(first missing: {missing[:5]}); run or resume the enhancement on every worker first."
        )
    totals = {name: 0 for name in PARTS}
    shards = []
    for content in sidecars:
        summary = {k: v for k, v in content.items() if k != "records"}
        shards.append(summary)
        for name in PARTS:
            totals[name] += int(summary["counts"][name])
    metadata = {**plan, "counts": totals, "num_examples_out": sum(totals.values()),
                "shards": shards}
    write_json_atomic(os.path.join(directory, METADATA_FILE), metadata)
    return metadata


def read_metadata(directory: str) -> dict:
    """The `metadata.json` of a finished output folder.

    Args:
        directory: a folder written by `enhance` or `enhance_dataset`.

    Returns:
        The settings (`attack`, `ratio`, `seed`, `corruptions`, ...), the
        surrogates' names and weight fingerprints, `counts` per part and the
        per-shard index `shards` (file, example range, counts, SHA-256).

    Raises:
        FileNotFoundError: not an output folder.
        IncompleteOutputError: the run has not finished every shard yet.
        keras_robust.data.CorruptFileError: `metadata.json` is damaged (the
            message says how to rebuild it).

    Example:

    >>> read_metadata("runs/enhanced")["counts"]  # doctest: +SKIP
    {'adversarial': 2000, 'clean': 0, 'corrupted': 8000}
    >>> import tempfile
    >>> from keras_robust.datacentric import RunOptions, enhance
    >>> folder = tempfile.mkdtemp()
    >>> _ = enhance(np.zeros((10, 8, 8, 3), np.uint8), np.arange(10), None, ratio=(1, 0, 4),
    ...             options=RunOptions(output_dir=folder, shard_size=4, progress=False))
    >>> metadata = read_metadata(folder)
    >>> metadata["counts"], [s["examples"] for s in metadata["shards"]]
    ({'adversarial': 0, 'clean': 2, 'corrupted': 8}, [4, 4, 2])
    """
    path = os.path.join(directory, METADATA_FILE)
    if not os.path.isfile(path):
        plan, sidecars = shards_status(directory)
        done = sum(c is not None for c in sidecars)
        raise IncompleteOutputError(
            f"{directory!r} is not finished: {done} of {len(sidecars)} shards written and no "
            f"{METADATA_FILE}. Resume the run (same arguments), or pass allow_incomplete=True to "
            "read the finished shards."
        )
    return upgraded(read_json(path))


def read_records(directory: str, allow_incomplete: bool = False) -> list[dict]:
    """The per-example records of every finished shard, in example order.

    Each record has `index`, `part` and, for corrupted examples,
    `corruption`, `severity` and `seed` (`keras_robust.corruptions.corrupt(
    original, corruption, severity, seed=seed)` regenerates the image); for
    adversarial ones `attack_seed`, `linf_norm` (of the L-inf perturbation) and
    `l2_norm` (of the L2 perturbation), and `attack` (the settings).

    Args:
        directory: a folder written by `enhance` or `enhance_dataset`.
        allow_incomplete: return the records of the finished shards of an
            unfinished run instead of raising.

    Returns:
        A list of dicts, one per example.

    Raises:
        IncompleteOutputError: the run is not finished (and not `allow_incomplete`).
        keras_robust.data.CorruptFileError: `metadata.json` or, of a finished
            run, a shard's sidecar is damaged (the message names it and the
            remedy); with `allow_incomplete`, a shard with a damaged sidecar
            counts as unfinished.

    Example:

    >>> import tempfile
    >>> from keras_robust.datacentric import RunOptions, enhance
    >>> x = np.random.default_rng(0).integers(0, 256, (6, 8, 8, 3), dtype=np.uint8)
    >>> folder = tempfile.mkdtemp()
    >>> result = enhance(x, np.arange(6), None, ratio=(1, 0, 2),
    ...                  options=RunOptions(output_dir=folder, progress=False))
    >>> records = read_records(folder)
    >>> len(records), sorted(r["part"] for r in records)
    (6, ['clean', 'clean', 'corrupted', 'corrupted', 'corrupted', 'corrupted'])
    >>> r = next(r for r in records if r["part"] == "corrupted")
    >>> sorted(r)
    ['corruption', 'index', 'part', 'seed', 'severity']
    >>> again = keras_robust.corruptions.corrupt(x[r["index"]], r["corruption"], r["severity"],
    ...                                          seed=r["seed"])
    >>> bool(np.array_equal(again, result.images[r["index"]]))    # the record regenerates it
    True
    """
    if allow_incomplete:
        plan, sidecars = shards_status(directory)
        stems = [shard_stem(s, int(plan["num_shards"]))
                 for s, c in enumerate(sidecars) if c is not None]
    else:  # every shard of a finished run: a damaged sidecar is an error, not a skipped shard
        plan = read_metadata(directory)
        stems = [os.path.splitext(s["file"])[0] for s in plan["shards"]]
    records = []
    for stem in stems:
        records.extend(read_sidecar(os.path.join(directory, f"{stem}.json"))["records"])
    return with_attack_settings(records, plan["attack"])


def with_attack_settings(records: Sequence[dict], settings: dict) -> list[dict]:
    """Adds the attack settings to the adversarial records (shared dict, not copied)."""
    return [({**r, "attack": settings} if r["part"] == "adversarial" else dict(r)) for r in records]


def _parser(plan: dict):
    shape = [int(d) for d in plan["image_shape"]]
    dtype = _DTYPES[plan["image_dtype"]]
    features = {
        "image": tf.io.FixedLenFeature([], tf.string),
        "label": tf.io.FixedLenFeature([], tf.int64),
        "part": tf.io.FixedLenFeature([], tf.int64),
    }

    @tf.autograph.experimental.do_not_convert
    def parse(serialized):
        example = tf.io.parse_single_example(serialized, features)
        image = tf.reshape(tf.io.decode_raw(example["image"], dtype), shape)
        return image, tf.cast(example["label"], tf.int32), tf.cast(example["part"], tf.int32)

    return parse


def _in_parts(keep: tf.Tensor):
    @tf.autograph.experimental.do_not_convert
    def predicate(image, label, part):
        return tf.reduce_any(tf.equal(part, keep))

    return predicate


@tf.autograph.experimental.do_not_convert
def _drop_part(image, label, part):
    return image, label


def load(
    output_dir: str,
    batch_size: int | None = 128,
    *,
    shuffle: bool = False,
    augment: bool = False,
    parts: Sequence[str] | None = None,
    with_part: bool = False,
    seed: int | None = None,
    drop_remainder: bool = False,
    cache: bool = False,
    allow_incomplete: bool = False,
    verify: bool = True,
) -> tf.data.Dataset:
    """Reads an enhanced data set as a `tf.data` pipeline.

    Yields `(float32 images in [0, 1], int32 labels)` (and the int32 part
    index, 0 clean / 1 adversarial / 2 corrupted, with `with_part`), in
    example order unless shuffled. Without `with_part` the pipeline is
    `keras_robust.data.pipeline` over the records, so it behaves exactly like
    `keras_robust.data.load`.

    Args:
        output_dir: a folder written by `enhance` or `enhance_dataset`.
        batch_size: batch size, or None for single examples.
        shuffle: shuffle examples each epoch.
        augment: pad-4 random crop and random horizontal flip.
        parts: keep only these parts (names of `PARTS`); None keeps all.
        with_part: also yield the part index.
        seed: shuffling and augmentation seed.
        drop_remainder: drop the last partial batch.
        cache: cache decoded examples in memory.
        allow_incomplete: read the finished shards of an unfinished run
            instead of raising.
        verify: check every shard's SHA-256 against the one recorded when it
            was written, before reading (one pass over the files). With
            False, a damaged shard surfaces only while iterating, as a
            `tf.errors.DataLossError` (flipped bytes) or a cardinality error
            (a truncated file), neither naming the file.

    Returns:
        A `tf.data.Dataset`.

    Raises:
        FileNotFoundError: not an output folder, or a shard file is missing.
        IncompleteOutputError: the run is not finished (and not `allow_incomplete`).
        keras_robust.data.CorruptFileError: `metadata.json` is damaged, or
            (with `verify`) a shard's bytes differ from its recorded SHA-256;
            the message names the file and how to rewrite it.

    Example:

    >>> train = load("runs/enhanced", batch_size=128, shuffle=True, augment=True)  # doctest: +SKIP
    >>> import tempfile
    >>> from keras_robust.datacentric import RunOptions, enhance
    >>> x = np.random.default_rng(0).integers(0, 256, (10, 8, 8, 3), dtype=np.uint8)
    >>> folder = tempfile.mkdtemp()
    >>> _ = enhance(x, np.arange(10), None, ratio=(1, 0, 4),
    ...             options=RunOptions(output_dir=folder, progress=False))
    >>> train = load(folder, batch_size=4, shuffle=True, augment=True, seed=0)
    >>> images, labels = next(iter(train))
    >>> len(train), images.shape, images.dtype, labels.dtype
    (3, TensorShape([4, 8, 8, 3]), tf.float32, tf.int32)
    >>> corrupted = load(folder, batch_size=None, parts=["corrupted"], with_part=True)
    >>> len(corrupted), sorted({int(part) for _, _, part in corrupted})
    (8, [2])
    >>> model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
    ...                           keras.layers.Dense(10)])
    >>> model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    >>> len(model.fit(train, epochs=1, verbose=0).history["loss"])
    1
    """
    from keras_robust import data

    if allow_incomplete:
        plan, sidecars = shards_status(output_dir)
        shards = [c for c in sidecars if c is not None]
    else:
        plan = read_metadata(output_dir)
        shards = plan["shards"]
    if verify:
        verify_shards(output_dir, shards)
    files = [os.path.join(output_dir, s["file"]) for s in shards]
    keep = None
    if parts is not None:
        parts = [parts] if isinstance(parts, str) else list(parts)
        unknown = [p for p in parts if p not in PARTS]
        if unknown or not parts:
            raise ValueError(f"`parts` must name some of {PARTS}, got {parts!r}.")
        keep = tf.constant([PARTS.index(p) for p in parts], tf.int32)
    if not files:
        raise IncompleteOutputError(f"{output_dir!r} has no finished shard yet.")
    selected = PARTS if parts is None else parts
    count = sum(int(s["counts"][name]) for s in shards for name in selected)
    dataset = tf.data.TFRecordDataset(files).map(_parser(plan), num_parallel_calls=tf.data.AUTOTUNE)
    if keep is not None:
        dataset = dataset.filter(_in_parts(keep))
    # A known size gives Keras its steps per epoch (and `len`) up front.
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(count))
    if not with_part:
        return data.pipeline(
            dataset.map(_drop_part), batch_size=batch_size,
            augment=augment, shuffle=shuffle, seed=seed, drop_remainder=drop_remainder, cache=cache,
        )

    @tf.autograph.experimental.do_not_convert
    def to_float(image, label, part):
        image, label = data.example_to_float(image, label)
        return image, label, part

    dataset = dataset.map(to_float, num_parallel_calls=tf.data.AUTOTUNE)
    if cache:
        dataset = dataset.cache()
    if shuffle:
        dataset = dataset.shuffle(50_000, seed=seed, reshuffle_each_iteration=True)
    if augment:
        @tf.autograph.experimental.do_not_convert
        def augment_fn(image, label, part):
            image, label = data.pad_crop_flip(image, label, seed=seed)
            return image, label, part

        dataset = dataset.map(augment_fn, num_parallel_calls=tf.data.AUTOTUNE)
    if batch_size is not None:
        dataset = dataset.batch(check_positive_int(batch_size, "batch_size"),
                                drop_remainder=drop_remainder)
    return dataset.prefetch(tf.data.AUTOTUNE)


__all__ = [
    "FORMAT", "IncompleteOutputError", "METADATA_FILE", "PLAN_FILE", "load", "read_metadata",
    "read_plan", "read_records",
]
