"""The report's masking checks against their documented rules, worked out by hand."""
from __future__ import annotations

import pytest

from keras_robust.evaluate import checks


def _agreement(pgd: float, autoattack: float) -> str:
    results = {"attacks": {"pgd20_ce": {"name": "PGD-20 (CE)", "accuracy": pgd}},
               "autoattack": {"accuracy": autoattack, "components": []}}
    status = {c.name: c.status for c in checks.run_checks(results)}
    return status["PGD and AutoAttack agree"]


@pytest.mark.parametrize("pgd, autoattack, expected", [
    (0.50, 0.44, "FAIL"),    # 6 points > AGREEMENT (5 points)
    (0.50, 0.46, "PASS"),    # 4 points, 8% of the PGD figure
    (0.12, 0.09, "FAIL"),    # 3 points > 2 points of noise and > 20% of 12% (2.4 points)
    (0.15, 0.122, "PASS"),   # 2.8 points > 2, but < 20% of 15% (3 points)
    (0.03, 0.015, "PASS"),   # 1.5 points: within the 2 points of noise, though 50%
    (0.30, 0.35, "PASS"),    # AutoAttack the weaker one: nothing overestimated
])
def test_pgd_and_autoattack_agreement_follows_its_documented_margins(pgd, autoattack, expected):
    # Check 6 as the module docstring of keras_robust.evaluate.checks states it: the gap
    # PGD - AutoAttack fails above AGREEMENT = 5 points, or above both TOLERANCE = 2
    # points and RELATIVE = 20% of the PGD (weaker attack's) figure; worked out by hand.
    assert (checks.AGREEMENT, checks.TOLERANCE, checks.RELATIVE) == (0.05, 0.02, 0.20)
    assert _agreement(pgd, autoattack) == expected
