"""The robustness report measures correctly and catches gradient masking."""
from __future__ import annotations

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_robust as kr
from keras_robust.evaluate import checks
from tests.helpers import assert_in_ball, linear_model, mlp, run_example

WHITE_BOX = ["fgsm", "pgd7_ce", "pgd20_ce", "pgd7_cw", "pgd20_cw", "pgd20_ce_r5", "curves"]


def _data(model, n=120, seed=0):
    rng = np.random.default_rng(seed)
    x = 0.3 + 0.4 * rng.random((n, 8, 8, 1), dtype=np.float32)
    y = np.argmax(model.predict(x, verbose=0), -1).astype(np.int32)
    y[: n // 10] = (y[: n // 10] + 1) % 4  # a few clean errors
    return x, y


def _masked(model, scale=1000.0):
    """The same classifier with logits x1000: softmax saturates, CE gradients vanish."""
    inputs = keras.Input(model.input_shape[1:])
    return keras.Model(inputs, keras.layers.Rescaling(scale)(model(inputs)), name="masked")


def test_report_numbers_match_direct_attacks():
    model = linear_model(num_classes=4, scale=2.0)
    x, y = _data(model)
    report = kr.evaluate.robustness_report(model, (x, y), epsilon=16 / 255, attacks=WHITE_BOX,
                                           progress=False)
    clean = np.mean(np.argmax(model.predict(x, verbose=0), -1) == y)
    assert report.clean_accuracy == pytest.approx(clean)
    direct = kr.evaluate.robust_accuracy(
        model, x, y, lambda m, a, b: kr.attacks.pgd(m, a, b, 16 / 255, 4 / 255, 20, seed=0))
    assert report.accuracy("pgd20_ce") == pytest.approx(direct, abs=1e-9)
    assert report.robust_accuracy <= report.accuracy("fgsm")
    steps = [p["steps"] for p in report.results["steps_curve"]]
    assert steps == [1, 2, 5, 10, 20, 50, 100]
    assert report.results["epsilon_curve"][-1]["accuracy"] <= 0.05


def test_honest_model_passes_and_masked_model_is_flagged():
    model = linear_model(num_classes=4, scale=2.0)
    x, y = _data(model)
    honest = kr.evaluate.robustness_report(model, (x, y), epsilon=16 / 255, attacks=WHITE_BOX,
                                           progress=False)
    masked = kr.evaluate.robustness_report(_masked(model), (x, y), epsilon=16 / 255,
                                           attacks=WHITE_BOX, progress=False)
    status = {c.name: c.status for c in honest.checks}
    assert status["cross-entropy and margin-loss attacks agree"] == "PASS"
    assert honest.passed, honest.summary()
    flagged = {c.name: c.status for c in masked.checks}
    assert flagged["cross-entropy and margin-loss attacks agree"] == "FAIL"
    assert not masked.passed
    # The masked model's CE accuracy is far above its CW accuracy, and the
    # summary says so instead of praising it.
    assert masked.accuracy("pgd20_ce") > masked.accuracy("pgd20_cw") + 0.2
    assert "FAIL cross-entropy and margin-loss attacks agree" in masked.summary()
    # The headline figure is the worst case, not the flattering CE number.
    assert masked.robust_accuracy == pytest.approx(
        min(masked.accuracy(k) for k in masked.results["attacks"]))


def test_outputs_are_written(tmp_path):
    model = linear_model(num_classes=4, scale=2.0)
    x, y = _data(model, n=40)
    report = kr.evaluate.robustness_report(model, (x, y), epsilon=16 / 255,
                                           attacks=["fgsm", "pgd7_ce", "curves"],
                                           output_dir=str(tmp_path), progress=False,
                                           surrogate=linear_model(num_classes=4, seed=9))
    for name in ("report.json", "report.md", "accuracy_vs_epsilon.png", "accuracy_vs_steps.png"):
        assert os.path.getsize(tmp_path / name) > 0
    payload = json.loads((tmp_path / "report.json").read_text())
    assert payload["clean"] == report.clean_accuracy and len(payload["checks"]) == 8
    assert "| FGSM |" in (tmp_path / "report.md").read_text()
    loaded = kr.evaluate.RobustnessReport.load(str(tmp_path))
    assert loaded.checks == report.checks and loaded.robust_accuracy == report.robust_accuracy
    assert loaded.to_dict() == payload
    (tmp_path / "other.json").write_text(json.dumps({"clean": 0.5}))
    with pytest.raises(ValueError, match="not a robustness report"):
        kr.evaluate.RobustnessReport.load(str(tmp_path / "other.json"))
    (tmp_path / "other.json").write_text(json.dumps([0.5]))
    with pytest.raises(ValueError, match="holds a list"):
        kr.evaluate.RobustnessReport.load(str(tmp_path / "other.json"))
    assert report.results["transfer"]["accuracy"] >= report.robust_accuracy


def test_checks_on_hand_made_results():
    results = {
        "attacks": {
            "fgsm": {"name": "FGSM", "accuracy": 0.30},
            "pgd20_ce": {"name": "PGD-20 (CE)", "accuracy": 0.40},
            "pgd20_cw": {"name": "PGD-20 (CW)", "accuracy": 0.20},
        },
        "autoattack": {"accuracy": 0.19, "apgd_only": 0.2, "square_alone": 0.5, "components": []},
        "transfer": {"accuracy": 0.7},
        "epsilon_curve": [{"epsilon": 0.25, "accuracy": 0.0, "steps": 20}],
        "steps_curve": [],
    }
    status = {c.name: c.status for c in checks.run_checks(results)}
    assert status["iterative attacks beat single-step ones"] == "FAIL"      # 40% > 30% + 2
    assert status["cross-entropy and margin-loss attacks agree"] == "FAIL"  # 40% > 20% + 5
    assert status["white-box attacks beat transfer attacks"] == "PASS"
    assert status["accuracy falls to ~0 at a large budget"] == "PASS"
    assert status["PGD and AutoAttack agree"] == "PASS"       # best PGD 20% vs 19%
    assert status["gradient-free attack does not beat gradient attacks"] == "PASS"


def test_evaluate_example_rechecks_a_saved_report(tmp_path):
    model = linear_model(num_classes=4, scale=2.0)
    x, y = _data(model, n=60)
    kr.evaluate.robustness_report(_masked(model), (x, y), epsilon=16 / 255,
                                  attacks=["pgd20_ce", "pgd20_cw"], output_dir=str(tmp_path),
                                  progress=False)
    path = tmp_path / "report.json"
    stale = json.loads(path.read_text())
    stale["checks"], stale["passed"] = [], True  # as judged by older, laxer checks
    path.write_text(json.dumps(stale))
    done = run_example("evaluate", f"--recheck={tmp_path}")
    assert "FAIL cross-entropy and margin-loss attacks agree" in done.stdout
    rewritten = json.loads(path.read_text())
    assert rewritten["passed"] is False and len(rewritten["checks"]) == 8
    assert rewritten["attacks"] == stale["attacks"]  # measurements untouched
    assert "**FAIL**" in (tmp_path / "report.md").read_text()
    both = run_example("evaluate", f"--recheck={tmp_path}", "--model=x.keras", check=False)
    assert both.returncode != 0 and "exactly one of --model" in both.stderr


def _ce_vs_margin(ce: float, cw: float, auto: float | None) -> str:
    results = {"attacks": {"pgd20_ce": {"name": "PGD-20 (CE)", "accuracy": ce},
                           "pgd20_cw": {"name": "PGD-20 (CW)", "accuracy": cw}}}
    if auto is not None:
        results["autoattack"] = {"accuracy": auto, "components": []}
    status = {c.name: c.status for c in checks.run_checks(results)}
    return status["cross-entropy and margin-loss attacks agree"]


@pytest.mark.parametrize("ce, cw, auto, expected", [
    (0.220, 0.192, 0.172, "FAIL"),  # label smoothing at 2/255: 4.8 points, 22% of the CE figure
    (0.281, 0.256, 0.236, "PASS"),  # PGD-AT at 8/255: 4.5 points, 16%
    (0.195, 0.161, 0.132, "FAIL"),  # BAT: 6.3 points, 32%
    (0.220, 0.172, None, "FAIL"),   # without the cascade, CW alone is the margin figure
    (0.030, 0.015, 0.012, "PASS"),  # 60% but 1.8 points: sampling noise at low accuracy
    (0.500, 0.460, 0.455, "PASS"),  # 4.5 points, 9%
])
def test_cross_entropy_against_the_best_margin_loss_figure(ce, cw, auto, expected):
    # The figures of the first three rows are the reports of docs/results/attacks.md.
    assert _ce_vs_margin(ce, cw, auto) == expected


@pytest.mark.parametrize("ce, margin, expected", [
    (0.30, 0.15, "FAIL"),  # 15 points > 8
    (0.30, 0.29, "PASS"),  # 1 point: noise
    (0.10, 0.07, "FAIL"),  # 3 points: > 2 and > 18% of 10% (1.8 points), though < 8
    (0.30, 0.26, "PASS"),  # 4 points: <= 8 and <= 18% of 30% (5.4 points)
    (0.20, 0.35, "PASS"),  # the margin-loss attack is the weaker one: nothing masked
])
def test_ce_margin_agreement_on_two_hand_made_figures(ce, margin, expected):
    check = kr.evaluate.ce_margin_agreement(ce, margin, "PGD-20 (CE)", "PGD-20 (CW)")
    assert check.status == expected and check.name == kr.evaluate.CE_MARGIN_CHECK
    assert check.values == {"PGD-20 (CE)": ce, "PGD-20 (CW)": margin}
    if expected == "FAIL":
        assert "report the margin-loss figure" in check.detail


def test_ce_margin_agreement_refuses_percentages():
    with pytest.raises(ValueError, match=r"ce_accuracy.*\[0.0, 1.0\]"):
        kr.evaluate.ce_margin_agreement(30.0, 15.0)
    with pytest.raises(TypeError, match="margin_accuracy"):
        kr.evaluate.ce_margin_agreement(0.3, "0.15")


def test_summary_names_the_worst_attack_and_warns_without_a_margin_loss_attack():
    ce_only = {"model": "m", "clean": 0.8, "epsilon": 8 / 255, "num_images": 10, "suite": "custom",
               "attacks": {"fgsm": {"accuracy": 0.5, "name": "FGSM"},
                           "pgd20_ce": {"accuracy": 0.4, "name": "PGD-20 (CE)"}}}
    report = kr.evaluate.RobustnessReport(ce_only, checks.run_checks(ce_only))
    assert report.worst_attack == "PGD-20 (CE)"
    assert "worst case 40.0% (PGD-20 (CE))" in report.summary()
    assert "WARNING: no margin-loss attack ran" in report.summary()
    both = {**ce_only, "autoattack": {"accuracy": 0.38, "components": []}}
    report = kr.evaluate.RobustnessReport(both, checks.run_checks(both))
    assert report.worst_attack == "AutoAttack"
    assert "WARNING" not in report.summary()
    assert report.to_dict()["worst_attack"] == report.worst_attack


def test_bad_arguments():
    model = linear_model(num_classes=4)
    x, y = _data(model, n=8)
    with pytest.raises(ValueError, match="pgd20_ce"):
        kr.evaluate.robustness_report(model, (x, y), attacks=["pgd999"], progress=False)
    with pytest.raises(ValueError, match="255"):
        kr.evaluate.robustness_report(model, (x * 255, y), attacks=["fgsm"], progress=False)
    with pytest.raises(ValueError):
        kr.evaluate.robustness_report(model, (x, y), epsilon=0.0, progress=False)
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        kr.evaluate.robustness_report(model, (x, y + 10), attacks=["fgsm"], progress=False)


def test_corruptions_in_the_report_with_a_baseline(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.random((40, 16, 16, 3), dtype=np.float32)
    model = linear_model(input_shape=(16, 16, 3), num_classes=4, scale=0.5)
    y = np.argmax(model.predict(x, verbose=0), -1)
    names = ["gaussian_noise", "fog"]
    baseline = kr.evaluate.robustness_report(
        linear_model(input_shape=(16, 16, 3), num_classes=4, scale=0.5, seed=5), (x, y),
        attacks=None, corruptions=names, severities=(1, 5), progress=False)
    report = kr.evaluate.robustness_report(
        model, (x, y), attacks=None, corruptions=names, severities=(1, 5), baseline=baseline,
        output_dir=str(tmp_path), progress=False)
    c = report.results["corruptions"]
    assert c["names"] == names and c["severities"] == [1, 5]
    for name in names:
        by_severity = c["accuracy"][name]
        assert set(by_severity) == {"1", "5"}
        mean = (by_severity["1"] + by_severity["5"]) / 2
        assert c["mean_accuracy_by_name"][name] == pytest.approx(mean)
        # eq. 7 of M-TLAT: R = A_corrupted / A_clean
        assert c["robustness_score"][name] == pytest.approx(mean / report.clean_accuracy)
        better = c["robustness_score"][name] > baseline.results["corruptions"]["robustness_score"][name]
        assert c["baseline"]["better"][name] == better
    assert c["mean_accuracy"] == pytest.approx(np.mean(list(c["mean_accuracy_by_name"].values())))
    assert os.path.getsize(tmp_path / "corruptions.png") > 0
    markdown = (tmp_path / "report.md").read_text()
    assert "## Corruptions" in markdown and "| gaussian_noise |" in markdown
    assert ("+ |" in markdown) or ("- |" in markdown)


def test_a_report_that_checked_nothing_does_not_claim_a_pass(tmp_path):
    # The report on one image printed "all passed (0 pass, 7 skipped)".
    model = linear_model(num_classes=4, scale=2.0)
    x, y = _data(model, n=1)
    report = kr.evaluate.robustness_report(model, (x, y), attacks=["fgsm"], progress=False,
                                           output_dir=str(tmp_path))
    assert [c.status for c in report.checks] == ["SKIPPED"] * 8  # check 8 included
    assert not any(c.passed for c in report.checks)
    assert report.passed is False and report.checks_status == "not checked"
    assert "gradient-masking checks: not checked (all 8 skipped" in report.summary()
    assert "passed" not in report.summary()
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["passed"] is False and saved["checks_status"] == "not checked"
    assert "Checks: not checked" in (tmp_path / "report.md").read_text()
    reloaded = kr.evaluate.RobustnessReport.load(str(tmp_path))
    assert reloaded.checks_status == "not checked"


@pytest.mark.parametrize("statuses,line", [
    (["PASS"] * 7, "all passed (7 pass, 0 skipped)"),
    (["PASS", "PASS"] + ["SKIPPED"] * 5, "passed, but only 2 of 7 checked (2 pass, 5 skipped)"),
    (["FAIL", "PASS"] + ["SKIPPED"] * 5, "1 FAILED, but only 2 of 7 checked (1 pass, 5 skipped)"),
    (["SKIPPED"] * 7, "not checked (all 7 skipped"),
])
def test_the_checks_line_says_how_many_checks_were_measured(statuses, line):
    made = [checks.Check(f"check {i}", s, "", {}) for i, s in enumerate(statuses)]
    report = kr.evaluate.RobustnessReport(
        {"model": "m", "clean": 0.9, "epsilon": 8 / 255, "num_images": 10, "suite": "custom",
         "seconds": 1.0}, made)
    assert line in report.summary()
    assert f"Checks: {line}" in report.to_markdown()
    assert report.passed == (statuses.count("PASS") > 0 and "FAIL" not in statuses)


# AutoAttack's standard version, from fra31/auto-attack `autoattack.py` (version="standard"):
# apgd.n_restarts = 1, apgd_targeted.n_target_classes = 9, fab.n_target_classes = 9,
# fab.n_restarts = 1, square.n_queries = 5000; n_iter = 100 for APGD, APGD-T and FAB-T.
_AUTOATTACK_STANDARD = [
    ("apgd", dict(steps=100, loss="ce", restarts=1, rule="reference")),
    ("apgd_targeted", dict(steps=100, num_targets=9, restarts=1, rule="reference")),
    ("fab", dict(targeted=True, num_targets=9, steps=100, restarts=1)),
    ("square", dict(queries=5000)),
]


def _recorded_cascade(monkeypatch, suite):
    """Runs each cascade spec with the attacks replaced by recorders: (function, kwargs)."""
    calls = []
    for function in ("apgd", "apgd_targeted", "fab", "square"):
        monkeypatch.setattr(kr.attacks, function,
                            lambda m, x, y, _f=function, **kw: calls.append((_f, kw)) or x)
    for spec in suite.cascade:
        spec.run(None, np.zeros((1, 8, 8, 1), np.float32), np.zeros(1, np.int32))
    return calls


@pytest.mark.parametrize("norm,epsilon", [("linf", 8 / 255), ("l2", 0.5)])
def test_the_standard_cascade_is_autoattacks_standard_version(monkeypatch, norm, epsilon):
    suite = kr.evaluate.suites.build_suite("standard", epsilon, norm=norm)
    calls = _recorded_cascade(monkeypatch, suite)
    expected = _AUTOATTACK_STANDARD
    assert [f for f, _ in calls] == [f for f, _ in expected]
    for (function, kwargs), (_, settings) in zip(calls, expected):
        assert {k: kwargs[k] for k in settings} == settings, function
        assert kwargs["epsilon"] == epsilon and kwargs.get("norm", "linf") == norm, function
    assert [s.key for s in suite.cascade] == ["apgd_ce", "apgd_t", "fab_t", "square"][:len(calls)]
    assert suite.settings.startswith("AutoAttack (standard version")
    # "quick" is cheaper: fewer steps, targets and queries, no FAB-T; fewer classes cap targets.
    quick = _recorded_cascade(monkeypatch, kr.evaluate.suites.build_suite("quick", epsilon, norm))
    assert "fab" not in [f for f, _ in quick]
    assert quick[1][1]["num_targets"] == 3 and quick[0][1]["steps"] == 50
    four = kr.evaluate.suites.build_suite("standard", epsilon, norm, num_classes=4)
    assert [kw.get("num_targets") for _, kw in _recorded_cascade(monkeypatch, four)][1:3] == [3, 3]


def _ten_class_mlp():
    """A small MLP trained on 10 Gaussian clusters of 8x8x1 images (about 95% clean)."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    centres = 0.3 + 0.4 * rng.random((10, 8, 8, 1), dtype=np.float32)
    y = rng.integers(0, 10, 600).astype(np.int32)
    x = np.clip(centres[y] + 0.08 * rng.normal(size=(600, 8, 8, 1)), 0, 1).astype(np.float32)
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(32, activation="relu"), keras.layers.Dense(10)])
    model.compile(keras.optimizers.Adam(1e-2),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x[:500], y[:500], epochs=10, batch_size=50, verbose=0)
    return model, x[500:], y[500:]


@pytest.mark.slow
def test_the_l2_cascade_breaks_every_image_l2_pgd100_breaks():
    model, x, y = _ten_class_mlp()
    eps = 0.5
    # The standard L2 cascade with 3 targets (as for a 4-class model), to keep it under a
    # minute: tracing 9 targets' loops dominates the cost on CPU.
    suite = kr.evaluate.suites.build_suite("standard", eps, norm="l2", num_classes=4)

    def predict(images):
        return np.argmax(model.predict(images, verbose=0), -1)

    correct = predict(x) == y
    assert correct.mean() > 0.8
    pgd100 = next(s for s in suite.attacks if s.key == "pgd100_ce")
    assert pgd100.name == "L2 PGD-100 (CE)"
    broken_by_pgd = correct & (predict(np.asarray(pgd100.run(model, x, y))) != y)
    robust = correct.copy()
    # As the report runs it, each on what is still robust; without Square, whose 5000
    # queries took most of this test's time: it can only break more, so the gradient
    # components alone must already reach everything PGD-100 breaks (a stricter test).
    for spec in [s for s in suite.cascade if s.key != "square"]:
        index = np.flatnonzero(robust)
        x_adv = np.asarray(spec.run(model, x[index], y[index]))
        assert_in_ball(x_adv, x[index], eps, "l2")  # within the L2 ball and [0, 1]
        robust[index] = predict(x_adv) == y[index]
    assert 0 < broken_by_pgd.sum() < correct.sum()  # the budget leaves something to find
    missed = np.flatnonzero(broken_by_pgd & robust)
    assert len(missed) == 0, f"images PGD-100 breaks and the L2 cascade misses: {missed}"


def test_an_l2_report_says_what_it_ran(tmp_path):
    model, x, y = _ten_class_mlp()
    report = kr.evaluate.robustness_report(
        model, (x[:40], y[:40]), epsilon=0.5, norm="l2", attacks=["fgsm", "pgd7_ce"],
        output_dir=str(tmp_path), progress=False)
    r = report.results
    assert r["norm"] == "l2" and r["attacks"]["pgd7_ce"]["name"] == "L2 PGD-7 (CE)"
    assert r["attacks"]["fgsm"]["name"] == "L2 FGSM"
    assert "eps 0.5 (L2)" in report.summary().splitlines()[0]
    assert "eps 0.5 (L2)" in (tmp_path / "report.md").read_text()
    # The cascade's name and settings reach summary(), report.md and report.json.
    settings = kr.evaluate.suites.build_suite("standard", 0.5, "l2").settings
    assert settings.startswith("AutoAttack (standard version, L2, eps 0.5): L2 APGD-CE (100), ")
    r["autoattack"] = {"name": "AutoAttack", "settings": settings, "accuracy": 0.1,
                       "apgd_only": 0.1, "square_alone": None, "components": []}
    with_auto = kr.evaluate.RobustnessReport(r, kr.evaluate.run_checks(r))
    with_auto.save(str(tmp_path))
    assert with_auto.worst_attack == "AutoAttack" and settings in with_auto.summary()
    markdown = (tmp_path / "report.md").read_text()
    assert "| **AutoAttack** | **10.0%** |" in markdown and settings in markdown
    assert "Square alone" not in markdown
    assert json.loads((tmp_path / "report.json").read_text())["autoattack"]["settings"] == settings
    # An L2 budget may exceed 1; an unknown norm is refused at the entry point.
    with pytest.raises(ValueError, match="'l2'"):
        kr.evaluate.robustness_report(model, (x[:4], y[:4]), norm="l1", attacks=["fgsm"],
                                      progress=False)
    with pytest.raises(ValueError, match="epsilon"):
        kr.evaluate.robustness_report(model, (x[:4], y[:4]), epsilon=2.0, attacks=["fgsm"],
                                      progress=False)
    wide = kr.evaluate.robustness_report(model, (x[:4], y[:4]), epsilon=2.0, norm="l2",
                                         attacks=["fgsm"], progress=False)
    assert wide.results["epsilon"] == 2.0


def test_the_cascade_attacks_only_what_is_still_robust_and_measures_square_alone():
    # Fake attacks on 10 images, image i marked by pixel (1, 0) = i / 10: each attack
    # "breaks" a fixed set of images by setting pixel (0, 0) to 1, which the model reads.
    from keras_robust.evaluate.report import _Progress, _Runner
    from keras_robust.evaluate.suites import AttackSpec

    def model(images):
        marker = tf.cast(tf.reshape(images[:, 0, 0, 0], [-1, 1]), tf.float32)
        return tf.concat([1.0 - marker, marker], axis=-1)

    seen = {}

    def attack(key, breaks):
        def run(_, x, y):
            ids = np.round(np.asarray(x)[:, 1, 0, 0] * 10).astype(int)
            seen.setdefault(key, []).append(sorted(ids))
            out = np.array(x)
            out[np.isin(ids, breaks), 0, 0, 0] = 1.0
            return out
        return run

    specs = [AttackSpec("apgd_ce", "A", attack("apgd_ce", [1, 2]), "apgd", "ce", 1),
             AttackSpec("apgd_t", "T", attack("apgd_t", [2, 3]), "apgd", "dlr", 1),
             AttackSpec("fab_t", "F", attack("fab_t", [4]), "fab", "margin", 1),
             AttackSpec("square", "S", attack("square", [1, 5, 6]), "square", "margin", 1)]
    x = np.zeros((10, 4, 4, 1), np.float32)
    x[:, 1, 0, 0] = np.arange(10) / 10
    y = np.zeros(10, np.int32)
    correct = np.arange(10) != 9  # image 9 is a clean error
    result = _Runner(model, x, y, correct, 4, _Progress(False, "m")).cascade(specs)
    assert seen["apgd_ce"] == [[0, 1, 2, 3], [4, 5, 6, 7], [8]]  # batches of 4 of the 9
    assert sum(seen["apgd_t"], []) == [0, 3, 4, 5, 6, 7, 8]
    assert sum(seen["fab_t"], []) == [0, 4, 5, 6, 7, 8]
    # Square first on what the gradient stages left, then on what they broke.
    assert seen["square"] == [[0, 5, 6, 7], [8], [1, 2, 3, 4]]
    assert [c["accuracy"] for c in result["components"]] == [0.7, 0.6, 0.5, 0.3]
    assert result["accuracy"] == 0.3 and result["name"] == "AutoAttack"  # images 0, 7 and 8
    assert result["apgd_only"] == 0.6 and result["square_alone"] == 0.6  # 9 correct, 3 broken


# Figures one can cite, paired masking verdicts.

def _wilson_numpy(k: int, n: int, z: float) -> tuple[float, float]:
    """The closed form (Wilson 1927), written out independently of the library."""
    p = k / n
    center = (p + z ** 2 / (2 * n)) / (1 + z ** 2 / n)
    half = z * np.sqrt(p * (1 - p) / n + z ** 2 / (4 * n ** 2)) / (1 + z ** 2 / n)
    return center - half, center + half


@pytest.mark.parametrize("k, n", [(0, 10), (10, 10), (31, 100), (257, 1000), (4704, 10000),
                                  (1, 3)])
def test_wilson_interval_against_the_closed_form_and_scipy(k, n):
    scipy_stats = pytest.importorskip("scipy.stats")
    low, high = kr.evaluate.wilson_interval(k, n)
    reference = scipy_stats.binomtest(k, n).proportion_ci(method="wilson")
    assert (low, high) == pytest.approx((reference.low, reference.high), abs=1e-12)
    assert (low, high) == pytest.approx(_wilson_numpy(k, n, 1.959963984540054), abs=1e-12)
    ninety = kr.evaluate.wilson_interval(k, n, confidence=0.90)
    assert ninety == pytest.approx(_wilson_numpy(k, n, 1.6448536269514722), abs=1e-12)


def test_wilson_interval_published_value_and_bad_input():
    # Newcombe (1998), Statistics in Medicine 17:857, Table I, 81/263: 0.2553 to 0.3662.
    assert kr.evaluate.wilson_interval(81, 263) == pytest.approx((0.2553, 0.3662), abs=5e-5)
    with pytest.raises(ValueError, match=r"`successes` \(5\) must be <= `n` \(3\)"):
        kr.evaluate.wilson_interval(5, 3)
    with pytest.raises(ValueError, match=r"confidence"):
        kr.evaluate.wilson_interval(3, 10, confidence=95)
    with pytest.raises(TypeError, match="whole count"):
        kr.evaluate.wilson_interval(0.31, 100)


@pytest.mark.parametrize("b, c", [(0, 0), (10, 0), (3, 3), (60, 7), (7, 60), (1, 9), (400, 350)])
def test_mcnemar_p_value_is_the_exact_binomial_test(b, c):
    scipy_stats = pytest.importorskip("scipy.stats")
    expected = 1.0 if b + c == 0 else scipy_stats.binomtest(b, b + c, 0.5).pvalue
    assert kr.evaluate.mcnemar_p_value(b, c) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("ce, margin, expected", [
    (0.310, 0.257, "PASS"),    # PGD-AT, PGD-100 CE vs AutoAttack-style: 5.3 points, 17%
    (0.4704, 0.4429, "PASS"),  # AutoAttack leaderboard, Madry et al.: 6%
    (0.281, 0.236, "PASS"),    # PGD-AT, quick report: 16%
    (0.127, 0.109, "PASS"),    # BPFC: 14%
    (0.224, 0.155, "FAIL"),    # BAT R-MC-LA, PGD-20 CE vs APGD-T: 31%
    (0.227, 0.169, "FAIL"),    # BAT R-MC-LA two steps, BN 0.9: 26%
    (0.234, 0.148, "FAIL"),    # BAT R-MC-LS: 37%
    (0.220, 0.172, "FAIL"),    # label smoothing 0.5 at 2/255: 22%
    (0.220, 0.178, "FAIL"),    # label smoothing, the low end of the measured 19-24%
])
def test_ce_margin_check_on_the_measured_figure_pairs(ce, margin, expected):
    assert kr.evaluate.ce_margin_agreement(ce, margin).status == expected
    # On 1000 images a real gap of this size is never noise: paired counts with
    # b - c = the gap and a handful of reverse cases keep the verdict.
    c = 5
    b = round(1000 * (ce - margin)) + c
    paired = kr.evaluate.ce_margin_agreement(ce, margin, b=b, c=c)
    assert paired.status == expected and paired.values["p_value"] < checks.ALPHA


def test_ce_margin_check_on_hand_made_paired_cases():
    # Sound: 1.5 points on 1000 images, b close to c.
    sound = kr.evaluate.ce_margin_agreement(0.310, 0.295, "PGD-20 (CE)", "APGD-T", b=22, c=7)
    assert sound.status == "PASS" and "b=22, c=7" in sound.detail
    # Masked: 20 points, b >> c.
    masked = kr.evaluate.ce_margin_agreement(0.40, 0.20, "PGD-20 (CE)", "APGD-T", b=210, c=10)
    assert masked.status == "FAIL"
    assert "PGD-20 (CE) leaves 210 images that APGD-T breaks" in masked.detail
    assert "overstates robustness by 20.0 points" in masked.detail
    assert masked.values["b"] == 210 and masked.values["c"] == 10
    # Over the margin but on 50 images: b=2, c=0 (p=0.5) is noise, said so; unpaired it FAILs.
    noisy = kr.evaluate.ce_margin_agreement(0.10, 0.06, b=2, c=0)
    assert noisy.status == "PASS" and "not significantly" in noisy.detail
    assert kr.evaluate.ce_margin_agreement(0.10, 0.06).status == "FAIL"
    with pytest.raises(ValueError, match="both paired counts"):
        kr.evaluate.ce_margin_agreement(0.3, 0.2, b=3)


def test_report_keeps_per_image_masks_pairs_checks_and_cites_counts(tmp_path):
    scipy_stats = pytest.importorskip("scipy.stats")
    model = linear_model(num_classes=4, scale=2.0)
    x, y = _data(model, n=40)
    report = kr.evaluate.robustness_report(_masked(model), (x, y), epsilon=16 / 255,
                                           attacks=["fgsm", "pgd7_ce", "pgd7_cw"],
                                           output_dir=str(tmp_path), progress=False)
    clean = np.argmax(model.predict(x, verbose=0), -1) == y
    masks = {k: checks.decode_mask(a["robust_mask"]) for k, a in report.results["attacks"].items()}
    for key, mask in masks.items():
        assert len(mask) == 40 and not np.any(mask & ~clean)
        assert mask.mean() == pytest.approx(report.accuracy(key))
    check = next(c for c in report.checks if c.name == kr.evaluate.CE_MARGIN_CHECK)
    b = int(np.sum(masks["pgd7_ce"] & ~masks["pgd7_cw"]))
    c = int(np.sum(masks["pgd7_cw"] & ~masks["pgd7_ce"]))
    assert (check.values["b"], check.values["c"]) == (b, c) and b > c
    assert check.values["p_value"] == pytest.approx(scipy_stats.binomtest(b, b + c).pvalue)
    assert check.status == "FAIL"
    first = report.checks[0]
    assert "b" in first.values and "paired" in first.detail
    saved = json.loads((tmp_path / "report.json").read_text())
    k = int(round(40 * report.accuracy("pgd7_cw")))
    assert saved["attacks"]["pgd7_cw"]["count"] == k
    assert saved["attacks"]["pgd7_cw"]["ci95"] == pytest.approx(
        list(scipy_stats.binomtest(k, 40).proportion_ci(method="wilson")))
    assert saved["clean_count"] == int(clean.sum())
    assert f"| {k}/40 |" in (tmp_path / "report.md").read_text()
    assert f"({int(clean.sum())}/40, 95% CI" in report.summary()


def test_a_report_without_masks_is_rechecked_unpaired(tmp_path):
    model = linear_model(num_classes=4, scale=2.0)
    x, y = _data(model, n=40)
    kr.evaluate.robustness_report(_masked(model), (x, y), epsilon=16 / 255,
                                  attacks=["fgsm", "pgd7_ce", "pgd7_cw"],
                                  output_dir=str(tmp_path), progress=False)
    path = tmp_path / "report.json"
    old = json.loads(path.read_text())
    for entry in old["attacks"].values():  # as written before reports held counts
        for key in ("robust_mask", "count", "ci95"):
            entry.pop(key)
    for key in ("checks", "clean_count", "clean_ci95"):
        old.pop(key)
    path.write_text(json.dumps(old))
    report = kr.evaluate.RobustnessReport.load(str(tmp_path))
    check = next(c for c in report.checks if c.name == kr.evaluate.CE_MARGIN_CHECK)
    assert check.status == "FAIL" and "unpaired" in check.detail and "b" not in check.values
    report.save(str(tmp_path))  # what examples/evaluate.py --recheck does
    assert "unpaired" in (tmp_path / "report.md").read_text()


def test_budget_ticks_are_labelled_in_255ths(tmp_path):
    assert [kr.evaluate.plots.budget_label(e / 255) for e in (1, 2, 8, 0.5, 64)] == [
        "1/255", "2/255", "8/255", "0.5/255", "64/255"]
    with pytest.raises(ValueError, match="one label per x"):
        kr.evaluate.plots.line_plot(str(tmp_path / "p.png"), [1, 2], [0.5, 0.4], "eps", "t",
                                    xtick_labels=["1/255"])


class _NoisyLogits(keras.layers.Layer):
    """Random inference: Gaussian noise on the logits at every call, training or not."""

    def call(self, logits):
        return logits + tf.random.normal(tf.shape(logits), stddev=0.5)


def test_the_report_flags_random_inference_and_passes_it_under_the_rand_suite():
    model = linear_model(num_classes=4, scale=2.0)
    x, y = _data(model, n=40)
    inputs = keras.Input(model.input_shape[1:])
    noisy = keras.Model(inputs, _NoisyLogits()(model(inputs)), name="noisy")

    def verdict(m, attacks):
        report = kr.evaluate.robustness_report(m, (x, y), epsilon=8 / 255, attacks=attacks,
                                               batch_size=16, progress=False)
        check = {c.name: c for c in report.checks}[checks.RANDOM_INFERENCE_CHECK]
        return check, report

    sound, report = verdict(model, ["fgsm", "pgd7_ce"])  # check 1 measured too
    assert sound.status == "PASS" and sound.values["max_difference"] == 0.0
    assert sound.values["images"] == 16  # the first batch, passed twice
    random, report = verdict(noisy, ["fgsm", "pgd7_ce"])
    assert random.status == "FAIL" and random.values["max_difference"] > 0.1
    assert 'attacks="rand"' in random.detail and not report.passed
    # Alone (no masking check measured) a PASS does not make the report look checked.
    alone, _ = verdict(model, ["fgsm"])
    assert alone.status == "SKIPPED" and "nothing it qualifies" in alone.detail
    # Old reports (no "inference" entry) are rechecked with the check skipped.
    old = {k: v for k, v in report.results.items() if k != "inference"}
    assert checks.run_checks(old)[-1].status == "SKIPPED"
    # The "rand" suite (EOT) is how a random model should be evaluated: the check passes.
    assert checks.inference_check(random.values, "rand").status == "PASS"


def test_the_report_turns_every_accuracy_back_into_its_exact_image_count():
    """An accuracy k / n measured as the mean of n robust flags is a float that can
    fall just below k / n (29 / 100 -> 0.29 * 100 = 28.999...); the report must cite
    k images and the interval of k for every k at realistic sizes, in the saved
    counts, in their intervals and in the summary line."""
    for n in (100, 1000, 10000):
        keys = {k: f"a{k}" for k in range(n + 1)}
        results = {"model": "m", "clean": 1.0, "epsilon": 8 / 255, "num_images": n,
                   "suite": "custom",
                   "attacks": {key: {"accuracy": float(np.mean(np.arange(n) < k)), "name": key}
                               for k, key in keys.items()}}
        attacks = kr.evaluate.RobustnessReport(results, []).to_dict()["attacks"]
        counts = np.array([attacks[key]["count"] for key in keys.values()])
        np.testing.assert_array_equal(counts, np.arange(n + 1), err_msg=f"n = {n}")
        for k in (1, 29, 57, n // 3, n - 1):
            expected = _wilson_numpy(k, n, 1.959963984540054)
            assert attacks[keys[k]]["ci95"] == pytest.approx(expected, abs=1e-12), (k, n)
    results = {"model": "m", "clean": 1.0, "epsilon": 8 / 255, "num_images": 100,
               "suite": "custom",
               "attacks": {"pgd20_cw": {"accuracy": float(np.mean(np.arange(100) < 29)),
                                        "name": "PGD-20 (CW)"}}}
    low, high = _wilson_numpy(29, 100, 1.959963984540054)
    cited = f"(29/100, 95% CI {100 * low:.1f}-{100 * high:.1f}%)"
    assert cited in kr.evaluate.RobustnessReport(results, []).summary()


def _summary_case():
    """A random 4-class MLP (nonlinear, so the random starts matter) and 120 images."""
    keras.utils.set_random_seed(0)
    model = mlp(num_classes=4, width=16)
    return (model,) + _data(model)


def test_the_summary_suite_gives_the_figures_of_direct_calls_of_its_documented_attacks():
    """attacks="summary" is FGSM, PGD-10/20 (CE, step eps/4, seed 0), PGD-20 (CW) and APGD-T
    (DLR, 3 targets x 20, seed 0), each on every image in one batch as a direct call is."""
    model, x, y = _summary_case()
    eps = 3 / 255
    report = kr.evaluate.robustness_report(model, (x, y), epsilon=eps, attacks="summary",
                                           progress=False)
    direct = {
        "fgsm": kr.attacks.fgsm(model, x, y, eps),
        "pgd10": kr.attacks.pgd(model, x, y, eps, eps / 4, 10, seed=0),
        "pgd20": kr.attacks.pgd(model, x, y, eps, eps / 4, 20, seed=0),
        "cw20": kr.attacks.pgd(model, x, y, eps, eps / 4, 20, loss="cw", seed=0),
        "apgd_t": kr.attacks.apgd_targeted(model, x, y, eps, steps=20, num_targets=3, seed=0),
    }
    correct = np.argmax(model.predict(x, verbose=0), -1) == y
    masks = {k: correct & (np.argmax(model.predict(np.asarray(v), verbose=0), -1) == y)
             for k, v in direct.items()}
    entries = report.results["attacks"]
    assert list(entries) == list(direct)
    for key, mask in masks.items():
        np.testing.assert_array_equal(checks.decode_mask(entries[key]["robust_mask"]), mask,
                                      err_msg=key)
        assert report.accuracy(key) == mask.mean(), key
    assert len({report.accuracy(k) for k in direct}) > 2  # the figures tell attacks apart
    # No cascade and no curves; the worst case and check 5 (the strongest CE-PGD against the
    # strongest margin-loss attack, paired) are the summary's.
    assert report.results["autoattack"] is None and report.results["epsilon_curve"] == []
    worst = min(direct, key=lambda k: masks[k].mean())
    assert report.worst_case == {"attack": worst, "name": entries[worst]["name"],
                                 "accuracy": masks[worst].mean()}
    assert report.robust_to_all == np.logical_and.reduce(list(masks.values())).mean()
    ce = min(("pgd10", "pgd20"), key=lambda k: masks[k].mean())
    margin = min(("cw20", "apgd_t"), key=lambda k: masks[k].mean())
    expected = kr.evaluate.ce_margin_agreement(
        masks[ce].mean(), masks[margin].mean(), entries[ce]["name"], entries[margin]["name"],
        b=int((masks[ce] & ~masks[margin]).sum()), c=int((~masks[ce] & masks[margin]).sum()))
    found = {c.name: c for c in report.checks}[kr.evaluate.CE_MARGIN_CHECK]
    assert found == expected
    assert report.summary().splitlines()[0].startswith(
        f"{model.name}: clean {100 * correct.mean():.1f}%, worst case "
        f"{100 * masks[worst].mean():.1f}% ({entries[worst]['name']})")


def test_the_report_defaults_to_the_norms_budget():
    model = linear_model(num_classes=4, scale=2.0)
    x, y = _data(model, n=8)
    for norm, eps in (("linf", 8 / 255), ("l2", 0.5)):
        report = kr.evaluate.robustness_report(model, (x, y), norm=norm, attacks=["fgsm"],
                                               progress=False)
        assert report.results["epsilon"] == eps, norm


FIXTURES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "fixtures")


def test_a_report_json_written_before_attack_specs_were_stored_loads_as_it_was_judged():
    """tests/fixtures/report_without_specs.json: a report saved by the version whose entries
    held family, loss and steps but neither restarts nor config (the restarts were in the
    key, "pgd20_ce_r5"). It loads, its specs are read from the fields and keys, and the
    checks judge it as they did when it was saved."""
    path = os.path.join(FIXTURES, "report_without_specs.json")
    with open(path) as f:
        saved = json.load(f)
    assert all("restarts" not in e and "config" not in e for e in saved["attacks"].values())
    report = kr.evaluate.RobustnessReport.load(path)
    assert [c.to_dict() for c in report.checks] == saved["checks"]
    specs = report.specs
    assert (specs["pgd20_ce_r5"].family, specs["pgd20_ce_r5"].restarts) == ("pgd", 5)
    assert (specs["fgsm"].family, specs["pgd7_ce"].steps, specs["pgd20_cw"].loss) == (
        "single_step", 7, "cw")
    with pytest.raises(ValueError, match="names no public attack to rerun"):
        specs["pgd7_ce"].run(None, None, None)


def test_report_json_entries_carry_their_spec_and_the_checks_read_it_not_the_key(tmp_path):
    model = linear_model(num_classes=4, scale=2.0)
    x, y = _data(model, n=24)
    report = kr.evaluate.robustness_report(
        _masked(model), (x, y), epsilon=16 / 255, attacks=["fgsm", "pgd7_ce", "pgd20_cw",
                                                           "pgd20_ce_r5"],
        output_dir=str(tmp_path), progress=False)
    saved = json.loads((tmp_path / "report.json").read_text())
    suite = {s.key: s for s in kr.evaluate.build_suite("standard", 16 / 255).attacks}
    for key, entry in saved["attacks"].items():
        expected = suite[key].get_config()
        assert {k: entry[k] for k in expected if k != "key"} == {
            k: v for k, v in expected.items() if k != "key"}, key
    restarted = saved["attacks"]["pgd20_ce_r5"]
    assert restarted["restarts"] == 5 and restarted["config"]["restarts"] == 5
    assert restarted["attack"] == "pgd" and restarted["settings"] == {"epsilon": None, "seed": 0}
    # Loading rebuilds each spec: the same settings, and a run that gives the same images.
    loaded = kr.evaluate.RobustnessReport.load(str(tmp_path))
    rebuilt = loaded.specs["pgd20_ce_r5"]
    assert rebuilt.config == suite["pgd20_ce_r5"].config
    np.testing.assert_array_equal(rebuilt.run(model, x[:4], y[:4]),
                                  suite["pgd20_ce_r5"].run(model, x[:4], y[:4]))
    # Under keys that say nothing, the stored specs still tell the checks what each attack is:
    # read as a key-only entry, "attack_3" (PGD-20 x5) would count as one restart and make a
    # steps pair with PGD-7, where there is none (no PGD-20 with one restart ran).
    renamed = dict(saved, attacks={f"attack_{i}": entry
                                   for i, entry in enumerate(saved["attacks"].values())})
    assert kr.evaluate.RobustnessReport(renamed, []).specs["attack_3"].restarts == 5
    statuses = [c.to_dict() for c in report.checks]
    renamed_checks = [c.to_dict() for c in checks.run_checks(renamed)]
    assert [c["status"] for c in renamed_checks] == [c["status"] for c in statuses]
    assert [c["detail"] for c in renamed_checks] == [c["detail"] for c in statuses]
    assert statuses[3]["status"] == "SKIPPED" and statuses[4]["status"] != "SKIPPED"


@pytest.mark.parametrize("name", kr.evaluate.SUITES)
def test_every_suite_spec_round_trips_through_json(name):
    suite = kr.evaluate.build_suite(name, 0.5, "l2")
    for spec in suite.attacks + suite.cascade + (kr.evaluate.suites.transfer_spec(0.5, "l2"),):
        data = json.loads(json.dumps(spec.get_config()))
        rebuilt = kr.evaluate.AttackSpec.from_config(data)
        assert rebuilt.get_config() == spec.get_config(), spec.key
        assert (rebuilt.config, rebuilt.settings, rebuilt.restarts) == (
            spec.config, spec.settings, spec.restarts), spec.key
        if spec.config is None:
            assert data["config"] == spec.settings and "settings" not in data
