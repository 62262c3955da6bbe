"""bench/autoattack.py: the library's AutoAttack against ART's, on a tiny linear model.

The comparison with ART needs `adversarial-robustness-toolbox` (the `bench`
extra, not the `test` one) and is skipped without it; the counting, the table
and the library's side are tested without ART.
"""
from __future__ import annotations

import doctest
import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import ROOT, STARTUP_NOISE, jpeg_npz, linear_model


def _bench():
    spec = importlib.util.spec_from_file_location(
        "bench_autoattack", os.path.join(ROOT, "bench", "autoattack.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


BENCH = _bench()
SMALL = dict(apgd_steps=3, targets=2, square_queries=20, batch_size=4)


def _case(n=6):
    model = linear_model(input_shape=(8, 8, 3), num_classes=10, scale=0.3)
    rng = np.random.default_rng(0)
    x = rng.random((n, 8, 8, 3), dtype=np.float32)
    y = np.argmax(np.asarray(model(x)), -1).astype(np.int32)
    y[0] = (y[0] + 1) % 10  # one clean error: never robust
    return model, x, y


def test_disagreements_count_both_directions():
    lib = [True, True, False, False, True]
    art = [True, False, True, False, False]
    assert BENCH.disagreements(lib, art) == (2, 1)
    assert BENCH.disagreements(lib, None) == (None, None)
    with pytest.raises(ValueError, match="differ in length"):
        BENCH.disagreements([True], [True, False])


def test_row_and_table():
    row = BENCH.Row("apgd-ce", 4, np.array([1, 1, 0, 0], bool), np.array([1, 0, 0, 1], bool),
                    2.0, 6.0).to_dict()
    assert row["library_accuracy"] == 0.5 and row["art_accuracy"] == 0.5
    assert (row["robust_to_library_not_art"], row["robust_to_art_not_library"]) == (1, 1)
    assert row["art_over_library_time"] == 3.0 and row["library_robust_mask"] == "1100"
    fab = BENCH.Row("fab", 4, np.zeros(4, bool), None, 1.0, None).to_dict()
    lines = BENCH.format_table([row, fab]).splitlines()
    assert lines[0].split() == ["component", "images", "lib", "acc", "%", "ART", "acc", "%",
                                "lib-only", "ART-only", "lib", "s", "ART", "s", "ART/lib"]
    assert lines[1].split() == ["apgd-ce", "4", "50.00", "50.00", "1", "1", "2.00", "6.00",
                                "3.00"]
    assert lines[2].split() == ["fab", "4", "0.00", "-", "-", "-", "1.00", "-", "-"]


def test_docstring_examples_run():
    finder, runner = doctest.DocTestFinder(), doctest.DocTestRunner(
        optionflags=doctest.NORMALIZE_WHITESPACE)
    for name in ("disagreements", "speed_ratio", "format_table"):
        for test in finder.find(getattr(BENCH, name), name, globs=vars(BENCH)):
            runner.run(test)
    assert runner.tries >= 5 and runner.failures == 0


@pytest.mark.slow
def test_library_side_without_art():
    model, x, y = _case()
    result = BENCH.compare(model, x, y, ["apgd-ce", "cascade"],
                           BENCH.Settings(epsilon=8 / 255, **SMALL), use_art=False,
                           log=lambda line: None)
    rows = {row["component"]: row for row in result["rows"]}
    assert list(rows) == ["apgd-ce", "cascade"]
    for row in rows.values():
        assert row["art_accuracy"] is None and row["images"] == len(x)
        assert 0.0 <= row["library_accuracy"] <= result["clean_accuracy"]
        assert row["library_robust_mask"][0] == "0"  # the clean error
    # The cascade (APGD-CE first, at the same settings and seed) is at most as robust.
    assert rows["cascade"]["library_accuracy"] <= rows["apgd-ce"]["library_accuracy"]
    assert [c["name"] for c in result["cascade_components"]] == [
        f"{k} (bench settings)" for k in ("apgd-ce", "apgd-t", "fab", "square")]
    assert "apgd-ce" in result["table"]
    with pytest.raises(ValueError, match="Unknown components"):
        BENCH.compare(model, x, y, ["pgd"], BENCH.Settings(epsilon=8 / 255), use_art=False)


def test_seed_reaches_both_implementations(monkeypatch):
    """`--seed` sets the library's seed argument and NumPy's global seed before ART's run."""
    model, x, y = _case()
    assert BENCH.parse_args(["--model=m.keras", "--seed=3"]).seed == 3
    runs = {seed: np.asarray(BENCH.library_attack(
        "square", model, BENCH.Settings(epsilon=8 / 255, seed=seed, **SMALL), 10)(x, y))
        for seed in (0, 1)}
    again = np.asarray(BENCH.library_attack(
        "square", model, BENCH.Settings(epsilon=8 / 255, seed=0, **SMALL), 10)(x, y))
    np.testing.assert_array_equal(runs[0], again)
    assert np.abs(runs[0] - runs[1]).max() > 0  # another seed, other draws
    seeded = []
    monkeypatch.setattr(np.random, "seed", seeded.append)
    monkeypatch.setattr(BENCH, "art_attack", lambda *args: lambda a, b: a)  # ART stand-in
    correct = np.ones(len(x), bool)
    BENCH.run_component("apgd-ce", model, object(), x, y, correct,
                        BENCH.Settings(epsilon=8 / 255, seed=7, **SMALL), 10, log=lambda line: None)
    assert seeded == [7]


def test_command_line_run_prints_no_tensorflow_start_up_lines(tmp_path):
    """The bench from the command line: its table and JSON, without TensorFlow's C++
    start-up lines (it imports TensorFlow through keras_robust) or ART's PyTorch notice."""
    import keras

    archive = jpeg_npz(str(tmp_path / "cifar.npz"), n_train=8, n_test=8)
    model_path = str(tmp_path / "linear.keras")
    keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(),
                      keras.layers.Dense(10)]).save(model_path)
    env = {k: v for k, v in os.environ.items()
           if k not in ("TF_CPP_MIN_LOG_LEVEL", "KERAS_ROBUST_VERBOSE")}
    done = subprocess.run(
        [sys.executable, os.path.join(ROOT, "bench", "autoattack.py"), f"--model={model_path}",
         f"--data={archive}", "--n=4", "--components=apgd-ce", "--apgd_steps=2", "--no_art",
         f"--out={tmp_path / 'out.json'}"],
        capture_output=True, text=True, cwd=ROOT, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "apgd-ce" in done.stdout and os.path.isfile(tmp_path / "out.json")
    noise = STARTUP_NOISE + ("PyTorch not found",)  # ART's notice when torch is absent
    assert [n for n in noise if n in done.stderr] == [], done.stderr[-3000:]


@pytest.mark.slow
def test_against_art():
    pytest.importorskip("art", reason="ART (adversarial-robustness-toolbox) is in the bench "
                                      "extra, not the test extra: pip install 'keras_robust[bench]'")
    pytest.importorskip("multiprocess", reason="ART's AutoAttack imports multiprocess (bench extra)")
    model, x, y = _case(n=5)
    components = ["apgd-ce", "apgd-dlr", "apgd-t", "square", "fab", "cascade"]
    result = BENCH.compare(model, x, y, components, BENCH.Settings(epsilon=8 / 255, **SMALL),
                           log=lambda line: None)
    for row in result["rows"]:
        n = row["images"]
        if row["component"] == "fab":
            assert row["art_accuracy"] is None
            continue
        assert row["art_accuracy"] is not None and row["art_seconds"] > 0
        assert row["art_robust_mask"][0] == "0"
        # The accuracy difference is the net of the two disagreement counts.
        assert round(n * (row["library_accuracy"] - row["art_accuracy"])) == (
            row["robust_to_library_not_art"] - row["robust_to_art_not_library"])
