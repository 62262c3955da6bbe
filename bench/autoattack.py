"""The library's AutoAttack against an independent implementation (ART), side by side.

    python bench/autoattack.py --model=runs/bat_R-MC-LA_noaug_5ep/model.keras \
        --n=100 --start=5000 --norm=linf --components=apgd-ce,apgd-dlr,apgd-t,square

On one model and the same test images, each component is run by the library
and by the Adversarial Robustness Toolbox (ART, `pip install
"keras_robust[bench]"`), with the same settings:

| component | keras_robust | ART |
| --- | --- | --- |
| apgd-ce  | `attacks.apgd(loss="ce")`, 100 steps, 1 restart | `AutoProjectedGradientDescent(loss_type="cross_entropy", nb_random_init=1)` |
| apgd-dlr | `attacks.apgd(loss="dlr")` (untargeted DLR), 100 steps, 1 restart | `AutoProjectedGradientDescent(loss_type="difference_logits_ratio")` |
| apgd-t   | `attacks.apgd_targeted` (DLR, 9 targets x 100 steps) | the same APGD-DLR with `targeted=True`, once per target (the 9 most likely other classes at the clean image, most likely first), each on the images no earlier target broke |
| square   | `attacks.square`, 5000 queries, p_init 0.8 | `SquareAttack(max_iter=5000, p_init=0.8, nb_restarts=1)` |
| fab      | `attacks.fab(targeted=True)`, 9 targets x 100 | none (ART has no FAB): library only |
| cascade  | the standard suite's cascade (`evaluate.build_suite("standard").cascade`: APGD-CE, APGD-T, FAB-T, Square, each on the images still robust), as `robustness_report(attacks=["autoattack"])` runs it | `AutoAttack(targeted=True)` with ART's four standard components (APGD-CE, APGD-DLR, DeepFool, Square), at the library's restarts (1) by default, or ART's own defaults (`--art_autoattack=default`: 5 restarts each) |

APGD's first step is 2 * epsilon in both (AutoAttack's; ART's `eps_step`).
Every component attacks the images the model classifies correctly (both
get the same ones, in the same batches of `--batch_size`); an image is robust
when it is classified correctly clean and after the attack, and accuracy is
over all `--n` images. Seeds: the library's `seed=--seed` (0); ART draws from
NumPy's global generator, seeded with `--seed` before each run. A one-image
disagreement is told from a weaker attack by rerunning that image with other
seeds (`--start=INDEX --n=1 --seed=S`).

Timing (wall clock, `time.perf_counter`, the attack calls only; the final
prediction on the adversarial images is not timed): before each library
component is timed it is called untimed on the first one and the first two
images with the same settings, so its `tf.function` is traced with a relaxed
batch dimension and the timed run traces nothing; ART is eager (nothing to
trace), and its classifier is warmed up with one prediction and one loss
gradient before anything is timed. The machine may be shared: only ratios
measured in one run mean anything.

The model is handed to ART as a `TensorFlowV2Classifier(model=<the Keras 3
model>, loss_object=SparseCategoricalCrossentropy(from_logits=True),
clip_values=(0, 1))`: ART 1.20.1 runs unmodified on Keras 3.15 / TensorFlow
2.21 that way (its `AutoAttack` also imports `multiprocess`, which it does not
declare; the `bench` extra does).

Printed: a table (component, images, library accuracy, ART accuracy, images
robust to the library's attack but not ART's and the reverse, both times and
ART / library). Written: the same as JSON to `--out`.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from typing import Any, Callable, Sequence

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

COMPONENTS = ("apgd-ce", "apgd-dlr", "apgd-t", "square", "fab", "cascade")
ART_AUTOATTACK = ("matched", "default")


@dataclasses.dataclass(frozen=True)
class Settings:
    """The attacks' settings, the same for both implementations.

    Attributes:
        epsilon: the budget on the [0, 1] scale.
        norm: "linf" or "l2".
        apgd_steps: APGD iterations (per target for APGD-T and FAB-T).
        targets: target classes of APGD-T and FAB-T (at most classes - 1).
        square_queries: Square's queries (ART's `max_iter`).
        batch_size: images per attack call.
        art_square_images: Square runs on this many of the images only (0:
            all), for both implementations: ART's Square can be slow.
        art_autoattack: "matched" (ART's standard components at one restart)
            or "default" (ART's `AutoAttack` defaults, 5 restarts).
        seed: the random starts and draws of both implementations' components
            (the library's seed argument; NumPy's global seed for ART) and of
            ART's `AutoAttack`; the library's cascade keeps the report's seeds.
    """

    epsilon: float
    norm: str = "linf"
    apgd_steps: int = 100
    targets: int = 9
    square_queries: int = 5000
    batch_size: int = 128
    art_square_images: int = 0
    art_autoattack: str = "matched"
    seed: int = 0


@dataclasses.dataclass
class Row:
    """One component's outcome for both implementations.

    Attributes:
        component: one of `COMPONENTS`.
        images: images attacked (the first `images` of the run).
        library_robust: per image, robust under the library's attack.
        art_robust: per image, robust under ART's attack (None: ART has none).
        library_seconds: the library's attack time.
        art_seconds: ART's attack time (None: not run).
        note: what ran, in words.
    """

    component: str
    images: int
    library_robust: np.ndarray
    art_robust: np.ndarray | None
    library_seconds: float
    art_seconds: float | None
    note: str = ""

    def to_dict(self) -> dict:
        """The row as plain data (accuracies, disagreement counts, times, ratio, masks)."""
        library_only, art_only = disagreements(self.library_robust, self.art_robust)
        return {
            "component": self.component, "images": self.images,
            "library_accuracy": float(np.mean(self.library_robust)),
            "art_accuracy": None if self.art_robust is None else float(np.mean(self.art_robust)),
            "robust_to_library_not_art": library_only, "robust_to_art_not_library": art_only,
            "library_seconds": self.library_seconds, "art_seconds": self.art_seconds,
            "art_over_library_time": speed_ratio(self.library_seconds, self.art_seconds),
            "library_robust_mask": "".join("1" if v else "0" for v in self.library_robust),
            "art_robust_mask": None if self.art_robust is None else "".join(
                "1" if v else "0" for v in self.art_robust),
            "note": self.note,
        }


def disagreements(library_robust: Any, art_robust: Any) -> tuple[int | None, int | None]:
    """Images robust to one implementation's attack but not the other's.

    Args:
        library_robust: booleans, one per image: robust under the library's attack.
        art_robust: the same for ART's attack, or None (ART has no such attack).

    Returns:
        (robust to the library's attack but broken by ART's, robust to ART's
        but broken by the library's); (None, None) without ART's mask.

    Example:

    >>> disagreements([True, True, False, False], [True, False, True, False])
    (1, 1)
    >>> disagreements([True, False], None)
    (None, None)
    """
    if art_robust is None:
        return None, None
    lib, art = np.asarray(library_robust, bool), np.asarray(art_robust, bool)
    if lib.shape != art.shape:
        raise ValueError(f"The masks differ in length: {lib.shape} and {art.shape}.")
    return int(np.sum(lib & ~art)), int(np.sum(art & ~lib))


def speed_ratio(library_seconds: float | None, art_seconds: float | None) -> float | None:
    """ART's time over the library's (> 1: the library is faster); None if either is missing.

    Example:

    >>> speed_ratio(2.0, 7.0)
    3.5
    >>> speed_ratio(2.0, None) is None
    True
    """
    if library_seconds is None or art_seconds is None or library_seconds <= 0:
        return None
    return art_seconds / library_seconds


def format_table(rows: Sequence[dict]) -> str:
    """The comparison as a fixed-width text table (rows from `Row.to_dict`).

    Columns: component, images, library and ART robust accuracy (%), images
    robust to the library's attack but not ART's ("lib-only") and the reverse
    ("ART-only"), both times in seconds, and ART / library time. Missing
    values print as "-".

    Example:

    >>> print(format_table([{"component": "apgd-ce", "images": 4, "library_accuracy": 0.25,
    ...                      "art_accuracy": 0.5, "robust_to_library_not_art": 0,
    ...                      "robust_to_art_not_library": 1, "library_seconds": 1.0,
    ...                      "art_seconds": 5.0, "art_over_library_time": 5.0}]))
    component  images  lib acc %  ART acc %  lib-only  ART-only   lib s    ART s  ART/lib
    apgd-ce         4      25.00      50.00         0         1    1.00     5.00     5.00
    """
    def cell(value, width, fmt):
        return f"{'-':>{width}}" if value is None else f"{value:>{width}{fmt}}"

    lines = [f"{'component':<10}{'images':>7}{'lib acc %':>11}{'ART acc %':>11}{'lib-only':>10}"
             f"{'ART-only':>10}{'lib s':>8}{'ART s':>9}{'ART/lib':>9}"]
    for row in rows:
        art = row["art_accuracy"]
        lines.append(
            f"{row['component']:<10}{row['images']:>7}"
            f"{100 * row['library_accuracy']:>11.2f}{cell(None if art is None else 100 * art, 11, '.2f')}"
            f"{cell(row['robust_to_library_not_art'], 10, 'd')}"
            f"{cell(row['robust_to_art_not_library'], 10, 'd')}"
            f"{row['library_seconds']:>8.2f}{cell(row['art_seconds'], 9, '.2f')}"
            f"{cell(row['art_over_library_time'], 9, '.2f')}"
        )
    return "\n".join(lines)


def predict_labels(model: Any, x: np.ndarray, batch_size: int) -> np.ndarray:
    """The model's predicted classes for `x`, in batches."""
    from keras_robust.evaluate import predict_logits

    return np.argmax(predict_logits(model, x, batch_size), -1)


def library_attack(component: str, model: Any, settings: Settings,
                   num_classes: int) -> Callable[[np.ndarray, np.ndarray], Any]:
    """`(x, y) -> x_adv`: the library's `component` (not "cascade") at `settings`."""
    import keras_robust as kr

    eps, norm, steps, seed = settings.epsilon, settings.norm, settings.apgd_steps, settings.seed
    targets = max(1, min(settings.targets, num_classes - 1))
    reference = kr.attacks.APGDConfig(rule="reference")
    reference_t = kr.attacks.APGDTargetedConfig(rule="reference")
    calls = {
        "apgd-ce": lambda x, y: kr.attacks.apgd(model, x, y, eps, steps, norm=norm, loss="ce",
                                                restarts=1, config=reference, seed=seed),
        "apgd-dlr": lambda x, y: kr.attacks.apgd(model, x, y, eps, steps, norm=norm, loss="dlr",
                                                 restarts=1, config=reference, seed=seed),
        "apgd-t": lambda x, y: kr.attacks.apgd_targeted(model, x, y, eps, steps, targets,
                                                        norm=norm, loss="dlr", restarts=1,
                                                        config=reference_t, seed=seed),
        "square": lambda x, y: kr.attacks.square(model, x, y, eps, settings.square_queries,
                                                 p_init=0.8, seed=seed, norm=norm),
        "fab": lambda x, y: kr.attacks.fab(model, x, y, eps, norm=norm, targeted=True,
                                           num_targets=targets, steps=steps, restarts=1, seed=seed),
    }
    return calls[component]


def import_art() -> Any:
    """`import art`, without its notice that PyTorch (which the bench does not use) is missing."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="PyTorch not found")
        import art
    return art


def art_classifier(model: Any, input_shape: tuple, num_classes: int):
    """The Keras model as ART's `TensorFlowV2Classifier` (logits, [0, 1] inputs)."""
    import keras

    import_art()
    from art.estimators.classification import TensorFlowV2Classifier

    return TensorFlowV2Classifier(
        model=model, nb_classes=num_classes, input_shape=tuple(input_shape),
        loss_object=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        clip_values=(0.0, 1.0),
    )


def _art_norm(norm: str):
    return np.inf if norm == "linf" else 2


def art_apgd(classifier, settings: Settings, loss_type: str, targeted: bool = False):
    """ART's APGD at `settings` (1 random start, first step 2 * epsilon)."""
    from art.attacks.evasion import AutoProjectedGradientDescent

    return AutoProjectedGradientDescent(
        classifier, norm=_art_norm(settings.norm), eps=settings.epsilon,
        eps_step=2 * settings.epsilon, max_iter=settings.apgd_steps, targeted=targeted,
        nb_random_init=1, batch_size=settings.batch_size, loss_type=loss_type, verbose=False,
    )


def art_square(classifier, settings: Settings):
    """ART's Square at `settings` (p_init 0.8, one restart)."""
    from art.attacks.evasion import SquareAttack

    return SquareAttack(classifier, norm=_art_norm(settings.norm), max_iter=settings.square_queries,
                        eps=settings.epsilon, p_init=0.8, nb_restarts=1,
                        batch_size=settings.batch_size, verbose=False)


def art_attack(component: str, classifier, settings: Settings, num_classes: int,
               clean_logits: np.ndarray | None = None):
    """`(x, y) -> x_adv`: ART's `component` at `settings`, or None when ART has none (FAB)."""
    one_hot = lambda labels: np.eye(num_classes, dtype=np.float32)[labels]  # noqa: E731
    if component in ("apgd-ce", "apgd-dlr"):
        attack = art_apgd(classifier, settings,
                          "cross_entropy" if component == "apgd-ce" else "difference_logits_ratio")
        return lambda x, y: attack.generate(x=x, y=one_hot(y))
    if component == "square":
        attack = art_square(classifier, settings)
        return lambda x, y: attack.generate(x=x, y=one_hot(y))
    if component == "apgd-t":
        attack = art_apgd(classifier, settings, "difference_logits_ratio", targeted=True)
        targets = max(1, min(settings.targets, num_classes - 1))

        def targeted(x, y):
            logits = np.asarray(classifier.predict(x, batch_size=settings.batch_size))
            others = logits - np.eye(num_classes)[y] * 1e9
            ranked = np.argsort(-others, axis=-1)[:, :targets]
            x_adv = x.copy()
            robust = np.ones(len(x), bool)
            for k in range(targets):
                index = np.flatnonzero(robust)
                if not len(index):
                    break
                candidate = attack.generate(x=x[index], y=one_hot(ranked[index, k]))
                broken = np.argmax(classifier.predict(candidate, batch_size=settings.batch_size),
                                   -1) != y[index]
                x_adv[index[broken]] = candidate[broken]
                robust[index[broken]] = False
            return x_adv

        return targeted
    if component == "fab":
        return None
    raise ValueError(f"Unknown component {component!r}; expected one of {COMPONENTS}.")


def _robust(model, x_adv, x, y, settings: Settings) -> np.ndarray:
    """Correct under `x_adv`, and `x_adv` inside the ball (1e-4 relative slack)."""
    delta = (np.asarray(x_adv) - x).reshape(len(x), -1)
    size = np.abs(delta).max(1) if settings.norm == "linf" else np.linalg.norm(delta, axis=1)
    inside = size <= settings.epsilon * (1 + 1e-4) + 1e-6
    return (predict_labels(model, np.asarray(x_adv, np.float32), settings.batch_size) == y) | ~inside


def _timed_batches(attack, x, y, batch_size) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    outs = [np.asarray(attack(x[i:i + batch_size], y[i:i + batch_size]))
            for i in range(0, len(x), batch_size)]
    seconds = time.perf_counter() - start
    return (np.concatenate(outs) if outs else x.copy()), seconds


def run_component(component: str, model, classifier, x: np.ndarray, y: np.ndarray,
                  correct: np.ndarray, settings: Settings, num_classes: int,
                  log: Callable[[str], None] = print) -> Row:
    """One component (not "cascade") by both implementations on the correctly classified images.

    The library's attack is called untimed on one and on two images first
    (tracing); then each implementation attacks the same images, timed.
    """
    n = len(x)
    if component == "square" and settings.art_square_images:
        n = min(n, settings.art_square_images)
    x, y, correct = x[:n], y[:n], correct[:n]
    index = np.flatnonzero(correct)
    xs, ys = x[index], y[index]
    lib = library_attack(component, model, settings, num_classes)
    for k in (1, 2):  # trace: one shape, then the relaxed one
        if len(xs) >= k:
            np.asarray(lib(xs[:k], ys[:k]))
    lib_robust = correct.copy()
    lib_seconds = 0.0
    if len(xs):
        x_adv, lib_seconds = _timed_batches(lib, xs, ys, settings.batch_size)
        lib_robust[index] = _robust(model, x_adv, xs, ys, settings)
    log(f"{component}: library {100 * lib_robust.mean():.2f}% in {lib_seconds:.2f} s "
        f"({len(xs)} images attacked)")
    art_robust, art_seconds, note = None, None, "ART has no such attack: library only"
    art = art_attack(component, classifier, settings, num_classes) if classifier else None
    if art is not None:
        np.random.seed(settings.seed)
        art_robust = correct.copy()
        art_seconds = 0.0
        if len(xs):
            x_adv, art_seconds = _timed_batches(art, xs, ys, settings.batch_size)
            art_robust[index] = _robust(model, x_adv, xs, ys, settings)
        note = "same settings, same images"
        log(f"{component}: ART {100 * art_robust.mean():.2f}% in {art_seconds:.2f} s")
    elif classifier is None and component != "fab":
        note = "ART not run"
    return Row(component, n, lib_robust, art_robust, lib_seconds, art_seconds, note)


def run_cascade(model, classifier, x: np.ndarray, y: np.ndarray, correct: np.ndarray,
                settings: Settings, num_classes: int,
                log: Callable[[str], None] = print) -> tuple[Row, list[dict]]:
    """The library's standard AutoAttack cascade against ART's `AutoAttack(targeted=True)`.

    The library runs `build_suite("standard", ...).cascade` as the report
    does (each attack on the images still robust after the previous ones),
    each attack traced first on one and two images (untimed). ART runs its
    `AutoAttack` on the same images: "matched" gives it its four standard
    components at the library's settings (one restart each), "default" its
    own defaults.
    """
    from keras_robust.evaluate import build_suite

    suite = build_suite("standard", settings.epsilon, settings.norm, num_classes)
    stages = [(spec.name, lambda a, b, spec=spec: spec.run(model, a, b)) for spec in suite.cascade]
    if (settings.apgd_steps, settings.targets, settings.square_queries) != (100, 9, 5000):
        # Other settings (tests, quick looks): the same cascade composed at them.
        stages = [(f"{name} (bench settings)", library_attack(name, model, settings, num_classes))
                  for name in ("apgd-ce", "apgd-t", "fab", "square")]
    robust = correct.copy()
    components, total = [], 0.0
    for name, run in stages:
        for k in (1, 2):
            if len(x) >= k:
                np.asarray(run(x[:k], y[:k]))
        index = np.flatnonzero(robust)
        seconds = 0.0
        if len(index):
            x_adv, seconds = _timed_batches(run, x[index], y[index], settings.batch_size)
            robust[index] = _robust(model, x_adv, x[index], y[index], settings)
        total += seconds
        components.append({"name": name, "accuracy": float(robust.mean()), "seconds": seconds})
        log(f"cascade: library {name}: {100 * robust.mean():.2f}% ({seconds:.2f} s)")
    art_robust, art_seconds, note = None, None, "ART not run"
    if classifier is not None:
        from art.attacks.evasion import AutoAttack, DeepFool

        norm = _art_norm(settings.norm)
        attacks = None
        if settings.art_autoattack == "matched":
            attacks = [
                art_apgd(classifier, settings, "cross_entropy"),
                art_apgd(classifier, settings, "difference_logits_ratio"),
                DeepFool(classifier, max_iter=100, epsilon=1e-3, nb_grads=10,
                         batch_size=settings.batch_size, verbose=False),
                art_square(classifier, settings),
            ]
        auto = AutoAttack(classifier, norm=norm, eps=settings.epsilon,
                          eps_step=2 * settings.epsilon, attacks=attacks,
                          batch_size=settings.batch_size, targeted=True)
        np.random.seed(settings.seed)
        art_robust = correct.copy()
        index = np.flatnonzero(correct)
        art_seconds = 0.0
        if len(index):
            one_hot = np.eye(num_classes, dtype=np.float32)[y[index]]
            start = time.perf_counter()
            x_adv = auto.generate(x=x[index].copy(), y=one_hot)
            art_seconds = time.perf_counter() - start
            art_robust[index] = _robust(model, x_adv, x[index], y[index], settings)
        library_note = (suite.settings if stages[0][0] == suite.cascade[0].name else
                        "the same cascade at the bench's settings: "
                        + ", then ".join(name for name, _ in stages))
        note = (f"library: {library_note}; ART: AutoAttack(targeted=True), "
                + ("APGD-CE, APGD-DLR, DeepFool, Square at 1 restart each"
                   if attacks else "its default attacks (5 restarts each)"))
        log(f"cascade: ART AutoAttack {100 * art_robust.mean():.2f}% ({art_seconds:.2f} s)")
    return Row("cascade", len(x), robust, art_robust, total, art_seconds, note), components


def compare(model: Any, x: np.ndarray, y: np.ndarray, components: Sequence[str],
            settings: Settings, use_art: bool = True,
            log: Callable[[str], None] = print) -> dict:
    """Runs `components` by the library and (with `use_art`) by ART on the same images.

    Args:
        model: a Keras model mapping [0, 1] images to logits.
        x: float32 images in [0, 1], [N, H, W, C].
        y: int labels, [N].
        components: names among `COMPONENTS`.
        settings: the attacks' settings.
        use_art: also run ART (needs `adversarial-robustness-toolbox`).
        log: called with one progress line per finished step.

    Returns:
        {"clean_accuracy", "rows" (`Row.to_dict` per component), "cascade_components",
        "table" (`format_table`)}.
    """
    x, y = np.asarray(x, np.float32), np.asarray(y, np.int32)
    unknown = set(components) - set(COMPONENTS)
    if unknown:
        raise ValueError(f"Unknown components {sorted(unknown)}; expected some of {COMPONENTS}.")
    logits = np.asarray(model(x[:1], training=False))
    num_classes = int(logits.shape[-1])
    correct = predict_labels(model, x, settings.batch_size) == y
    classifier = None
    if use_art:
        classifier = art_classifier(model, x.shape[1:], num_classes)
        classifier.predict(x[:2])
        classifier.loss_gradient(x[:2], np.eye(num_classes, dtype=np.float32)[y[:2]])
    log(f"clean accuracy {100 * correct.mean():.2f}% on {len(x)} images")
    rows, cascade_components = [], None
    for component in components:
        if component == "cascade":
            row, cascade_components = run_cascade(model, classifier, x, y, correct, settings,
                                                  num_classes, log)
        else:
            row = run_component(component, model, classifier, x, y, correct, settings,
                                num_classes, log)
        rows.append(row.to_dict())
    return {"clean_accuracy": float(correct.mean()), "rows": rows,
            "cascade_components": cascade_components, "table": format_table(rows)}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="A .keras model (logits on [0, 1] images).")
    parser.add_argument("--data", default="auto",
                        help="auto (the examples' local-copy lookup, then TFDS), an .npz copy "
                             "or a TFDS name.")
    parser.add_argument("--n", type=int, default=100, help="Test images.")
    parser.add_argument("--start", type=int, default=0, help="Index of the first test image.")
    parser.add_argument("--norm", choices=("linf", "l2"), default="linf")
    parser.add_argument("--epsilon", type=float, default=None,
                        help="The budget (default 8/255 in L-inf, 0.5 in L2).")
    parser.add_argument("--components", default="apgd-ce,apgd-dlr,apgd-t,square",
                        help=f"'all' or a comma-separated subset of {','.join(COMPONENTS)}.")
    parser.add_argument("--apgd_steps", type=int, default=100)
    parser.add_argument("--targets", type=int, default=9)
    parser.add_argument("--square_queries", type=int, default=5000)
    parser.add_argument("--square_images", type=int, default=0,
                        help="Square (both implementations) on the first this many images only "
                             "(0: all).")
    parser.add_argument("--art_autoattack", choices=ART_AUTOATTACK, default="matched")
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--no_art", action="store_true", help="The library's side only.")
    parser.add_argument("--seed", type=int, default=0,
                        help="Random starts and draws of both implementations' components "
                             "(rerun with other seeds to tell a draw from a weaker attack).")
    parser.add_argument("--out", default="bench/results/autoattack.json")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict:
    """Runs the bench from the command line; returns what it wrote."""
    args = parse_args(argv)
    import keras_robust as kr  # first: it imports TensorFlow without the C++ start-up lines
    from keras_robust import experiment

    import keras
    import tensorflow as tf

    components = list(COMPONENTS) if args.components == "all" else [
        c.strip() for c in args.components.split(",") if c.strip()]
    epsilon = args.epsilon if args.epsilon is not None else (8 / 255 if args.norm == "linf" else 0.5)
    settings = Settings(epsilon=epsilon, norm=args.norm, apgd_steps=args.apgd_steps,
                        targets=args.targets, square_queries=args.square_queries,
                        batch_size=args.batch_size, art_square_images=args.square_images,
                        art_autoattack=args.art_autoattack, seed=args.seed)
    model = keras.saving.load_model(args.model, compile=False)
    source = experiment.resolve_source(args.data)
    x, y = kr.data.load_arrays(source, "test", limit=args.start + args.n)
    x, y = kr.data.to_float(x)[args.start:], np.asarray(y, np.int32)[args.start:]

    def log(line: str) -> None:
        print(f"[bench/autoattack] {line}", file=sys.stderr, flush=True)

    result = compare(model, x, y, components, settings, use_art=not args.no_art, log=log)
    budget = f"{epsilon * 255:g}/255" if args.norm == "linf" else f"{epsilon:g}"
    print(f"model {args.model}; {len(x)} test images from index {args.start} ({source}); "
          f"{args.norm} eps {budget}; clean accuracy {100 * result['clean_accuracy']:.2f}%")
    print(result["table"])
    for row in result["rows"]:
        if row["note"]:
            print(f"  {row['component']}: {row['note']}")
    if result["cascade_components"]:
        for c in result["cascade_components"]:
            print(f"  library cascade {c['name']}: {100 * c['accuracy']:.2f}% "
                  f"({c['seconds']:.2f} s)")
    record = {"model": args.model, "data": source, "start": args.start, "images": len(x),
              "settings": dataclasses.asdict(settings), **result,
              "tensorflow": tf.__version__, "keras": keras.__version__}
    try:
        record["art"] = import_art().__version__
    except ImportError:
        record["art"] = None
    experiment.save_json(args.out, record)
    print(f"wrote {args.out}")
    return record


if __name__ == "__main__":
    main()
