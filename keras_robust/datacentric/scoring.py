"""The competition's robustness score (eq. 7) and the test sets it is measured on.

R = mean of the accuracies on a clean test set P_ori, an adversarial one
P_adv and a corrupted one P_cor.

**The adversarial test set must come from a different surrogate ensemble than
the one that enhanced the training set.** Crafted on the same surrogates, the
test perturbations share the training perturbations' patterns and R measures
memorisation of those models, not robustness (the competition's P_adv came
from models the participants never saw). `build_test_sets` raises when a test
surrogate is one of the training surrogates (the same object, or the same
weights), and warns when it cannot check because `exclude` was not given.

Example:

```python
sets = build_test_sets(x_test, y_test, [vgg, wrn], exclude="runs/enhanced")
print(score(model, sets))   # {'clean': ..., 'adversarial': ..., 'corrupted': ..., 'R': ...}
```
"""
from __future__ import annotations

import dataclasses
import os
import warnings
from typing import Any, Sequence

import numpy as np

from keras_robust.corruptions import DATACENTRIC_14
from keras_robust.datacentric import _inputs, records
from keras_robust.datacentric.corrupted import SEVERITIES, check_catalogue, corrupt_examples
from keras_robust.attacks.config import AttackConfig
from keras_robust.datacentric.options import RunOptions, resolve
from keras_robust.datacentric.perturb import (
    Eq6Config,
    as_surrogate_list,
    model_fingerprint,
    perturbations,
    surrogate_names,
)

Pair = tuple[np.ndarray, np.ndarray]

# The run options of a test-set build: the seed differs from the enhancement's default.
TEST_OPTIONS = RunOptions(seed=1)


@dataclasses.dataclass
class TestSets:
    """P_ori, P_adv and P_cor, plus the single-ball variants of P_adv.

    Attributes:
        clean: (images, labels).
        adversarial: (images, labels) with the summed L-inf + L2 perturbation.
        corrupted: (images, labels), one random corruption each.
        variants: {"adversarial_linf": ..., "adversarial_l2": ...}, the two
            perturbations alone (not part of R; for transferability reports).
        details: the attack settings, the test surrogates' names and
            fingerprints, and the corruption records.

    Images are uint8 when the input was uint8, else float32 in [0, 1].

    Example:

    >>> sets = build_test_sets(x, y, [vgg, wrn], exclude=training_surrogates)  # doctest: +SKIP
    >>> import tempfile
    >>> def linear(name):
    ...     return keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
    ...                              keras.layers.Dense(10)], name=name)
    >>> x = np.random.default_rng(0).integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
    >>> sets = build_test_sets(x, [0, 1, 2, 3], [linear("test_a"), linear("test_b")],
    ...                        exclude=[linear("train_a")], attack=Eq6Config().replace(steps=2))
    >>> sets.clean[0].dtype, sets.adversarial[0].shape, sorted(sets.variants)
    (dtype('uint8'), (4, 8, 8, 3), ['adversarial_l2', 'adversarial_linf'])
    >>> path = os.path.join(tempfile.mkdtemp(), "test_sets.npz")
    >>> sets.save(path); loaded = TestSets.load(path)
    >>> bool(np.array_equal(loaded.adversarial[0], sets.adversarial[0]))
    True
    >>> [s["name"] for s in loaded.details["surrogates"]]
    ['test_a', 'test_b']
    """

    clean: Pair
    adversarial: Pair
    corrupted: Pair
    variants: dict[str, Pair]
    details: dict

    def save(self, path: str) -> None:
        """Saves the sets to an `.npz` file (details as JSON inside)."""
        import json

        arrays = {"clean_x": self.clean[0], "clean_y": self.clean[1],
                  "adversarial_x": self.adversarial[0], "adversarial_y": self.adversarial[1],
                  "corrupted_x": self.corrupted[0], "corrupted_y": self.corrupted[1],
                  "details": np.asarray(json.dumps(records.normalise(self.details)))}
        for name, (x, y) in self.variants.items():
            arrays[f"variant_{name}_x"], arrays[f"variant_{name}_y"] = x, y
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        temporary = records.temporary_path(path) + ".npz"
        np.savez(temporary, **arrays)
        os.replace(temporary, path)

    @classmethod
    def load(cls, path: str) -> "TestSets":
        """Loads sets written by `save`.

        A truncated or corrupted file raises `keras_robust.data.CorruptFileError`
        naming it (rebuild the sets with `build_test_sets` and save them again).
        """
        import json

        from keras_robust import data

        try:
            with np.load(path) as archive:
                variants = {}
                for key in archive.files:
                    if key.startswith("variant_") and key.endswith("_x"):
                        name = key[len("variant_"):-2]
                        variants[name] = (archive[key], archive[f"variant_{name}_y"])
                return cls((archive["clean_x"], archive["clean_y"]),
                           (archive["adversarial_x"], archive["adversarial_y"]),
                           (archive["corrupted_x"], archive["corrupted_y"]), variants,
                           records.upgraded(json.loads(str(archive["details"]))))
        except FileNotFoundError:
            raise
        except data.NPZ_READ_ERRORS as error:  # JSONDecodeError is a ValueError
            raise data.CorruptFileError(
                path, f"not readable test sets ({type(error).__name__}: {error}); truncated or "
                      "corrupted", "Rebuild them with build_test_sets(...) and save them again."
            ) from None


def _excluded_fingerprints(exclude: Any) -> tuple[list[Any], set[str], set[str]]:
    """Models, weight fingerprints and names of the training surrogates in `exclude`."""
    if exclude is None:
        return [], set(), set()
    items = exclude if isinstance(exclude, (list, tuple)) else [exclude]
    models, fingerprints, names = [], set(), set()
    for item in items:
        metadata = None
        if isinstance(item, str):
            metadata = records.read_plan(item)
        elif isinstance(item, dict):
            metadata = item
        elif hasattr(item, "metadata") and isinstance(getattr(item, "metadata"), dict):
            metadata = item.metadata
        if metadata is not None:
            for entry in metadata.get("surrogates", []):
                names.add(entry.get("name"))
                if entry.get("fingerprint"):
                    fingerprints.add(entry["fingerprint"])
            continue
        for model in as_surrogate_list(item):
            models.append(model)
            names.add(getattr(model, "name", None))
            fingerprint = model_fingerprint(model)
            if fingerprint:
                fingerprints.add(fingerprint)
    return models, fingerprints, names


def check_disjoint_ensembles(test_surrogates: Sequence[Any], exclude: Any) -> None:
    """Raises if a test surrogate is a training surrogate (same object or same weights).

    Models are compared by identity and by `model_fingerprint` (the
    SHA-256 of their weights); metadata and output folders give the
    fingerprints recorded by the enhancement. With `exclude=None` nothing can
    be checked: it warns (UserWarning) and returns. A test surrogate with the
    name, but not the weights, of a training surrogate only warns.

    Args:
        test_surrogates: the models the test perturbations are crafted on (a
            list; see `as_surrogate_list`).
        exclude: the training surrogates: models, an `EnhancementResult`, an
            enhancement output folder, or its metadata dict (or a list of these).

    Returns:
        None; it returns quietly when the ensembles are disjoint.

    Raises:
        ValueError: a test surrogate is also a training surrogate.
        FileNotFoundError: `exclude` names a folder without `plan.json`.

    Example:

    >>> a = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)], name="a")
    >>> b = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)], name="b")
    >>> check_disjoint_ensembles([b], exclude=[a])   # other weights, other name: passes
    >>> check_disjoint_ensembles([a], exclude=[a])
    Traceback (most recent call last):
    ...
    ValueError: Test surrogate 'a' is one of the training surrogates (the same object). ...
    """
    if exclude is None:
        warnings.warn(
            "build_test_sets: `exclude` is None, so it cannot check that the adversarial test set "
            "comes from a different surrogate ensemble than the enhancement's. Pass "
            "exclude=<training surrogates, EnhancementResult or output_dir>: test perturbations "
            "crafted on the training surrogates overstate robustness.", UserWarning, stacklevel=3)
        return
    models, fingerprints, names = _excluded_fingerprints(exclude)
    for model in test_surrogates:
        name = getattr(model, "name", type(model).__name__)
        if any(model is other for other in models):
            raise ValueError(
                f"Test surrogate {name!r} is one of the training surrogates (the same object). The "
                "adversarial test set must come from a DIFFERENT ensemble than the one that "
                "enhanced the training set, or R measures memorisation of the training surrogates."
            )
        fingerprint = model_fingerprint(model)
        if fingerprint and fingerprint in fingerprints:
            raise ValueError(
                f"Test surrogate {name!r} has the same weights as a training surrogate. The "
                "adversarial test set must come from a DIFFERENT ensemble than the one that "
                "enhanced the training set."
            )
        if name in names:
            warnings.warn(
                f"Test surrogate {name!r} has the name of a training surrogate (different "
                "weights); make sure it was trained independently.", UserWarning, stacklevel=3)


def build_test_sets(
    images: Any,
    labels: Any,
    surrogates: Any,
    *,
    exclude: Any = None,
    attack: Eq6Config | AttackConfig | None = None,
    corruptions: Sequence[str] = DATACENTRIC_14,
    severities: Sequence[int] = SEVERITIES,
    options: RunOptions | None = None,
    **deprecated: Any,
) -> TestSets:
    """Builds P_ori, P_adv and P_cor from test images, as the competition did.

    P_adv is crafted by eq. 6 (summed L-inf and L2 perturbations, as in the
    enhancement) on `surrogates`, which MUST be a different ensemble from the
    one that enhanced the training set (see the module docstring); P_cor gets
    one random corruption of `corruptions` per image. All three sets hold the
    same images, so the accuracies are paired.

    Args:
        images: uint8 or float [0, 1] test images [N, H, W, C].
        labels: class indices [N].
        surrogates: the test ensemble (models, a list or an `Ensemble`).
        exclude: the training surrogates (models, an `EnhancementResult`, an
            enhancement output folder or its metadata): raises if a test
            surrogate is one of them; None warns that nothing was checked.
        attack: the eq. 6 attacks, as in `keras_robust.datacentric.enhance`
            (an `Eq6Config`, default the paper's, or one `AttackConfig`).
        corruptions: corruption names.
        severities: severities to draw from.
        options: a `RunOptions`, of which `seed` (of the attack and the
            corruptions; default 1, use another than the enhancement's),
            `batch_size` and `strategy` apply.
        **deprecated: the former keywords (`iterations`, ..., `seed`,
            `batch_size`, `strategy`), with a `DeprecationWarning`.

    Returns:
        A `TestSets`.

    Raises:
        ValueError: a test surrogate is a training surrogate, or bad inputs.

    Example:

    >>> sets = build_test_sets(x_test, y_test, [vgg, wrn], exclude="runs/enhanced",
    ...                        attack=Eq6Config().replace(steps=50))  # doctest: +SKIP
    >>> score(model, sets)["R"]  # doctest: +SKIP
    >>> import tempfile
    >>> from keras_robust.datacentric import enhance
    >>> def linear(name):
    ...     return keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
    ...                              keras.layers.Dense(10)], name=name)
    >>> rng = np.random.default_rng(0)
    >>> x_train, x_test = rng.integers(0, 256, (2, 4, 8, 8, 3), dtype=np.uint8)
    >>> folder, train_surrogate = tempfile.mkdtemp(), linear("train_a")
    >>> _ = enhance(x_train, [0, 1, 2, 3], train_surrogate, attack=Eq6Config().replace(steps=1),
    ...             options=RunOptions(output_dir=folder, progress=False))
    >>> attack = Eq6Config().replace(steps=2)
    >>> sets = build_test_sets(x_test, [0, 1, 2, 3], [linear("test_a"), linear("test_b")],
    ...                        exclude=folder, attack=attack)
    >>> sorted(score(linear("model"), sets))
    ['R', 'adversarial', 'adversarial_l2', 'adversarial_linf', 'clean', 'corrupted']
    >>> build_test_sets(x_test, [0, 1, 2, 3], [train_surrogate], exclude=folder, attack=attack)
    Traceback (most recent call last):
    ...
    ValueError: Test surrogate 'train_a' has the same weights as a training surrogate. ...
    """
    attack, options = resolve(attack, options, deprecated, "build_test_sets", TEST_OPTIONS)
    seed = options.seed
    images = _inputs.image_array(images)
    labels = _inputs.sparse_labels(labels, len(images))
    models = as_surrogate_list(surrogates)
    check_disjoint_ensembles(models, exclude)
    _inputs.check_surrogates(models, images.shape[1:], labels)
    corruptions, severities = check_catalogue(corruptions, severities)
    x = images.astype(np.float32) / 255.0 if images.dtype == np.uint8 else images
    delta_inf, delta_2 = perturbations(models, x, labels, attack, seed=seed,
                                       batch_size=options.batch_size, strategy=options.strategy)

    def as_input_dtype(values: np.ndarray) -> np.ndarray:
        values = np.clip(values, 0.0, 1.0).astype(np.float32)
        return _inputs.to_uint8(values) if images.dtype == np.uint8 else values

    corrupted, corruption_records = corrupt_examples(
        _inputs.to_uint8(images), np.arange(len(images)), int(seed), corruptions, severities)
    if images.dtype != np.uint8:
        corrupted = corrupted.astype(np.float32) / 255.0
    details = {
        "attack": attack.get_config(),
        "seed": int(seed),
        "surrogates": [{"name": n, "fingerprint": model_fingerprint(m)}
                       for n, m in zip(surrogate_names(models), models)],
        "corruptions": corruption_records,
    }
    return TestSets(
        clean=(images, labels),
        adversarial=(as_input_dtype(x + delta_inf + delta_2), labels),
        corrupted=(corrupted, labels),
        variants={"adversarial_linf": (as_input_dtype(x + delta_inf), labels),
                  "adversarial_l2": (as_input_dtype(x + delta_2), labels)},
        details=details,
    )


def score(
    model: Any,
    test_sets: TestSets | None = None,
    *,
    clean: Pair | None = None,
    adversarial: Pair | None = None,
    corrupted: Pair | None = None,
    batch_size: int = 500,
) -> dict[str, float]:
    """The robustness score of eq. 7: accuracies on P_ori, P_adv, P_cor and R, their mean.

    Args:
        model: a Keras model (or any callable) mapping [0, 1] images to logits.
        test_sets: a `TestSets` (its variants are scored too, outside R); or
            give the three sets below.
        clean: (images, labels) of P_ori.
        adversarial: (images, labels) of P_adv.
        corrupted: (images, labels) of P_cor.
        batch_size: images per forward pass.

    Returns:
        {"clean", "adversarial", "corrupted", "R"} (accuracies in [0, 1]) and
        the variants' accuracies when `test_sets` has them.

    Raises:
        ValueError: a set is missing (R is defined over all three).

    Example:

    >>> score(model, clean=(x, y), adversarial=(x_adv, y), corrupted=(x_cor, y))  # doctest: +SKIP
    {'clean': 0.71, 'adversarial': 0.42, 'corrupted': 0.58, 'R': 0.57}
    >>> zero = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
    ...                          keras.layers.Dense(10, kernel_initializer="zeros")])
    >>> x = np.random.default_rng(0).random((4, 8, 8, 3), "float32")
    >>> score(zero, clean=(x, [0, 0, 0, 1]), adversarial=(x, [0, 1, 2, 3]),
    ...       corrupted=(x, [0, 0, 1, 1]))                     # always class 0
    {'clean': 0.75, 'adversarial': 0.25, 'corrupted': 0.5, 'R': 0.5}
    """
    from keras_robust.evaluate import accuracy

    variants: dict[str, Pair] = {}
    if test_sets is not None:
        if any(s is not None for s in (clean, adversarial, corrupted)):
            raise ValueError("Pass either `test_sets` or clean/adversarial/corrupted, not both.")
        clean, adversarial, corrupted = test_sets.clean, test_sets.adversarial, test_sets.corrupted
        variants = dict(test_sets.variants)
    sets = {"clean": clean, "adversarial": adversarial, "corrupted": corrupted}
    missing = [name for name, value in sets.items() if value is None]
    if missing:
        raise ValueError(
            f"score needs all three test sets (R of eq. 7 is their mean); missing: {missing}."
        )
    result = {}
    for name, pair in {**sets, **variants}.items():
        x, y = pair
        x = _inputs.image_array(x, f"{name} images")
        result[name] = accuracy(model, x, _inputs.sparse_labels(y, len(x), f"{name} labels"),
                                batch_size)
    result["R"] = float(np.mean([result[name] for name in sets]))
    return result


__all__ = ["TestSets", "build_test_sets", "check_disjoint_ensembles", "score"]
