"""Recipes the examples share: where the data is, the optimizer schedule, the
distribution strategy and where results go.

Example:

```python
from keras_robust import experiment
source = experiment.resolve_source("auto")
epsilon = experiment.budget("8/255")
optimizer = experiment.sgd(epochs=5, steps_per_epoch=391, learning_rate=0.1, schedule="cosine")
strategy = experiment.strategy("mirrored")
```
"""
from __future__ import annotations

import json
import os

import numpy as np
import tensorflow as tf

from keras_robust import _startup
from keras_robust._io import json_default, save_json  # noqa: F401 (the examples' writer)
from keras_robust._validation import check_choice
from keras_robust.optimizers import SCHEDULES, sgd  # noqa: F401 (the examples' optimizer)

# Where a local CIFAR-10 copy is looked for when the source is "auto".
LOCAL_COPY_ENV = "KERAS_ROBUST_CIFAR10"
LOCAL_COPY_CANDIDATES = (
    "../shared/datasets/cifar10_jpeg.npz",
    "shared/datasets/cifar10_jpeg.npz",
)
STRATEGIES = ("default", "mirrored", "multi_worker")


def budget(value: float | str, norm: str = "linf") -> float:
    """A budget on the [0, 1] scale, from a number or a "8/255"-style string.

    The examples' budget flags (`--epsilon`, `--step_size`, `--budgets`, ...)
    are on the [0, 1] scale of the images under every norm, as the library's
    arguments are; pixel levels are written as a fraction ("8/255").

    Args:
        value: a number, or a string such as "8/255", "0.5" or "2.5/255".
            (Where a budget is optional, the report's per-norm default is
            `keras_robust.evaluate.suites.DEFAULT_EPSILON`.)
        norm: "linf" or "l2"; an L-inf budget must lie in (0, 1].

    Returns:
        The budget as a float (exactly `8 / 255` for "8/255").

    Raises:
        ValueError: not a positive number or fraction, or an L-inf budget
            above 1 (a pixel level without "/255").

    Example:

    >>> budget("8/255") == 8 / 255
    True
    >>> budget("0.25", "l2"), budget(0.5, "l2")
    (0.25, 0.5)
    """
    check_choice(norm, ("linf", "l2"), "norm")
    try:
        if isinstance(value, str):
            numerator, _, denominator = value.strip().partition("/")
            result = float(numerator) / float(denominator) if denominator else float(numerator)
        else:
            result = float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        raise ValueError(f"A budget is a number or a fraction such as '8/255', got {value!r}.") from None
    if not result > 0 or result == float("inf"):
        raise ValueError(f"A budget must be positive and finite, got {value!r}.")
    if norm == "linf" and result > 1:
        raise ValueError(
            f"An L-inf budget is on the [0, 1] scale of the images, got {value!r}; for "
            f"{value} pixel levels write '{value}/255'.")
    return result


def resolve_source(source: str) -> str:
    """Resolves the examples' `--data` flag.

    "auto" is a local CIFAR-10 copy when one is found (the path in
    `$KERAS_ROBUST_CIFAR10`, else `../shared/datasets/cifar10_jpeg.npz` or
    `shared/datasets/cifar10_jpeg.npz` from the working directory), otherwise
    the TFDS "cifar10". Anything else is returned as given.

    Args:
        source: "auto", a TFDS name, an `.npz` copy or an image folder.

    Returns:
        A source for `keras_robust.data.load`.
    """
    if source != "auto":
        return source
    candidates = [os.environ.get(LOCAL_COPY_ENV, "")] + list(LOCAL_COPY_CANDIDATES)
    for candidate in candidates:
        if candidate and os.path.isfile(candidate):
            return candidate
    return "cifar10"


def strategy(name: str = "default") -> tf.distribute.Strategy:
    """A distribution strategy by name: "default", "mirrored" or "multi_worker".

    "mirrored" uses every local GPU, or every logical CPU device when there is
    no GPU; "multi_worker" reads the cluster from `TF_CONFIG`.
    """
    check_choice(name, STRATEGIES, "strategy")
    if name == "mirrored":
        devices = [d.name for d in tf.config.list_logical_devices("GPU")]
        if not devices:
            devices = [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def is_chief() -> bool:
    """Whether this process is the chief of a multi-worker cluster (or alone).

    The chief is the "chief" task of `TF_CONFIG`, or worker 0 when the
    cluster has no chief; without `TF_CONFIG` the process is its own chief.
    """
    config = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")
    task = config.get("task", {})
    if not task:
        return True
    if task.get("type") == "chief":
        return True
    return task.get("type") == "worker" and int(task.get("index", 0)) == 0 and (
        "chief" not in config.get("cluster", {}))


def worker_path(output_dir: str, name: str) -> str:
    """`output_dir/name` on the chief; a scratch path on other workers.

    In multi-worker training every worker must run the same saving code, but
    only the chief's files should land in the real output folder.
    """
    if is_chief():
        os.makedirs(output_dir, exist_ok=True)
        return os.path.join(output_dir, name)
    config = json.loads(os.environ["TF_CONFIG"])
    scratch = os.path.join(output_dir, ".workers", f"{config['task']['type']}_{config['task']['index']}")
    os.makedirs(scratch, exist_ok=True)
    return os.path.join(scratch, name)


def split_cpu(devices: int) -> None:
    """Splits the CPU into `devices` logical devices (call before TensorFlow runs anything).

    Lets `MirroredStrategy` run on a machine without GPUs, two CPU devices
    standing in for two GPUs.
    """
    cpus = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(
        cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(devices)]
    )


def load_cifar(
    source: str = "auto",
    batch_size: int = 128,
    augment: bool = True,
    train_limit: int | None = None,
    eval_limit: int | None = 1000,
    seed: int | None = 0,
):
    """The training pipeline and the evaluation arrays of a CIFAR-like source.

    Args:
        source: "auto" (see `resolve_source`), a TFDS name, an `.npz` copy or a folder.
        batch_size: training batch size.
        augment: pad-4 random crop and flip.
        train_limit: use only the first N training images.
        eval_limit: keep the first N test images (None for all).
        seed: shuffling and augmentation seed.

    Returns:
        `(train_dataset, steps_per_epoch, (x_test, y_test), info)` with uint8
        test images and a `keras_robust.data.DatasetInfo`.

    Example:

    >>> train, steps, (x_test, y_test), info = load_cifar("auto", train_limit=10000)
    """
    from keras_robust import data

    source = resolve_source(source)
    info = data.info(source)
    train = data.load(source, "train", batch_size=batch_size, augment=augment,
                      limit=train_limit or None, seed=seed)
    steps = int(train.cardinality())
    if steps < 1:  # unknown cardinality (TFDS, folders): count once
        steps = sum(1 for _ in train)
    test = data.load_arrays(source, "test", limit=eval_limit or None)
    return train, steps, test, info


class ServedModel:
    """A SavedModel's `serve` endpoint as a named callable: images -> logits.

    Args:
        path: the SavedModel directory (as written by `model.export`).

    Example:

    >>> served = ServedModel("runs/bat/savedmodel")
    >>> logits = served(images)
    """

    def __init__(self, path: str):
        self.loaded = tf.saved_model.load(path)
        if hasattr(self.loaded, "serve"):
            self._function = self.loaded.serve
        elif "serve" in getattr(self.loaded, "signatures", {}):
            signature = self.loaded.signatures["serve"]
            self._function = lambda x: list(signature(x).values())[0]
        else:
            raise ValueError(f"SavedModel {path!r} has no `serve` endpoint.")
        self.name = os.path.basename(os.path.normpath(path))

    def __call__(self, images):
        return self._function(tf.convert_to_tensor(images, tf.float32))


def load_model(path: str):
    """A `.keras` file (any keras_robust defence) or a SavedModel directory, as a
    callable mapping [0, 1] images to logits.

    Example:

    >>> model = load_model("runs/bat/model.keras")
    """
    import keras

    if path.endswith(".keras"):
        return keras.saving.load_model(path, safe_mode=True)
    if os.path.isdir(path):
        return ServedModel(path)
    raise ValueError(f"Expected a .keras file or a SavedModel directory, got {path!r}.")


def finish(
    model,
    test: tuple[np.ndarray, np.ndarray],
    output_dir: str | None,
    report: str | list[str] = "quick",
    epsilon: float = 8 / 255,
    extra: dict | None = None,
    corruptions: str | None = None,
    surrogate=None,
):
    """The end of every example: the robustness report, the models, a summary.

    Writes `model.keras` and a SavedModel in `savedmodel/` first (a report
    that fails or is stopped never costs the training), then
    `output_dir/report/` (JSON, Markdown, plots) and `summary.json` (the
    report's headline figures plus `extra`).

    Args:
        model: the trained defence.
        test: uint8 or float test images and labels.
        output_dir: where to write (None: print only).
        report: the report's attacks: a suite name of
            `keras_robust.evaluate.SUITES`, a list of attack keys, or "none".
        epsilon: the report's budget.
        extra: more fields for summary.json (timings, flags...).
        corruptions: the report's corruption set (None, "all", "mtlat").
        surrogate: a model for the report's transfer attack.

    Returns:
        The `RobustnessReport` (or None when `report="none"`).
    """
    from keras_robust import evaluate

    result = None
    summary = dict(extra or {})
    chief = is_chief()
    if output_dir:
        # The models first: a report that fails (or is stopped) never costs the training.
        # Every worker saves (multi-worker rules); only the chief's files land in output_dir.
        model.save(worker_path(output_dir, "model.keras"))
        with _startup.quiet_export():  # no INFO line per captured variable
            model.export(worker_path(output_dir, "savedmodel"), verbose=False)
    if report != "none" and chief:  # the report is evaluation only: the chief's is enough
        result = evaluate.robustness_report(
            model, test, epsilon=epsilon, attacks=report, corruptions=corruptions,
            surrogate=surrogate, output_dir=os.path.join(output_dir, "report") if output_dir else None,
        )
        summary.update(clean=result.clean_accuracy, robust=result.robust_accuracy,
                       worst_attack=result.worst_attack, worst_case=result.worst_case,
                       robust_to_all=result.robust_to_all, checks_passed=result.passed,
                       ce_vs_margin=next(c.to_dict() for c in result.checks
                                         if c.name == evaluate.CE_MARGIN_CHECK),
                       attacks={k: v["accuracy"] for k, v in result.results["attacks"].items()},
                       autoattack=(result.results.get("autoattack") or {}).get("accuracy"))
    if output_dir:
        save_json(worker_path(output_dir, "summary.json"), summary)
        if chief:
            print(f"wrote {output_dir}/: model.keras, savedmodel/, summary.json"
                  + (", report/" if result is not None else ""))
    return result
