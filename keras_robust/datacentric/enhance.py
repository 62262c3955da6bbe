"""The data-centric dataset enhancement (Zhong, Wu, Liu & Jiang, AAAI 2022).

The training set is split at random into clean / adversarial / corrupted
parts in the ratio alpha1:alpha2:alpha3 (the paper: 0:1:4). Clean examples
stay as they are; adversarial ones get the sum of an L-inf and an L2
transferable perturbation crafted on a surrogate ensemble by eq. 6
(`keras_robust.datacentric.perturb`); corrupted ones get one corruption of
`keras_robust.corruptions.DATACENTRIC_14` at a random severity. Labels are
kept, and the output has exactly as many examples as the input.

Two entry points share one shard loop:

- `enhance(images, labels, surrogates, ...)` for arrays in memory; returns an
  `EnhancementResult` and, with `output_dir`, also writes the shards;
- `enhance_dataset(dataset, surrogates, output_dir, ...)` streams a
  `tf.data.Dataset` shard by shard, for data that does not fit in memory.

Work is done in shards of `shard_size` consecutive examples. Every random
decision derives from the seed and the example's (or the shard's and
batch's) index, so shards are independent: a killed run resumes where it
stopped and writes the same bytes as an uninterrupted run; `num_workers`
processes (or `TF_CONFIG` tasks) split the shards (`shard % num_workers ==
worker_index`); inside a process the attack batches are split over the
replicas of the current `tf.distribute` strategy.

Example:

```python
import keras_robust as kr
from keras_robust import datacentric
x, y = kr.data.load_arrays("../shared/datasets/cifar10_jpeg.npz", "train", limit=10000)
surrogates = datacentric.surrogates.train_surrogates(["resnet", "densenet", "mobilenet"], train, 4)
result = datacentric.enhance(x, y, surrogates, attack=datacentric.Eq6Config().replace(steps=50),
                             options=datacentric.RunOptions(output_dir="runs/enhanced"))
model.fit(datacentric.load("runs/enhanced", shuffle=True, augment=True), epochs=10)
```
"""
from __future__ import annotations

import dataclasses
import os
import time
from typing import Any, Callable, Iterator, NamedTuple, Sequence

import numpy as np
import tensorflow as tf

from keras_robust import progress as _progress
from keras_robust._validation import check_positive_int
from keras_robust.attacks.config import AttackConfig
from keras_robust.corruptions import DATACENTRIC_14
from keras_robust.data import CorruptFileError
from keras_robust.datacentric import _inputs, records
from keras_robust.datacentric.corrupted import SEVERITIES, check_catalogue, corrupt_examples
from keras_robust.datacentric.options import RunOptions, resolve
from keras_robust.datacentric.perturb import (
    Crafter,
    Eq6Config,
    as_surrogate_list,
    model_fingerprint,
    surrogate_names,
)
from keras_robust.datacentric.plan import (
    ADVERSARIAL,
    CORRUPTED,
    PARTS,
    Plan,
    Worker,
    attack_seed,
    make_plan,
    resolve_worker,
)

class Progress(NamedTuple):
    """What a progress callback receives after each shard.

    `enhance(..., options=RunOptions(progress=callback))` calls
    `callback(event)` after each shard is written (or skipped); an exception
    raised there stops the run, and the shards finished so far stay valid for
    a resume.

    Attributes:
        shard: the shard just finished (or skipped as finished earlier).
        skipped: True when the shard was finished by an earlier run.
        shards_done: shards of this worker finished so far (this run and earlier).
        shards_total: shards this worker owns.
        images: examples in the shard.
        seconds: seconds this run has spent so far.
        images_per_second: examples processed by this run per second.

    Example:

    >>> import tempfile
    >>> x = np.random.default_rng(0).integers(0, 256, (10, 8, 8, 3), dtype=np.uint8)
    >>> surrogate = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
    ...                               keras.layers.Dense(10)])
    >>> attack, events = Eq6Config().replace(steps=1), []
    >>> options = RunOptions(shard_size=4, output_dir=tempfile.mkdtemp(), progress=events.append)
    >>> _ = enhance(x, np.arange(10), surrogate, attack=attack, options=options)
    >>> [(e.shard, e.images, e.skipped) for e in events]
    [(0, 4, False), (1, 4, False), (2, 2, False)]
    >>> events[-1].shards_done == events[-1].shards_total
    True
    >>> resumed = []
    >>> _ = enhance(x, np.arange(10), surrogate, attack=attack,
    ...             options=options.replace(progress=resumed.append))  # every shard is finished
    >>> [e.skipped for e in resumed]
    [True, True, True]
    """

    shard: int
    skipped: bool
    shards_done: int
    shards_total: int
    images: int
    seconds: float
    images_per_second: float


@dataclasses.dataclass
class EnhancementResult:
    """An enhanced data set in memory.

    Attributes:
        images: the enhanced images, uint8 when the input was uint8, else
            float32 in [0, 1].
        labels: int32 labels (unchanged from the input).
        parts: str array, per example "clean", "adversarial" or "corrupted".
        details: per example a dict: `index`, `part`; for corrupted ones
            `corruption`, `severity`, `seed`; for adversarial ones
            `attack_seed`, `linf_norm`, `l2_norm` and `attack` (the settings).
        indices: the examples' indices in the input (all of them unless this
            worker processed only its shards of a multi-worker run).
        metadata: settings, counts, surrogates' names, seed (as written to
            `metadata.json` when there is an output folder).
        output_dir: where the shards are, or None.

    Example:

    >>> x = np.random.default_rng(0).integers(0, 256, (10, 8, 8, 3), dtype=np.uint8)
    >>> surrogate = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
    ...                               keras.layers.Dense(10)])
    >>> result = enhance(x, np.arange(10), surrogate, attack=Eq6Config().replace(steps=2),
    ...                  options=RunOptions(progress=False))
    >>> result.counts, len(result), result.images.dtype
    ({'clean': 0, 'adversarial': 2, 'corrupted': 8}, 10, dtype('uint8'))
    >>> adversarial = [d for d in result.details if d["part"] == "adversarial"]
    >>> sorted(adversarial[0])
    ['attack', 'attack_seed', 'index', 'l2_norm', 'linf_norm', 'part']
    >>> all(d["linf_norm"] <= 8 / 255 + 1e-6 and d["l2_norm"] <= 1 + 1e-6 for d in adversarial)
    True
    >>> images, labels = next(iter(result.to_dataset(batch_size=4, shuffle=True)))
    >>> images.shape, images.dtype, labels.dtype
    (TensorShape([4, 8, 8, 3]), tf.float32, tf.int32)
    >>> model.fit(result.to_dataset(batch_size=128, shuffle=True), epochs=5)  # doctest: +SKIP
    """

    images: np.ndarray
    labels: np.ndarray
    parts: np.ndarray
    details: list[dict]
    indices: np.ndarray
    metadata: dict
    output_dir: str | None = None

    @property
    def counts(self) -> dict[str, int]:
        """Examples per part."""
        return {name: int(np.sum(self.parts == name)) for name in PARTS}

    def __len__(self) -> int:
        return len(self.labels)

    def to_dataset(self, batch_size: int | None = 128, *, shuffle: bool = False,
                   augment: bool = False, seed: int | None = None,
                   drop_remainder: bool = False) -> tf.data.Dataset:
        """The examples as a `keras_robust.data.from_arrays` pipeline of (float32 [0, 1], int32).

        Example:

        >>> train = result.to_dataset(128, shuffle=True, augment=True)
        """
        from keras_robust import data

        return data.from_arrays(self.images, self.labels, batch_size=batch_size, shuffle=shuffle,
                                augment=augment, seed=seed, drop_remainder=drop_remainder)


def _progress_printer() -> Callable[[Progress], None]:
    def report(event: Progress) -> None:
        if event.skipped:
            _progress.line(f"[enhance] shard {event.shard}: finished by an earlier run, skipped "
                           f"({event.shards_done}/{event.shards_total} shards done)")
            return
        remaining = event.shards_total - event.shards_done
        rate = event.images_per_second
        eta = f", eta {remaining * event.images / rate / 60:.1f} min" if rate > 0 and remaining else ""
        _progress.line(f"[enhance] shard {event.shard} ({event.images} examples) done: "
                       f"{event.shards_done}/{event.shards_total} shards, {rate:.1f} img/s{eta}")

    return report


@dataclasses.dataclass
class _Run:
    """Everything one shard needs, shared by `enhance` and `enhance_dataset`."""

    plan: Plan
    attack: Eq6Config
    crafter: Crafter | None
    corruptions: tuple[str, ...]
    severities: tuple[int, ...]
    batch_size: int
    image_shape: tuple[int, int, int]
    image_dtype: str
    output_dir: str | None
    worker: Worker
    progress: Callable[[Progress], None] | None
    bar: bool = False  # a per-batch bar within each shard (`progress=True`)

    def process(self, shard: int, images: np.ndarray, labels: np.ndarray):
        """Enhances one shard; returns (images in the storage dtype, part indices, records)."""
        start, stop = self.plan.shard_range(shard)
        if len(images) != stop - start:
            raise ValueError(
                f"Shard {shard} should hold examples [{start}, {stop}) but got {len(images)}; the "
                "data changed size since the plan was made (num_examples is wrong?)."
            )
        parts = np.asarray(self.plan.parts[start:stop])
        indices = np.arange(start, stop)
        out = images.copy()
        shard_records: list[dict | None] = [None] * len(images)
        for position in np.flatnonzero(parts == 0):
            shard_records[position] = {"index": int(indices[position]), "part": "clean"}

        corrupted = np.flatnonzero(parts == CORRUPTED)
        adversarial = np.flatnonzero(parts == ADVERSARIAL)
        steps = bool(len(corrupted)) + -(-len(adversarial) // self.batch_size)
        with _progress.bar(f"[enhance] shard {shard + 1}/{self.plan.num_shards} ", steps,
                           self.bar) as bar:
            self._corrupt_and_attack(shard, images, labels, indices, out, shard_records,
                                     corrupted, adversarial, bar)
        return out, parts, shard_records

    def _corrupt_and_attack(self, shard, images, labels, indices, out, shard_records, corrupted,
                            adversarial, bar) -> None:
        """Fills `out` and `shard_records` for the corrupted, then the adversarial part."""
        if len(corrupted):
            originals = _inputs.to_uint8(images[corrupted])
            result, corruption_records = corrupt_examples(
                originals, indices[corrupted], self.plan.seed, self.corruptions, self.severities)
            out[corrupted] = result if out.dtype == np.uint8 else result.astype(np.float32) / 255.0
            for position, record in zip(corrupted, corruption_records):
                shard_records[position] = record
            bar.update()

        for batch, begin in enumerate(range(0, len(adversarial), self.batch_size)):
            positions = adversarial[begin:begin + self.batch_size]
            x = images[positions]
            x = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
            seed = attack_seed(self.plan.seed, shard, batch)
            delta_inf, delta_2 = self.crafter(x, labels[positions], seed)
            x_adv = np.clip(x + delta_inf + delta_2, 0.0, 1.0)
            out[positions] = _inputs.to_uint8(x_adv) if out.dtype == np.uint8 else x_adv
            linf = np.abs(delta_inf).reshape(len(x), -1).max(axis=1)
            l2 = np.sqrt(np.square(delta_2.astype(np.float64)).reshape(len(x), -1).sum(axis=1))
            for j, position in enumerate(positions):
                shard_records[position] = {
                    "index": int(indices[position]), "part": "adversarial", "attack_seed": int(seed),
                    "linf_norm": round(float(linf[j]), 7), "l2_norm": round(float(l2[j]), 7),
                }
            bar.update()

    def owned_shards(self) -> list[int]:
        return [s for s in range(self.plan.num_shards) if self.worker.owns(s)]

    def loop(self, shards: Iterator[tuple[int, np.ndarray | None, np.ndarray | None]]):
        """Runs the shard loop; yields (shard, images, labels, parts, records, skipped)."""
        owned = self.owned_shards()
        if self.output_dir:
            records.remove_stale_temporaries(self.output_dir, owned, self.plan.num_shards)
        done, processed, start_time = 0, 0, time.perf_counter()
        for shard, images, labels in shards:
            finished = None
            if self.output_dir:
                finished = records.finished_shard(self.output_dir, shard, self.plan.num_shards)
            if finished is not None:
                done += 1
                yield shard, None, None, None, finished["records"], True
                self._report(shard, True, done, len(owned), finished["examples"], processed,
                             start_time)
                continue
            images = _checked_shard_images(images, self.image_shape, self.image_dtype, shard)
            labels = _inputs.sparse_labels(labels, len(images))
            out, parts, shard_records = self.process(shard, images, labels)
            if self.output_dir:
                records.write_shard(self.output_dir, shard, self.plan.num_shards, out, labels,
                                    np.arange(*self.plan.shard_range(shard)), parts, shard_records)
            done += 1
            processed += len(out)
            yield shard, out, labels, parts, shard_records, False
            self._report(shard, False, done, len(owned), len(out), processed, start_time)

    def _report(self, shard, skipped, done, total, images, processed, start_time):
        if self.progress is None:
            return
        seconds = time.perf_counter() - start_time
        self.progress(Progress(shard, skipped, done, total, int(images), seconds,
                               processed / seconds if seconds > 0 else 0.0))


def _checked_shard_images(images, image_shape, image_dtype, shard) -> np.ndarray:
    images = _inputs.image_array(images, f"images of shard {shard}")
    if tuple(images.shape[1:]) != tuple(image_shape):
        raise ValueError(f"Shard {shard} has images {images.shape[1:]}, expected {image_shape}.")
    expected = np.uint8 if image_dtype == "uint8" else np.float32
    if images.dtype != expected:
        raise TypeError(f"Shard {shard} has dtype {images.dtype}, the run started with {image_dtype}.")
    return images


def _prepare(
    num_examples: int,
    image_shape: tuple[int, ...],
    image_dtype: str,
    labels_for_check: np.ndarray | None,
    surrogates: Any,
    *,
    ratio: Sequence[float],
    attack: Eq6Config,
    corruptions: Sequence[str],
    severities: Sequence[int],
    options: RunOptions,
) -> _Run:
    batch_size, output_dir, progress = options.batch_size, options.output_dir, options.progress
    num_workers = options.num_workers
    corruptions, severities = check_catalogue(corruptions, severities)
    plan = make_plan(num_examples, ratio, options.seed, options.shard_size)
    crafter, models = None, []
    if plan.counts["adversarial"] or surrogates is not None:
        if surrogates is None:
            raise ValueError(
                "The adversarial part is not empty (ratio "
                f"{plan.ratio}) but `surrogates` is None; pass the surrogate models."
            )
        models = as_surrogate_list(surrogates)
        if labels_for_check is not None:
            _inputs.check_surrogates(models, image_shape, labels_for_check)
        crafter = Crafter(models, attack, options.strategy, batch_size)
    if output_dir is None:
        worker = Worker()
        if num_workers not in (None, 1):
            raise ValueError("A multi-worker run needs an `output_dir` the workers share.")
    else:
        # A MultiWorkerMirroredStrategy reads the same TF_CONFIG, so its workers agree.
        worker = resolve_worker(options.worker_index, num_workers)
    show_bar = progress is True
    if progress is True:
        progress = _progress_printer()
    elif progress is False or progress is None:
        progress = None
    run = _Run(plan, attack, crafter, corruptions, severities, batch_size,
               tuple(int(d) for d in image_shape), image_dtype, output_dir, worker, progress,
               show_bar)
    if output_dir is not None:
        _start_output(run, models, options.overwrite)
    return run


def _plan_content(run: _Run, models: Sequence[Any]) -> dict:
    return records.normalise({
        "format": records.FORMAT,
        "num_examples": run.plan.num_examples,
        "num_shards": run.plan.num_shards,
        "shard_size": run.plan.shard_size,
        "ratio": list(run.plan.ratio),
        "planned_counts": run.plan.counts,
        "seed": run.plan.seed,
        "image_shape": list(run.image_shape),
        "image_dtype": run.image_dtype,
        "attack": run.attack.get_config(),
        "attack_batch_size": run.batch_size,
        "corruptions": list(run.corruptions),
        "severities": list(run.severities),
        "surrogates": [{"name": name, "fingerprint": model_fingerprint(model)}
                       for name, model in zip(surrogate_names(models), models)],
    })


def _start_output(run: _Run, models: Sequence[Any], overwrite: bool) -> None:
    directory = run.output_dir
    os.makedirs(directory, exist_ok=True)
    content = _plan_content(run, models)
    path = os.path.join(directory, records.PLAN_FILE)
    existing = None
    if os.path.isfile(path):
        try:
            existing = records.read_json(path)
        except CorruptFileError:
            if not overwrite:
                raise
            _clear(directory)  # the remedy its message gives: start again
    if existing is not None:
        existing = records.upgraded(existing)  # a plan of an older version: the new form
        if existing != content:
            if not overwrite:
                differing = sorted(k for k in set(existing) | set(content)
                                   if existing.get(k) != content.get(k))
                raise ValueError(
                    f"{directory!r} holds a different enhancement run (differs in: "
                    f"{', '.join(differing)}). Use another output_dir, the same arguments to resume, "
                    "or overwrite=True to delete it and start again."
                )
            _clear(directory)
    records.write_json_atomic(path, content)


def _clear(directory: str) -> None:
    for name in os.listdir(directory):
        if name.startswith("shard-") or name in (records.PLAN_FILE, records.METADATA_FILE):
            os.remove(os.path.join(directory, name))


def _finish(run: _Run) -> dict | None:
    """Writes metadata.json when every shard (of every worker) is finished."""
    if run.output_dir is None:
        return None
    try:
        return records.write_metadata(run.output_dir)
    except records.IncompleteOutputError as error:
        if run.progress is not None:
            _progress.line(f"[enhance] worker {run.worker.index}/{run.worker.count} done; {error}")
        return None


def enhance(
    images: Any,
    labels: Any,
    surrogates: Any,
    ratio: Sequence[float] = (0, 1, 4),
    attack: Eq6Config | AttackConfig | None = None,
    *,
    corruptions: Sequence[str] = DATACENTRIC_14,
    severities: Sequence[int] = SEVERITIES,
    options: RunOptions | None = None,
    **deprecated: Any,
) -> EnhancementResult:
    """Enhances a data set in memory by the data-centric algorithm of the paper.

    The examples are split at random into clean / adversarial / corrupted
    parts with exactly `keras_robust.datacentric.plan.part_counts` examples
    each (every part within one example of its share of `ratio`). Adversarial
    examples are `clip(x + delta_linf + delta_l2, 0, 1)` with both
    perturbations crafted independently from x on the surrogate ensemble by
    eq. 6; corrupted ones get one corruption of `corruptions` at a severity of
    `severities`. Labels are unchanged; as many examples come out as went in.

    Args:
        images: uint8 (0..255) or float [0, 1] images [N, H, W, C], C 1 or 3.
            The result has the same convention: uint8 in, uint8 out (the
            adversarial images rounded to the nearest level); float in,
            float32 out.
        labels: class indices [N].
        surrogates: a Keras model, a list of models or an
            `keras_robust.attacks.Ensemble`, mapping [0, 1] images to logits
            (see `keras_robust.datacentric.surrogates`). May be None when the
            adversarial part is empty.
        ratio: clean:adversarial:corrupted (the paper: 0:1:4).
        attack: the eq. 6 attacks: an `Eq6Config` (default the paper's: 300
            steps, L-inf 8/255 step 2/255 and L2 1.0 step 0.025, logit loss,
            momentum 1, input diversity 0.7, a 5x5 smoothing kernel; e.g.
            `Eq6Config().replace(steps=50)`), or one `AttackConfig` for that
            ball alone.
        corruptions: corruption names (default the 14 of the paper).
        severities: severities to draw from.
        options: a `RunOptions` (seed, batch and shard size, `output_dir`,
            progress, strategy, workers, overwrite); default `RunOptions()`.
            With `output_dir`, the shards are also written there (resumable).
        **deprecated: the former keywords (`iterations`, `linf_epsilon`, ...,
            `seed`, `output_dir`, ...), with a `DeprecationWarning`; see
            `keras_robust.datacentric.options.resolve`.

    Returns:
        An `EnhancementResult` (only this worker's shards in a multi-worker run).

    Raises:
        ValueError, TypeError: bad images, labels, ratio, budgets, corruption
            names, or an `output_dir` holding a different run.

    Example:

    >>> result = enhance(x_train, y_train, [resnet, densenet, mobilenet],
    ...                  attack=Eq6Config().replace(steps=50),
    ...                  options=RunOptions(output_dir="runs/enhanced"))  # doctest: +SKIP
    >>> result.counts  # doctest: +SKIP
    {'clean': 0, 'adversarial': 2000, 'corrupted': 8000}
    >>> import tempfile
    >>> rng = np.random.default_rng(0)
    >>> x, y = rng.integers(0, 256, (10, 8, 8, 3), dtype=np.uint8), rng.integers(0, 10, 10)
    >>> surrogates = [keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
    ...                                 keras.layers.Dense(10)]) for _ in range(2)]
    >>> options = RunOptions(output_dir=tempfile.mkdtemp(), shard_size=4, progress=False)
    >>> result = enhance(x, y, surrogates, attack=Eq6Config().replace(steps=2), options=options)
    >>> result.counts, result.images.shape, result.images.dtype
    ({'clean': 0, 'adversarial': 2, 'corrupted': 8}, (10, 8, 8, 3), dtype('uint8'))
    >>> bool(np.array_equal(result.labels, y)), result.metadata["num_shards"]
    (True, 3)
    >>> again = enhance(x, y, surrogates, attack=Eq6Config().replace(steps=2),
    ...                 options=options)          # resumes: every shard is read back, not redone
    >>> bool(np.array_equal(again.images, result.images))
    True
    """
    attack, options = resolve(attack, options, deprecated, "enhance")
    images = _inputs.image_array(images)
    labels = _inputs.sparse_labels(labels, len(images))
    run = _prepare(
        len(images), images.shape[1:], "uint8" if images.dtype == np.uint8 else "float32", labels,
        surrogates, ratio=ratio, attack=attack, corruptions=corruptions, severities=severities,
        options=options,
    )

    def shards():
        for shard in run.owned_shards():
            start, stop = run.plan.shard_range(shard)
            yield shard, images[start:stop], labels[start:stop]

    out_images = np.empty_like(images)
    all_records: list[dict] = []
    covered = []
    for shard, out, _, _, shard_records, skipped in run.loop(shards()):
        start, stop = run.plan.shard_range(shard)
        if skipped:
            out = _read_shard_images(run, shard)
        out_images[start:stop] = out
        all_records.extend(shard_records)
        covered.append(np.arange(start, stop))
    metadata = _finish(run) or _metadata_in_memory(run, all_records)
    indices = np.concatenate(covered) if covered else np.zeros([0], np.int64)
    if len(indices) != len(images):
        out_images = out_images[indices]
    parts = np.asarray([r["part"] for r in all_records])
    return EnhancementResult(
        images=out_images, labels=labels[indices], parts=parts,
        details=records.with_attack_settings(all_records, run.attack.get_config()),
        indices=indices, metadata=metadata, output_dir=options.output_dir,
    )


def _metadata_in_memory(run: _Run, all_records: Sequence[dict]) -> dict:
    counts = {name: 0 for name in PARTS}
    for record in all_records:
        counts[record["part"]] += 1
    models = run.crafter.surrogates if run.crafter is not None else []
    return {**_plan_content(run, models), "counts": counts,
            "num_examples_out": int(sum(counts.values()))}


def _read_shard_images(run: _Run, shard: int) -> np.ndarray:
    stem = records.shard_stem(shard, run.plan.num_shards)
    dataset = tf.data.TFRecordDataset(os.path.join(run.output_dir, f"{stem}.tfrecord"))
    dtype = np.uint8 if run.image_dtype == "uint8" else np.float32
    out = []
    for serialized in dataset:
        example = tf.train.Example.FromString(serialized.numpy())
        raw = example.features.feature["image"].bytes_list.value[0]
        out.append(np.frombuffer(raw, dtype).reshape(run.image_shape))
    return np.stack(out)


def enhance_dataset(
    dataset: tf.data.Dataset,
    surrogates: Any,
    output_dir: str | None = None,
    ratio: Sequence[float] = (0, 1, 4),
    attack: Eq6Config | AttackConfig | None = None,
    *,
    num_examples: int | None = None,
    corruptions: Sequence[str] = DATACENTRIC_14,
    severities: Sequence[int] = SEVERITIES,
    options: RunOptions | None = None,
    **deprecated: Any,
) -> dict | None:
    """Enhances a `tf.data.Dataset` shard by shard, writing TFRecords (for data too big for memory).

    Same algorithm, settings and output as `enhance` with an output folder:
    the same data, seed and `shard_size` give byte-identical shards either
    way. Only one shard of images is in memory at a time. `ratio`, `attack`,
    `corruptions`, `severities`, `options` and `**deprecated` are as in
    `enhance`.

    Args:
        dataset: `(image, label)` examples, unbatched or batched, images uint8
            (0..255) or float in [0, 1] with a fixed shape, labels class indices.
            It must yield the same examples in the same order on every pass
            (no reshuffling), as a resumed run reads it again.
        surrogates: see `enhance`.
        output_dir: where the shards go (required, here or as
            `options.output_dir`).
        num_examples: the number of examples; default the dataset's
            cardinality, else one counting pass over it.

    Returns:
        The metadata once every shard of every worker is finished, else None
        (other workers still running).

    Example:

    >>> ds = tfds.load("cifar10", split="train", as_supervised=True)  # doctest: +SKIP
    >>> enhance_dataset(ds, surrogates, "runs/enhanced")  # doctest: +SKIP
    >>> import tempfile
    >>> x = np.random.default_rng(0).integers(0, 256, (10, 8, 8, 3), dtype=np.uint8)
    >>> ds = tf.data.Dataset.from_tensor_slices((x, np.arange(10))).batch(3)
    >>> surrogate = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
    ...                               keras.layers.Dense(10)])
    >>> folder, from_arrays = tempfile.mkdtemp(), tempfile.mkdtemp()
    >>> attack, options = Eq6Config().replace(steps=2), RunOptions(shard_size=4, progress=False)
    >>> metadata = enhance_dataset(ds, surrogate, folder, attack=attack, options=options)
    >>> metadata["counts"], metadata["num_shards"]
    ({'clean': 0, 'adversarial': 2, 'corrupted': 8}, 3)
    >>> same = enhance(x, np.arange(10), surrogate, attack=attack,
    ...                options=options.replace(output_dir=from_arrays))  # the same run, from arrays
    >>> [s["sha256"] for s in same.metadata["shards"]] == [s["sha256"] for s in metadata["shards"]]
    True
    >>> train = keras_robust.datacentric.load(folder, batch_size=4, shuffle=True, augment=True)
    >>> len(train)
    3
    """
    attack, options = resolve(attack, options, deprecated, "enhance_dataset")
    if not isinstance(dataset, tf.data.Dataset):
        raise TypeError(
            f"`dataset` must be a tf.data.Dataset of (image, label), got {type(dataset).__name__}; "
            "use `enhance` for arrays."
        )
    if output_dir is not None and options.output_dir not in (None, output_dir):
        raise ValueError(f"Two output folders: output_dir={output_dir!r} and "
                         f"options.output_dir={options.output_dir!r}.")
    options = options.replace(output_dir=output_dir or options.output_dir)
    if not options.output_dir:
        raise ValueError("`output_dir` is required: enhance_dataset writes TFRecord shards.")
    dataset, image_spec = _examples_of(dataset)
    if num_examples is None:
        cardinality = int(dataset.cardinality())
        num_examples = cardinality if cardinality >= 0 else int(
            dataset.reduce(np.int64(0), _count))
    num_examples = check_positive_int(num_examples, "num_examples")
    image_dtype = "uint8" if image_spec.dtype == tf.uint8 else "float32"
    run = _prepare(
        num_examples, tuple(image_spec.shape), image_dtype, None, surrogates, ratio=ratio,
        attack=attack, corruptions=corruptions, severities=severities, options=options,
    )
    for _ in run.loop(_dataset_shards(dataset, run, image_dtype)):
        pass
    return _finish(run)


def _examples_of(dataset: tf.data.Dataset) -> tuple[tf.data.Dataset, tf.TensorSpec]:
    """`dataset` as unbatched (image, label) pairs, and the images' spec (checked)."""
    spec = dataset.element_spec
    if not isinstance(spec, tuple) or len(spec) < 2:
        raise ValueError(
            f"`dataset` must yield (image, label) pairs, got elements of spec {spec}."
        )
    image_spec = spec[0]
    if image_spec.shape.rank == 4:
        dataset = dataset.unbatch()
        image_spec = dataset.element_spec[0]
    if image_spec.shape.rank != 3 or None in image_spec.shape:
        raise ValueError(
            f"`dataset` images must have a fixed shape (H, W, C), got {image_spec.shape}; resize "
            "them first."
        )
    if image_spec.dtype not in (tf.uint8, tf.float32, tf.float16, tf.float64):
        raise TypeError(
            f"`dataset` images must be uint8 (0..255) or float in [0, 1], got {image_spec.dtype.name}."
        )
    return dataset.map(_image_and_label), image_spec


def _dataset_shards(dataset: tf.data.Dataset, run: _Run, image_dtype: str):
    """Yields (shard, images, labels) of this worker's shards, checking the plan's sizes."""
    num_examples = run.plan.num_examples
    batched = dataset.batch(run.plan.shard_size).take(run.plan.num_shards)
    owned = set(run.owned_shards())
    seen = 0
    for shard, (images, labels) in enumerate(batched.as_numpy_iterator()):
        seen += 1
        start, stop = run.plan.shard_range(shard)
        if len(images) != stop - start:
            raise ValueError(
                f"`dataset` ended inside shard {shard} ({start + len(images)} examples) but "
                f"num_examples={num_examples}; pass the right `num_examples`."
            )
        if shard not in owned:
            continue
        if image_dtype == "float32":
            images = images.astype(np.float32, copy=False)
        yield shard, images, labels
    if seen < run.plan.num_shards:
        raise ValueError(
            f"`dataset` ended after {seen} shards but {run.plan.num_shards} were planned for "
            f"{num_examples} examples; pass the right `num_examples`."
        )


@tf.autograph.experimental.do_not_convert
def _image_and_label(image, label, *rest):
    return image, label


@tf.autograph.experimental.do_not_convert
def _count(count, element):
    return count + 1


def finalize(output_dir: str) -> dict:
    """Writes `metadata.json` of a multi-worker run once every shard is finished.

    The last worker to finish writes it by itself; this is for a chief that
    waits for the others.

    Args:
        output_dir: the folder the workers share.

    Returns:
        The metadata.

    Raises:
        IncompleteOutputError: some shards are not finished.

    Example:

    >>> metadata = finalize("runs/enhanced")  # doctest: +SKIP
    >>> import tempfile
    >>> folder, x = tempfile.mkdtemp(), np.zeros((4, 8, 8, 3), np.uint8)
    >>> def worker(index):                      # each worker writes its own shards
    ...     return enhance(x, [0, 1, 2, 3], None, ratio=(1, 0, 0), options=RunOptions(
    ...         output_dir=folder, shard_size=2, worker_index=index, num_workers=2, progress=False))
    >>> _ = worker(0)
    >>> finalize(folder)
    Traceback (most recent call last):
    ...
    keras_robust.datacentric.records.IncompleteOutputError: '...': 1 of 2 shards are not finished...
    >>> _ = worker(1)
    >>> finalize(folder)["counts"]
    {'clean': 4, 'adversarial': 0, 'corrupted': 0}
    """
    return records.write_metadata(output_dir)


__all__ = ["EnhancementResult", "Progress", "enhance", "enhance_dataset", "finalize"]
