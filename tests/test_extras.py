"""Optional dependencies: matplotlib (`[plots]`) and imagecorruptions (`[frost]`).

The library imports without them; asking for a plot or for the frost
corruption without them raises an ImportError naming the extra to install.
A missing package is simulated with `sys.modules[name] = None`.
"""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from keras_robust.corruptions import corrupt, ops
from keras_robust.evaluate import plots

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_a_plot_without_matplotlib_names_the_plots_extra(monkeypatch, tmp_path):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r'pip install "keras_robust\[plots\]"'):
        plots.line_plot(str(tmp_path / "p.png"), [1, 2], [0.5, 0.4], "eps", "accuracy")


def test_frost_without_imagecorruptions_names_the_frost_extra(monkeypatch):
    ops.frost_directory.cache_clear()
    ops.frost_textures.cache_clear()
    monkeypatch.setitem(sys.modules, "imagecorruptions", None)
    try:
        with pytest.raises(ImportError, match=r'pip install "keras_robust\[frost\]"'):
            corrupt(np.full((1, 8, 8, 3), 100, np.uint8), "frost", severity=3, seed=0)
    finally:
        ops.frost_directory.cache_clear()
        ops.frost_textures.cache_clear()


def test_the_library_imports_and_evaluates_without_the_extras():
    code = (
        "import sys\n"
        "sys.modules['matplotlib'] = None\n"
        "sys.modules['imagecorruptions'] = None\n"
        "import numpy as np, keras_robust as kr\n"
        "x = np.random.default_rng(0).integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)\n"
        "print(kr.corruptions.corrupt(x, 'gaussian_noise', severity=1, seed=0).shape)\n"
    )
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "(4, 8, 8, 3)" in result.stdout
