"""examples/cifar10_datacentric.py end to end on a tiny JPEG archive."""
from __future__ import annotations

import glob
import json
import os

import keras
import numpy as np
import pytest
import tensorflow_datasets as tfds

import keras_robust  # noqa: F401  (registers the backbones' layers for load_model)
from keras_robust import datacentric as dc
from tests.helpers import jpeg_npz, run_example


def _run(data, output_dir, ratio, *flags):
    done = run_example(
        "cifar10_datacentric", f"--data={data}", f"--output_dir={output_dir}", "--subset=40",
        "--test_size=20", "--test_surrogate_offset=40", f"--ratio={ratio}", "--iterations=2",
        "--surrogate_epochs=1", "--epochs=1", "--batch_size=16", "--attack_batch_size=20",
        "--shard_size=16", "--pgd_steps=2", "--enhance_surrogates=resnet,mobilenet",
        "--test_surrogates=vgg", *flags)
    return done.stdout + done.stderr


@pytest.mark.slow
def test_the_example_scores_both_models_and_keeps_runs_of_several_ratios_apart(tmp_path):
    data = jpeg_npz(str(tmp_path / "cifar.npz"), n_train=80, n_test=20)
    out = str(tmp_path / "run")
    first = _run(data, out, "0,1,4", "--tfds")
    # --tfds: the enhanced set as a TFDS data set, the same images and parts as dc.load's.
    assert "TFDS copy: wrote" in first
    builder = tfds.builder_from_directory(os.path.join(out, "tfds", "enhanced_it2_r0_1_4", "1.0.0"))
    theirs = list(builder.as_dataset(split="train").as_numpy_iterator())
    ours = list(dc.load(os.path.join(out, "enhanced_it2_r0-1-4"), batch_size=None,
                        with_part=True).as_numpy_iterator())
    assert len(theirs) == len(ours) == 40
    for example, (image, label, part) in zip(theirs, ours):
        np.testing.assert_array_equal(example["image"], np.round(image * 255))
        assert (example["label"], example["part"]) == (label, part)
    second = _run(data, out, "1,1,3")
    # The second ratio reuses the surrogates and test sets, enhances its own folder.
    assert "already trained" in second and "test sets: loaded" in second
    # Another enhancement attack gets its own folder; the test sets (eq. 6) stay.
    third = _run(data, out, "0,1,4", "--enhance_loss=ce", "--enhance_smoothing_kernel=0")
    assert "test sets: loaded" in third
    assert sorted(os.path.basename(p) for p in glob.glob(os.path.join(out, "enhanced_*"))) == [
        "enhanced_it2_r0-1-4", "enhanced_it2_r0-1-4_ce_ti0", "enhanced_it2_r1-1-3"]
    with open(os.path.join(out, "enhanced_it2_r0-1-4_ce_ti0", "plan.json")) as f:
        plan = json.load(f)["attack"]
    # The attack is stored per ball (an Eq6Config: its L-inf and L2 AttackConfigs).
    assert {(ball["loss"], ball["smoothing_kernel"]) for ball in plan.values()} == {("ce", 0)}
    (path,) = glob.glob(os.path.join(out, "results_it2_r0-1-4_ce_ti0_*.json"))
    with open(path) as f:
        settings = json.load(f)["settings"]
    assert settings["enhance_attack"]["linf"]["loss"] == "ce" and settings["smoothing_kernel"] == 5
    with np.load(os.path.join(out, "test_sets_it2_n20.npz")) as archive:
        sets = dict(archive)
    for ratio, parts in (("0-1-4", {"clean": 0, "adversarial": 8, "corrupted": 32}),
                         ("1-1-3", {"clean": 8, "adversarial": 8, "corrupted": 24})):
        (path,) = glob.glob(os.path.join(out, f"results_it2_r{ratio}_small_cnn_*.json"))
        with open(path) as f:
            results = json.load(f)
        model_tag = os.path.basename(path)[len(f"results_it2_r{ratio}_"):-len(".json")]
        models = {"original": f"model_original_{model_tag}.keras",
                  "enhanced": f"model_enhanced_it2_r{ratio}_{model_tag}.keras"}
        for model, filename in models.items():
            # eq. 7, recomputed from the saved model and the saved test sets with a plain
            # argmax, not from the values the example reports.
            backbone = keras.saving.load_model(os.path.join(out, filename))
            accuracies = {}
            for name in ("clean", "adversarial", "corrupted"):
                x, y = sets[f"{name}_x"], sets[f"{name}_y"]
                predicted = np.argmax(backbone.predict(x.astype(np.float32) / 255, verbose=0), -1)
                accuracies[name] = float(np.mean(predicted == y))
            accuracies["R"] = sum(accuracies.values()) / 3
            row = results["table"][model]
            assert {k: row[k] for k in accuracies} == pytest.approx(accuracies, abs=1e-9)
        with open(os.path.join(out, f"enhanced_it2_r{ratio}", "metadata.json")) as f:
            assert json.load(f)["counts"] == parts  # 40 images in, 40 out, split by the ratio
