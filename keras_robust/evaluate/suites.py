"""The attack suites of the robustness report.

An `AttackSpec` names an attack and how to run it on a batch; a suite is the
list the report runs, plus the AutoAttack cascade and the curves.

| suite | white-box attacks | AutoAttack cascade | curves |
| --- | --- | --- | --- |
| "standard" | FGSM; PGD-7/20/100 with CE and with CW; PGD-20 CE x 5 restarts | AutoAttack's standard version: APGD-CE 100 (1 restart), APGD-T (DLR, 9 targets x 100), FAB-T (9 targets x 100), Square 5000 | eps x {1/4 ... 8}, PGD-20; steps 1 ... 100 |
| "quick" | FGSM; PGD-7/20 with CE and with CW; PGD-20 CE x 3 restarts | cheaper than AutoAttack: APGD-CE 50, APGD-T (DLR, 3 targets x 50), Square 1000; no FAB-T | eps x {1/2, 1, 2, 4, 8}, PGD-10; steps 1, 5, 20 |
| "rand" | as "standard" | AutoAttack's version for randomised defences: APGD-CE and APGD-DLR (untargeted), 100 steps, 1 restart, gradients averaged over 20 passes (EOT) | as "standard" |
| "summary" | FGSM ("fgsm"); PGD-10 and PGD-20 with CE ("pgd10", "pgd20"); PGD-20 with CW ("cw20"); APGD-T (DLR, 3 targets x 20 steps, "apgd_t") | none | none |

The cascade runs each attack on the images still robust after the previous
ones (AutoAttack's order); the standard suite's settings are those of
fra31/auto-attack `version="standard"` (apgd n_restarts=1, apgd_targeted
n_target_classes=9, fab n_target_classes=9 n_restarts=1, square
n_queries=5000, 100 iterations each), with APGD following the authors' code
(`APGDConfig(rule="reference")`). In the cascade the APGD stages run with
`early_stop=True`: each image stops at its first adversarial iterate and
later steps run on the images still standing, which breaks the same images
(a path is unchanged until it breaks) at a fraction of the cost; the
reference's APGD keeps stepping every image. The "rand" cascade keeps the
plain path (with random inference, dropping images changes the draws of the
others). With fewer than 10 classes the targeted
attacks use every other class (classes - 1 targets). "quick" leaves FAB-T
out for cost: at the same targets x steps it took 1.8 times APGD-T's time
(9 x 100 on 64 images of a tiny CNN on CPU: 3.2 s against 1.8 s), and after
APGD-T it rarely breaks more images.

"summary" is the short evaluation the training examples print: five
attacks, no cascade and no curves; its report's summary gives the worst case
and check 5 (CE vs margin loss: the strongest of PGD-10/20 CE against the
strongest of PGD-20 CW and APGD-T). It attacks every image (not only the
ones classified correctly) in batches of `SUMMARY_BATCH_SIZE`, as
`keras_robust.evaluate.robust_accuracy` does, so each image draws the random
start a direct call of the attack on the same batch draws.

L2 (`norm="l2"`): the same attacks in L2 (FGSM is the one-step L2 gradient
step, Square the L2 Square); PGD's step is eps / 4 under both norms (2/255
at 8/255; for L2 at eps 0.5, 0.125), with a random start.

FGSM has no random start (the strongest one-step setting, BAT paper 5).
"""
from __future__ import annotations

import dataclasses
import inspect
import re
from typing import Any, Callable

from keras_robust._validation import check_choice
from keras_robust.attacks.config import (
    APGDConfig, APGDTargetedConfig, AttackConfig, FABConfig, SquareConfig, build_config,
)
from keras_robust.attacks.pgd import FGSM_REL_STEPSIZE

SUITES = ("standard", "quick", "rand", "summary")
# The report's images per attack batch, and the summary suite's (that of
# `keras_robust.evaluate.robust_accuracy`).
BATCH_SIZE = 250
SUMMARY_BATCH_SIZE = 500
# The budget a report uses when given none, by norm.
DEFAULT_EPSILON = {"linf": 8 / 255, "l2": 0.5}
# AutoAttack's `version="rand"`: passes per gradient (expectation over transformation).
RAND_EOT_ITER = 20
# AutoAttack's version="rand" runs APGD for the standard number of iterations.
RAND_STEPS = APGDConfig().steps
# PGD's step as a fraction of epsilon (2/255 at 8/255) in every suite.
PGD_REL_STEPSIZE = 0.25
# "quick": a cheaper cascade than AutoAttack's defaults (which live in the attack configs).
QUICK = {"apgd_steps": 50, "num_targets": 3, "queries": 1000}
NORMS = ("linf", "l2")
AUTOATTACK_NAME = "AutoAttack"


@dataclasses.dataclass(frozen=True)
class AttackSpec:
    """One attack of the report.

    Attributes:
        key: short identifier used in results and checks ("pgd20_ce").
        name: what the report prints ("PGD-20 (CE)").
        run: `(model, x, y) -> x_adv`.
        family: "single_step", "pgd", "apgd", "fab", "square" or "transfer".
        loss: the objective ("ce", "cw", "dlr", "margin").
        steps: gradient steps (or queries for Square; for APGD-T, steps x
            targets).
        config: the `AttackConfig` that `run` runs, for the attacks of the
            iterative engine (FGSM, PGD); None for the others (APGD, FAB,
            Square), whose settings are in `settings`.
        attack: the name of the public attack `run` calls ("pgd",
            "apgd_targeted", ...; None for a spec made by hand).
        settings: the keyword arguments `run` passes to it (besides the
            model, images and labels; PGD's `config` is in `config`).
        restarts: random restarts (`config.restarts`, or the "restarts"
            setting; 1 without either).

    The masking checks (`keras_robust.evaluate.run_checks`) read family,
    loss, steps and restarts from here. The suites' specs come from
    `build_suite` (and `pgd_spec`); `run` returns float32 adversarial images
    in [0, 1] shaped like `x`.

    Example:

    >>> spec = build_suite("quick", 8 / 255).attacks[1]
    >>> spec.key, spec.name, spec.family, spec.loss, spec.steps, spec.restarts
    ('pgd7_ce', 'PGD-7 (CE)', 'pgd', 'ce', 7, 1)
    >>> spec.config.rel_stepsize, round(float(spec.config.step_for()) * 255, 6)
    (0.25, 2.0)
    >>> model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
    ...                           keras.layers.Dense(10)])
    >>> spec.run(model, tf.zeros([2, 8, 8, 3]), tf.constant([0, 1])).shape
    TensorShape([2, 8, 8, 3])
    """

    key: str
    name: str
    run: Callable[[Any, Any, Any], Any]
    family: str
    loss: str
    steps: int
    config: AttackConfig | None = None
    attack: str | None = None
    settings: dict = dataclasses.field(default_factory=dict)

    @property
    def restarts(self) -> int:
        """Random restarts of the attack (1 when neither its config nor its settings say)."""
        if self.config is not None:
            return self.config.restarts
        return int(self.settings.get("restarts", 1))

    def get_config(self) -> dict:
        """The spec as JSON-safe data: what each attack entry of report.json stores.

        Returns:
            {"key", "name", "attack", "family", "loss", "steps", "restarts",
            "config"} and, for the attacks of the iterative engine,
            "settings": "config" is `AttackConfig.get_config()` for FGSM and
            PGD (then "settings" holds the call's other keyword arguments,
            e.g. the seed) and the call's keyword settings for the others
            (APGD, FAB, Square). `from_config` rebuilds the spec.

        Example:

        >>> spec = build_suite("quick", 8 / 255).attacks[5]
        >>> data = spec.get_config()
        >>> data["key"], data["restarts"], data["config"]["steps"], data["settings"]
        ('pgd20_ce_r3', 3, 20, {'epsilon': None, 'seed': 0})
        """
        data = {"key": self.key, "name": self.name, "attack": self.attack,
                "family": self.family, "loss": self.loss, "steps": self.steps,
                "restarts": self.restarts}
        if self.config is None:
            return {**data, "config": dict(self.settings)}
        return {**data, "config": self.config.get_config(), "settings": dict(self.settings)}

    @classmethod
    def from_config(cls, config: dict) -> "AttackSpec":
        """Rebuilds a spec from `get_config()`'s dict (extra entries, such as a
        report's accuracy, are ignored).

        Args:
            config: the dict `get_config` returned, or an attack entry of a
                report (with "key" added).

        Returns:
            The `AttackSpec`; its `run` calls the same public attack with the
            same settings (a spec made by hand, with no `attack`, cannot run).

        Example:

        >>> spec = build_suite("summary", 8 / 255).attacks[4]
        >>> AttackSpec.from_config(spec.get_config()).get_config() == spec.get_config()
        True
        """
        config = dict(config)
        attack_config = None
        settings = config["config"]
        if "settings" in config:
            attack_config, settings = AttackConfig.from_config(settings), config["settings"]
        if config.get("attack") is None:
            return cls(config["key"], config["name"], _cannot_run(config["key"]),
                       config["family"], config["loss"], config["steps"], attack_config,
                       settings=dict(settings))
        return attack_spec(config["key"], config["name"], config["family"], config["loss"],
                           config["steps"], config["attack"], attack_config, **settings)


@dataclasses.dataclass(frozen=True)
class Suite:
    """What the report runs.

    Attributes:
        attacks: the white-box attacks, each on every image.
        cascade: the AutoAttack attacks, each on the images still robust
            after the previous ones; the images robust to all of them give
            the "AutoAttack" accuracy.
        epsilon_factors: multiples of epsilon for the accuracy-vs-eps curve.
        curve_steps: PGD steps of the accuracy-vs-eps curve.
        steps_curve: PGD step counts of the accuracy-vs-steps curve.
        norm: the threat model, "linf" or "l2".
        settings: one line stating the cascade's settings (the report prints it).
        every_image: attack every image, not only those the model classifies
            correctly (as `keras_robust.evaluate.robust_accuracy` does), so
            that each image's random start is the one a direct call on the
            same batch draws.
        batch_size: images per attack batch when the report is given none.
    """

    attacks: tuple[AttackSpec, ...]
    cascade: tuple[AttackSpec, ...]
    epsilon_factors: tuple[float, ...]
    curve_steps: int
    steps_curve: tuple[int, ...]
    norm: str = "linf"
    settings: str = ""
    every_image: bool = False
    batch_size: int = BATCH_SIZE


# The config of each attack whose rarely changed settings are config-only.
_SETTING_CONFIGS = {"apgd": APGDConfig, "apgd_targeted": APGDTargetedConfig, "fab": FABConfig}


def _call_keywords(function: str, attack: Callable, kwargs: dict) -> dict:
    """`kwargs` with the settings `attack` takes only in its config (APGD's `rule` and
    `eot_iter`, FAB's `eta`, ...) moved into `config=`, so that a spec's settings (and
    report.json's, old files included) stay flat keyword data."""
    names = inspect.signature(attack).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in names.values()):
        return kwargs  # a stand-in that takes any keyword (a test's recorder)
    config_only = {k: v for k, v in kwargs.items() if k not in names}
    if not config_only or function not in _SETTING_CONFIGS:
        return kwargs
    call = {k: v for k, v in kwargs.items() if k in names}
    call["config"] = build_config(_SETTING_CONFIGS[function], call.get("config"), **config_only)
    return call


def _attack(function: str, **kwargs: Any) -> Callable[[Any, Any, Any], Any]:
    """`(model, x, y) -> keras_robust.attacks.<function>(model, x, y, **kwargs)`, looked up
    when called (settings the function takes only in its config go into `config=`)."""

    def run(model, x, y):
        from keras_robust import attacks

        attack = getattr(attacks, function)
        return attack(model, x, y, **_call_keywords(function, attack, kwargs))

    return run


def _cannot_run(key: str) -> Callable[[Any, Any, Any], Any]:
    """The `run` of a spec that names no public attack (read back, not rebuilt)."""

    def run(model, x, y):
        raise ValueError(f"The attack {key!r} names no public attack to rerun: it was read "
                         "from a report written before reports stored their attacks' specs, "
                         "or made by hand.")

    return run


# The keys the report gave its PGD attacks before it stored their specs.
_OLD_PGD_KEY = re.compile(r"^pgd(\d+)_([a-z]+)(?:_r(\d+))?$")


def _old_entry_spec(key: str, entry: dict) -> AttackSpec:
    """The spec of an attack entry written before reports stored specs (or made by hand).

    The one reader of attack keys: the entry's "family", "loss" and "steps"
    when it has them, else the key ("fgsm", "pgd<steps>_<loss>[_r<restarts>]");
    the restarts come from the key. A key it cannot read gives a spec of
    family None (the checks leave it out).
    """
    match = _OLD_PGD_KEY.match(key)
    restarts = int(match.group(3)) if match and match.group(3) else 1
    if "family" in entry:
        family, loss, steps = entry["family"], entry.get("loss"), entry.get("steps")
    elif key == "fgsm":
        family, loss, steps = "single_step", "ce", 1
    elif match:
        family, loss, steps = "pgd", match.group(2), int(match.group(1))
    else:
        family, loss, steps = None, None, None
    settings = {"restarts": restarts} if restarts > 1 else {}
    return AttackSpec(key, entry.get("name", key), _cannot_run(key), family, loss, steps,
                      settings=settings)


def entry_spec(key: str, entry: dict) -> AttackSpec:
    """The `AttackSpec` of one attack entry of a report's results (or report.json).

    Args:
        key: the attack's key in the results.
        entry: its entry: written by the report ("name", "accuracy",
            "attack", "family", "loss", "steps", "restarts", "config", ...),
            by an older version (without "restarts" and "config": read from
            its fields and key) or by hand ({"name", "accuracy"}).

    Returns:
        The spec, rebuilt from the entry's spec data when it has them.

    Example:

    >>> entry = {"name": "PGD-20 (CE) x3 restarts", "accuracy": 0.4}
    >>> spec = entry_spec("pgd20_ce_r3", entry)  # a key-only entry, as old reports wrote
    >>> spec.family, spec.loss, spec.steps, spec.restarts
    ('pgd', 'ce', 20, 3)
    >>> new = build_suite("quick", 8 / 255).attacks[5]
    >>> entry_spec(new.key, {**new.get_config(), "accuracy": 0.4}).restarts
    3
    """
    if "config" in entry and "restarts" in entry:
        return AttackSpec.from_config({**entry, "key": key})
    return _old_entry_spec(key, entry)


def attack_spec(key: str, name: str, family: str, loss: str, steps: int, attack: str,
                config: AttackConfig | None = None, /, **settings: Any) -> AttackSpec:
    """The one way the report builds an `AttackSpec`: a public attack called by keyword.

    Args:
        key: the attack's key in the results ("pgd20_ce").
        name: what the report prints ("PGD-20 (CE)").
        family: "single_step", "pgd", "apgd", "fab", "square" or "transfer".
        loss: the objective ("ce", "cw", "dlr", "margin").
        steps: gradient steps (queries for Square; steps x targets for the
            targeted attacks).
        attack: the name of the public function in `keras_robust.attacks`
            ("pgd", "apgd_targeted", ...).
        config: the `AttackConfig` of an attack of the iterative engine; it
            is passed to the call as `config=` when `settings` holds
            `epsilon=None` (PGD), and only recorded otherwise (FGSM).
        **settings: the keyword arguments of the call, besides the model,
            images and labels (the arguments before them are positional
            only, so a setting may be named `steps` too).

    Returns:
        An `AttackSpec` whose `run(model, x, y)` calls
        `keras_robust.attacks.<attack>(model, x, y, **settings)`.

    Example:

    >>> spec = attack_spec("apgd_t", "APGD-T", "apgd", "dlr", 60, "apgd_targeted",
    ...                    epsilon=8 / 255, steps=20, num_targets=3, seed=0)
    >>> spec.attack, spec.settings["num_targets"], spec.restarts
    ('apgd_targeted', 3, 1)
    """
    call = dict(settings)
    if config is not None and settings.get("epsilon", 0) is None:
        call["config"] = config
    return AttackSpec(key, name, _attack(attack, **call), family, loss, steps, config,
                      attack=attack, settings=dict(settings))


def pgd_spec(epsilon: float, steps: int, loss: str = "ce", restarts: int = 1,
             norm: str = "linf", key: str | None = None) -> AttackSpec:
    """A PGD attack with step eps/4 and a random start, in the L-inf or the L2 ball.

    Args:
        epsilon: the budget on the [0, 1] scale.
        steps: PGD steps.
        loss: "ce" or "cw".
        restarts: random restarts.
        norm: "linf" or "l2".
        key: the key in the results (default "pgd<steps>_<loss>[_r<restarts>]").

    Returns:
        An `AttackSpec` of family "pgd" seeded with 0.

    Example:

    >>> spec = pgd_spec(8 / 255, 20, "cw", restarts=3)
    >>> spec.key, spec.name, spec.restarts
    ('pgd20_cw_r3', 'PGD-20 (CW) x3 restarts', 3)
    """
    key = key or f"pgd{steps}_{loss}" + (f"_r{restarts}" if restarts > 1 else "")
    name = (f"{'L2 ' if norm == 'l2' else ''}PGD-{steps} ({loss.upper()})"
            + (f" x{restarts} restarts" if restarts > 1 else ""))
    config = AttackConfig(norm=norm, epsilon=epsilon, rel_stepsize=PGD_REL_STEPSIZE, steps=steps,
                          loss=loss, restarts=restarts)
    return attack_spec(key, name, "pgd", loss, steps, "pgd", config, epsilon=None, seed=0)


def transfer_spec(epsilon: float, norm: str = "linf") -> AttackSpec:
    """The report's transfer attack: PGD-20 (CE, step eps/4, seed 0), run on a surrogate.

    Args:
        epsilon: the budget on the [0, 1] scale.
        norm: "linf" or "l2".

    Returns:
        An `AttackSpec` of family "transfer"; the report calls its `run` with
        the surrogate and classifies the images it returns with the model.

    Example:

    >>> spec = transfer_spec(8 / 255)
    >>> spec.key, spec.family, spec.attack, spec.config.steps
    ('transfer', 'transfer', 'pgd', 20)
    """
    return dataclasses.replace(pgd_spec(epsilon, 20, "ce", norm=norm, key="transfer"),
                               name="Transfer PGD-20 (CE) from surrogate", family="transfer")


def _fgsm(epsilon: float, norm: str) -> AttackSpec:
    """FGSM without a random start (the strongest one-step setting)."""
    config = AttackConfig(norm=norm, epsilon=epsilon, rel_stepsize=FGSM_REL_STEPSIZE, steps=1,
                          random_start=False)
    return attack_spec("fgsm", f"{'L2 ' if norm == 'l2' else ''}FGSM", "single_step", "ce", 1,
                       "fgsm", config, epsilon=epsilon, norm=norm)


def _targets(targets: int, num_classes: int | None) -> int:
    """At most `num_classes - 1` targets."""
    return targets if num_classes is None else max(1, min(targets, int(num_classes) - 1))


def _white_box(standard: bool, epsilon: float, norm: str) -> list[AttackSpec]:
    """FGSM; PGD-7/20(/100) with CE and with CW; PGD-20 CE with restarts."""
    steps = (7, 20, 100) if standard else (7, 20)
    white_box = [_fgsm(epsilon, norm)]
    for loss in ("ce", "cw"):
        white_box += [pgd_spec(epsilon, s, loss, norm=norm) for s in steps]
    white_box.append(pgd_spec(epsilon, 20, "ce", restarts=5 if standard else 3, norm=norm))
    return white_box


def _cascade(standard: bool, epsilon: float, norm: str,
             num_classes: int | None) -> list[AttackSpec]:
    """AutoAttack's standard cascade (or the quick one): APGD-CE, APGD-T, FAB-T, Square."""
    l2 = "L2 " if norm == "l2" else ""
    apgd_steps = APGDConfig().steps if standard else QUICK["apgd_steps"]
    targets = _targets(APGDTargetedConfig().num_targets if standard else QUICK["num_targets"],
                       num_classes)
    queries = SquareConfig().queries if standard else QUICK["queries"]
    cascade = [
        attack_spec("apgd_ce", f"{l2}APGD-CE ({apgd_steps})", "apgd", "ce", apgd_steps, "apgd",
                    epsilon=epsilon, steps=apgd_steps, loss="ce", restarts=1, seed=0, norm=norm,
                    rule="reference", early_stop=True),
        attack_spec("apgd_t", f"{l2}APGD-T (DLR, {targets} targets x {apgd_steps})", "apgd",
                    "dlr", apgd_steps * targets, "apgd_targeted", epsilon=epsilon,
                    steps=apgd_steps, num_targets=targets, restarts=1, seed=0, norm=norm,
                    rule="reference", early_stop=True),
    ]
    if standard:
        cascade.append(attack_spec(
            "fab_t", f"{l2}FAB-T ({targets} targets x {apgd_steps})", "fab", "margin",
            apgd_steps * targets, "fab", epsilon=epsilon, norm=norm, targeted=True,
            num_targets=targets, steps=apgd_steps, restarts=1, seed=0))
    extra = {"norm": norm} if norm == "l2" else {}
    cascade.append(attack_spec("square", f"{l2}Square ({queries} queries)", "square", "margin",
                               queries, "square", epsilon=epsilon, queries=queries, seed=0,
                               **extra))
    return cascade


def _rand_cascade(epsilon: float, norm: str) -> list[AttackSpec]:
    """fra31/auto-attack version="rand": APGD-CE and APGD-DLR, n_restarts=1, eot_iter=20."""
    l2 = "L2 " if norm == "l2" else ""
    return [
        attack_spec(f"apgd_{loss}", f"{l2}APGD-{loss.upper()} ({RAND_STEPS}, EOT {RAND_EOT_ITER})",
                    "apgd", loss, RAND_STEPS, "apgd", epsilon=epsilon, steps=RAND_STEPS, loss=loss,
                    restarts=1, seed=0, norm=norm, rule="reference", eot_iter=RAND_EOT_ITER)
        for loss in ("ce", "dlr")
    ]


def _summary(epsilon: float, norm: str, num_classes: int | None) -> Suite:
    """The five-attack summary: FGSM, PGD-10 and PGD-20 (CE), PGD-20 (CW), APGD-T (DLR)."""
    targets = _targets(3, num_classes)
    attacks = (
        _fgsm(epsilon, norm),
        pgd_spec(epsilon, 10, "ce", norm=norm, key="pgd10"),
        pgd_spec(epsilon, 20, "ce", norm=norm, key="pgd20"),
        pgd_spec(epsilon, 20, "cw", norm=norm, key="cw20"),
        attack_spec("apgd_t", f"{'L2 ' if norm == 'l2' else ''}APGD-T (DLR, {targets} targets "
                    "x 20)", "apgd", "dlr", 20 * targets, "apgd_targeted", epsilon=epsilon,
                    steps=20, num_targets=targets, seed=0, norm=norm),
    )
    return Suite(attacks=attacks, cascade=(), epsilon_factors=(), curve_steps=0, steps_curve=(),
                 norm=norm, every_image=True, batch_size=SUMMARY_BATCH_SIZE)


def build_suite(name: str, epsilon: float, norm: str = "linf",
                num_classes: int | None = None) -> Suite:
    """The suite `name` ("standard", "quick", "rand" or "summary") at budget `epsilon`.

    The white-box attacks are FGSM, PGD with CE and with CW loss (7, 20 and,
    in "standard", 100 steps) and PGD-20 CE with restarts (5 in "standard",
    3 in "quick"); the cascade is AutoAttack's (APGD-CE, APGD-T with DLR,
    FAB-T, Square; "quick" is cheaper, see the module's table). "summary"
    is five attacks and nothing else (see the module's table). Every attack
    with randomness is seeded (seed 0), so two runs of a suite draw the same
    random starts.

    Args:
        name: "standard", "quick", "rand" (for randomised defences: the
            standard white-box attacks, and AutoAttack's rand version as the
            cascade: APGD-CE and APGD-DLR, 1 restart, EOT over 20 passes) or
            "summary".
        epsilon: the budget on the [0, 1] scale (not checked here;
            `robustness_report` checks it). PGD steps are `epsilon / 4`.
        norm: "linf" or "l2" (the attacks' ball).
        num_classes: the model's class count; the targeted attacks use at
            most `num_classes - 1` targets (None: 9 in "standard", 3 in
            "quick" and "summary").

    Returns:
        A `Suite`: `attacks` and `cascade` (tuples of `AttackSpec`),
        `epsilon_factors`, `curve_steps`, `steps_curve`, `norm`, `settings`,
        `every_image` and `batch_size`.

    Raises:
        ValueError: `name` is not one of `SUITES` or `norm` not one of `NORMS`.

    Example:

    >>> suite = build_suite("quick", 8 / 255)
    >>> [a.key for a in suite.attacks][:3]
    ['fgsm', 'pgd7_ce', 'pgd20_ce']
    >>> [a.key for a in build_suite("standard", 8 / 255).cascade]
    ['apgd_ce', 'apgd_t', 'fab_t', 'square']
    >>> [a.key for a in build_suite("summary", 8 / 255).attacks]
    ['fgsm', 'pgd10', 'pgd20', 'cw20', 'apgd_t']
    """
    check_choice(name, SUITES, "attack suite")
    check_choice(norm, NORMS, "norm")
    if name == "summary":
        return _summary(epsilon, norm, num_classes)
    rand = name == "rand"
    standard = name in ("standard", "rand")
    cascade = (_rand_cascade(epsilon, norm) if rand
               else _cascade(standard, epsilon, norm, num_classes))
    budget = f"{epsilon * 255:.1f}/255" if norm == "linf" else f"{epsilon:g}"
    version = ("rand version" if rand else "standard version" if standard
               else "quick: cheaper than the standard version")
    settings = (
        f"{AUTOATTACK_NAME} ({version}, "
        f"{'L-inf' if norm == 'linf' else 'L2'}, eps {budget}): "
        + ", then ".join(spec.name for spec in cascade)
        + ", each on the images still robust after the previous ones"
    )
    return Suite(
        attacks=tuple(_white_box(standard, epsilon, norm)),
        cascade=tuple(cascade),
        epsilon_factors=(0.25, 0.5, 1.0, 2.0, 4.0, 8.0) if standard else (0.5, 1.0, 2.0, 4.0, 8.0),
        curve_steps=20 if standard else 10,
        steps_curve=(1, 2, 5, 10, 20, 50, 100) if standard else (1, 5, 20),
        norm=norm,
        settings=settings,
    )
