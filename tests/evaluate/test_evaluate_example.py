"""`examples/evaluate.py`'s `--norm`, budget and `--start` flags, and public helpers in `__all__`."""
from __future__ import annotations

import json

import numpy as np
import pytest

import keras_robust as kr
from tests.helpers import jpeg_npz, linear_model, run_example

# The budget defaults and test-image ranges of examples/evaluate.py are library calls,
# tested with them: keras_robust.experiment.budget (tests/test_experiment.py) and
# keras_robust.data.load_arrays(start=...) (tests/test_data.py).


@pytest.mark.slow  # two runs of the example (subprocesses)
def test_evaluate_example_takes_norm_l2_with_its_default_budget(tmp_path):
    model = linear_model(input_shape=(32, 32, 3), num_classes=10, scale=0.05)
    model.save(str(tmp_path / "linear.keras"))
    data = jpeg_npz(str(tmp_path / "cifar.npz"), n_train=10, n_test=10)
    out = tmp_path / "report"
    run_example("evaluate", f"--model={tmp_path / 'linear.keras'}", f"--data={data}",
                "--limit=10", "--norm=l2", "--attacks=fgsm", f"--output_dir={out}")
    results = json.loads((out / "report.json").read_text())
    assert results["norm"] == "l2" and results["epsilon"] == 0.5
    assert results["attacks"]["fgsm"]["name"] == "L2 FGSM"
    run_example("evaluate", f"--model={tmp_path / 'linear.keras'}", f"--data={data}",
                "--limit=10", "--norm=l2", "--epsilon=0.25", "--attacks=fgsm",
                f"--output_dir={out}")
    assert json.loads((out / "report.json").read_text())["epsilon"] == 0.25


def test_public_helpers_are_in_all():
    """So that tests/test_docstrings.py checks their docstrings and runs their examples."""
    assert {"budget_label", "heatmap", "line_plot"} <= set(kr.evaluate.plots.__all__)
    assert {"encode_mask", "decode_mask"} <= set(kr.evaluate.__all__)
    mask = np.array([True, False, True])
    assert kr.evaluate.decode_mask(kr.evaluate.encode_mask(mask)).tolist() == mask.tolist()
