"""`keras_robust.experiment`: the examples' recipes that the library owns (budget flags
on the [0, 1] scale)."""
from __future__ import annotations

import pytest

from keras_robust import experiment


def test_budget_reads_fractions_numbers_and_the_norms_default():
    assert experiment.budget("8/255") == 8 / 255  # exactly what 8 / 255 in code gives
    assert experiment.budget("2.5/255") == 2.5 / 255
    assert experiment.budget(" 0.5 ", "l2") == 0.5 and experiment.budget(0.25, "l2") == 0.25
    assert experiment.budget("2", "l2") == 2.0  # an L2 budget may exceed 1


@pytest.mark.parametrize("value,message", [
    ("8", "for 8 pixel levels write '8/255'"),  # the former pixel-level unit, refused
    (8.0, "on the \\[0, 1\\] scale"),
    ("eight", "a fraction such as '8/255'"), ("1/0", "a fraction"),
    ("0", "positive"), ("-1/255", "positive"), ("nan", "positive"), ("inf", "finite"),
    (None, "a fraction"),
])
def test_budget_refuses_what_is_not_a_budget(value, message):
    with pytest.raises(ValueError, match=message):
        experiment.budget(value)


def test_budget_refuses_an_unknown_norm():
    with pytest.raises(ValueError, match="norm"):
        experiment.budget("8/255", "l1")


def test_finish_saves_the_model_before_the_report(tmp_path, monkeypatch):
    """A report that fails (here: raises) leaves the trained model on disk."""
    import numpy as np

    import keras_robust as kr
    from keras_robust import evaluate
    from tests.helpers import tiny_cnn

    def failing_report(*args, **kwargs):
        raise RuntimeError("the report failed")

    monkeypatch.setattr(evaluate, "robustness_report", failing_report)
    model = kr.RobustModel(tiny_cnn((8, 8, 3), 10), seed=0)
    test = (np.zeros((4, 8, 8, 3), "float32"), np.arange(4))
    with pytest.raises(RuntimeError, match="the report failed"):
        experiment.finish(model, test, str(tmp_path), report="fgsm")
    assert (tmp_path / "model.keras").is_file() and (tmp_path / "savedmodel").is_dir()
