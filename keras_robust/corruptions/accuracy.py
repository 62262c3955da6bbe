"""Accuracy under corruption: :func:`corruption_accuracy` (a CIFAR-10-C on the fly).

Example:

>>> predict = lambda x: np.zeros((len(x), 10), np.float32)
>>> x = np.zeros((4, 32, 32, 3), np.uint8)
>>> acc = corruption_accuracy(predict, x, np.zeros(4, int), names=["fog"], severities=[1],
...                           progress=False)
>>> acc[("fog", 1)]
1.0
"""
from __future__ import annotations

import time
import zlib
from typing import Any, Callable, Sequence

import numpy as np

from keras_robust import progress as _progress
from keras_robust._validation import check_labels
from keras_robust import _random
from keras_robust.corruptions import _checks
from keras_robust.corruptions.api import SEVERITIES, corrupt
from keras_robust.corruptions.names import NAMES


def _to_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "numpy"):
        value = value.numpy()
    return np.asarray(value)


def _labels(labels: Any, count: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Checks labels (before any work); returns (class indices, dense labels or None)."""
    y = _to_numpy(labels)
    if y.ndim == 2 and y.shape[-1] == 1:
        y = y[:, 0]
    if y.ndim not in (1, 2):
        raise ValueError(
            f"corruption_accuracy expects labels of shape (N,) (class indices) or (N, classes) "
            f"(one-hot or soft), got shape {y.shape}."
        )
    if len(y) != count:
        raise ValueError(f"Got {count} images but {len(y)} labels.")
    if not (np.issubdtype(y.dtype, np.number) or y.dtype == bool):
        raise TypeError(f"corruption_accuracy expects numeric labels, got dtype {y.dtype}.")
    if y.ndim == 2:
        check_labels(y, y.shape[-1], "labels")  # rows on the simplex, no NaN
        return y.argmax(axis=-1).astype(np.int64), y
    if y.size and (np.isnan(y.astype(np.float64)).any() or y.min() < 0):
        raise ValueError(
            "`labels` must be class indices >= 0 without NaN, got values in "
            f"[{np.nanmin(y)}, {np.nanmax(y)}]."
        )
    check_labels(y, int(y.max()) + 1 if y.size else 1, "labels")  # whole numbers
    return y.astype(np.int64), None


def _check_logits(logits: np.ndarray, count: int, name: str, severity: int) -> None:
    """Refuses predictions that argmax would silently turn into a class."""
    if logits.ndim != 2 or logits.shape[0] != count:
        raise ValueError(
            f"predict_fn must return logits or probabilities of shape (batch, classes) = "
            f"({count}, classes), got shape {logits.shape} ({name}, severity {severity})."
        )
    if not np.all(np.isfinite(logits)):
        raise ValueError(
            f"predict_fn returned NaN or infinite values on {name} severity {severity}; "
            "argmax would score them as a class. Check the model (or its input scale: "
            "images are float32 in [0, 1])."
        )


def _name_key(name: str) -> int:
    return zlib.crc32(name.encode("utf-8"))


def corruption_accuracy(
    predict_fn: Callable[[np.ndarray], Any],
    images_uint8: Any,
    labels: Any,
    names: Sequence[str] = NAMES,
    severities: Sequence[int] = SEVERITIES,
    seed: int = 0,
    batch_size: int = 256,
    progress: bool = True,
) -> dict[tuple[str, int], float]:
    """Top-1 accuracy of a classifier on corrupted copies of a test set.

    Every ``(name, severity)`` pair corrupts all images (in chunks of
    ``batch_size``, each chunk seeded by
    ``derive_seed(seed, crc32(name), severity, chunk)``, so results do not
    depend on the order of ``names``) and runs ``predict_fn`` on them as
    float32 [0, 1] NHWC batches.

    Args:
        predict_fn: Maps a float32 [0, 1] batch ``(B, H, W, C)`` to logits or
            probabilities ``(B, classes)``; a Keras model works (it is called
            as ``predict_fn(x)``, i.e. in inference mode).
        images_uint8: Clean uint8 images ``(N, H, W, C)``.
        labels: ``(N,)`` class indices or ``(N, classes)`` one-hot/soft labels
            (argmax is taken).
        names: Corruptions to evaluate (default: all of
            :data:`keras_robust.corruptions.NAMES`).
        severities: Severities to evaluate (default 1..5).
        seed: Non-negative int; the same seed gives the same corrupted images.
        batch_size: Images per corruption call and per ``predict_fn`` call.
        progress: Show, on stderr when it is a terminal, a bar per corruption
            (per batch and severity, with its ETA) and one line per corruption
            (accuracies per severity and elapsed time). Off when stderr is not
            a terminal unless ``KERAS_ROBUST_PROGRESS=1`` forces it.

    Returns:
        A dict mapping ``(name, severity)`` to accuracy in [0, 1], in the
        order of ``names`` then ``severities``.

    Raises:
        TypeError, ValueError: Bad images (see
            :func:`keras_robust.corruptions.corrupt`), names or severities;
            labels whose length differs from the images, negative, NaN or
            fractional class indices, dense rows off the simplex (all before
            any corruption runs); class indices not below the number of
            columns ``predict_fn`` returns, dense labels of another width,
            predictions not shaped ``(batch, classes)`` or with NaN/inf
            (at the first batch); a non-positive ``batch_size``.

    Example:

    >>> import keras
    >>> model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(),
    ...                           keras.layers.Dense(10)])
    >>> x = np.zeros((8, 32, 32, 3), np.uint8); y = np.zeros(8, int)
    >>> res = corruption_accuracy(model, x, y, names=["snow"], severities=[1, 5], progress=False)
    >>> sorted(res)
    [('snow', 1), ('snow', 5)]
    """
    images, _ = _checks.images(images_uint8, "corruption_accuracy")
    names = _checks.names(names)
    severities = _checks.severities(severities)
    seed = _checks.seed(seed)
    batch_size = int(batch_size)
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}.")
    y, dense = _labels(labels, len(images))

    results: dict[tuple[str, int], float] = {}
    checked = False  # labels against the number of classes, at the first batch
    start = time.perf_counter()
    chunks = -(-len(images) // batch_size)
    for k, name in enumerate(names):
        tic = time.perf_counter()
        title = f"[corruption_accuracy] {k + 1}/{len(names)} {name} "
        with _progress.bar(title, chunks * len(severities), progress) as bar:
            for severity in severities:
                correct = 0
                for chunk, lo in enumerate(range(0, len(images), batch_size)):
                    batch_seed = _random.numpy_seed(seed, _name_key(name), severity, chunk)
                    x = corrupt(images[lo : lo + batch_size], name, severity, seed=batch_seed)
                    logits = _to_numpy(predict_fn(x.astype(np.float32) / np.float32(255.0)))
                    _check_logits(logits, len(x), name, severity)
                    if not checked:
                        check_labels(dense if dense is not None else y, logits.shape[-1], "labels")
                        checked = True
                    correct += int((logits.argmax(axis=-1) == y[lo : lo + batch_size]).sum())
                    bar.update()
                results[(name, severity)] = correct / max(len(images), 1)
        accs = " ".join(f"s{s}={results[(name, s)]:.3f}" for s in severities)
        _progress.line(
            f"[corruption_accuracy] {k + 1}/{len(names)} {name:<18s} {accs} "
            f"({time.perf_counter() - tic:.1f}s, total {time.perf_counter() - start:.0f}s)",
            progress,
        )
    return results


__all__ = ["corruption_accuracy"]
