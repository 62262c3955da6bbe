"""Where every example goes, decided from the seed alone.

A run's plan is a pure function of `(seed, number of examples, ratio,
shard_size)`: the random split into parts, the shard boundaries, which worker
owns which shard, and every per-example or per-batch seed. Nothing depends on
run history, so a killed and restarted run, a run on another worker count, or
a streamed run over the same data make the same decisions.

Example:

>>> plan = make_plan(10, (0, 1, 4), seed=0, shard_size=4)
>>> plan.counts, plan.num_shards
({'clean': 0, 'adversarial': 2, 'corrupted': 8}, 3)
"""
from __future__ import annotations

import dataclasses
import json
import numbers
import os
from typing import Any, Sequence

import numpy as np

from keras_robust._validation import check_positive_int
from keras_robust._random import numpy_seed

#: The three parts of the enhanced set, in the order of `ratio`.
PARTS: tuple[str, ...] = ("clean", "adversarial", "corrupted")
CLEAN, ADVERSARIAL, CORRUPTED = 0, 1, 2

# Salts keep the seeds of different decisions apart.
SALT_SPLIT = 0x5EED_0001
SALT_CORRUPTION_CHOICE = 0x5EED_0002
SALT_CORRUPTION_IMAGE = 0x5EED_0003
SALT_ATTACK = 0x5EED_0004


def check_ratio(ratio: Any) -> tuple[float, float, float]:
    """Checks `ratio` (three non-negative numbers with a positive sum).

    Args:
        ratio: clean:adversarial:corrupted, e.g. (0, 1, 4).

    Returns:
        The ratio as three floats.

    Raises:
        TypeError, ValueError: not three non-negative numbers with a positive sum.

    Example:

    >>> check_ratio((0, 1, 4))
    (0.0, 1.0, 4.0)
    """
    try:
        values = tuple(float(r) for r in ratio)
    except (TypeError, ValueError):
        raise TypeError(
            f"`ratio` must be three numbers clean:adversarial:corrupted such as (0, 1, 4), "
            f"got {ratio!r}."
        ) from None
    if len(values) != 3 or min(values) < 0 or not np.isfinite(values).all() or sum(values) <= 0:
        raise ValueError(
            "`ratio` must be three non-negative numbers clean:adversarial:corrupted with a "
            f"positive sum, such as (0, 1, 4); got {ratio!r}."
        )
    return values  # type: ignore[return-value]


def part_counts(num_examples: int, ratio: Sequence[float]) -> np.ndarray:
    """Exact part sizes for `num_examples` (largest remainder; each within one of its share).

    Part k gets floor(N * r_k / sum(r)) examples, and the examples left over go
    one each to the parts with the largest fractional remainders, so every
    count is within one example of its exact share and parts with a zero
    ratio stay empty.

    Args:
        num_examples: the data set's size.
        ratio: clean:adversarial:corrupted.

    Returns:
        int64 [3]: the clean, adversarial and corrupted counts, summing to N.

    Example:

    >>> part_counts(10, (0, 1, 4)).tolist()
    [0, 2, 8]
    """
    ratio = np.asarray(check_ratio(ratio))
    quotas = num_examples * ratio / ratio.sum()
    counts = np.floor(quotas).astype(np.int64)
    remainder = num_examples - int(counts.sum())
    if remainder:
        # Largest fractional part first; ties go to the earlier part. Parts with
        # a zero ratio never receive examples.
        order = sorted(range(3), key=lambda k: (-(quotas[k] - counts[k]), k))
        for k in [k for k in order if ratio[k] > 0][:remainder]:
            counts[k] += 1
    return counts


@dataclasses.dataclass(frozen=True)
class Plan:
    """The decisions of one enhancement run.

    Attributes:
        num_examples: examples in and out.
        ratio: clean:adversarial:corrupted.
        seed: the run's seed.
        shard_size: examples per shard (the last one may be shorter).
        parts: int8 [num_examples], 0 clean, 1 adversarial, 2 corrupted
            (read-only when made by `make_plan`).

    Properties and methods: `num_shards` (ceil(num_examples / shard_size)),
    `counts` (examples per part name) and `shard_range(shard)` (the example
    indices [start, stop) of a shard; IndexError outside [0, num_shards)).
    Build one with `make_plan`, which draws `parts` from the seed.

    Example:

    >>> plan = make_plan(10, (0, 1, 4), seed=0, shard_size=4)
    >>> plan.num_shards, plan.shard_range(2), plan.parts.dtype
    (3, (8, 10), dtype('int8'))
    >>> plan.counts
    {'clean': 0, 'adversarial': 2, 'corrupted': 8}
    """

    num_examples: int
    ratio: tuple[float, float, float]
    seed: int
    shard_size: int
    parts: np.ndarray

    @property
    def num_shards(self) -> int:
        """Number of shards."""
        return -(-self.num_examples // self.shard_size)

    @property
    def counts(self) -> dict[str, int]:
        """Examples per part."""
        totals = np.bincount(self.parts, minlength=3)
        return {name: int(totals[k]) for k, name in enumerate(PARTS)}

    def shard_range(self, shard: int) -> tuple[int, int]:
        """The example indices [start, stop) of `shard`."""
        if not 0 <= shard < self.num_shards:
            raise IndexError(f"Shard {shard} out of range; the plan has {self.num_shards} shards.")
        start = shard * self.shard_size
        return start, min(start + self.shard_size, self.num_examples)


def make_plan(num_examples: int, ratio: Sequence[float], seed: int, shard_size: int) -> Plan:
    """Splits `num_examples` at random into the three parts with exact counts.

    The split is a uniformly random assignment with `part_counts` examples per
    part, drawn from `(seed, num_examples)` only.

    Args:
        num_examples: the data set's size (>= 1).
        ratio: clean:adversarial:corrupted, e.g. (0, 1, 4).
        seed: non-negative int.
        shard_size: examples per shard (>= 1).

    Returns:
        A `Plan`.

    Raises:
        TypeError: `shard_size` not an int.
        ValueError: `shard_size` below 1, or a bad `ratio`.

    Example:

    >>> make_plan(5, (0, 1, 4), seed=0, shard_size=2).parts.tolist()  # doctest: +SKIP
    [2, 2, 1, 2, 2]
    """
    ratio = check_ratio(ratio)
    shard_size = check_positive_int(shard_size, "shard_size")
    counts = part_counts(num_examples, ratio)
    rng = np.random.default_rng(numpy_seed(seed, SALT_SPLIT, num_examples))
    parts = rng.permutation(np.repeat(np.arange(3, dtype=np.int8), counts))
    parts.setflags(write=False)
    return Plan(int(num_examples), ratio, int(seed), int(shard_size), parts)


def corruption_choices(
    seed: int, indices: np.ndarray, names: Sequence[str], severities: Sequence[int]
) -> tuple[list[str], list[int], list[int]]:
    """The corruption, severity and imgaug seed of each example, from (seed, index).

    Example `i` gets `corrupt(image, name, severity, seed=image_seed)` with
    the three values drawn here; they depend on nothing but `seed` and `i`.

    Args:
        seed: the run's seed.
        indices: the examples' indices in the data set.
        names: corruptions to draw from (uniformly).
        severities: severities to draw from (uniformly).

    Returns:
        `(names, severities, image_seeds)`, one entry per index.

    Example:

    >>> names, levels, seeds = corruption_choices(0, np.arange(3), ("fog", "snow"), (1, 2))
    >>> len(names), set(levels) <= {1, 2}
    (3, True)
    """
    chosen_names, chosen_severities, image_seeds = [], [], []
    for index in indices:
        rng = np.random.default_rng(numpy_seed(seed, SALT_CORRUPTION_CHOICE, int(index)))
        chosen_names.append(str(names[int(rng.integers(len(names)))]))
        chosen_severities.append(int(severities[int(rng.integers(len(severities)))]))
        image_seeds.append(numpy_seed(seed, SALT_CORRUPTION_IMAGE, int(index)))
    return chosen_names, chosen_severities, image_seeds


def attack_seed(seed: int, shard: int, batch: int) -> int:
    """The seed of adversarial batch `batch` of `shard` (input diversity, random starts).

    Args:
        seed: the run's seed.
        shard: the shard's index.
        batch: the attack batch's index inside the shard's adversarial part.

    Returns:
        A non-negative int below 2**63.

    Example:

    >>> attack_seed(0, 3, 1) == attack_seed(0, 3, 1) != attack_seed(0, 3, 2)
    True
    """
    return numpy_seed(seed, SALT_ATTACK, shard, batch)


@dataclasses.dataclass(frozen=True)
class Worker:
    """This process's place among the workers of a multi-worker run.

    Attributes:
        index: this worker, 0-based.
        count: number of workers. Worker `w` processes the shards `s` with
            `s % count == w`.

    `owns(shard)` says whether this worker processes `shard`. The default is
    the single worker (0 of 1), which owns every shard. `resolve_worker`
    builds one from arguments or `TF_CONFIG`.

    Raises:
        ValueError: `count` below 1 or `index` outside [0, count).

    Example:

    >>> worker = Worker(index=1, count=2)
    >>> [shard for shard in range(5) if worker.owns(shard)]
    [1, 3]
    >>> resolve_worker(0, 2)
    Worker(index=0, count=2)
    """

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        integers = all(isinstance(v, numbers.Integral) and not isinstance(v, bool)
                       for v in (self.index, self.count))
        if not (integers and self.count >= 1 and 0 <= self.index < self.count):
            raise ValueError(f"A Worker needs an int count >= 1 and an int index in [0, count), "
                             f"got index={self.index!r}, count={self.count!r}.")

    def owns(self, shard: int) -> bool:
        """Whether this worker processes `shard`."""
        return shard % self.count == self.index


def resolve_worker(worker_index: int | None, num_workers: int | None) -> Worker:
    """The worker from explicit arguments, else from `TF_CONFIG`, else a single worker.

    With `TF_CONFIG` (`{"cluster": {"chief": [...], "worker": [...]}, "task":
    {"type": ..., "index": ...}}`), the chief is worker 0 and worker `i` is
    `i + number of chiefs`; every chief and worker counts.

    Args:
        worker_index: this worker (0-based), or None.
        num_workers: number of workers, or None (both None: read `TF_CONFIG`).

    Returns:
        A `Worker`.

    Raises:
        ValueError: only one of the two given, an index out of range, or a
            `TF_CONFIG` task that is neither chief nor worker.

    Example:

    >>> resolve_worker(1, 2)
    Worker(index=1, count=2)
    """
    if worker_index is None and num_workers is None:
        worker_index, num_workers = _from_tf_config()
    if worker_index is None or num_workers is None:
        raise ValueError(
            "Pass both `worker_index` and `num_workers` (or neither, to read TF_CONFIG); got "
            f"worker_index={worker_index!r}, num_workers={num_workers!r}."
        )
    for value, name in ((worker_index, "worker_index"), (num_workers, "num_workers")):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"`{name}` must be an int, got {value!r}.")
    if num_workers < 1 or not 0 <= worker_index < num_workers:
        raise ValueError(
            f"Expected 0 <= worker_index < num_workers, got worker_index={worker_index}, "
            f"num_workers={num_workers}."
        )
    return Worker(int(worker_index), int(num_workers))


def _from_tf_config() -> tuple[int, int]:
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return 0, 1
    try:
        config = json.loads(raw)
        cluster = config.get("cluster", {})
        task = config.get("task", {})
    except (ValueError, AttributeError) as error:
        raise ValueError(f"TF_CONFIG is not valid JSON of the tf.distribute form: {error}") from None
    chiefs = len(cluster.get("chief", []))
    workers = len(cluster.get("worker", []))
    kind, index = task.get("type"), int(task.get("index", 0))
    if kind == "chief":
        return index, chiefs + workers
    if kind == "worker":
        return chiefs + index, chiefs + workers
    raise ValueError(
        f"TF_CONFIG task type {kind!r} does not process shards; enhancement runs on 'chief' and "
        "'worker' tasks. Pass worker_index/num_workers explicitly to override."
    )


__all__ = [
    "ADVERSARIAL", "CLEAN", "CORRUPTED", "PARTS", "Plan", "Worker", "attack_seed", "check_ratio",
    "corruption_choices", "make_plan", "part_counts", "resolve_worker",
]
