"""The paper examples and the main job run end to end on a tiny JPEG archive.

Each example is started as a user starts it (a subprocess with absl flags) on
48 training and 16 test images, with every stage it has but at the smallest
size, and its outputs are checked: the files its docstring promises, a
`model.keras` that loads and predicts, and the figures of its summary.
No test imports or executes an example's code in its own process: what tests
need from the examples is in the package (`keras_robust.experiment`,
`keras_robust.data`). (`examples/cifar10_datacentric.py` has its own test
module; `examples/evaluate.py` is also run by `tests/evaluate/test_report.py`;
`examples/train.py` with its recipe flags by `tests/test_recipes.py`.)
"""
from __future__ import annotations

import json
import os
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_robust as kr
from tests.helpers import STARTUP_NOISE, jpeg_npz, run_example

TINY = ["--batch_size=16", "--train_limit=32", "--eval_limit=16"]


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    return jpeg_npz(str(tmp_path_factory.mktemp("data") / "cifar.npz"), n_train=48, n_test=16)


def _run(example: str, archive: str, output_dir, *flags: str) -> dict:
    """Runs examples/<example>.py; returns its summary.json (its stdout under "_stdout")."""
    done = run_example(example, f"--data={archive}", f"--output_dir={output_dir}", *TINY, *flags,
                       timeout=600)
    with open(os.path.join(output_dir, "summary.json")) as f:
        return {**json.load(f), "_stdout": done.stdout, "_stderr": done.stderr}


def test_evaluate_example_is_quiet_unless_verbose(archive, tmp_path):
    """examples/evaluate.py on a tiny model: no start-up logs in stderr, the summary in stdout."""
    model_path = str(tmp_path / "linear.keras")
    keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(),
                      keras.layers.Dense(10)], name="linear").save(model_path)
    flags = [f"--model={model_path}", f"--data={archive}", "--limit=8", "--attacks=fgsm",
             "--batch_size=8"]
    env = {k: v for k, v in os.environ.items()
           if k not in ("TF_CPP_MIN_LOG_LEVEL", "KERAS_ROBUST_VERBOSE", "KERAS_ROBUST_PROGRESS")}
    quiet = run_example("evaluate", *flags, env=env)
    assert [n for n in STARTUP_NOISE if n in quiet.stderr] == [], quiet.stderr[-3000:]
    # The summary stays in the log (stderr is not a terminal: result lines, no bar).
    assert "linear: clean" in quiet.stderr and "ETA" not in quiet.stderr
    if sys.platform == "linux" and os.uname().machine == "x86_64":
        # --verbose brings TensorFlow's C++ start-up lines back. Which ones depends on
        # the CPU: oneDNN's only where TensorFlow turns oneDNN on (not on an AMD EPYC
        # without AVX-512, where cpu_feature_guard's and absl's lines still show).
        loud = run_example("evaluate", *flags, "--verbose", env=env)
        assert [n for n in STARTUP_NOISE if n in loud.stderr], loud.stderr[-3000:]


def _loads_and_predicts(model_dir) -> keras.Model:
    """The saved `.keras` model loads and gives finite 10-class logits; the SavedModel exists."""
    assert os.path.isfile(os.path.join(model_dir, "savedmodel", "saved_model.pb"))
    model = keras.saving.load_model(os.path.join(model_dir, "model.keras"))
    logits = np.asarray(model.predict(np.random.default_rng(0).random((4, 32, 32, 3), "float32"),
                                      verbose=0))
    assert logits.shape == (4, 10) and np.all(np.isfinite(logits))
    return model


def assert_honest_summary(out: str, report_dir) -> None:
    """The summary a run printed (`out`) is its saved report's: the summary suite's attacks,
    none above clean accuracy, the worst case first, check 5's FAIL line when it fails."""
    report = kr.evaluate.RobustnessReport.load(str(report_dir))
    attacks = report.results["attacks"]
    assert list(attacks) == [spec.key for spec in kr.evaluate.build_suite("summary", 8 / 255).attacks]
    assert all(a["accuracy"] <= report.clean_accuracy for a in attacks.values())
    assert report.robust_accuracy <= min(a["accuracy"] for a in attacks.values())
    assert report.summary().splitlines()[0] in out  # the worst case and its attack first
    check = next(c for c in report.checks if c.name == kr.evaluate.CE_MARGIN_CHECK)
    assert check.status in ("PASS", "FAIL")  # a margin-loss attack ran: check 5 is judged
    assert (f"FAIL {check.name}" in out) == check.failed


@pytest.mark.slow
def test_quickstart_runs_its_defaults_and_serves_the_same_logits(archive, tmp_path):
    done = run_example("quickstart", f"--data={archive}", f"--output_dir={tmp_path}",
                       "--train_limit=32", "--eval_limit=16", "--epochs=1", timeout=600)
    # Quiet by default: no TensorFlow start-up lines, no SavedModel export INFO dump.
    assert [n for n in STARTUP_NOISE if n in done.stderr] == [], done.stderr[-3000:]
    assert_honest_summary(done.stdout, tmp_path / "report")
    model = _loads_and_predicts(tmp_path)
    assert isinstance(model, kr.BATModel)  # R-MC-LA: the most confusing class, adversarial labels
    assert model.label == "adversarial" and model.beta == 9.0
    x = np.random.default_rng(1).random((4, 32, 32, 3), "float32")
    served = tf.saved_model.load(str(tmp_path / "savedmodel")).signatures["serving_default"]
    (out,) = served(tf.constant(x)).values()
    np.testing.assert_allclose(np.asarray(out), np.asarray(model.predict(x, verbose=0)), atol=1e-5)


@pytest.mark.slow
def test_bat_example_builds_the_variant_and_sets_the_batchnorm_momentum(archive, tmp_path):
    summary = _run("cifar10_bat", archive, tmp_path, "--backbone=small_cnn", "--epochs=1",
                   "--report=none", "--variant=R-MC-LS", "--bn_momentum=0.9", "--noaugment")
    assert summary["variant"] == "R-MC-LS"
    assert summary["config"]["attack"]["target"] == "mc" and summary["config"]["label"] == "smoothing"
    model = _loads_and_predicts(tmp_path)
    layers = kr.backbones.batchnorm_layers(model.backbone)
    assert layers and all(layer.momentum == pytest.approx(0.9) for layer in layers)


@pytest.mark.slow
def test_bpfc_example_follows_the_authors_lambda_schedule(archive, tmp_path):
    summary = _run("cifar10_bpfc", archive, tmp_path, "--backbone=small_cnn", "--epochs=4",
                   "--report=none")
    assert summary["config"]["k"] == 5
    # The authors' loop scaled to 4 epochs: lambda x9 once epochs 1, 2 and 3 (0-based, a
    # quarter, a half and three quarters of training) have finished, so the new values
    # apply from epochs 2, 3 and 4 (the last is never reached, as in their loop).
    assert summary["lam_schedule"] == {"boundaries": [2, 3, 4], "values": [1.0, 9.0, 81.0, 729.0]}
    _loads_and_predicts(tmp_path)


@pytest.mark.slow
def test_afs_example_trains_extractors_and_merger_and_explains_them(archive, tmp_path):
    summary = _run("cifar10_afs", archive, tmp_path, "--backbone=small_cnn", "--budgets=2/255,8/255",
                   "--extractor_epochs=1", "--extractor_steps=1", "--merger_epochs=1",
                   "--merger_steps=1", "--delta_z_images=16", "--report=none",
                   "--merger_init=most_robust")
    for name in ("extractors/eps_2.keras", "extractors/eps_8.keras", "delta_z.png",
                 "importance.png"):
        assert os.path.isfile(tmp_path / name), name
    assert [row["budget"] for row in summary["delta_z"]] == pytest.approx([2 / 255, 8 / 255])
    importance = np.asarray(summary["importance"])
    assert importance.shape == (2,) and np.all(importance >= 0)
    assert importance.sum() == pytest.approx(1.0, abs=1e-5)
    assert [row["model"] for row in summary["comparison"]] == [
        "extractor 2/255", "extractor 8/255", "AFS"]
    assert summary["merger_init"] == "most_robust"
    _loads_and_predicts(tmp_path)


@pytest.mark.slow
def test_mtlat_example_writes_the_papers_benchmark_for_both_models(archive, tmp_path):
    summary = _run("cifar10_mtlat", archive, tmp_path, "--epochs=1", "--surrogate_epochs=1",
                   "--severities=1")
    assert set(summary["clean"]) == set(summary["robustness"]) == {"standard", "M-TLAT"}
    with open(tmp_path / "benchmark" / "benchmark.md") as f:
        table = f.read()
    assert "| standard |" in table and "| M-TLAT |" in table
    for name in ("standard", "mtlat", "surrogate"):
        _loads_and_predicts(tmp_path / name)


@pytest.mark.slow
def test_train_example_reports_and_saves_the_averaged_weights_with_ema(archive, tmp_path):
    summary = _run("train", archive, tmp_path, "--defense=plain", "--epochs=1", "--report=fgsm",
                   "--ema=0.9", "--noaugment")
    assert summary["defense_config"]["weight_averaging"] == {"tau": 0.9, "warmup": True,
                                                             "batchnorm": "raw"}
    assert summary["reported_weights"] == "averaged (EMA, tau=0.9)"
    assert 0.0 <= summary["raw_clean"] <= 1.0 and set(summary["attacks"]) == {"fgsm"}
    model = _loads_and_predicts(tmp_path)
    # Saved inside averaged_weights(): the backbone holds the averages, the averages the
    # trained weights; the SavedModel serves the averaged backbone.
    x = np.random.default_rng(1).random((4, 32, 32, 3), "float32")
    served = tf.saved_model.load(str(tmp_path / "savedmodel")).signatures["serving_default"]
    (out,) = served(tf.constant(x)).values()
    averaged = np.asarray(model.predict(x, verbose=0))
    np.testing.assert_allclose(np.asarray(out), averaged, atol=1e-5)
    model.swap_averaged_weights()
    assert not np.allclose(np.asarray(model.predict(x, verbose=0)), averaged, atol=1e-5)
