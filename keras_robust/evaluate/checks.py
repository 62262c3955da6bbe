"""Gradient-masking checks ("On Evaluating Adversarial Robustness", Carlini et al. 2019).

Each check compares accuracies the report measured on the same images and
returns PASS, FAIL or SKIPPED (when the report did not run what it needs), with
the numbers. A FAIL means the evaluation cannot be trusted as it stands: a
defence that only masks gradients looks strong against the attacks that need
them and weak against the others.

Margins (accuracy): `TOLERANCE` = 2 points for orderings that must hold up to
sampling noise of paired attacks on the same images; `AGREEMENT` = 5 points
for attacks of different kinds that should find nearly the same worst case
(AutoAttack is typically 1-4 points below PGD-100 on adversarially trained
CIFAR-10 models); `RELATIVE` = 20%: where robust accuracy is low, 5 points can
be a quarter of the claimed robustness, so two attacks also disagree when the
weaker one's figure is more than 20% above the stronger one's (and more than
`TOLERANCE` apart); `NEAR_ZERO` = 5% accuracy at the largest budget.

Check 5 (CE vs margin loss) has its own margins, `MASKED_RELATIVE` = 18% of
the CE figure and `MASKED_ABSOLUTE` = 8 points, set on measured reports
(docs/results/attacks.md, bat.md): a margin-loss attack a few points below
CE-PGD is normal for adversarially trained models (6% on the AutoAttack
leaderboard's Madry et al., 47.04 -> 44.29; 12-17% for this library's PGD-AT,
up to 31.0 -> 25.7; 14% for BPFC), while label smoothing at 2/255 measured
19-24% and BAT's soft labels (R-MC-LA, R-MC-LS) 26-37%.

Paired verdicts: the report keeps, per attack, the per-image robust mask
(correct when clean and under the attack). A check comparing attack A (the
one that should be weaker) with attack B then counts b = images robust to A
but broken by B, c = the reverse (so the accuracy gap is (b - c) / n), and
gives the two-sided exact McNemar p-value (`stats.mcnemar_p_value`). A FAIL
then needs the margin crossed AND p < `ALPHA` = 0.05: a gap the images
cannot tell from sampling noise is reported, with its p, as a PASS. Reports
without masks (written by older versions) fall back to the unpaired rule
and say so.
"""
from __future__ import annotations

import dataclasses
import re
from typing import Any, NamedTuple, Sequence

import numpy as np

from keras_robust._validation import check_fraction
from keras_robust.evaluate.stats import mcnemar_p_value

TOLERANCE = 0.02
AGREEMENT = 0.05
RELATIVE = 0.20
NEAR_ZERO = 0.05
MASKED_RELATIVE = 0.18
MASKED_ABSOLUTE = 0.08
ALPHA = 0.05

ROBUST_MASK = "robust_mask"
# The losses of the margin-loss attacks check 5 holds against cross-entropy.
MARGIN_LOSSES = ("cw", "dlr")
_UNPAIRED = " [unpaired: no per-image masks (b, c), the two figures alone decide]"


def encode_mask(mask: Any) -> str:
    """A per-image boolean mask as a compact JSON-safe string of "0"/"1".

    Args:
        mask: booleans, one per image.

    Returns:
        The string, one character per image.

    Example:

    >>> encode_mask([True, False, True])
    '101'
    """
    return "".join("1" if v else "0" for v in np.asarray(mask, dtype=bool).ravel())


def decode_mask(text: str) -> np.ndarray:
    """The boolean mask `encode_mask` wrote.

    Args:
        text: a string of "0"/"1".

    Returns:
        A bool array, one entry per image.

    Raises:
        ValueError: a character other than "0" or "1".

    Example:

    >>> decode_mask("101").tolist()
    [True, False, True]
    """
    if not isinstance(text, str) or set(text) - {"0", "1"}:
        raise ValueError(f"A robust mask must be a string of '0'/'1' (one per image), got "
                         f"{str(text)[:20]!r}.")
    return np.frombuffer(text.encode(), dtype=np.uint8) == ord("1")


def _paired(a: dict | None, b: dict | None, mask_a: str = ROBUST_MASK,
            mask_b: str = ROBUST_MASK) -> tuple[int, int, float] | None:
    """(b, c, p): images robust to A broken by B, the reverse, McNemar's p; None unpaired."""
    if not a or not b or mask_a not in a or mask_b not in b:
        return None
    robust_a, robust_b = decode_mask(a[mask_a]), decode_mask(b[mask_b])
    if len(robust_a) != len(robust_b):
        return None
    broken_by_b = int(np.sum(robust_a & ~robust_b))
    broken_by_a = int(np.sum(robust_b & ~robust_a))
    return broken_by_b, broken_by_a, mcnemar_p_value(broken_by_b, broken_by_a)


def _pair_text(paired: tuple[int, int, float] | None) -> str:
    if paired is None:
        return _UNPAIRED
    return f" (paired: b={paired[0]}, c={paired[1]}, p={paired[2]:.2g})"


def _pair_values(paired: tuple[int, int, float] | None) -> dict:
    return {} if paired is None else {"b": paired[0], "c": paired[1], "p_value": paired[2]}


def _significant(paired: tuple[int, int, float] | None) -> bool:
    """True unpaired (the old rule alone), else b > c with p < ALPHA."""
    return paired is None or (paired[0] > paired[1] and paired[2] < ALPHA)


_NOISE = (": the margin is crossed, but not significantly on these images (p >= "
          f"{ALPHA:g}): within sampling noise")


@dataclasses.dataclass(frozen=True)
class Check:
    """The outcome of one check.

    Attributes:
        name: what is checked.
        status: "PASS", "FAIL" or "SKIPPED".
        detail: the comparison with its numbers (for SKIPPED, what is missing).
        values: the numbers compared, name -> value: accuracies in [0, 1]
            (the large-budget check also records its "epsilon"); empty when
            SKIPPED.

    `passed` is True for PASS only: a SKIPPED check measured nothing, so it
    did not pass (and did not fail: see `failed`). `to_dict()` gives the four
    fields as a dict. `run_checks` makes them.

    Example:

    >>> check = Check("demo", "SKIPPED", "no accuracy-vs-epsilon curve", {})
    >>> check.passed, check.failed, check.to_dict()["status"]
    (False, False, 'SKIPPED')
    """

    name: str
    status: str
    detail: str
    values: dict

    @property
    def passed(self) -> bool:
        """True when the check was measured and held (status PASS)."""
        return self.status == "PASS"

    @property
    def failed(self) -> bool:
        """True when the check was measured and did not hold (status FAIL)."""
        return self.status == "FAIL"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def _skipped(name: str, why: str) -> Check:
    return Check(name, "SKIPPED", why, {})


def _ordered(name: str, low_name: str, low: float, high_name: str, high: float,
             margin: float, why: str, paired: tuple[int, int, float] | None = None) -> Check:
    """PASS when accuracy `low` <= `high` + margin (or, paired, the excess is not significant).

    `paired` is (b, c, p) with A = the `low` attack, B = the `high` one.
    """
    crossed = low > high + margin
    ok = not (crossed and _significant(paired))
    relation = ">" if crossed else "<="
    detail = (f"{low_name} {_pct(low)} {relation} {high_name} {_pct(high)} + {100 * margin:.0f} "
              f"points{_pair_text(paired)}")
    if crossed:
        detail += _NOISE if ok else ": " + why
    return Check(name, "PASS" if ok else "FAIL", detail,
                 {low_name: low, high_name: high, **_pair_values(paired)})


def _agree(name: str, weak_name: str, weak: float, strong_name: str, strong: float,
           why: str, paired: tuple[int, int, float] | None = None) -> Check:
    """PASS when accuracy `weak` is within `AGREEMENT` and `RELATIVE` of `strong`.

    The gap `weak - strong` fails when it exceeds `AGREEMENT`, or when it
    exceeds both `TOLERANCE` (sampling noise) and `RELATIVE` x `weak`.
    """
    gap = weak - strong
    absolute = gap > AGREEMENT
    relative = gap > TOLERANCE and gap > RELATIVE * weak
    crossed = absolute or relative
    ok = not (crossed and _significant(paired))
    share = f" ({100 * gap / weak:.0f}% of {weak_name})" if weak > 0 else ""
    detail = (f"{weak_name} {_pct(weak)} vs {strong_name} {_pct(strong)}: "
              f"gap {100 * gap:.1f} points{share}{_pair_text(paired)}")
    if not crossed:
        detail += f", within {100 * AGREEMENT:.0f} points and {100 * RELATIVE:.0f}%"
    else:
        limit = (f"> {100 * AGREEMENT:.0f} points" if absolute
                 else f"> {100 * RELATIVE:.0f}% of {weak_name}")
        detail += f" {limit}" + (_NOISE if ok else f": {why}")
    return Check(name, "PASS" if ok else "FAIL", detail,
                 {weak_name: weak, strong_name: strong, **_pair_values(paired)})


CE_MARGIN_CHECK = "cross-entropy and margin-loss attacks agree"


def ce_margin_agreement(ce_accuracy: float, margin_accuracy: float,
                        ce_name: str = "CE attack",
                        margin_name: str = "margin-loss attack",
                        b: int | None = None, c: int | None = None) -> Check:
    """Check 5 of `run_checks`: does the CE figure overstate robustness?

    A cross-entropy attack (PGD with CE loss) and a margin-loss attack (PGD
    with the CW loss, the AutoAttack cascade) run on the same images.
    A margin-loss figure a few points lower is normal for adversarially
    trained models; a masked CE loss (flat or saturated, as label smoothing
    and soft adversarial labels make it) leaves many images the margin loss
    breaks. The check FAILs when the gap CE - margin exceeds `TOLERANCE`
    (2 points of noise) and either `MASKED_RELATIVE` (18%) of the CE figure
    or `MASKED_ABSOLUTE` (8 points), and, when the paired counts are given,
    when the margin-loss attack breaks significantly more of the images
    than the reverse (b > c, exact McNemar p < `ALPHA`). The detail says what
    was measured and by how much the CE figure overstates robustness.

    Args:
        ce_accuracy: accuracy in [0, 1] under the strongest CE attack.
        margin_accuracy: accuracy in [0, 1] under the strongest margin-loss
            attack, on the same images.
        ce_name: the CE attack's name, for the detail ("PGD-20 (CE)").
        margin_name: the margin-loss attack's name ("PGD-20 (CW)").
        b: images robust to the CE attack but broken by the margin-loss
            attack (None: unpaired figures).
        c: the reverse count; give both b and c or neither.

    Returns:
        A `Check` named `CE_MARGIN_CHECK`, "PASS" or "FAIL"; its values hold
        both figures (and b, c, "p_value" when paired).

    Raises:
        TypeError, ValueError: an accuracy that is not a number in [0, 1]
            (e.g. a percentage: pass 0.30, not 30), or only one of b and c.

    Example:

    >>> ce_margin_agreement(0.224, 0.155, "PGD-20 (CE)", "APGD-T").status  # BAT: 31%
    'FAIL'
    >>> check = ce_margin_agreement(0.31, 0.257, "PGD-100 (CE)", "AutoAttack", b=60, c=7)
    >>> check.status, check.values["b"]  # PGD-AT: 17%, within the normal gap
    ('PASS', 60)
    """
    ce_accuracy = check_fraction(ce_accuracy, "ce_accuracy")
    margin_accuracy = check_fraction(margin_accuracy, "margin_accuracy")
    if (b is None) != (c is None):
        raise ValueError("Give both paired counts `b` and `c` (images robust to the CE attack "
                         "and broken by the margin-loss attack, and the reverse), or neither.")
    paired = None if b is None else (int(b), int(c), mcnemar_p_value(b, c))
    gap = ce_accuracy - margin_accuracy
    share = gap / ce_accuracy if ce_accuracy > 0 else 0.0
    crossed = gap > TOLERANCE and (share > MASKED_RELATIVE or gap > MASKED_ABSOLUTE)
    ok = not (crossed and _significant(paired))
    detail = (f"{ce_name} {_pct(ce_accuracy)} vs {margin_name} {_pct(margin_accuracy)}: "
              f"gap {100 * gap:.1f} points ({100 * share:.0f}% of the CE figure)")
    if paired is not None:
        detail += (f"; {ce_name} leaves {paired[0]} images that {margin_name} breaks, "
                   f"{paired[1]} the reverse (b={paired[0]}, c={paired[1]}, "
                   f"p={paired[2]:.2g})")
    else:
        detail += _UNPAIRED
    limits = f"{100 * MASKED_RELATIVE:.0f}% of it and {100 * MASKED_ABSOLUTE:.0f} points"
    if gap <= TOLERANCE:
        detail += f", within the {100 * TOLERANCE:.0f} points of sampling noise"
    elif not crossed:
        detail += (f", within {limits}: a margin-loss attack a few points stronger than CE is "
                   "normal for adversarially trained models")
    elif ok:
        detail += _NOISE
    else:
        limit = (f"{100 * MASKED_RELATIVE:.0f}% of it" if share > MASKED_RELATIVE
                 else f"{100 * MASKED_ABSOLUTE:.0f} points")
        detail += (f": the CE figure overstates robustness by {100 * gap:.1f} points, more than "
                   f"{limit} (sound adversarially trained models measured 6-17%); report the "
                   "margin-loss figure")
    return Check(CE_MARGIN_CHECK, "PASS" if ok else "FAIL", detail,
                 {ce_name: ce_accuracy, margin_name: margin_accuracy, **_pair_values(paired)})


class _AttackInfo(NamedTuple):
    family: str | None
    loss: str | None
    steps: int | None
    restarts: int


_LEGACY_KEY = re.compile(r"^pgd(\d+)_([a-z]+)(?:_r(\d+))?$")


def _attack_info(key: str, entry: dict, spec: Any = None) -> _AttackInfo:
    """Family, loss, steps and restarts of one attack of the results.

    From its `AttackSpec` when the report passes the suite's specs; else
    from the entry's "family", "loss" and "steps" (written by the report)
    with the restarts of the suite's key ("pgd20_ce_r3"); else, for results
    made by hand or by an old version, from the key alone ("fgsm",
    "pgd<steps>_<loss>[_r<restarts>]").
    """
    if spec is not None:
        return _AttackInfo(spec.family, spec.loss, spec.steps, spec.restarts)
    match = _LEGACY_KEY.match(key)
    restarts = int(match.group(3)) if match and match.group(3) else 1
    if "family" in entry:
        return _AttackInfo(entry["family"], entry.get("loss"), entry.get("steps"), restarts)
    if key == "fgsm":
        return _AttackInfo("single_step", "ce", 1, 1)
    if match:
        return _AttackInfo("pgd", match.group(2), int(match.group(1)), restarts)
    return _AttackInfo(None, None, None, 1)


def run_checks(results: dict[str, Any], specs: Sequence[Any] | None = None) -> list[Check]:
    """Runs every check on a report's results.

    Args:
        results: the report's dictionary: "attacks" (key -> {"accuracy", "name"}
            and, from this version on, "robust_mask"), "autoattack" ({"accuracy"},
            optionally "robust_mask", "apgd_robust_mask", "square_robust_mask"),
            "transfer" ({"accuracy"} or None), "epsilon_curve" and
            "steps_curve" (lists of points). Masks (`encode_mask`) pair the
            checks that compare two attacks; without them those checks use
            the unpaired rule and say so.
        specs: the `AttackSpec`s that produced "attacks" (the report passes
            its suite's): the checks read each attack's family, loss, steps
            and restarts from them. Without them (a report loaded from JSON,
            results made by hand) they come from the entries and their keys.

    Returns:
        The eight `Check`s, in a fixed order: iterative vs single-step,
        white-box vs transfer, accuracy ~0 at a large budget, more steps and
        restarts, CE vs margin-loss attacks, PGD vs AutoAttack,
        gradient-free vs gradient attacks, and deterministic inference
        (`inference_check`, from the report's "inference" entry). A check
        whose inputs are missing is SKIPPED.

    Raises:
        KeyError: an attack entry lacks "accuracy" or "name".

    Example:

    >>> results = {"attacks": {"fgsm": {"accuracy": 0.55, "name": "FGSM"},
    ...                        "pgd20_ce": {"accuracy": 0.48, "name": "PGD-20 (CE)"}}}
    >>> checks = run_checks(results)
    >>> len(checks), checks[0].status
    (8, 'PASS')
    >>> print(checks[0].detail)
    PGD-20 (CE) 48.0% <= FGSM 55.0% + 2 points [unpaired: no per-image masks (b, c),
    the two figures alone decide]
    >>> checks[1].status
    'SKIPPED'
    """
    entries = results.get("attacks", {})
    attacks = {key: value["accuracy"] for key, value in entries.items()}
    names = {key: value["name"] for key, value in results.get("attacks", {}).items()}
    by_key = {spec.key: spec for spec in specs or ()}
    info = {key: _attack_info(key, entry, by_key.get(key)) for key, entry in entries.items()}
    checks: list[Check] = []

    def best(keys):
        keys = list(keys)
        return min(keys, key=lambda k: attacks[k]) if keys else None

    def pgd(loss=None, restarts=None):
        """The PGD attacks (of `loss`; with `restarts`, or with any), in the results' order."""
        return [k for k, i in info.items() if i.family == "pgd"
                and (loss is None or i.loss == loss)
                and (restarts is None or i.restarts == restarts)]

    pgd_keys = sorted(pgd(), key=lambda k: attacks[k])
    strongest_pgd = pgd_keys[0] if pgd_keys else None
    single_step = [k for k, i in info.items() if i.family == "single_step"]
    fgsm = single_step[0] if single_step else None

    # 1. Iterative attacks are at least as strong as single-step ones.
    name = "iterative attacks beat single-step ones"
    by_steps = {i.steps: k for k, i in reversed(info.items())
                if k in pgd("ce", restarts=1) and i.steps in (20, 10, 7)}
    multi = best(by_steps[s] for s in (20, 10, 7) if s in by_steps)
    if fgsm and multi:
        checks.append(_ordered(name, names[multi], attacks[multi], "FGSM", attacks[fgsm],
                               TOLERANCE, "a one-step attack beats an iterative one",
                               _paired(entries[multi], entries[fgsm])))
    else:
        checks.append(_skipped(name, "needs FGSM and an iterative PGD"))

    # 2. White-box attacks are at least as strong as transfer attacks.
    name = "white-box attacks beat transfer attacks"
    transfer = results.get("transfer")
    if transfer and strongest_pgd:
        checks.append(_ordered(name, names[strongest_pgd], attacks[strongest_pgd],
                               "transfer", transfer["accuracy"], TOLERANCE,
                               "examples crafted on another model do better than gradients of "
                               "this one"))
    else:
        checks.append(_skipped(name, "no surrogate model given"))

    # 3. Accuracy falls to ~0 as the budget grows.
    name = "accuracy falls to ~0 at a large budget"
    curve = results.get("epsilon_curve") or []
    if curve:
        largest = max(curve, key=lambda p: p["epsilon"])
        ok = largest["accuracy"] <= NEAR_ZERO
        budget = (f"{largest['epsilon']:.3g} (L2)" if results.get("norm") == "l2"
                  else f"{largest['epsilon'] * 255:.0f}/255")
        detail = (f"PGD at eps {budget}: {_pct(largest['accuracy'])} "
                  f"{'<=' if ok else '>'} {_pct(NEAR_ZERO)}"
                  + ("" if ok else ": an unbounded-looking budget should break any classifier"))
        checks.append(Check(name, "PASS" if ok else "FAIL", detail,
                            {"epsilon": largest["epsilon"], "accuracy": largest["accuracy"]}))
    else:
        checks.append(_skipped(name, "no accuracy-vs-epsilon curve"))

    # 4. More steps or restarts never raise accuracy.
    name = "more steps and restarts never help the model"
    pairs = []
    steps_ce = sorted((info[k].steps, k) for k in pgd("ce", restarts=1))
    for (_, fewer), (_, more) in zip(steps_ce, steps_ce[1:]):
        pairs.append((more, fewer))
    for key in (k for k in pgd() if info[k].restarts > 1):
        base = [k for k in pgd(info[key].loss, restarts=1) if info[k].steps == info[key].steps]
        if base:
            pairs.append((key, base[0]))
    if pairs:
        failures = [(m, f) for m, f in pairs if attacks[m] > attacks[f] + TOLERANCE]
        detail = "; ".join(
            f"{names[m]} {_pct(attacks[m])} vs {names[f]} {_pct(attacks[f])}" for m, f in pairs
        )
        status = "FAIL" if failures else "PASS"
        if failures:
            detail += ": stronger attacks found fewer adversarial examples"
        checks.append(Check(name, status, detail, {k: attacks[k] for pair in pairs for k in pair}))
    else:
        checks.append(_skipped(name, "needs PGD with several step counts or restarts"))

    # 5. Cross-entropy attacks find (nearly) the worst case that margin-loss
    # attacks find: PGD with the CW loss, APGD-T with the DLR loss, and the
    # AutoAttack cascade whose targeted DLR stage is a margin loss.
    name = CE_MARGIN_CHECK
    auto = results.get("autoattack")
    ce = best(pgd("ce", restarts=1))
    cw = best(k for k, i in info.items() if i.loss in MARGIN_LOSSES and i.restarts == 1)
    margin = [(names[cw], attacks[cw], entries[cw])] if cw else []
    if auto:
        margin.append(("AutoAttack", auto["accuracy"], auto))
    if ce and margin:
        margin_name, margin_accuracy, margin_entry = min(margin, key=lambda item: item[1])
        paired = _paired(entries[ce], margin_entry)
        counts = {"b": paired[0], "c": paired[1]} if paired else {}
        checks.append(ce_margin_agreement(attacks[ce], margin_accuracy, names[ce], margin_name,
                                          **counts))
    else:
        checks.append(_skipped(name, "needs PGD with CE loss and a margin-loss attack "
                                     "(PGD with CW loss or the AutoAttack cascade)"))

    # 6. PGD and the AutoAttack cascade agree.
    name = "PGD and AutoAttack agree"
    if auto and strongest_pgd:
        checks.append(_agree(name, names[strongest_pgd], attacks[strongest_pgd],
                             "AutoAttack", auto["accuracy"],
                             "PGD overestimates robustness; report the AutoAttack figure",
                             _paired(entries[strongest_pgd], auto)))
    else:
        checks.append(_skipped(name, "needs PGD and the AutoAttack cascade"))

    # 7. A gradient-free attack does not beat the gradient-based ones.
    name = "gradient-free attack does not beat gradient attacks"
    square = (auto or {}).get("square_alone")
    gradient = [(attacks[k], entries[k], ROBUST_MASK) for k in attacks if k != fgsm]
    if auto and "apgd_only" in auto:
        gradient.append((auto["apgd_only"], auto, "apgd_" + ROBUST_MASK))
    if square is not None and gradient:
        best_gradient, entry, mask = min(gradient, key=lambda item: item[0])
        checks.append(_ordered(name, "best gradient attack", best_gradient, "Square alone",
                               square, AGREEMENT,
                               "a score-based attack without gradients does better: gradients "
                               "are masked", _paired(entry, auto, mask, "square_" + ROBUST_MASK)))
    else:
        checks.append(_skipped(name, "needs Square run alone and gradient attacks"))

    inference = inference_check(results.get("inference"), results.get("suite"))
    if inference.passed and not any(c.passed or c.failed for c in checks):
        # Deterministic inference qualifies the masking verdicts; with none measured it
        # must not make a report that checked nothing look checked (issue 21).
        inference = _skipped(inference.name, inference.detail + "; no gradient-masking "
                             "check was measured, so there is nothing it qualifies")
    checks.append(inference)
    return checks


RANDOM_INFERENCE_CHECK = "inference is deterministic"
# Two passes of a deterministic model agree to float rounding; larger differences
# (relative to the logits' scale) mean the model draws at inference.
INFERENCE_TOLERANCE = 1e-4


def inference_check(inference: dict | None, suite: str | None = None) -> Check:
    """Check 8: two forward passes of the same images give the same logits.

    A model whose inference is random (dropout left on, random input
    transforms, a noise layer) shows every gradient attack one draw of it:
    the attacks then overstate robustness, and AutoAttack evaluates such
    models with its "rand" version (APGD-CE and APGD-DLR, expectation over
    transformation over 20 draws), the report's `attacks="rand"`.

    Args:
        inference: the report's "inference" entry: {"images": n,
            "max_difference": largest |logit difference| between two passes,
            "scale": largest |logit|}, or None when it was not measured.
        suite: the report's suite; with "rand" a random model was evaluated
            as it should be, and the check passes.

    Returns:
        A `Check`: PASS (the passes agree, or they differ and the "rand"
        suite ran), FAIL (they differ under another suite), SKIPPED (not
        measured, e.g. a report saved before this check existed).

    Example:

    >>> inference_check({"images": 8, "max_difference": 0.0, "scale": 3.0}).status
    'PASS'
    >>> check = inference_check({"images": 8, "max_difference": 0.7, "scale": 3.0}, "standard")
    >>> check.status, "rand" in check.detail
    ('FAIL', True)
    >>> inference_check({"images": 8, "max_difference": 0.7, "scale": 3.0}, "rand").status
    'PASS'
    """
    name = RANDOM_INFERENCE_CHECK
    if not inference:
        return _skipped(name, "two forward passes were not compared")
    difference, scale = float(inference["max_difference"]), float(inference["scale"])
    values = {"max_difference": difference, "scale": scale, "images": int(inference["images"])}
    random = difference > INFERENCE_TOLERANCE * max(1.0, scale)
    what = (f"two forward passes of the same {values['images']} images differ by up to "
            f"{difference:.3g} in the logits (largest logit {scale:.3g})")
    if not random:
        return Check(name, "PASS", what, values)
    if suite == "rand":
        return Check(name, "PASS", what + ": random inference, evaluated with the \"rand\" "
                     "suite (EOT over 20 draws)", values)
    return Check(name, "FAIL", what + ": the model's inference is random, so each gradient "
                 "attack saw one draw and the figures may overstate robustness; evaluate it "
                 "with attacks=\"rand\" (AutoAttack's rand version: EOT over 20 draws)", values)
