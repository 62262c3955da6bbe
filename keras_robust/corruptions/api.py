"""NumPy entry points: :func:`augmenter`, :func:`corrupt`, :func:`corrupt_random`.

Example:

>>> x = np.zeros((4, 32, 32, 3), np.uint8)
>>> corrupt(x, "snow", severity=3, seed=0).shape
(4, 32, 32, 3)
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from keras_robust import _random
from keras_robust.corruptions import _checks
from keras_robust.corruptions.augmenters import CorruptionAugmenter
from keras_robust.corruptions.catalogue import build_augmenter
from keras_robust.corruptions.names import DATACENTRIC_14

SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)


def augmenter(name: str, severity: int, seed: int | None = None) -> CorruptionAugmenter:
    """Returns the corruption ``name`` at ``severity`` as an imgaug augmenter.

    The augmenter takes uint8 images with 1 or 3 channels, of any size (the
    CIFAR-10-C table is used when ``min(H, W) <= 64``, the ImageNet-C table
    otherwise, with pixel quantities scaled to the image side), and composes
    with other imgaug augmenters (``iaa.Sequential``, ``iaa.OneOf``,
    ``iaa.Sometimes``...).

    Args:
        name: One of :data:`keras_robust.corruptions.NAMES`.
        severity: Integer 1..5.
        seed: Integer seed for a deterministic augmenter (each call still
            draws new randomness, reproducibly from the seed). ``None`` uses
            imgaug's global RNG, so ``imgaug.seed()`` controls it, as for any
            imgaug augmenter.

    Returns:
        An ``imgaug.augmenters.meta.Augmenter``.

    Raises:
        ValueError: Unknown name or severity out of range.
        TypeError: Name not a str, severity not an int.

    Example:

    >>> import imgaug.augmenters as iaa
    >>> pipeline = iaa.Sometimes(0.5, augmenter("frost", 2, seed=1))
    >>> pipeline(images=np.zeros((8, 32, 32, 3), np.uint8)).shape
    (8, 32, 32, 3)
    """
    name = _checks.name(name)
    severity = _checks.severity(severity)
    if seed is not None:
        seed = _checks.seed(seed)
    return build_augmenter(name, severity, seed)


def corrupt(images: Any, name: str, severity: int = 1, seed: int | None = None) -> np.ndarray:
    """Applies one corruption at one severity to a uint8 batch or image.

    Args:
        images: uint8 array ``(N, H, W, C)`` or ``(H, W, C)`` with ``C`` 1
            or 3 and ``H, W >= 8``. Not modified.
        name: One of :data:`keras_robust.corruptions.NAMES`.
        severity: Integer 1..5 (5 is the strongest).
        seed: Integer for a deterministic result (same seed, same output);
            ``None`` draws fresh randomness.

    Returns:
        A new uint8 array with the shape of ``images``.

    Raises:
        TypeError: Non-uint8 images, name not a str, non-int severity/seed.
        ValueError: Wrong rank or channel count, unknown name, severity
            outside 1..5.

    Example:

    >>> x = np.full((2, 32, 32, 3), 120, np.uint8)
    >>> y = corrupt(x, "gaussian_noise", severity=5, seed=0)
    >>> y.shape, y.dtype, bool((y == corrupt(x, "gaussian_noise", 5, seed=0)).all())
    ((2, 32, 32, 3), dtype('uint8'), True)
    """
    batch, single = _checks.images(images, "corrupt")
    name = _checks.name(name)
    severity = _checks.severity(severity)
    seed = _checks.seed(seed)
    out = _apply(build_augmenter(name, severity, seed), batch)
    return out[0] if single else out


def corrupt_random(
    images: Any,
    names: Sequence[str] = DATACENTRIC_14,
    severities: Sequence[int] = SEVERITIES,
    seed: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Applies one randomly chosen corruption and severity to each image.

    This is the corrupted part of the data-centric dataset enhancement: each
    image gets one corruption drawn uniformly from ``names`` at a severity
    drawn uniformly from ``severities``. Image ``i`` is exactly
    ``corrupt(images[i], names_out[i], severities_out[i],
    seed=derive_seed(seed, i))``, so any image can be regenerated from the
    record (when ``seed`` is an int).

    Args:
        images: uint8 ``(N, H, W, C)`` batch or one ``(H, W, C)`` image.
        names: Corruptions to draw from (default
            :data:`keras_robust.corruptions.DATACENTRIC_14`).
        severities: Severities to draw from (default 1..5).
        seed: Integer for a reproducible result, ``None`` for fresh
            randomness.

    Returns:
        ``(corrupted, chosen_names, chosen_severities)``: the uint8 images
        (shape of ``images``), a str array and an int64 array of length N
        (length 1 for a single image).

    Raises:
        TypeError, ValueError: As :func:`corrupt`, and for empty ``names`` or
            ``severities``.

    Example:

    >>> x = np.zeros((3, 32, 32, 3), np.uint8)
    >>> y, kinds, levels = corrupt_random(x, seed=0)
    >>> y.shape, len(kinds), len(levels)
    ((3, 32, 32, 3), 3, 3)
    """
    batch, single = _checks.images(images, "corrupt_random")
    names = _checks.names(names)
    severities = _checks.severities(severities)
    base = _checks.seed(seed)
    out, chosen_names, chosen_sev = random_corruptions(batch, names, severities, 1.0, base)
    return (out[0] if single else out), chosen_names, chosen_sev


def random_corruptions(
    batch: np.ndarray,
    names: Sequence[str],
    severities: Sequence[int],
    probability: float,
    base_seed: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Core of :func:`corrupt_random` on a checked uint8 NHWC batch.

    Images left clean (probability < 1) get the name ``""`` and severity 0.

    Nothing is checked here (use :func:`corrupt_random` for checked input):
    the batch must already be uint8 ``(N, H, W, C)`` with ``C`` 1 or 3 and
    ``H, W >= 8``, and the names valid catalogue names. From ``base_seed``
    alone, every image draws a name and a severity uniformly, then whether
    it is corrupted (with ``probability``), so the choices do not depend on
    ``probability``. Image ``i``, when corrupted, is exactly
    ``corrupt(batch[i], names_out[i], severities_out[i],
    seed=derive_seed(base_seed, i))``.

    Args:
        batch: uint8 ``(N, H, W, C)`` batch; not modified.
        names: Corruption names to draw from (non-empty).
        severities: Severities to draw from (non-empty, each 1..5).
        probability: Chance that an image is corrupted, in ``[0, 1]``
            (:func:`corrupt_random` uses 1).
        base_seed: Integer seed (not ``None``) of every draw.

    Returns:
        ``(corrupted, chosen_names, chosen_severities)``: a new uint8 array
        shaped like ``batch``, a NumPy str array and an int64 array of
        length N (``""`` and 0 for the images left clean).

    Raises:
        KeyError: An image drew a name that is not in the catalogue.

    Example:

    >>> x = np.full((4, 8, 8, 3), 90, np.uint8)
    >>> y, kinds, levels = random_corruptions(x, ("fog", "contrast"), (1, 2), 0.5, 1)
    >>> y.shape, kinds.tolist(), levels.tolist()
    ((4, 8, 8, 3), ['', 'fog', 'fog', ''], [0, 2, 1, 0])
    """
    n = len(batch)
    rng = np.random.default_rng(np.random.SeedSequence([base_seed, 0x6B72]))
    pick_name = rng.integers(0, len(names), size=n)
    pick_sev = rng.integers(0, len(severities), size=n)
    apply = rng.random(n) < probability
    name_arr = np.asarray(names)[pick_name]
    sev_arr = np.asarray(severities, dtype=np.int64)[pick_sev]
    name_arr[~apply] = ""
    sev_arr[~apply] = 0
    out = batch.copy()
    cache: dict[tuple[str, int], CorruptionAugmenter] = {}
    for i in np.flatnonzero(apply):
        key = (str(name_arr[i]), int(sev_arr[i]))
        aug = cache.get(key)
        if aug is None:
            aug = cache[key] = build_augmenter(key[0], key[1])
        aug.seed_(_random.numpy_seed(base_seed, i))
        out[i] = _apply(aug, batch[i : i + 1])[0]
    return out, name_arr, sev_arr


def derive_seed(seed: int, *keys: int) -> int:
    """The seed :func:`corrupt_random` and the tf.data helpers use for a sub-task.

    Mixes ``seed`` and the integer ``keys`` (e.g. an image or batch index)
    through ``numpy.random.SeedSequence``; the result is a non-negative int
    below 2**63, different for different keys.

    Args:
        seed: Base seed (non-negative int).
        *keys: Non-negative ints.

    Returns:
        An int seed.

    Example:

    >>> derive_seed(0, 1) == derive_seed(0, 1) != derive_seed(0, 2)
    True
    """
    return _random.numpy_seed(_checks.seed(seed), *keys)


def _apply(aug: CorruptionAugmenter, batch: np.ndarray) -> np.ndarray:
    if len(batch) == 0:
        return batch.copy()
    out = aug.augment_images(batch)
    return np.asarray(out, dtype=np.uint8).reshape(batch.shape)


__all__ = ["SEVERITIES", "augmenter", "corrupt", "corrupt_random", "derive_seed", "random_corruptions"]
