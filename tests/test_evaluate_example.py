"""`examples/evaluate.py`'s `--norm`, budget and `--start` flags, and public helpers in `__all__`."""
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


def _evaluate_example_function(name: str):
    """One function of examples/evaluate.py, compiled alone (importing the example would
    define its absl flags a second time in this process)."""
    import ast
    import os

    from tests.helpers import ROOT

    path = os.path.join(ROOT, "examples", "evaluate.py")
    with open(path) as f:
        tree = ast.parse(f.read())
    function = next(node for node in tree.body
                    if isinstance(node, ast.FunctionDef) and node.name == name)
    namespace: dict = {}
    exec(compile(ast.Module([function], type_ignores=[]), path, "exec"), namespace)
    return namespace[name]


def test_evaluate_example_start_selects_disjoint_sets(tmp_path):
    """--start with --limit: test images start..start+limit-1, in order; bad starts are refused."""
    archive = jpeg_npz(str(tmp_path / "cifar.npz"), n_train=8, n_test=16)
    test_images = _evaluate_example_function("test_images")
    x_all, y_all = kr.data.load_arrays(archive, "test")
    x, y = test_images(archive, 10, 4)
    np.testing.assert_array_equal(x, x_all[10:14])
    np.testing.assert_array_equal(y, y_all[10:14])
    x, _ = test_images(archive, 12, 100)  # fewer left than --limit: the rest
    assert len(x) == 4
    with pytest.raises(ValueError, match="skips every test image"):
        test_images(archive, 16, 4)
    with pytest.raises(ValueError, match="--start must be"):
        test_images(archive, -1, 4)


def test_public_helpers_are_in_all():
    """So that tests/test_docstrings.py checks their docstrings and runs their examples."""
    assert {"budget_label", "heatmap", "line_plot"} <= set(kr.evaluate.plots.__all__)
    assert {"encode_mask", "decode_mask"} <= set(kr.evaluate.__all__)
    mask = np.array([True, False, True])
    assert kr.evaluate.decode_mask(kr.evaluate.encode_mask(mask)).tolist() == mask.tolist()
