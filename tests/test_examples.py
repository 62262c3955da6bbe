"""The paper examples and the main job run end to end on a tiny JPEG archive.

Each example is started as a user starts it (a subprocess with absl flags) on
48 training and 16 test images, with every stage it has but at the smallest
size, and its outputs are checked: the files its docstring promises, a
`model.keras` that loads and predicts, and the figures of its summary.
(`examples/cifar10_datacentric.py` has its own test module;
`examples/evaluate.py` is run by `tests/test_report.py`; `examples/train.py`
by `tests/test_recipes.py`.)
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
from tests.helpers import ROOT, STARTUP_NOISE, jpeg_npz, run_example

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


def test_train_summary_verdict_on_hand_made_figures():
    """The summary's headline and warning (examples/train.py `verdict`) on figures made by hand."""
    sys.path.insert(0, os.path.join(ROOT, "examples"))
    try:
        import train  # examples/train.py: its absl flags are only defined, never parsed here
    finally:
        sys.path.pop(0)
    cases = [
        {"clean": 0.5, "fgsm": 0.35, "pgd20": 0.30, "cw20": 0.15},   # 15 points: masked CE
        {"clean": 0.5, "fgsm": 0.35, "pgd20": 0.30, "cw20": 0.29},   # 1 point: agree
        {"clean": 0.5, "pgd10": 0.12, "pgd20": 0.10, "apgd_t": 0.07},  # 3 points, 30% of 10%
        {"clean": 0.5, "fgsm": 0.35, "pgd20": 0.30},                 # no margin-loss attack
    ]
    masked, close, relative, unchecked = (
        dict(zip(("worst", "check", "lines"), train.verdict(figures))) for figures in cases)
    assert masked["worst"] == {"attack": "cw20", "name": "PGD-20 (CW)", "accuracy": 0.15}
    assert masked["check"]["status"] == "FAIL"
    assert masked["lines"] == [
        "  robust accuracy, worst case over 3 attacks: 15.0% (PGD-20 (CW))",
        "  WARNING: cross-entropy and margin-loss attacks agree FAILED: "
        + masked["check"]["detail"]]
    assert close["check"]["status"] == "PASS" and close["worst"]["attack"] == "cw20"
    assert not any("WARNING" in line for line in close["lines"])
    # The strongest CE-PGD (PGD-20 10%) against APGD-T (DLR) 7%.
    assert relative["check"]["status"] == "FAIL"
    assert relative["check"]["values"] == {"PGD-20 (CE)": 0.10,
                                           "APGD-T (DLR, 3 targets x 20)": 0.07}
    assert unchecked["check"] is None and unchecked["worst"]["attack"] == "pgd20"
    assert "WARNING: no margin-loss attack" in unchecked["lines"][-1]

    # Paired by per-image masks (100 images): 15 images robust to PGD-20 (CE) that CW-20
    # breaks and none the other way is a real gap; the 3-point gap above, paired as 4
    # images one way and 1 the other (exact McNemar p = 0.375), is sampling noise.
    pgd = np.zeros(100, bool); pgd[:30] = True
    cw = np.zeros(100, bool); cw[:15] = True
    _, check, _ = train.verdict(cases[0] | {"clean": 0.5}, {"pgd20": pgd, "cw20": cw})
    assert check["status"] == "FAIL" and (check["values"]["b"], check["values"]["c"]) == (15, 0)
    pgd = np.zeros(100, bool); pgd[:10] = True
    apgd = np.zeros(100, bool); apgd[:6] = True; apgd[50] = True
    _, check, lines = train.verdict(cases[2], {"pgd10": pgd, "pgd20": pgd, "apgd_t": apgd})
    assert (check["values"]["b"], check["values"]["c"]) == (4, 1)
    assert check["status"] == "PASS" and not any("WARNING" in line for line in lines)


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


def assert_honest_summary(summary: dict, out: str) -> None:
    """The summary of examples/train.py (summary.json and printed `out`) with its defaults."""
    # Every attack of the default list, a margin-loss one (CW) among them, each
    # counted on images also right clean: none can beat clean accuracy.
    accuracy = summary["accuracy"]
    assert set(accuracy) == {"clean", "fgsm", "pgd10", "pgd20", "cw20", "apgd_t"}
    assert all(accuracy[k] <= accuracy["clean"] for k in accuracy)
    # The headline is the worst attack; robust to all at once is at most that.
    worst = summary["worst_case"]
    assert worst["accuracy"] == min(v for k, v in accuracy.items() if k != "clean")
    assert accuracy[worst["attack"]] == worst["accuracy"]
    assert summary["robust_to_all_attacks"] <= worst["accuracy"]
    # The verdict is check 5 on the strongest CE-PGD and margin-loss figures.
    names = {"pgd10": "PGD-10 (CE)", "pgd20": "PGD-20 (CE)", "cw20": "PGD-20 (CW)",
             "apgd_t": "APGD-T (DLR, 3 targets x 20)"}
    ce, margin = (min(keys, key=accuracy.get) for keys in (("pgd10", "pgd20"), ("cw20", "apgd_t")))
    check = summary["ce_vs_margin"]
    values = check["values"]
    assert {k: values[k] for k in (names[ce], names[margin])} == {
        names[ce]: accuracy[ce], names[margin]: accuracy[margin]}
    # Paired: the two masks differ on b + c images and the gap is (b - c) / n, so b - c
    # has the gap's sign (n: the summary's test images).
    assert values["b"] >= 0 and values["c"] >= 0
    assert np.sign(values["b"] - values["c"]) == np.sign(round(accuracy[ce] - accuracy[margin], 9))
    assert check["status"] == kr.evaluate.ce_margin_agreement(
        accuracy[ce], accuracy[margin], b=values["b"], c=values["c"]).status
    for key in ("cw20", "apgd_t"):
        assert f"{key}: {100 * accuracy[key]:5.1f}%  {names[key]}" in out
    assert (f"robust accuracy, worst case over {len(accuracy) - 1} attacks: "
            f"{100 * worst['accuracy']:.1f}% ({worst['name']})") in out
    assert ("WARNING: cross-entropy and margin-loss attacks agree FAILED" in out) == (
        check["status"] == "FAIL")


@pytest.mark.slow
def test_quickstart_runs_its_defaults_and_serves_the_same_logits(archive, tmp_path):
    summary = _run("quickstart", archive, tmp_path)
    # Quiet by default: no TensorFlow start-up lines, no SavedModel export INFO dump.
    assert [n for n in STARTUP_NOISE if n in summary["_stderr"]] == [], summary["_stderr"][-3000:]
    # The main job's own defaults: BAT R-MC-LA, 2 epochs, no augmentation or weight decay.
    assert summary["defense"] == "bat" and summary["epochs"] == 2
    assert summary["defense_config"]["attack"]["target"] == "mc"  # the attack config
    assert summary["defense_config"]["label"] == "adversarial"
    assert_honest_summary(summary, summary["_stdout"])
    model = _loads_and_predicts(tmp_path)
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
    summary = _run("cifar10_afs", archive, tmp_path, "--backbone=small_cnn", "--budgets=2,8",
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
