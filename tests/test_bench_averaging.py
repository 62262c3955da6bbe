"""bench/averaging.py: the trained against the averaged weights of one run, paired image by image.

The McNemar counts against scipy's exact binomial test, and the command line on a
tiny run whose two weight sets disagree: the script's figures are those of the
averages for "averaged" and of the trained weights for "trained" (not the same
weights twice, not swapped), with b and c counted from predictions made here.
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from scipy import stats

import keras_robust as kr
from tests.helpers import ROOT, jpeg_npz, tiny_cnn


def _bench():
    spec = importlib.util.spec_from_file_location(
        "bench_averaging", os.path.join(ROOT, "bench", "averaging.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_paired_counts_and_mcnemar_match_an_exact_binomial_test():
    trained = np.array([1, 1, 1, 1, 0, 0, 1, 0, 1, 1, 1, 0], bool)
    averaged = np.array([1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 1, 0], bool)
    result = _bench().paired(trained, averaged)
    assert (result["b"], result["c"]) == (5, 1)  # trained only, averaged only
    assert result["difference"] == pytest.approx(averaged.mean() - trained.mean())
    assert result["p_value"] == pytest.approx(stats.binomtest(1, 6, 0.5).pvalue)


def test_command_line_evaluates_each_weight_set_as_named(tmp_path):
    archive = jpeg_npz(str(tmp_path / "cifar.npz"), n_train=8, n_test=24)
    keras.utils.set_random_seed(0)
    model = kr.RobustModel(tiny_cnn((32, 32, 3), 10), weight_averaging=0.995, seed=0)
    model.compile(optimizer=keras.optimizers.SGD(2.0), metrics=["accuracy"])
    x, y = kr.data.load_arrays(archive, "test")
    x = kr.data.to_float(x)
    model.fit(x, y, batch_size=8, epochs=2, verbose=0)  # the trained weights move far
    run = tmp_path / "run"
    run.mkdir()
    trained = np.argmax(model.predict(x, verbose=0), 1) == y
    with model.averaged_weights():  # the backbone holds the averages, as train.py --ema saves
        model.save(run / "model.keras")
        averaged = np.argmax(model.predict(x, verbose=0), 1) == y
    assert (trained != averaged).any()  # the fixture tells the two weight sets apart
    output = tmp_path / "out.json"
    done = subprocess.run(
        [sys.executable, os.path.join(ROOT, "bench", "averaging.py"), f"--run={run}",
         f"--data={archive}", "--limit=24", "--attacks=fgsm,pgd7_ce", f"--output={output}"],
        capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    clean = json.loads(output.read_text())["clean"]
    assert clean["trained"] == pytest.approx(trained.mean())
    assert clean["averaged"] == pytest.approx(averaged.mean())
    assert (clean["b"], clean["c"]) == (int((trained & ~averaged).sum()),
                                        int((averaged & ~trained).sum()))
