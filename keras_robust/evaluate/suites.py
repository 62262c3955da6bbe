"""The attack suites of the robustness report.

An `AttackSpec` names an attack and how to run it on a batch; a suite is the
list the report runs, plus the AutoAttack-style cascade and the curves.

| suite | white-box attacks | AutoAttack-style cascade | curves |
| --- | --- | --- | --- |
| "standard" | FGSM; PGD-7/20/100 with CE and with CW; PGD-20 CE x 5 restarts | APGD-CE 100, APGD-T (DLR, 9 targets x 100), Square 5000 | eps x {1/4 ... 8}, PGD-20; steps 1 ... 100 |
| "quick" | FGSM; PGD-7/20 with CE and with CW; PGD-20 CE x 3 restarts | APGD-CE 50, APGD-T (DLR, 3 targets x 50), Square 1000 | eps x {1/2, 1, 2, 4, 8}, PGD-10; steps 1, 5, 20 |

All PGD attacks use step 2/255 at eps 8/255 (step = eps / 4 in general) and a
random start; FGSM has none (the strongest one-step setting, BAT paper 5).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

from keras_robust._validation import check_choice

SUITES = ("standard", "quick")


@dataclasses.dataclass(frozen=True)
class AttackSpec:
    """One attack of the report.

    Attributes:
        key: short identifier used in results and checks ("pgd20_ce").
        name: what the report prints ("PGD-20 (CE)").
        run: `(model, x, y) -> x_adv`.
        family: "single_step", "pgd", "apgd", "square" or "transfer".
        loss: the objective ("ce", "cw", "dlr", "margin").
        steps: gradient steps (or queries for Square; for APGD-T, steps x
            targets).

    The suites' specs come from `build_suite` (and `pgd_spec`); `run`
    returns float32 adversarial images in [0, 1] shaped like `x`.

    Example:

    >>> spec = build_suite("quick", 8 / 255).attacks[1]
    >>> spec.key, spec.name, spec.family, spec.loss, spec.steps
    ('pgd7_ce', 'PGD-7 (CE)', 'pgd', 'ce', 7)
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


@dataclasses.dataclass(frozen=True)
class Suite:
    """What the report runs.

    Attributes:
        attacks: the white-box attacks, each on every image.
        cascade: the AutoAttack-style attacks, each on the images still
            robust after the previous ones; their worst case is the
            "AutoAttack" accuracy.
        epsilon_factors: multiples of epsilon for the accuracy-vs-eps curve.
        curve_steps: PGD steps of the accuracy-vs-eps curve.
        steps_curve: PGD step counts of the accuracy-vs-steps curve.
    """

    attacks: tuple[AttackSpec, ...]
    cascade: tuple[AttackSpec, ...]
    epsilon_factors: tuple[float, ...]
    curve_steps: int
    steps_curve: tuple[int, ...]


def _attack(function: str, **kwargs: Any) -> Callable[[Any, Any, Any], Any]:
    """`(model, x, y) -> keras_robust.attacks.<function>(model, x, y, **kwargs)`, looked up
    when called."""

    def run(model, x, y):
        from keras_robust import attacks

        return getattr(attacks, function)(model, x, y, **kwargs)

    return run


def _pgd(epsilon: float, steps: int, loss: str = "ce", restarts: int = 1, seed: int = 0):
    return _attack("pgd", epsilon=epsilon, step_size=epsilon / 4, steps=steps, loss=loss,
                   restarts=restarts, seed=seed)


def pgd_spec(epsilon: float, steps: int, loss: str = "ce", restarts: int = 1) -> AttackSpec:
    """A PGD attack with step eps/4 and a random start."""
    key = f"pgd{steps}_{loss}" + (f"_r{restarts}" if restarts > 1 else "")
    name = f"PGD-{steps} ({loss.upper()})" + (f" x{restarts} restarts" if restarts > 1 else "")
    return AttackSpec(key, name, _pgd(epsilon, steps, loss, restarts), "pgd", loss, steps)


def build_suite(name: str, epsilon: float) -> Suite:
    """The suite `name` ("standard" or "quick") at budget `epsilon`.

    The white-box attacks are FGSM, PGD with CE and with CW loss (7, 20 and,
    in "standard", 100 steps) and PGD-20 CE with restarts (5 in "standard",
    3 in "quick"); the cascade is APGD-CE, APGD-T (DLR) and Square (see the
    module's table). Every attack with randomness is seeded (seed 0), so
    two runs of a suite draw the same random starts.

    Args:
        name: "standard" or "quick".
        epsilon: the L-inf budget on the [0, 1] scale (not checked here;
            `robustness_report` checks it). PGD steps are `epsilon / 4`.

    Returns:
        A `Suite`: `attacks` and `cascade` (tuples of `AttackSpec`),
        `epsilon_factors`, `curve_steps` and `steps_curve`.

    Raises:
        ValueError: `name` is not one of `SUITES`.

    Example:

    >>> suite = build_suite("quick", 8 / 255)
    >>> [a.key for a in suite.attacks][:3]
    ['fgsm', 'pgd7_ce', 'pgd20_ce']
    """
    check_choice(name, SUITES, "attack suite")
    standard = name == "standard"
    fgsm = AttackSpec(
        "fgsm", "FGSM", _attack("fgsm", epsilon=epsilon), "single_step", "ce", 1
    )
    steps = (7, 20, 100) if standard else (7, 20)
    white_box = [fgsm]
    for loss in ("ce", "cw"):
        white_box += [pgd_spec(epsilon, s, loss) for s in steps]
    white_box.append(pgd_spec(epsilon, 20, "ce", restarts=5 if standard else 3))

    apgd_steps = 100 if standard else 50
    targets = 9 if standard else 3
    queries = 5000 if standard else 1000
    cascade = (
        AttackSpec(
            "apgd_ce", f"APGD-CE ({apgd_steps})",
            _attack("apgd", epsilon=epsilon, steps=apgd_steps, loss="ce", seed=0),
            "apgd", "ce", apgd_steps,
        ),
        AttackSpec(
            "apgd_t", f"APGD-T (DLR, {targets} targets x {apgd_steps})",
            _attack("apgd_targeted", epsilon=epsilon, steps=apgd_steps, num_targets=targets,
                    seed=0),
            "apgd", "dlr", apgd_steps * targets,
        ),
        AttackSpec(
            "square", f"Square ({queries} queries)",
            _attack("square", epsilon=epsilon, queries=queries, seed=0),
            "square", "margin", queries,
        ),
    )
    return Suite(
        attacks=tuple(white_box),
        cascade=cascade,
        epsilon_factors=(0.25, 0.5, 1.0, 2.0, 4.0, 8.0) if standard else (0.5, 1.0, 2.0, 4.0, 8.0),
        curve_steps=20 if standard else 10,
        steps_curve=(1, 2, 5, 10, 20, 50, 100) if standard else (1, 5, 20),
    )
