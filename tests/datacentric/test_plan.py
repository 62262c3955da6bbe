"""The enhancement plan's draws: every corruption name and severity drawn uniformly."""
from __future__ import annotations

import numpy as np

from keras_robust.datacentric import plan


def test_corruption_choices_draw_every_name_and_severity_uniformly():
    # "names to draw from (uniformly)", "severities to draw from (uniformly)": over 3000
    # examples each name and each severity appears about equally often (chi-square,
    # p < 1e-4 above 18.4 with 2 and 23.5 with 4 degrees of freedom).
    names, severities = ("fog", "snow", "frost"), (1, 2, 3, 4, 5)
    chosen, levels, seeds = plan.corruption_choices(0, np.arange(3000), names, severities)
    name_counts = np.array([chosen.count(name) for name in names])
    level_counts = np.array([levels.count(level) for level in severities])
    assert ((name_counts - 1000) ** 2 / 1000).sum() < 18.4, name_counts
    assert ((level_counts - 600) ** 2 / 600).sum() < 23.5, level_counts
    assert len(set(seeds)) == 3000  # every example has its own corruption seed
