"""How a data-centric run is carried out: `RunOptions`, apart from what it computes.

`enhance`, `enhance_dataset` and `build_test_sets` take the attack (an
`Eq6Config`) and the run options as two values. The options change where and
how the work is done (seed, batch and shard size, output folder, progress,
strategy, workers), never the eq. 6 settings.

The keywords these functions took before (`iterations=`, `seed=`,
`output_dir=`, ...) still work, with a `DeprecationWarning`, through
`resolve`.

Example:

>>> options = RunOptions(seed=1, batch_size=64, progress=False)
>>> options.replace(output_dir="runs/enhanced").output_dir
'runs/enhanced'
"""
from __future__ import annotations

import dataclasses
import numbers
import warnings
from typing import Any, Callable

import tensorflow as tf

from keras_robust._validation import check_positive_int
from keras_robust.datacentric.perturb import LEGACY_FIELDS, Eq6Config, as_eq6_config


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """How an enhancement (or a test-set build) runs; nothing here changes eq. 6.

    Attributes:
        seed: every random decision derives from it and the example, shard
            or batch index (a non-negative int).
        batch_size: images per attack batch (split over the strategy's
            replicas).
        shard_size: examples per shard.
        output_dir: write sharded TFRecords, sidecars and metadata here
            (resumable: finished shards are skipped), or None.
        progress: True shows, on stderr when it is a terminal, a bar per shard
            (per attack batch, with its ETA) and a line per shard (off when
            stderr is not a terminal unless `KERAS_ROBUST_PROGRESS=1` forces
            it); a callable receives a `Progress` after each shard; False is
            silent.
        strategy: a `tf.distribute.Strategy` (default the current one, so
            calling inside `strategy.scope()` uses it).
        worker_index: this worker among `num_workers` (default from
            `TF_CONFIG`, else 0 of 1); worker w processes the shards with
            `shard % num_workers == w`. Needs `output_dir`.
        num_workers: number of workers.
        overwrite: delete a different run found in `output_dir` instead of
            raising.

    Raises:
        TypeError, ValueError: a bad seed, size or progress value.

    Example:

    >>> RunOptions(batch_size=32).shard_size
    4096
    >>> RunOptions(seed=-1)
    Traceback (most recent call last):
    ...
    TypeError: `seed` must be a non-negative int, got -1.
    """

    seed: int = 0
    batch_size: int = 128
    shard_size: int = 4096
    output_dir: str | None = None
    progress: bool | Callable[[Any], None] = True
    strategy: tf.distribute.Strategy | None = None
    worker_index: int | None = None
    num_workers: int | None = None
    overwrite: bool = False

    def __post_init__(self) -> None:
        seed = self.seed
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise TypeError(f"`seed` must be a non-negative int, got {seed!r}.")
        object.__setattr__(self, "seed", int(seed))
        object.__setattr__(self, "batch_size", check_positive_int(self.batch_size, "batch_size"))
        object.__setattr__(self, "shard_size", check_positive_int(self.shard_size, "shard_size"))
        if not (self.progress in (True, False, None) or callable(self.progress)):
            raise TypeError(
                f"`progress` must be True, False or a callable, got {self.progress!r}.")

    def replace(self, **changes: Any) -> "RunOptions":
        """A copy with `changes` applied (and validated again).

        Args:
            **changes: field names and their new values.

        Returns:
            A new `RunOptions`.

        Example:

        >>> RunOptions().replace(seed=3).seed
        3
        """
        return dataclasses.replace(self, **changes)


RUN_FIELDS = tuple(f.name for f in dataclasses.fields(RunOptions))


def resolve(attack: Any, options: RunOptions | None, legacy: dict, who: str,
            default: RunOptions = RunOptions()) -> tuple[Eq6Config, RunOptions]:
    """The attack and options of a call, from the new arguments or the deprecated keywords.

    The former keywords of eq. 6 (`iterations`, `linf_epsilon`, ...) build
    the attack with `Eq6Config.from_config` (so not together with `attack`);
    the former run keywords (`seed`, `output_dir`, ...) replace those fields
    of `options`. An int `attack` is the former positional `iterations`.

    Args:
        attack: None, an `Eq6Config`, an `AttackConfig`, or an int (steps).
        options: a `RunOptions` or None (`default`).
        legacy: the call's other keyword arguments.
        who: the function's name, for the messages.
        default: the options when `options` is None.

    Returns:
        `(Eq6Config, RunOptions)`.

    Raises:
        TypeError: an unknown keyword, or eq. 6 keywords with `attack`.

    Example:

    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore", DeprecationWarning)
    ...     config, options = resolve(None, None, {"iterations": 3, "seed": 2}, "enhance")
    >>> config == Eq6Config().replace(steps=3), options.seed
    (True, 2)
    """
    if isinstance(attack, numbers.Integral) and not isinstance(attack, bool):
        legacy, attack = {**legacy, "iterations": attack}, None
    unknown = sorted(set(legacy) - set(LEGACY_FIELDS) - set(RUN_FIELDS))
    if unknown:
        raise TypeError(f"{who}() got unexpected keyword arguments {unknown}.")
    attack_keywords = {k: v for k, v in legacy.items() if k in LEGACY_FIELDS}
    run_keywords = {k: v for k, v in legacy.items() if k in RUN_FIELDS}
    if legacy:
        warnings.warn(
            f"{who}(..., {', '.join(f'{k}=' for k in legacy)}) is deprecated: pass "
            "attack=Eq6Config(...) (e.g. Eq6Config().replace(steps=50)) and "
            "options=RunOptions(...).", DeprecationWarning, stacklevel=3)
    if attack_keywords:
        if attack is not None:
            raise TypeError(f"{who}(): pass either `attack` or the keywords "
                            f"{sorted(attack_keywords)}, not both.")
        config = Eq6Config.from_config(attack_keywords)
    else:
        config = as_eq6_config(attack)
    return config, (options or default).replace(**run_keywords)


__all__ = ["RunOptions", "resolve"]
