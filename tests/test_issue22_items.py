"""Issue #22's small items: `examples/evaluate.py --norm`, and public helpers in `__all__`."""
from __future__ import annotations

import json

import numpy as np
import pytest

import keras_robust as kr
from tests.helpers import jpeg_npz, linear_model, run_example


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


def test_evaluate_example_budget_defaults():
    # Only the function is compiled: importing the example would define its absl
    # flags a second time in this process (other tests import examples/train.py).
    import ast
    import os

    from tests.helpers import ROOT

    path = os.path.join(ROOT, "examples", "evaluate.py")
    with open(path) as f:
        tree = ast.parse(f.read())
    function = next(node for node in tree.body
                    if isinstance(node, ast.FunctionDef) and node.name == "report_epsilon")
    namespace: dict = {}
    exec(compile(ast.Module([function], type_ignores=[]), path, "exec"), namespace)
    module = type("evaluate_example", (), {"report_epsilon": staticmethod(namespace["report_epsilon"])})
    assert module.report_epsilon("linf", None) == 8 / 255
    assert module.report_epsilon("linf", 4.0) == 4 / 255
    assert module.report_epsilon("l2", None) == 0.5
    assert module.report_epsilon("l2", 1.0) == 1.0


def test_public_helpers_are_in_all():
    """So that tests/test_docstrings.py checks their docstrings and runs their examples."""
    assert {"budget_label", "heatmap", "line_plot"} <= set(kr.evaluate.plots.__all__)
    assert {"encode_mask", "decode_mask"} <= set(kr.evaluate.__all__)
    mask = np.array([True, False, True])
    assert kr.evaluate.decode_mask(kr.evaluate.encode_mask(mask)).tolist() == mask.tolist()
