"""The M-TLAT perturbation benchmark (Laugros et al. 2020, section 4.1), on CIFAR-size data.

Every model is scored on 19 common corruptions at 5 severities and 5
adversarial attacks by its robustness score R = A_phi / A_clean (eq. 7), and
compared with a reference model (the "standard" one) with `+` / `-` marks, in
the layout of the paper's Tables 1 and 2.

- corruptions: `keras_robust.corruptions.MTLAT_19` (the 15 ImageNet-C ones
  plus occlusion, colour distortion, translation and rotation) at severities
  1-5 (CIFAR-10-C parameters on 32x32 images), accuracy averaged over
  severities;
- "pgd": PGD L-inf, eps 0.04, 10 steps of eps / 4, random start, CE (white box);
- "pgd_ll": the same toward the least likely class (white box);
- "cw_l2": Carlini-Wagner L2, 40 Adam steps, confidence 50, c = 1 (white box);
- "mi_fgsm_0.04", "mi_fgsm_0.08": MI-FGSM, 10 steps of eps / 10, decay 1.0,
  crafted once on a surrogate and transferred (black box).

CW_L2 at confidence 50 returns a sample unchanged when its margin never reaches
50, so a model with small logits (soft labels: Mixup, TLAT) scores high on it
without being hard to misclassify; the optional "cw_l2_misclassified" column
(not in the paper) keeps any misclassified iterate instead and shows the
difference (see `keras_robust.attacks.cw`).

Each A_phi is the accuracy on the whole perturbed test set (as eq. 7 defines
it), not only on the images classified correctly when clean.

Example:

```python
result = perturbation_benchmark({"standard": plain, "M-TLAT": mtlat}, x_test_uint8, y_test,
                                surrogate=vgg)
print(result.to_markdown())
result.save("runs/benchmark")
```
"""
from __future__ import annotations

import dataclasses
import functools
import math
import os
import time
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import tensorflow as tf

from keras_robust._io import save_json
from keras_robust import attacks as attacks_lib
from keras_robust.corruptions import MTLAT_19, corruption_accuracy
from keras_robust.corruptions.names import IMAGENET_C_15
from keras_robust.evaluate import plots
from keras_robust.evaluate.metrics import accuracy, predict_logits, robust_accuracy

Attack = Callable[[Any, tf.Tensor, tf.Tensor], tf.Tensor]


@dataclasses.dataclass(frozen=True)
class BenchmarkAttack:
    """One adversarial column of the benchmark.

    Attributes:
        key: the column key ("pgd", "cw_l2", ...).
        label: the column header.
        short: a short header for plots.
        black_box: crafted once on the surrogate and transferred to every model.
        make: `seed -> attack(model, x, y) -> x_adv`.

    The benchmark's columns are the entries of `ATTACKS` (the paper's five
    are `PAPER_ATTACKS`); `perturbation_benchmark` takes their keys.

    Example:

    >>> spec = ATTACKS["mi_fgsm_0.04"]
    >>> spec.label, spec.short, spec.black_box
    ('MI-FGSM eps=0.04', 'MI.04', True)
    >>> attack = ATTACKS["pgd"].make(0)          # PGD, eps 0.04, 10 steps, seed 0
    >>> model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
    ...                           keras.layers.Dense(10)])
    >>> attack(model, tf.zeros([2, 8, 8, 3]), tf.constant([0, 1])).shape
    TensorShape([2, 8, 8, 3])
    """

    key: str
    label: str
    short: str
    black_box: bool
    make: Callable[[int], Attack]


EPSILON = 0.04
STEPS = 10


def _pgd(seed: int, target: str | None = None) -> Attack:
    return functools.partial(attacks_lib.pgd, epsilon=EPSILON, step_size=EPSILON / 4, steps=STEPS,
                             target=target, random_start=True, seed=seed)


def _mi_fgsm(epsilon: float) -> Callable[[int], Attack]:
    def make(seed: int) -> Attack:
        return functools.partial(attacks_lib.mi_fgsm, epsilon=epsilon, step_size=epsilon / STEPS,
                                 steps=STEPS, decay=1.0, seed=seed)
    return make


def _cw(fallback: str) -> Callable[[int], Attack]:
    def make(seed: int) -> Attack:
        return functools.partial(attacks_lib.cw_l2, confidence=50.0, steps=40, fallback=fallback,
                                 seed=seed)
    return make


#: Every attack the benchmark knows, by key.
ATTACKS: dict[str, BenchmarkAttack] = {
    "pgd": BenchmarkAttack("pgd", "PGD eps=0.04", "PGD", False, _pgd),
    "pgd_ll": BenchmarkAttack("pgd_ll", "PGD_LL eps=0.04", "PGD_LL", False,
                              lambda seed: _pgd(seed, target="ll")),
    "cw_l2": BenchmarkAttack("cw_l2", "CW_L2", "CW_L2", False, _cw("input")),
    "mi_fgsm_0.04": BenchmarkAttack("mi_fgsm_0.04", "MI-FGSM eps=0.04", "MI.04", True,
                                    _mi_fgsm(0.04)),
    "mi_fgsm_0.08": BenchmarkAttack("mi_fgsm_0.08", "MI-FGSM eps=0.08", "MI.08", True,
                                    _mi_fgsm(0.08)),
    # Not in the paper: CW_L2 that, for a sample never reaching the confidence of 50,
    # returns its smallest misclassified iterate instead of the clean image (see
    # keras_robust.attacks.cw): shows how much of a model's CW_L2 score is only small logits.
    "cw_l2_misclassified": BenchmarkAttack("cw_l2_misclassified", "CW_L2 (any misclass.)",
                                           "CW_any", False, _cw("misclassified")),
}

#: The paper's five attacks, in its column order (Table 1c).
PAPER_ATTACKS: tuple[str, ...] = ("pgd", "pgd_ll", "cw_l2", "mi_fgsm_0.04", "mi_fgsm_0.08")

#: Short column headers, as the paper's tables.
SHORT_NAMES: dict[str, str] = {
    "gaussian_noise": "Gauss", "shot_noise": "Shot", "impulse_noise": "Impul",
    "defocus_blur": "Defocus", "glass_blur": "Glass", "motion_blur": "Motion",
    "zoom_blur": "Zoom", "snow": "Snow", "fog": "Fog", "frost": "Frost",
    "brightness": "Bright", "contrast": "Contr", "elastic_transform": "Elastic",
    "pixelate": "Pixel", "jpeg_compression": "Jpeg", "occlusion": "Obstru",
    "color_distortion": "Color", "translation": "Trans", "rotation": "Rot",
}


@dataclasses.dataclass
class BenchmarkResult:
    """The outcome of `perturbation_benchmark`.

    Attributes:
        models: model names, in row order.
        corruptions: corruption names, in column order.
        attacks: attack keys, in column order.
        clean: model -> clean accuracy A_clean.
        accuracy: model -> perturbation -> A_phi (corruptions: the mean over
            severities).
        severity_accuracy: model -> corruption -> severity -> accuracy.
        reference: the model the `+` / `-` marks compare with, or None.
        num_images: test images used.
        seconds: model -> seconds spent evaluating it (plus "black_box" for
            crafting the transfer attacks).
        settings: severities, seed, the surrogate's clean accuracy, attack labels.

    Example:

    >>> result = perturbation_benchmark(models, x_test, y_test, surrogate=vgg)  # doctest: +SKIP
    >>> result = BenchmarkResult(
    ...     models=["standard", "M-TLAT"], corruptions=["fog"], attacks=["pgd"],
    ...     clean={"standard": 0.8, "M-TLAT": 0.75},
    ...     accuracy={"standard": {"fog": 0.6, "pgd": 0.1}, "M-TLAT": {"fog": 0.6, "pgd": 0.3}},
    ...     severity_accuracy={"standard": {"fog": {3: 0.6}}, "M-TLAT": {"fog": {3: 0.6}}},
    ...     reference="standard", num_images=100, seconds={}, settings={"severities": [3]})
    >>> round(result.robustness["M-TLAT"]["pgd"], 2)          # R = A_phi / A_clean = 0.3 / 0.75
    0.4
    >>> result.compare("M-TLAT")
    {'clean': -1, 'fog': 1, 'pgd': 1}
    >>> result.better_count("M-TLAT")
    {'corruptions': (1, 1), 'attacks': (1, 1)}
    """

    models: list[str]
    corruptions: list[str]
    attacks: list[str]
    clean: dict[str, float]
    accuracy: dict[str, dict[str, float]]
    severity_accuracy: dict[str, dict[str, dict[int, float]]]
    reference: str | None
    num_images: int
    seconds: dict[str, float]
    settings: dict[str, Any]

    @property
    def perturbations(self) -> list[str]:
        """Corruption names then attack keys: the score columns."""
        return list(self.corruptions) + list(self.attacks)

    @property
    def robustness(self) -> dict[str, dict[str, float]]:
        """model -> perturbation -> R = A_phi / A_clean (NaN when A_clean is 0)."""
        return {
            model: {
                phi: (self.accuracy[model][phi] / self.clean[model]
                      if self.clean[model] > 0 else float("nan"))
                for phi in self.perturbations
            }
            for model in self.models
        }

    def compare(self, model: str) -> dict[str, int]:
        """Per column ("clean" and each perturbation), +1 / 0 / -1: `model`'s
        score above / equal to / below the reference's (unrounded values).

        Example:

        >>> result.compare("M-TLAT")["pgd"]
        1
        """
        if self.reference is None:
            raise ValueError("This benchmark has no reference model to compare with.")
        scores, clean = self.robustness, self.clean
        out = {"clean": _sign(clean[model] - clean[self.reference])}
        for phi in self.perturbations:
            out[phi] = _sign(scores[model][phi] - scores[self.reference][phi])
        return out

    def better_count(self, model: str) -> dict[str, tuple[int, int]]:
        """How many corruption and attack columns `model` beats the reference on.

        Returns:
            {"corruptions": (better, total), "attacks": (better, total)}.
        """
        signs = self.compare(model)
        return {
            "corruptions": (sum(signs[c] > 0 for c in self.corruptions), len(self.corruptions)),
            "attacks": (sum(signs[a] > 0 for a in self.attacks), len(self.attacks)),
        }

    def mean_robustness(self, model: str) -> dict[str, float]:
        """The mean R over the corruption columns and over the attack columns."""
        scores = self.robustness[model]
        return {
            "corruptions": _mean([scores[c] for c in self.corruptions]),
            "attacks": _mean([scores[a] for a in self.attacks]),
        }

    def to_dict(self) -> dict:
        """Plain data: everything measured, R per column, and the comparisons."""
        payload = dataclasses.asdict(self)
        payload["severity_accuracy"] = {
            m: {c: {str(s): v for s, v in sev.items()} for c, sev in per.items()}
            for m, per in self.severity_accuracy.items()
        }
        payload["robustness"] = self.robustness
        payload["mean_robustness"] = {m: self.mean_robustness(m) for m in self.models}
        if self.reference is not None:
            payload["compare"] = {m: self.compare(m) for m in self.models if m != self.reference}
            payload["better_count"] = {m: self.better_count(m) for m in self.models
                                       if m != self.reference}
        return payload

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> "BenchmarkResult":
        """Rebuilds a result from `to_dict()` output (e.g. a saved benchmark.json).

        Example:

        >>> with open("runs/benchmark/benchmark.json") as f:
        ...     result = BenchmarkResult.from_dict(json.load(f))
        >>> print(result.to_markdown())
        """
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {key: payload[key] for key in fields}
        values["severity_accuracy"] = {
            m: {c: {int(s): v for s, v in sev.items()} for c, sev in per.items()}
            for m, per in payload["severity_accuracy"].items()
        }
        return cls(**values)

    def to_markdown(self) -> str:
        """The paper's table layout: rows = models; Clean accuracy, then R per
        perturbation, `+` / `-` where a model beats / trails the reference."""
        scores = self.robustness
        imagenet_c = [c for c in self.corruptions if c in IMAGENET_C_15]
        others = [c for c in self.corruptions if c not in IMAGENET_C_15]
        labels = self.settings.get("attack_labels", {})
        out = [
            "# M-TLAT perturbation benchmark",
            "",
            f"{self.num_images} test images; corruptions at severities "
            f"{', '.join(map(str, self.settings.get('severities', [])))} (R of the mean accuracy "
            "over severities); R = A_phi / A_clean (eq. 7)"
            + (f"; `+` / `-`: higher / lower than `{self.reference}`" if self.reference else "")
            + ".",
            "",
        ]
        sections = [
            ("(a) Robustness scores towards the ImageNet-C corruptions", imagenet_c, True),
            ("(b) Robustness scores towards the additional corruptions", others, not imagenet_c),
            ("(c) Robustness scores towards adversarial examples", list(self.attacks),
             not self.corruptions),
        ]
        for title, columns, with_clean in sections:
            if not columns:
                continue
            headers = (["model"] + (["Clean"] if with_clean else [])
                       + [labels.get(c, SHORT_NAMES.get(c, c)) for c in columns])
            out += [f"## {title}", "", "| " + " | ".join(headers) + " |",
                    "| --- |" + " ---: |" * (len(headers) - 1)]
            for model in self.models:
                signs = (self.compare(model) if self.reference and model != self.reference
                         else {})
                cells = [model]
                if with_clean:
                    cells.append(f"{100 * self.clean[model]:.1f}" + _mark(signs.get("clean")))
                cells += [_format(scores[model][c]) + _mark(signs.get(c)) for c in columns]
                out.append("| " + " | ".join(cells) + " |")
            out.append("")
        out += ["## Summary", "", "| model | Clean | mean R (corruptions) | mean R (attacks) |"
                + (f" better than {self.reference} |" if self.reference else ""),
                "| --- | ---: | ---: | ---: |" + (" --- |" if self.reference else "")]
        for model in self.models:
            means = self.mean_robustness(model)
            row = (f"| {model} | {100 * self.clean[model]:.1f} | {_format(means['corruptions'])} | "
                   f"{_format(means['attacks'])} |")
            if self.reference:
                if model == self.reference:
                    row += " (reference) |"
                else:
                    count = self.better_count(model)
                    row += (f" {count['corruptions'][0]}/{count['corruptions'][1]} corruptions, "
                            f"{count['attacks'][0]}/{count['attacks'][1]} attacks |")
            out.append(row)
        surrogate = self.settings.get("surrogate_clean")
        if surrogate is not None:
            out += ["", f"Black-box attacks crafted on a surrogate of clean accuracy "
                        f"{100 * surrogate:.1f}%."]
        return "\n".join(out) + "\n"

    def save(self, output_dir: str) -> dict[str, str]:
        """Writes benchmark.json, benchmark.md and PNG heatmaps; returns their paths.

        Example:

        >>> paths = result.save("runs/benchmark")
        >>> sorted(paths)
        ['json', 'markdown', 'robustness_plot', 'severity_plot']
        """
        os.makedirs(output_dir, exist_ok=True)
        paths = {"json": os.path.join(output_dir, "benchmark.json"),
                 "markdown": os.path.join(output_dir, "benchmark.md")}
        save_json(paths["json"], self.to_dict())
        with open(paths["markdown"], "w") as f:
            f.write(self.to_markdown())
        scores = self.robustness
        columns = [SHORT_NAMES.get(c, c) for c in self.corruptions] + [
            ATTACKS[a].short if a in ATTACKS else a for a in self.attacks]
        values = np.array([[100 * scores[m][p] for p in self.perturbations] for m in self.models])
        paths["robustness_plot"] = plots.heatmap(
            os.path.join(output_dir, "robustness_scores.png"), self.models, columns, values,
            "Robustness score R = A_phi / A_clean (x100)")
        if self.corruptions:
            severities = self.settings.get("severities", [])
            values = np.array([
                [100 * _mean([self.severity_accuracy[m][c][s] for c in self.corruptions])
                 for s in severities] for m in self.models])
            paths["severity_plot"] = plots.heatmap(
                os.path.join(output_dir, "corruption_severity.png"), self.models,
                [f"severity {s}" for s in severities], values,
                "Mean accuracy (%) over the corruptions, per severity")
        return paths


def perturbation_benchmark(
    models: Mapping[str, Any],
    images_uint8: Any,
    labels: Any,
    *,
    surrogate: Any,
    corruptions: Sequence[str] = MTLAT_19,
    severities: Sequence[int] = (1, 2, 3, 4, 5),
    reference: str | None = "standard",
    attacks: Sequence[str] = PAPER_ATTACKS,
    batch_size: int = 250,
    seed: int = 0,
    progress: bool = True,
    output_dir: str | None = None,
) -> BenchmarkResult:
    """Runs the M-TLAT perturbation benchmark on several models.

    Every model sees the same perturbed images: corruptions are seeded per
    (corruption, severity, chunk) by `corruption_accuracy`, the black-box
    MI-FGSM examples are crafted once on `surrogate`, and the white-box
    attacks use the same seed for every model.

    Args:
        models: name -> model (a Keras model, a `.keras` defence, a SavedModel
            `ServedModel` or any callable mapping [0, 1] images to logits);
            the rows, in this order. White-box attacks need gradients.
        images_uint8: uint8 test images [N, H, W, C].
        labels: class indices [N] (or one-hot rows).
        surrogate: the model the black-box attacks are crafted on (the paper:
            a VGG trained on the same data), or None to leave them out.
        corruptions: corruption names (default: the paper's 19).
        severities: severities, averaged per corruption.
        reference: the model the `+` / `-` marks compare with (a key of
            `models`), or None.
        attacks: keys of `ATTACKS` (default: the paper's five, `PAPER_ATTACKS`).
        batch_size: images per attack and corruption batch.
        seed: seeds the corruptions and the attacks' random starts.
        progress: print a line per measurement to stderr when it is a
            terminal (or `KERAS_ROBUST_PROGRESS=1`).
        output_dir: also `save` the result there.

    Returns:
        A `BenchmarkResult`.

    Raises:
        ValueError: an empty `models`, an unknown `reference` or attack key,
            images that are not uint8 NHWC, or labels of another length.

    Example:

    >>> result = perturbation_benchmark({"standard": plain, "M-TLAT": mtlat}, x_test, y_test,
    ...                                 surrogate=vgg, corruptions=["fog"],
    ...                                 severities=[3])  # doctest: +SKIP
    >>> print(result.to_markdown())  # doctest: +SKIP
    >>> def linear():
    ...     return keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
    ...                              keras.layers.Dense(10)])
    >>> x = np.random.default_rng(0).integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
    >>> result = perturbation_benchmark({"standard": linear(), "other": linear()}, x,
    ...                                 [0, 1, 2, 3], surrogate=linear(),
    ...                                 corruptions=["brightness"], severities=[3],
    ...                                 attacks=["pgd", "mi_fgsm_0.04"], progress=False)
    >>> result.models, result.perturbations
    (['standard', 'other'], ['brightness', 'pgd', 'mi_fgsm_0.04'])
    >>> print(result.to_markdown().splitlines()[0])
    # M-TLAT perturbation benchmark
    """
    names, attack_keys, images, y = _checked_inputs(models, images_uint8, labels, surrogate,
                                                    reference, attacks)
    log = functools.partial(_log, progress)
    x = images.astype(np.float32) / np.float32(255.0)
    severities = [int(s) for s in severities]

    settings: dict[str, Any] = {
        "severities": severities, "seed": int(seed), "batch_size": int(batch_size),
        "attack_labels": {key: ATTACKS[key].label for key in attack_keys},
        "surrogate_clean": None,
    }
    seconds: dict[str, float] = {}
    black_box: dict[str, np.ndarray] = {}
    if surrogate is not None and any(ATTACKS[k].black_box for k in attack_keys):
        start = time.time()
        settings["surrogate_clean"] = accuracy(surrogate, x, y, batch_size)
        log(f"surrogate: clean {100 * settings['surrogate_clean']:.1f}%")
        for key in attack_keys:
            if ATTACKS[key].black_box:
                tic = time.time()
                black_box[key] = _craft(surrogate, x, y, ATTACKS[key].make(seed), batch_size)
                log(f"crafted {ATTACKS[key].label} on the surrogate ({time.time() - tic:.1f} s)")
        seconds["black_box"] = time.time() - start

    clean, accuracies, per_severity = {}, {}, {}
    for name, model in zip(names, models.values()):
        start = time.time()
        clean[name] = accuracy(model, x, y, batch_size)
        log(f"{name}: clean {100 * clean[name]:.1f}% on {len(x)} images")
        per_severity[name] = _corruption_table(model, images, y, corruptions, severities, seed,
                                               batch_size, progress)
        accuracies[name] = {corruption: _mean(list(table.values()))
                            for corruption, table in per_severity[name].items()}
        for key in attack_keys:
            tic = time.time()
            spec = ATTACKS[key]
            if spec.black_box:
                value = accuracy(model, black_box[key], y, batch_size)
            else:
                value = robust_accuracy(model, x, y, spec.make(seed), batch_size)
            accuracies[name][key] = value
            ratio = value / clean[name] if clean[name] else float("nan")
            log(f"{name}: {spec.label} {100 * value:.1f}% (R {ratio:.2f}, "
                f"{time.time() - tic:.1f} s)")
        seconds[name] = time.time() - start

    result = BenchmarkResult(
        models=names, corruptions=list(corruptions), attacks=attack_keys, clean=clean,
        accuracy=accuracies, severity_accuracy=per_severity, reference=reference,
        num_images=int(len(x)), seconds=seconds, settings=settings,
    )
    if output_dir:
        result.save(output_dir)
        log(f"wrote {output_dir}/benchmark.json, benchmark.md and plots")
    return result


def _checked_inputs(models, images_uint8, labels, surrogate, reference,
                    attacks) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    """`perturbation_benchmark`'s refusals: (model names, attack keys it runs, images, labels)."""
    if not isinstance(models, Mapping) or not models:
        raise ValueError("`models` must be a non-empty dict of name -> model.")
    names = [str(name) for name in models]
    if reference is not None and reference not in models:
        raise ValueError(
            f"`reference` {reference!r} is not one of the models {names}; pass the name of the "
            "standard model, or reference=None."
        )
    unknown = [key for key in attacks if key not in ATTACKS]
    if unknown:
        raise ValueError(f"Unknown attack(s) {unknown}. Expected keys of {sorted(ATTACKS)}.")
    attack_keys = [key for key in attacks
                   if surrogate is not None or not ATTACKS[key].black_box]
    images = np.asarray(images_uint8)
    if images.dtype != np.uint8 or images.ndim != 4:
        raise ValueError(
            f"`images_uint8` must be uint8 images [N, H, W, C] (0..255), got dtype "
            f"{images.dtype} and shape {images.shape}."
        )
    y = np.asarray(labels)
    y = (y.argmax(-1) if y.ndim == 2 and y.shape[-1] > 1 else y.reshape(-1)).astype(np.int32)
    if len(y) != len(images):
        raise ValueError(f"Got {len(images)} images but {len(y)} labels.")
    return names, attack_keys, images, y


def _corruption_table(model, images, y, corruptions, severities, seed, batch_size,
                      progress) -> dict[str, dict[int, float]]:
    """Accuracy of `model` per corruption and severity ({} without corruptions)."""
    if not corruptions:
        return {}
    predict = functools.partial(predict_logits, model, batch_size=batch_size)
    table = corruption_accuracy(predict, images, y, names=corruptions, severities=severities,
                                seed=seed, batch_size=batch_size, progress=progress)
    return {corruption: {s: table[(corruption, s)] for s in severities}
            for corruption in corruptions}


def _craft(model: Any, x: np.ndarray, y: np.ndarray, attack: Attack, batch_size: int) -> np.ndarray:
    return np.concatenate([
        np.asarray(attack(model, tf.constant(x[i:i + batch_size]),
                          tf.constant(y[i:i + batch_size])))
        for i in range(0, len(x), batch_size)
    ])


def _log(enabled: bool, text: str) -> None:
    from keras_robust import progress as _progress

    _progress.line(f"[benchmark] {text}", enabled)


def _sign(value: float) -> int:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return 0
    return int(value > 0) - int(value < 0)


def _mark(sign: int | None) -> str:
    return {1: "+", -1: "-"}.get(sign, "")


def _format(value: float) -> str:
    return "nan" if value is None or math.isnan(value) else f"{value:.2f}"


def _mean(values: Sequence[float]) -> float:
    values = [v for v in values if not math.isnan(v)]
    return float(np.mean(values)) if values else float("nan")



__all__ = [
    "ATTACKS", "BenchmarkAttack", "BenchmarkResult", "PAPER_ATTACKS", "SHORT_NAMES",
    "perturbation_benchmark",
]
