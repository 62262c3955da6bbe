"""The corrupted part: one corruption of the catalogue per image, at a random severity.

Example `i` gets corruption `name_i` at severity `s_i`, both drawn from
`(seed, i)` alone, applied with the imgaug seed `seed_i` (also from
`(seed, i)`), so `keras_robust.corruptions.corrupt(original_i, name_i, s_i,
seed=seed_i)` regenerates it exactly, whatever the shard or batch layout.

Example:

>>> out, records = corrupt_examples(images_uint8, np.arange(len(images_uint8)), seed=0)
>>> records[0]["corruption"] in DATACENTRIC_14
True
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from keras_robust import corruptions
from keras_robust.corruptions import DATACENTRIC_14
from keras_robust.datacentric.plan import corruption_choices

SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)


def check_catalogue(names: Sequence[str], severities: Sequence[int]) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """Checks corruption names (of `keras_robust.corruptions.NAMES`) and severities (1..5)."""
    return corruptions.check_names(names), corruptions.check_severities(severities)


def corrupt_examples(
    images: np.ndarray,
    indices: np.ndarray,
    seed: int,
    names: Sequence[str] = DATACENTRIC_14,
    severities: Sequence[int] = SEVERITIES,
) -> tuple[np.ndarray, list[dict]]:
    """Corrupts uint8 images whose global example indices are `indices`.

    Args:
        images: uint8 [n, H, W, C].
        indices: the examples' indices in the whole data set, [n].
        seed: the run's seed.
        names: corruptions to draw from.
        severities: severities to draw from.

    Returns:
        `(corrupted uint8 images, records)`, one record per image with
        `index`, `part`, `corruption`, `severity` and `seed`.
    """
    chosen_names, chosen_severities, image_seeds = corruption_choices(seed, indices, names, severities)
    out = np.empty_like(images)
    cache: dict[tuple[str, int], object] = {}
    records = []
    for position, (name, severity, image_seed) in enumerate(
            zip(chosen_names, chosen_severities, image_seeds)):
        augmenter = cache.get((name, severity))
        if augmenter is None:
            augmenter = cache[(name, severity)] = corruptions.augmenter(name, severity)
        # Exactly `corruptions.corrupt(image, name, severity, seed=image_seed)`,
        # without rebuilding the augmenter for every image.
        augmenter.seed_(image_seed)
        out[position] = np.asarray(
            augmenter.augment_images(images[position:position + 1]), np.uint8
        ).reshape(images.shape[1:])
        records.append({"index": int(indices[position]), "part": "corrupted", "corruption": name,
                        "severity": int(severity), "seed": int(image_seed)})
    return out, records
