"""The attack suites of the robustness report.

An `AttackSpec` names an attack and how to run it on a batch; a suite is the
list the report runs, plus the AutoAttack cascade and the curves.

| suite | white-box attacks | AutoAttack cascade | curves |
| --- | --- | --- | --- |
| "standard" | FGSM; PGD-7/20/100 with CE and with CW; PGD-20 CE x 5 restarts | AutoAttack's standard version: APGD-CE 100 (1 restart), APGD-T (DLR, 9 targets x 100), FAB-T (9 targets x 100), Square 5000 | eps x {1/4 ... 8}, PGD-20; steps 1 ... 100 |
| "quick" | FGSM; PGD-7/20 with CE and with CW; PGD-20 CE x 3 restarts | cheaper than AutoAttack: APGD-CE 50, APGD-T (DLR, 3 targets x 50), Square 1000; no FAB-T | eps x {1/2, 1, 2, 4, 8}, PGD-10; steps 1, 5, 20 |
| "rand" | as "standard" | AutoAttack's version for randomised defences: APGD-CE and APGD-DLR (untargeted), 100 steps, 1 restart, gradients averaged over 20 passes (EOT) | as "standard" |

The cascade runs each attack on the images still robust after the previous
ones (AutoAttack's order); the standard suite's settings are those of
fra31/auto-attack `version="standard"` (apgd n_restarts=1, apgd_targeted
n_target_classes=9, fab n_target_classes=9 n_restarts=1, square
n_queries=5000, 100 iterations each), with APGD following the authors' code
(`apgd(..., rule="reference")`). In the cascade the APGD stages run with
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

L2 (`norm="l2"`): the same attacks in L2 (FGSM is the one-step L2 gradient
step); PGD's step is eps / 4 under both norms (2/255 at 8/255; for L2 at
eps 0.5, 0.125), with a random start. The L2 cascade holds Square only when
`keras_robust.attacks.square` takes a `norm` argument; otherwise it is
APGD-CE, APGD-T and FAB-T, and `Suite.notes` says so.

FGSM has no random start (the strongest one-step setting, BAT paper 5).
"""
from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Callable

from keras_robust._validation import check_choice
from keras_robust.attacks.config import AttackConfig

SUITES = ("standard", "quick", "rand")
# AutoAttack's `version="rand"`: passes per gradient (expectation over transformation).
RAND_EOT_ITER = 20
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
            Square, transfer), whose settings are in `run`.
        restarts: random restarts (`config.restarts`; 1 without a config).

    The masking checks (`keras_robust.evaluate.run_checks`) read family,
    loss, steps and restarts from here. The suites' specs come from
    `build_suite` (and `pgd_spec`); `run` returns float32 adversarial images
    in [0, 1] shaped like `x`.

    Example:

    >>> spec = build_suite("quick", 8 / 255).attacks[1]
    >>> spec.key, spec.name, spec.family, spec.loss, spec.steps, spec.restarts
    ('pgd7_ce', 'PGD-7 (CE)', 'pgd', 'ce', 7, 1)
    >>> spec.config.step_size == 2 / 255
    True
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

    @property
    def restarts(self) -> int:
        """Random restarts of the attack (1 when it has no `AttackConfig`)."""
        return 1 if self.config is None else self.config.restarts


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
    """

    attacks: tuple[AttackSpec, ...]
    cascade: tuple[AttackSpec, ...]
    epsilon_factors: tuple[float, ...]
    curve_steps: int
    steps_curve: tuple[int, ...]
    norm: str = "linf"
    settings: str = ""


def _attack(function: str, **kwargs: Any) -> Callable[[Any, Any, Any], Any]:
    """`(model, x, y) -> keras_robust.attacks.<function>(model, x, y, **kwargs)`, looked up
    when called."""

    def run(model, x, y):
        from keras_robust import attacks

        return getattr(attacks, function)(model, x, y, **kwargs)

    return run


def pgd_spec(epsilon: float, steps: int, loss: str = "ce", restarts: int = 1,
             norm: str = "linf") -> AttackSpec:
    """A PGD attack with step eps/4 and a random start, in the L-inf or the L2 ball."""
    key = f"pgd{steps}_{loss}" + (f"_r{restarts}" if restarts > 1 else "")
    name = (f"{'L2 ' if norm == 'l2' else ''}PGD-{steps} ({loss.upper()})"
            + (f" x{restarts} restarts" if restarts > 1 else ""))
    config = AttackConfig(norm=norm, epsilon=epsilon, step_size=epsilon / 4, steps=steps,
                          loss=loss, restarts=restarts)
    return AttackSpec(key, name, _attack("pgd", epsilon=None, config=config, seed=0), "pgd",
                      loss, steps, config)


def square_has_norm() -> bool:
    """Whether `keras_robust.attacks.square` takes a `norm` argument (an L2 Square).

    The L2 cascade holds Square only when it does.

    Example:

    >>> isinstance(square_has_norm(), bool)
    True
    """
    from keras_robust import attacks

    return "norm" in inspect.signature(attacks.square).parameters


def build_suite(name: str, epsilon: float, norm: str = "linf",
                num_classes: int | None = None) -> Suite:
    """The suite `name` ("standard", "quick" or "rand") at budget `epsilon` in the `norm` ball.

    The white-box attacks are FGSM, PGD with CE and with CW loss (7, 20 and,
    in "standard", 100 steps) and PGD-20 CE with restarts (5 in "standard",
    3 in "quick"); the cascade is AutoAttack's (APGD-CE, APGD-T with DLR,
    FAB-T, Square; "quick" is cheaper, see the module's table). Every attack
    with randomness is seeded (seed 0), so two runs of a suite draw the same
    random starts.

    Args:
        name: "standard", "quick" or "rand" (for randomised defences: the
            standard white-box attacks, and AutoAttack's rand version as the
            cascade: APGD-CE and APGD-DLR, 1 restart, EOT over 20 passes).
        epsilon: the budget on the [0, 1] scale (not checked here;
            `robustness_report` checks it). PGD steps are `epsilon / 4`.
        norm: "linf" or "l2".
        num_classes: the model's class count; the targeted attacks use at
            most `num_classes - 1` targets (None: 9 in "standard", 3 in
            "quick").

    Returns:
        A `Suite`: `attacks` and `cascade` (tuples of `AttackSpec`),
        `epsilon_factors`, `curve_steps`, `steps_curve`, `norm` and `settings`.

    Raises:
        ValueError: `name` is not one of `SUITES` or `norm` not one of `NORMS`.

    Example:

    >>> suite = build_suite("quick", 8 / 255)
    >>> [a.key for a in suite.attacks][:3]
    ['fgsm', 'pgd7_ce', 'pgd20_ce']
    >>> [a.key for a in build_suite("standard", 8 / 255).cascade]
    ['apgd_ce', 'apgd_t', 'fab_t', 'square']
    """
    check_choice(name, SUITES, "attack suite")
    check_choice(norm, NORMS, "norm")
    rand = name == "rand"
    standard = name in ("standard", "rand")
    l2 = "L2 " if norm == "l2" else ""
    fgsm = AttackSpec(
        "fgsm", f"{l2}FGSM", _attack("fgsm", epsilon=epsilon, norm=norm), "single_step", "ce", 1,
        AttackConfig(norm=norm, epsilon=epsilon, step_size=epsilon, steps=1, random_start=False),
    )
    steps = (7, 20, 100) if standard else (7, 20)
    white_box = [fgsm]
    for loss in ("ce", "cw"):
        white_box += [pgd_spec(epsilon, s, loss, norm=norm) for s in steps]
    white_box.append(pgd_spec(epsilon, 20, "ce", restarts=5 if standard else 3, norm=norm))

    apgd_steps = 100 if standard else 50
    targets = 9 if standard else 3
    if num_classes is not None:
        targets = max(1, min(targets, int(num_classes) - 1))
    queries = 5000 if standard else 1000
    cascade = [
        AttackSpec(
            "apgd_ce", f"{l2}APGD-CE ({apgd_steps})",
            _attack("apgd", epsilon=epsilon, steps=apgd_steps, loss="ce", restarts=1, seed=0,
                    norm=norm, rule="reference", early_stop=True),
            "apgd", "ce", apgd_steps,
        ),
        AttackSpec(
            "apgd_t", f"{l2}APGD-T (DLR, {targets} targets x {apgd_steps})",
            _attack("apgd_targeted", epsilon=epsilon, steps=apgd_steps, num_targets=targets,
                    restarts=1, seed=0, norm=norm, rule="reference", early_stop=True),
            "apgd", "dlr", apgd_steps * targets,
        ),
    ]
    if standard:
        cascade.append(AttackSpec(
            "fab_t", f"{l2}FAB-T ({targets} targets x {apgd_steps})",
            _attack("fab", epsilon=epsilon, norm=norm, targeted=True, num_targets=targets,
                    steps=apgd_steps, restarts=1, seed=0),
            "fab", "margin", apgd_steps * targets,
        ))
    square_note = ""
    if rand:
        # fra31/auto-attack version="rand": apgd-ce and apgd-dlr, n_restarts=1, eot_iter=20.
        cascade = [
            AttackSpec(
                f"apgd_{loss}", f"{l2}APGD-{loss.upper()} ({apgd_steps}, EOT {RAND_EOT_ITER})",
                _attack("apgd", epsilon=epsilon, steps=apgd_steps, loss=loss, restarts=1,
                        seed=0, norm=norm, rule="reference", eot_iter=RAND_EOT_ITER),
                "apgd", loss, apgd_steps,
            )
            for loss in ("ce", "dlr")
        ]
    elif norm == "linf" or square_has_norm():
        extra = {"norm": norm} if norm == "l2" else {}
        cascade.append(AttackSpec(
            "square", f"{l2}Square ({queries} queries)",
            _attack("square", epsilon=epsilon, queries=queries, seed=0, **extra),
            "square", "margin", queries,
        ))
    else:
        square_note = "; no Square (keras_robust.attacks.square has no L2 version yet)"
    budget = f"{epsilon * 255:.1f}/255" if norm == "linf" else f"{epsilon:g}"
    version = ("rand version" if rand else "standard version" if standard
               else "quick: cheaper than the standard version")
    settings = (
        f"{AUTOATTACK_NAME} ({version}, "
        f"{'L-inf' if norm == 'linf' else 'L2'}, eps {budget}): "
        + ", then ".join(spec.name for spec in cascade)
        + ", each on the images still robust after the previous ones" + square_note
    )
    return Suite(
        attacks=tuple(white_box),
        cascade=tuple(cascade),
        epsilon_factors=(0.25, 0.5, 1.0, 2.0, 4.0, 8.0) if standard else (0.5, 1.0, 2.0, 4.0, 8.0),
        curve_steps=20 if standard else 10,
        steps_curve=(1, 2, 5, 10, 20, 50, 100) if standard else (1, 5, 20),
        norm=norm,
        settings=settings,
    )
