"""`robustness_report`: the number every defence of this library is judged by.

It measures clean accuracy, accuracy under a suite of white-box attacks,
AutoAttack (the standard version's cascade, see `keras_robust.evaluate.suites`), a transfer attack when a surrogate is given,
accuracy against the budget and against the number of steps, and optionally
accuracy under common corruptions; then it checks itself for gradient masking
(`keras_robust.evaluate.checks`) and prints every FAIL in its summary.

Example:

```python
report = kr.evaluate.robustness_report(model, (x_test, y_test), epsilon=8 / 255,
                                       attacks="quick", output_dir="runs/report")
print(report.summary())
```
"""
from __future__ import annotations

import copy
import dataclasses
import json
import os
import time
from typing import Any, Callable, Sequence

import numpy as np
import tensorflow as tf

from keras_robust import progress as _progress
from keras_robust._io import save_json
from keras_robust._validation import check_choice, check_epsilon, check_labels, check_positive_int
from keras_robust.evaluate import checks as checks_lib
from keras_robust.evaluate import plots
from keras_robust.evaluate.metrics import predict_logits
from keras_robust.evaluate.stats import wilson_interval
from keras_robust.evaluate.suites import (
    AUTOATTACK_NAME,
    BATCH_SIZE,
    DEFAULT_EPSILON,
    NORMS,
    SUITES,
    SUMMARY_BATCH_SIZE,
    AttackSpec,
    build_suite,
    pgd_spec,
)


@dataclasses.dataclass
class RobustnessReport:
    """The outcome of `robustness_report`.

    Attributes:
        results: everything measured, as plain data (see `to_dict`): "model",
            "num_images", "epsilon", "norm", "suite", "clean" (accuracy), "attacks"
            (key -> {"name", "accuracy", "seconds", ...}), "autoattack"
            ({"name", "settings", "accuracy", "components", ...}),
            "transfer", "epsilon_curve", "steps_curve", "corruptions" and
            "seconds". Accuracies are fractions in [0, 1]. Each attack (and
            the cascade: "robust_mask", "apgd_robust_mask",
            "square_robust_mask") keeps its per-image robust mask (correct
            when clean and under the attack, `checks.encode_mask`), so the
            checks compare attacks image by image; `to_dict`, `summary` and
            `to_markdown` give every accuracy as k of n images with its 95%
            Wilson interval (`keras_robust.evaluate.wilson_interval`).
        checks: the gradient-masking checks (a list of `Check`).

    Properties: `clean_accuracy`, `robust_accuracy` (the lowest accuracy of
    the attacks and AutoAttack; the transfer attack and
    the curves do not count), `worst_attack` (the name of the attack that
    reached it), `passed` (a check was measured and none FAILed) and
    `checks_status` ("passed", "FAILED" or "not checked": a SKIPPED check
    measured nothing, so a report whose checks were all skipped does not pass).
    `summary()` names the worst attack and warns when no margin-loss attack
    checked the cross-entropy figures.
    `robustness_report` builds one; `load` reads a saved one back.

    Example:

    >>> results = {"model": "cnn", "clean": 0.8, "epsilon": 8 / 255, "num_images": 100,
    ...            "suite": "custom",
    ...            "attacks": {"fgsm": {"accuracy": 0.55, "name": "FGSM"},
    ...                        "pgd20_ce": {"accuracy": 0.48, "name": "PGD-20 (CE)"}}}
    >>> report = RobustnessReport(results, keras_robust.evaluate.run_checks(results))
    >>> report.robust_accuracy, report.passed, report.accuracy("fgsm")
    (0.48, True, 0.55)
    >>> print(report.summary().splitlines()[0])
    cnn: clean 80.0%, worst case 48.0% (PGD-20 (CE)) at eps 8.0/255 on 100 images (custom suite)
    >>> report.worst_attack
    'PGD-20 (CE)'
    >>> print(report.summary().splitlines()[-1])
    WARNING: no margin-loss attack ran (add pgd20_cw or autoattack): the cross-entropy figures
    are unchecked and may overstate robustness
    >>> print(report.checks_line())
    gradient-masking checks: passed, but only 1 of 8 checked (1 pass, 7 skipped)
    >>> unchecked = RobustnessReport(results, [])
    >>> unchecked.passed, unchecked.checks_status
    (False, 'not checked')
    """

    results: dict
    checks: list

    @property
    def clean_accuracy(self) -> float:
        return self.results["clean"]

    def _worst(self) -> tuple[str | None, str | None, float]:
        """(key, name, accuracy) of the attack with the lowest accuracy (the first on a tie)."""
        figures = [(key, a["name"], a["accuracy"])
                   for key, a in self.results.get("attacks", {}).items()]
        if self.results.get("autoattack"):
            figures.append(("autoattack", AUTOATTACK_NAME, self.results["autoattack"]["accuracy"]))
        if not figures:
            return None, None, self.clean_accuracy
        return min(figures, key=lambda item: item[2])

    @property
    def robust_accuracy(self) -> float:
        """The lowest accuracy any attack of the report reached (the headline figure)."""
        return self._worst()[2]

    @property
    def worst_attack(self) -> str | None:
        """The name of the attack that reached `robust_accuracy` (None without attacks)."""
        return self._worst()[1]

    @property
    def worst_case(self) -> dict | None:
        """The worst case as data: {"attack": key, "name", "accuracy"} (None without attacks).

        The key is the attack's key in `results["attacks"]`, or "autoattack".
        """
        key, name, accuracy = self._worst()
        return None if key is None else {"attack": key, "name": name, "accuracy": accuracy}

    @property
    def robust_to_all(self) -> float | None:
        """The fraction of images robust to every white-box attack at once (the
        per-image worst case, from the per-image masks; None without attacks or masks)."""
        entries = list(self.results.get("attacks", {}).values())
        if not entries or any(checks_lib.ROBUST_MASK not in e for e in entries):
            return None
        masks = [checks_lib.decode_mask(e[checks_lib.ROBUST_MASK]) for e in entries]
        return float(np.logical_and.reduce(masks).mean())

    @property
    def passed(self) -> bool:
        """True when at least one gradient-masking check was measured and none failed.

        A report whose checks were all SKIPPED did not pass: nothing was
        checked (see `checks_status`).
        """
        return self.checks_status == "passed"

    @property
    def checks_status(self) -> str:
        """The checks' verdict: "FAILED" (a check failed), "passed" (none failed, one
        or more measured) or "not checked" (every check SKIPPED: the report ran
        none of what they need)."""
        if any(c.failed for c in self.checks):
            return "FAILED"
        return "passed" if any(c.passed for c in self.checks) else "not checked"

    def checks_line(self) -> str:
        """One line on the gradient-masking checks that claims no pass it did not measure."""
        total = len(self.checks)
        measured = sum(c.status in ("PASS", "FAIL") for c in self.checks)
        skipped = total - measured
        failed = sum(c.failed for c in self.checks)
        if not measured:
            return (f"gradient-masking checks: not checked (all {total} skipped: the report "
                    "did not run what they need)")
        if failed:
            verdict = f"{failed} FAILED"
        else:
            verdict = "all passed" if not skipped else "passed"
        if skipped:
            return (f"gradient-masking checks: {verdict}, but only {measured} of {total} "
                    f"checked ({measured - failed} pass, {skipped} skipped)")
        return f"gradient-masking checks: {verdict} ({measured - failed} pass, 0 skipped)"

    def accuracy(self, key: str) -> float:
        """The accuracy of one attack by key ("pgd20_ce", "fgsm", ...)."""
        return self.results["attacks"][key]["accuracy"]

    def to_dict(self) -> dict:
        """Plain data: clean accuracy, attacks, AutoAttack, curves, corruptions, checks.

        Every accuracy of the attacks, the cascade, the transfer attack and
        the curves comes with its "count" (images, of "num_images") and
        "ci95" (95% Wilson interval); the clean one as "clean_count" and
        "clean_ci95", the cascade's Square-alone and APGD-only figures as
        "square_alone_count"/"_ci95" and "apgd_only_count"/"_ci95".
        """
        payload = _with_counts(self.results)
        payload["checks"] = [c.to_dict() for c in self.checks]
        payload["robust_accuracy"] = self.robust_accuracy
        payload["worst_attack"] = self.worst_attack
        payload["passed"] = self.passed
        payload["checks_status"] = self.checks_status
        return payload

    def summary(self) -> str:
        """A few lines: clean, headline robust accuracy, and every failed check."""
        r = self.results
        lines = [
            f"{r['model']}: clean {100 * r['clean']:.1f}%, worst case {100 * self.robust_accuracy:.1f}% "
            + (f"({self.worst_attack}) " if self.worst_attack else "")
            + f"at eps {_budget(r)} on {r['num_images']} images ({r['suite']} suite)"
        ]
        n = r["num_images"]
        lines.append(f"  {'clean':<28} {_cite(r['clean'], n)}")
        for key, attack in r.get("attacks", {}).items():
            lines.append(f"  {attack['name']:<28} {_cite(attack['accuracy'], n)}")
        if r.get("autoattack"):
            lines.append(f"  {AUTOATTACK_NAME:<28} {_cite(r['autoattack']['accuracy'], n)}")
            if r["autoattack"].get("settings"):
                lines.append(f"    {r['autoattack']['settings']}")
        if r.get("transfer"):
            lines.append(f"  {r['transfer']['name']:<28} {_cite(r['transfer']['accuracy'], n)}")
        if r.get("corruptions"):
            lines.append(f"  {'mean corruption accuracy':<28} "
                         f"{100 * r['corruptions']['mean_accuracy']:5.1f}%")
        failed = [c for c in self.checks if c.failed]
        lines.append(self.checks_line())
        for check in failed:
            lines.append(f"  FAIL {check.name}: {check.detail}")
        unchecked = any(c.name == checks_lib.CE_MARGIN_CHECK and c.status == "SKIPPED"
                        for c in self.checks)
        if unchecked and any(k.startswith("pgd") and "_ce" in k for k in r.get("attacks", {})):
            lines.append("  WARNING: no margin-loss attack ran (add pgd20_cw or autoattack): the "
                         "cross-entropy figures are unchecked and may overstate robustness")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def to_markdown(self) -> str:
        """The report as Markdown tables."""
        r = self.results
        out = [
            f"# Robustness report: {r['model']}",
            "",
            f"{r['num_images']} images, eps {_budget(r)} ({r['epsilon']:.4f}), "
            f"suite `{r['suite']}`, {r['seconds']:.0f} s.",
            "",
            "Accuracies are k of n images with a 95% Wilson interval.",
            "",
            "| attack | accuracy | images | 95% interval | seconds |",
            "| --- | ---: | ---: | ---: | ---: |",
            f"| clean | {_md_cells(r['clean'], r['num_images'])} | |",
        ]
        n = r["num_images"]
        for attack in r.get("attacks", {}).values():
            out.append(f"| {attack['name']} | {_md_cells(attack['accuracy'], n)} | "
                       f"{attack['seconds']:.1f} |")
        auto = r.get("autoattack")
        if auto:
            for component in auto["components"]:
                out.append(f"| {component['name']} (cascade: robust after it) | "
                           f"{_md_cells(component['accuracy'], n)} | {component['seconds']:.1f} |")
            if auto.get("square_alone") is not None:
                out.append(f"| Square alone | {_md_cells(auto['square_alone'], n)} | |")
            out.append(f"| **{AUTOATTACK_NAME}** | "
                       f"{_md_cells(auto['accuracy'], n, bold=True)} | |")
        if r.get("transfer"):
            t = r["transfer"]
            out.append(f"| {t['name']} | {_md_cells(t['accuracy'], n)} | {t['seconds']:.1f} |")
        if auto and auto.get("settings"):
            out += ["", f"{auto['settings']}."]
        verdict = self.checks_line()[len("gradient-masking c"):]
        out += ["", "## Gradient-masking checks", "", f"C{verdict}.", "",
                "| check | status | detail |", "| --- | --- | --- |"]
        for check in self.checks:
            status = f"**{check.status}**" if check.status == "FAIL" else check.status
            out.append(f"| {check.name} | {status} | {check.detail} |")
        if r.get("epsilon_curve"):
            l2 = r.get("norm") == "l2"
            out += ["", f"## Accuracy against epsilon (PGD-{r['epsilon_curve'][0]['steps']}, CE)", "",
                    ("| L2 eps | " if l2 else "| eps (/255) | ")
                    + " | ".join(f"{p['epsilon']:.3g}" if l2 else f"{p['epsilon'] * 255:.1f}"
                                 for p in r["epsilon_curve"]) + " |",
                    "| --- |" + " ---: |" * len(r["epsilon_curve"]),
                    "| accuracy | " + " | ".join(f"{100 * p['accuracy']:.1f}%" for p in r["epsilon_curve"]) + " |",
                    _md_curve_rows(r["epsilon_curve"], r["num_images"])]
        if r.get("steps_curve"):
            out += ["", "## Accuracy against PGD steps (CE)", "",
                    "| steps | " + " | ".join(str(p["steps"]) for p in r["steps_curve"]) + " |",
                    "| --- |" + " ---: |" * len(r["steps_curve"]),
                    "| accuracy | " + " | ".join(f"{100 * p['accuracy']:.1f}%" for p in r["steps_curve"]) + " |",
                    _md_curve_rows(r["steps_curve"], r["num_images"])]
        if r.get("corruptions"):
            out += ["", _corruption_markdown(r["corruptions"])]
        return "\n".join(out) + "\n"

    @classmethod
    def load(cls, path: str) -> "RobustnessReport":
        """Reads a saved `report.json` and judges it with the current checks.

        The measurements are kept as saved; the checks (and so `passed`) are
        recomputed, so a report written before a check changed is re-judged
        without attacking the model again.

        Args:
            path: a `report.json` written by `save`, or the folder holding it.

        Returns:
            The report.

        Example:

        >>> report = RobustnessReport.load("runs/plain/report")  # doctest: +SKIP
        >>> print(report.summary())  # doctest: +SKIP
        """
        if os.path.isdir(path):
            path = os.path.join(path, "report.json")
        with open(path) as f:
            payload = json.load(f)
        if not isinstance(payload, dict):
            raise ValueError(f"{path} is not a robustness report written by "
                             f"RobustnessReport.save: it holds a {type(payload).__name__}, "
                             "not an object")
        missing = [k for k in ("model", "clean", "epsilon", "num_images", "suite")
                   if k not in payload]
        if missing:
            raise ValueError(f"{path} is not a robustness report written by "
                             f"RobustnessReport.save: it lacks {missing}")
        results = {k: v for k, v in payload.items()
                   if k not in ("checks", "robust_accuracy", "worst_attack", "passed",
                                "checks_status", "clean_count", "clean_ci95")}
        return cls(results, checks_lib.run_checks(results))

    def save(self, output_dir: str) -> dict[str, str]:
        """Writes report.json, report.md and the PNG plots; returns their paths."""
        os.makedirs(output_dir, exist_ok=True)
        paths = {"json": os.path.join(output_dir, "report.json"),
                 "markdown": os.path.join(output_dir, "report.md")}
        save_json(paths["json"], self.to_dict())
        with open(paths["markdown"], "w") as f:
            f.write(self.to_markdown())
        r = self.results
        if r.get("epsilon_curve"):
            curve = r["epsilon_curve"]
            l2 = r.get("norm") == "l2"
            scale, label = (1.0, "epsilon (L2 budget)") if l2 else (255.0, "epsilon (L-inf budget)")
            paths["epsilon_plot"] = plots.line_plot(
                os.path.join(output_dir, "accuracy_vs_epsilon.png"),
                [scale * p["epsilon"] for p in curve], [p["accuracy"] for p in curve],
                label, f"{r['model']}: accuracy vs budget", log_x=True,
                xtick_labels=[f"{p['epsilon']:.3g}" if l2 else plots.budget_label(p["epsilon"])
                              for p in curve])
        if r.get("steps_curve"):
            curve = r["steps_curve"]
            paths["steps_plot"] = plots.line_plot(
                os.path.join(output_dir, "accuracy_vs_steps.png"),
                [p["steps"] for p in curve], [p["accuracy"] for p in curve],
                "PGD steps", f"{r['model']}: accuracy vs steps", log_x=True,
                xtick_labels=[str(p["steps"]) for p in curve])
        if r.get("corruptions"):
            c = r["corruptions"]
            severities = c["severities"]
            values = np.array([[100 * c["accuracy"][name][str(s)] for s in severities]
                               for name in c["names"]])
            paths["corruption_plot"] = plots.heatmap(
                os.path.join(output_dir, "corruptions.png"), c["names"],
                [f"severity {s}" for s in severities], values,
                f"{r['model']}: accuracy (%) under corruptions")
        return paths


def _count(accuracy: float, n: int) -> int:
    """The images behind an accuracy measured on n images (accuracy = k / n)."""
    return int(round(accuracy * n))


def _interval(accuracy: float, n: int) -> list[float]:
    return list(wilson_interval(_count(accuracy, n), n))


def _cite(accuracy: float, n: int) -> str:
    """'31.0% (31/100, 95% CI 22.8-40.6%)': a figure one can cite."""
    low, high = _interval(accuracy, n)
    return (f"{100 * accuracy:5.1f}% ({_count(accuracy, n)}/{n}, 95% CI "
            f"{100 * low:.1f}-{100 * high:.1f}%)")


def _md_cells(accuracy: float, n: int, bold: bool = False) -> str:
    low, high = _interval(accuracy, n)
    figure = f"{100 * accuracy:.1f}%"
    return (f"{f'**{figure}**' if bold else figure} | {_count(accuracy, n)}/{n} | "
            f"{100 * low:.1f}-{100 * high:.1f}%")


def _md_curve_rows(curve: list[dict], n: int) -> str:
    counts = " | ".join(f"{_count(p['accuracy'], n)}/{n}" for p in curve)
    intervals = " | ".join("{:.1f}-{:.1f}%".format(*(100 * v for v in _interval(p["accuracy"], n)))
                           for p in curve)
    return f"| images | {counts} |\n| 95% interval | {intervals} |"


def _with_counts(results: dict) -> dict:
    """A copy of `results` whose accuracies carry "count" and "ci95" (Wilson, 95%)."""
    payload = copy.deepcopy(results)
    n = payload["num_images"]

    def annotate(entry: dict | None, key: str = "accuracy") -> None:
        if entry is None or entry.get(key) is None:
            return
        prefix = "" if key == "accuracy" else f"{key}_"
        entry[f"{prefix}count"] = _count(entry[key], n)
        entry[f"{prefix}ci95"] = _interval(entry[key], n)

    annotate(payload, "clean")
    for entry in (payload.get("attacks") or {}).values():
        annotate(entry)
    auto = payload.get("autoattack")
    if auto:
        for key in ("accuracy", "apgd_only", "square_alone"):
            annotate(auto, key)
        for component in auto.get("components", []):
            annotate(component)
    annotate(payload.get("transfer"))
    for point in (payload.get("epsilon_curve") or []) + (payload.get("steps_curve") or []):
        annotate(point)
    return payload


def robustness_report(
    model: Any,
    dataset: Any,
    *,
    epsilon: float | None = None,
    norm: str = "linf",
    attacks: str | Sequence[str] | None = "standard",
    corruptions: str | Sequence[str] | None = None,
    output_dir: str | None = None,
    surrogate: Any = None,
    baseline: "RobustnessReport | dict | None" = None,
    limit: int | None = None,
    batch_size: int | None = None,
    severities: Sequence[int] = (1, 2, 3, 4, 5),
    progress: bool = True,
    name: str | None = None,
) -> RobustnessReport:
    """Evaluates robustness honestly, with gradient-masking checks.

    Args:
        model: a Keras model (or any callable) mapping [0, 1] images to logits.
        dataset: `(images, labels)` arrays (uint8 0..255 or float [0, 1]) or a
            `tf.data.Dataset` of such pairs (batched or not).
        epsilon: the budget on the [0, 1] scale (L-inf: at most 1, e.g.
            8/255; L2: e.g. 0.5); None: the norm's default,
            `suites.DEFAULT_EPSILON` (8/255 in L-inf, 0.5 in L2).
        norm: the threat model, "linf" or "l2": every attack, the cascade
            and the curves use it (L2: PGD with step eps / 4; the cascade is
            APGD-CE, APGD-T and FAB-T in L2, with Square when
            `keras_robust.attacks.square` has an L2 version; the report's
            AutoAttack settings line says which ran).
        attacks: "standard", "quick", "rand" or "summary" (see
            `keras_robust.evaluate.suites`; "summary" is five attacks, FGSM,
            PGD-10, PGD-20, PGD-20 CW and APGD-T, whose summary gives the
            worst case and the CE vs margin-loss check), a list of attack
            keys of the standard suite (e.g. ["fgsm", "pgd20_ce",
            "pgd20_cw", "autoattack"]), or None for no attacks.
        corruptions: None, "all", "mtlat" (the 19 of M-TLAT's benchmark) or a
            list of names of `keras_robust.corruptions.NAMES`.
        output_dir: where to write report.json, report.md and PNG plots.
        surrogate: a model to craft transfer attacks on (PGD-20, CE).
        baseline: a report of a reference model; corruption robustness scores
            are compared to it (+/-).
        limit: evaluate on the first `limit` examples only.
        batch_size: images per attack batch (None: 250, or 500 for the
            "summary" suite, the batches of
            `keras_robust.evaluate.robust_accuracy`).
        severities: corruption severities.
        progress: show progress on stderr when it is a terminal: a bar per
            attack (per batch, with its ETA; per stage of the AutoAttack
            cascade), a line per result and the summary. Off when stderr is
            not a terminal unless the environment variable
            `KERAS_ROBUST_PROGRESS=1` forces it (`=0` hides it everywhere).
        name: the model's name in the report (default: `model.name`).

    Returns:
        A `RobustnessReport`.

    Example:

    >>> report = robustness_report(model, (x_test[:1000], y_test[:1000]),
    ...                            attacks="quick")  # doctest: +SKIP
    >>> report.passed, report.robust_accuracy  # doctest: +SKIP
    >>> import tempfile
    >>> model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
    ...                           keras.layers.Dense(10)], name="linear")
    >>> x = np.random.default_rng(0).random((8, 8, 8, 3), "float32")
    >>> folder = tempfile.mkdtemp()
    >>> report = robustness_report(model, (x, np.arange(8) % 10), attacks=["fgsm", "pgd7_ce"],
    ...                            output_dir=folder, progress=False)
    >>> list(report.results["attacks"]), report.robust_accuracy <= report.clean_accuracy
    (['fgsm', 'pgd7_ce'], True)
    >>> report.results["num_images"], sorted(os.listdir(folder))
    (8, ['report.json', 'report.md'])
    >>> print(report.summary().splitlines()[0])
    linear: clean ...%, worst case ...% (...) at eps 8.0/255 on 8 images (custom suite)
    """
    check_choice(norm, NORMS, "norm")
    epsilon = DEFAULT_EPSILON[norm] if epsilon is None else epsilon
    epsilon = float(check_epsilon(epsilon, maximum=1.0 if norm == "linf" else None))
    if batch_size is None:
        batch_size = SUMMARY_BATCH_SIZE if attacks == "summary" else BATCH_SIZE
    batch_size = check_positive_int(batch_size, "batch_size")
    x, y = _as_arrays(dataset, limit)
    logits = predict_logits(model, x, batch_size)
    check_labels(y, logits.shape[-1], "labels")
    correct = np.argmax(logits, -1) == y
    name = name or getattr(model, "name", type(model).__name__)
    log = _Progress(progress, name)
    start = time.time()
    results: dict[str, Any] = {
        "model": name, "num_images": int(len(x)), "epsilon": epsilon, "norm": norm,
        "suite": attacks if isinstance(attacks, str) else "custom" if attacks else "none",
        "clean": float(correct.mean()), "attacks": {}, "autoattack": None, "transfer": None,
        "epsilon_curve": [], "steps_curve": [], "corruptions": None,
    }
    log.line(f"clean accuracy {100 * results['clean']:.1f}% on {len(x)} images")
    # Check 8: a second pass over the first batch; random inference shows as a difference.
    probe = min(len(x), batch_size)
    again = predict_logits(model, x[:probe], batch_size)
    results["inference"] = {
        "images": int(probe),
        "max_difference": float(np.max(np.abs(again - logits[:probe]))) if probe else 0.0,
        "scale": float(np.max(np.abs(logits[:probe]))) if probe else 0.0,
    }
    suite, selected = (_select(attacks, epsilon, norm, int(logits.shape[-1])) if attacks
                       else (None, None))
    runner = _Runner(model, x, y, correct, batch_size, log, norm,
                     every_image=bool(suite and suite.every_image))

    if attacks:
        for spec in suite.attacks:
            if selected is None or spec.key in selected:
                results["attacks"][spec.key] = runner.run(spec)
        if suite.cascade and (selected is None or "autoattack" in selected):
            results["autoattack"] = runner.cascade(suite.cascade)
            results["autoattack"]["settings"] = suite.settings
        if suite.epsilon_factors and (selected is None or "curves" in selected):
            results["epsilon_curve"] = runner.epsilon_curve(
                epsilon, suite.epsilon_factors, suite.curve_steps, results["attacks"])
            results["steps_curve"] = runner.steps_curve(epsilon, suite.steps_curve,
                                                        results["attacks"])
        if surrogate is not None:
            results["transfer"] = runner.transfer(surrogate, epsilon)
    if corruptions:
        results["corruptions"] = _corruptions(model, x, y, results["clean"], corruptions,
                                              severities, batch_size, baseline, progress)
    results["seconds"] = time.time() - start
    specs = suite.attacks if attacks else None  # the checks read each attack's settings
    report = RobustnessReport(results, checks_lib.run_checks(results, specs))
    if output_dir:
        report.save(output_dir)
        log.line(f"wrote {output_dir}/report.json, report.md and plots")
    _progress.line(report.summary(), progress)
    return report


class _Progress:
    """The report's progress: `keras_robust.progress` lines and bars titled with
    the model's name."""

    def __init__(self, enabled: bool, name: str):
        self.enabled, self.name = enabled, name

    def line(self, text: str) -> None:
        _progress.line(f"[report {self.name}] {text}", self.enabled)

    def bar(self, title: str, total: int) -> _progress.Bar:
        return _progress.bar(f"[report {self.name}] {title} ", total, self.enabled)


class _Runner:
    """Runs attacks on the images the model classifies correctly (the others
    count as errors under any attack) and keeps per-image outcomes."""

    def __init__(self, model, x, y, correct, batch_size, log, norm="linf", every_image=False):
        self.model, self.x, self.y, self.correct = model, x, y, correct
        self.batch_size, self.log, self.norm = batch_size, log, norm
        self.every_image = every_image

    def robust_mask(self, run: Callable, subset: np.ndarray, title: str = "attack") -> np.ndarray:
        """Per image of `subset` (indices), whether `run` failed to fool the model
        (a progress bar titled `title` advances per batch)."""
        robust = np.zeros(len(subset), dtype=bool)
        with self.log.bar(title, -(-len(subset) // self.batch_size)) as bar:
            for start in range(0, len(subset), self.batch_size):
                index = subset[start:start + self.batch_size]
                x_adv = np.asarray(run(self.model, tf.constant(self.x[index]),
                                       tf.constant(self.y[index])))
                logits = predict_logits(self.model, x_adv, self.batch_size)
                robust[start:start + len(index)] = np.argmax(logits, -1) == self.y[index]
                bar.update()
        return robust

    def robust_under(self, run: Callable, title: str = "attack") -> tuple[np.ndarray, float]:
        """Per image (all of them), correct when clean AND under `run`; seconds.

        `run` attacks the images classified correctly, or every image when the
        suite says so (`Suite.every_image`)."""
        start = time.time()
        robust = self.correct.copy()
        subset = np.arange(len(robust)) if self.every_image else np.flatnonzero(robust)
        if len(subset):
            robust[subset] &= self.robust_mask(run, subset, title)
        return robust, time.time() - start

    def accuracy_under(self, run: Callable, title: str = "attack") -> tuple[float, float]:
        robust, seconds = self.robust_under(run, title)
        return float(robust.sum()) / len(self.x), seconds

    def run(self, spec: AttackSpec) -> dict:
        robust, seconds = self.robust_under(spec.run, spec.name)
        accuracy = float(robust.sum()) / len(self.x)
        self.log.line(f"{spec.name}: {100 * accuracy:.1f}% ({seconds:.1f} s)")
        return {"name": spec.name, "accuracy": accuracy, "seconds": seconds,
                "family": spec.family, "loss": spec.loss, "steps": spec.steps,
                checks_lib.ROBUST_MASK: checks_lib.encode_mask(robust)}

    def cascade(self, specs: Sequence[AttackSpec]) -> dict:
        """AutoAttack: each attack of `specs` on the images still robust after the
        previous ones; the images robust to all give its accuracy. Square (when in
        `specs`) then also attacks the images the gradient stages broke, so that
        "square_alone" (Square on every correctly classified image, for the
        masking checks) is known; that does not change the AutoAttack figure."""
        components = []
        robust = self.correct.copy()
        apgd_only = None
        square_alone = None
        masks = {}
        for stage, spec in enumerate(specs, 1):
            title = f"{AUTOATTACK_NAME} {stage}/{len(specs)}: {spec.name}"
            if spec.family == "square":
                gradient_robust = robust.copy()
            start = time.time()
            subset = np.flatnonzero(robust)
            if len(subset):
                robust[subset] = self.robust_mask(spec.run, subset, title)
            if spec.family == "square":
                square_robust = robust | ~gradient_robust
                rest = np.flatnonzero(self.correct & ~gradient_robust)
                if len(rest):
                    square_robust[rest] = self.robust_mask(spec.run, rest, title + " (alone)")
                square_robust &= self.correct
                square_alone = float(square_robust.mean())
                masks["square_" + checks_lib.ROBUST_MASK] = checks_lib.encode_mask(square_robust)
            seconds = time.time() - start
            components.append({"name": spec.name, "key": spec.key,
                               "accuracy": float(robust.mean()), "seconds": seconds})
            self.log.line(f"{spec.name} (cascade): {100 * robust.mean():.1f}% ({seconds:.1f} s)")
            if spec.family == "apgd":
                apgd_only = float(robust.mean())
                masks["apgd_" + checks_lib.ROBUST_MASK] = checks_lib.encode_mask(robust)
        if square_alone is not None:
            self.log.line(f"Square alone: {100 * square_alone:.1f}%")
        self.log.line(f"{AUTOATTACK_NAME}: {100 * robust.mean():.1f}%")
        masks[checks_lib.ROBUST_MASK] = checks_lib.encode_mask(robust)
        return {"name": AUTOATTACK_NAME, "accuracy": float(robust.mean()),
                "apgd_only": apgd_only, "square_alone": square_alone,
                "components": components, **masks}

    def epsilon_curve(self, epsilon, factors, steps, known) -> list[dict]:
        curve = []
        for factor in factors:
            # The largest useful budget: the cube [0, 1]^d's L-inf radius 1 or L2
            # diameter sqrt(d).
            cap = 1.0 if self.norm == "linf" else float(np.sqrt(self.x[0].size))
            eps = min(cap, epsilon * factor)
            key = f"pgd{steps}_ce"
            if factor == 1.0 and key in known:
                accuracy = known[key]["accuracy"]
            else:
                accuracy, _ = self.accuracy_under(pgd_spec(eps, steps, norm=self.norm).run,
                                                  f"PGD-{steps} at eps x{factor:g}")
            curve.append({"epsilon": eps, "accuracy": accuracy, "steps": steps})
            self.log.line(f"PGD-{steps} at eps {_budget({'epsilon': eps, 'norm': self.norm})}: "
                          f"{100 * accuracy:.1f}%")
        return curve

    def steps_curve(self, epsilon, step_counts, known) -> list[dict]:
        curve = []
        for steps in step_counts:
            key = f"pgd{steps}_ce"
            if key in known:
                accuracy = known[key]["accuracy"]
            else:
                accuracy, _ = self.accuracy_under(pgd_spec(epsilon, steps, norm=self.norm).run,
                                                  f"PGD-{steps}")
            curve.append({"steps": steps, "accuracy": accuracy})
            self.log.line(f"PGD-{steps} (CE): {100 * accuracy:.1f}%")
        return curve

    def transfer(self, surrogate, epsilon) -> dict:
        from keras_robust import attacks

        start = time.time()
        subset = np.flatnonzero(self.correct)
        robust = np.zeros(len(subset), dtype=bool)
        with self.log.bar("transfer PGD-20", -(-len(subset) // self.batch_size)) as bar:
            for begin in range(0, len(subset), self.batch_size):
                index = subset[begin:begin + self.batch_size]
                x_adv = np.asarray(attacks.pgd(surrogate, self.x[index], self.y[index], epsilon,
                                               epsilon / 4, 20, seed=0, norm=self.norm))
                logits = predict_logits(self.model, x_adv, self.batch_size)
                robust[begin:begin + len(index)] = np.argmax(logits, -1) == self.y[index]
                bar.update()
        accuracy = float(robust.sum()) / len(self.x)
        seconds = time.time() - start
        self.log.line(f"transfer PGD-20 from surrogate: {100 * accuracy:.1f}% ({seconds:.1f} s)")
        return {"name": "Transfer PGD-20 (CE) from surrogate", "accuracy": accuracy,
                "seconds": seconds}


def _budget(results: dict) -> str:
    """The budget as the report prints it: "8.0/255" (L-inf) or "0.5 (L2)"."""
    if results.get("norm", "linf") == "l2":
        return f"{results['epsilon']:.3g} (L2)"
    return f"{results['epsilon'] * 255:.1f}/255"


def _select(attacks, epsilon, norm="linf", num_classes=None):
    if isinstance(attacks, str):
        return build_suite(attacks, epsilon, norm, num_classes), None
    selected = set(attacks)
    suite = build_suite("standard", epsilon, norm, num_classes)
    valid = {a.key for a in suite.attacks} | {"autoattack", "curves"}
    unknown = selected - valid
    if unknown:
        raise ValueError(
            f"Unknown report attacks {sorted(unknown)}; expected suite names {SUITES} or keys "
            f"among {sorted(valid)}."
        )
    return suite, selected


def _as_arrays(dataset: Any, limit: int | None) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(dataset, tf.data.Dataset):
        xs, ys = [], []
        count = 0
        for element in dataset:
            images, labels = element[0], element[1]
            images, labels = np.asarray(images), np.asarray(labels)
            if images.ndim == 3:
                images, labels = images[None], labels[None]
            xs.append(images)
            ys.append(labels)
            count += len(images)
            if limit and count >= limit:
                break
        if not xs:
            raise ValueError("The dataset is empty; expected (images, labels) examples.")
        x, y = np.concatenate(xs), np.concatenate(ys)
    elif isinstance(dataset, (tuple, list)) and len(dataset) == 2:
        x, y = np.asarray(dataset[0]), np.asarray(dataset[1])
    else:
        raise TypeError(
            "`dataset` must be (images, labels) arrays or a tf.data.Dataset of such pairs, got "
            f"{type(dataset).__name__}."
        )
    if limit:
        x, y = x[:limit], y[:limit]
    if len(x) == 0:
        raise ValueError("No images to evaluate; expected a non-empty dataset.")
    if x.dtype == np.uint8:
        x = x.astype(np.float32) / 255.0
    from keras_robust._validation import check_images

    check_images(x, "images")
    if y.ndim == 2:
        y = np.argmax(y, -1) if y.shape[-1] > 1 else y[:, 0]
    return x.astype(np.float32), y.astype(np.int32)


def _corruptions(model, x, y, clean, which, severities, batch_size, baseline, progress) -> dict:
    from keras_robust import corruptions as corruptions_lib

    if isinstance(which, str):
        check_choice(which, ("all", "mtlat", "datacentric"), "corruption set")
        names = {"all": corruptions_lib.NAMES, "mtlat": corruptions_lib.MTLAT_19,
                 "datacentric": corruptions_lib.DATACENTRIC_14}[which]
    else:
        names = tuple(which)
        for item in names:
            check_choice(item, corruptions_lib.NAMES, "corruption")
    images = np.round(x * 255).astype(np.uint8)
    measured = corruptions_lib.corruption_accuracy(
        model, images, y, names=names, severities=tuple(severities), seed=0,
        batch_size=batch_size, progress=progress,
    )
    accuracy = {name: {str(s): float(measured[(name, s)]) for s in severities} for name in names}
    mean_by_name = {name: float(np.mean(list(accuracy[name].values()))) for name in names}
    scores = {name: (mean_by_name[name] / clean if clean > 0 else 0.0) for name in names}
    result = {
        "names": list(names), "severities": list(severities), "accuracy": accuracy,
        "mean_accuracy_by_name": mean_by_name,
        "mean_accuracy": float(np.mean(list(mean_by_name.values()))),
        "robustness_score": scores,
    }
    if baseline is not None:
        base = baseline.results if isinstance(baseline, RobustnessReport) else baseline
        base_scores = (base.get("corruptions") or {}).get("robustness_score", {})
        result["baseline"] = {
            "model": base.get("model"),
            "robustness_score": {n: base_scores.get(n) for n in names},
            "better": {n: (scores[n] > base_scores[n]) if n in base_scores else None
                       for n in names},
        }
    return result


def _corruption_markdown(c: dict) -> str:
    severities = c["severities"]
    lines = ["## Corruptions", "",
             "R = mean accuracy over severities / clean accuracy (eq. 7 of M-TLAT)"
             + ("; +/- compares R to the baseline model." if c.get("baseline") else "."), "",
             "| corruption | " + " | ".join(f"s{s}" for s in severities) + " | mean | R |",
             "| --- |" + " ---: |" * (len(severities) + 2)]
    for name in c["names"]:
        mark = ""
        if c.get("baseline") and c["baseline"]["better"].get(name) is not None:
            mark = "+" if c["baseline"]["better"][name] else "-"
        row = " | ".join(f"{100 * c['accuracy'][name][str(s)]:.1f}" for s in severities)
        lines.append(f"| {name} | {row} | {100 * c['mean_accuracy_by_name'][name]:.1f} | "
                     f"{c['robustness_score'][name]:.2f}{mark} |")
    lines.append("| **mean** | " + " | ".join("" for _ in severities)
                 + f" | **{100 * c['mean_accuracy']:.1f}** | |")
    return "\n".join(lines)

