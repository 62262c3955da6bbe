"""Training-recipe options: the training attack's BatchNorm mode, BatchNorm
momentum, coupled weight decay, and the train example that exposes them
(`--kernel_l2` the coupled penalty, `--weight_decay` the decoupled one,
budgets on the [0, 1] scale)."""
from __future__ import annotations

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_robust as kr
from keras_robust.defenses.base import frozen_batchnorm
from tests.helpers import jpeg_npz, run_example, tiny_cnn


def _batchnorms(model):
    return kr.backbones.batchnorm_layers(model)


def _moving(model):
    return [np.concatenate([layer.moving_mean.numpy(), layer.moving_variance.numpy()])
            for layer in _batchnorms(model)]


def _warmed_backbone():
    """A tiny CNN whose moving statistics differ from the batch's."""
    backbone = tiny_cnn(input_shape=(8, 8, 1), num_classes=3)
    for layer in _batchnorms(backbone):
        layer.moving_mean.assign(tf.fill(layer.moving_mean.shape, 0.3))
        layer.moving_variance.assign(tf.fill(layer.moving_variance.shape, 4.0))
    return backbone


def test_batch_mode_attack_normalises_with_the_batch_and_leaves_moving_statistics():
    backbone = _warmed_backbone()
    model = kr.PGDATModel(backbone, epsilon=0.1, step_size=0.05, steps=2,
                          attack_batchnorm="batch", seed=0)
    x = tf.random.stateless_uniform((16, 8, 8, 1), seed=[1, 2])
    before = _moving(backbone)
    logits = tf.function(model.attack_logits)(x)
    for old, new in zip(before, _moving(backbone)):
        np.testing.assert_array_equal(old, new)
    # Batch statistics by hand: (conv(x) - mean) / sqrt(var + eps) * gamma + beta.
    conv, bn = backbone.layers[1], backbone.layers[2]
    h = conv(x)
    mean, var = tf.nn.moments(h, axes=[0, 1, 2])
    h = (h - mean) / tf.sqrt(var + bn.epsilon) * bn.gamma + bn.beta
    by_hand = backbone.layers[-1](backbone.layers[-2](tf.nn.relu(h)))
    np.testing.assert_allclose(logits, by_hand, atol=1e-4)
    inference = backbone(x, training=False)
    assert np.abs(logits - inference).max() > 1e-2  # the moving statistics differ
    assert {layer.momentum for layer in _batchnorms(backbone)} == {0.99}  # restored


def test_moving_mode_attack_is_the_inference_backbone():
    backbone = _warmed_backbone()
    model = kr.PGDATModel(backbone, steps=1, seed=0)
    x = tf.random.stateless_uniform((4, 8, 8, 1), seed=[3, 4])
    np.testing.assert_allclose(model.attack_logits(x), backbone(x, training=False), atol=1e-6)


def test_batch_mode_fit_updates_moving_statistics_only_from_the_training_pass():
    """With the attack frozen, one step moves the statistics exactly as one
    training-mode pass on the adversarial batch does."""
    x = np.random.default_rng(0).random((16, 8, 8, 1), dtype=np.float32)
    y = np.arange(16) % 3
    model = kr.PGDATModel(_warmed_backbone(), epsilon=0.1, step_size=0.05, steps=2,
                          random_start=False, attack_batchnorm="batch", seed=0)
    model.compile(optimizer=keras.optimizers.SGD(0.0), metrics=["accuracy"])
    x_adv = tf.function(model.adversarial_examples)(
        tf.constant(x), tf.one_hot(y, 3)).x_adv  # the step's attack (no random start)
    reference = _warmed_backbone()
    reference.set_weights(model.backbone.get_weights())
    reference(x_adv, training=True)
    model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    for expected, got in zip(_moving(reference), _moving(model.backbone)):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_attack_batchnorm_is_checked_and_saved(tmp_path):
    with pytest.raises(ValueError, match="attack_batchnorm"):
        kr.PGDATModel(tiny_cnn(), attack_batchnorm="train")
    model = kr.BATModel(tiny_cnn(), attack_batchnorm="batch", seed=0)
    assert kr.BATModel.from_config(model.get_config()).attack_batchnorm == "batch"
    model.compile(optimizer="sgd")
    model.fit(np.random.rand(8, 8, 8, 1).astype("float32"), np.arange(8) % 2, verbose=0)
    model.save(tmp_path / "bat.keras")
    assert keras.saving.load_model(tmp_path / "bat.keras").attack_batchnorm == "batch"


def test_frozen_batchnorm_restores_momentum_after_an_error():
    backbone = tiny_cnn()
    with pytest.raises(RuntimeError):
        with frozen_batchnorm(backbone):
            assert {layer.momentum for layer in _batchnorms(backbone)} == {1.0}
            raise RuntimeError("boom")
    assert {layer.momentum for layer in _batchnorms(backbone)} == {0.99}


def test_set_batchnorm_momentum_applies_everywhere_and_survives_saving(tmp_path):
    backbone = kr.backbones.set_batchnorm_momentum(kr.backbones.small_cnn(num_classes=10), 0.9)
    assert {layer.momentum for layer in _batchnorms(backbone)} == {0.9}
    assert len(_batchnorms(backbone)) == 6
    backbone.save(tmp_path / "cnn.keras")
    loaded = keras.saving.load_model(tmp_path / "cnn.keras")
    assert {layer.momentum for layer in _batchnorms(loaded)} == {0.9}
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        kr.backbones.set_batchnorm_momentum(backbone, 1.0)
    inputs = keras.Input((4,))
    with pytest.raises(ValueError, match="no BatchNormalization"):
        kr.backbones.set_batchnorm_momentum(keras.Model(inputs, keras.layers.Dense(2)(inputs)), 0.9)


def test_coupled_weight_decay_adds_kernel_l2_to_the_loss():
    """`weight_decay` on a backbone is L2(wd) on every kernel: with kernel_l2 = 2 * wd
    the gradient of the penalty is kernel_l2 * w, as PyTorch's SGD weight decay."""
    backbone = kr.backbones.small_cnn(num_classes=10, weight_decay=2.5e-4)
    kernels = [layer.kernel for layer in backbone.layers if hasattr(layer, "kernel")]
    penalty = float(tf.add_n(backbone.losses))
    by_hand = sum(2.5e-4 * float(tf.reduce_sum(tf.square(k))) for k in kernels)
    assert len(kernels) == 7
    np.testing.assert_allclose(penalty, by_hand, rtol=1e-5)


@pytest.mark.slow
def test_train_example_runs_with_the_recipe_flags(tmp_path):
    data = jpeg_npz(str(tmp_path / "copy.npz"), n_train=64, n_test=16)
    extra = tmp_path / "generated.npz"
    rng = np.random.default_rng(0)
    np.savez(extra, image=rng.integers(0, 256, (40, 32, 32, 3), dtype=np.uint8),
             label=rng.integers(0, 10, 40))
    out = tmp_path / "run"
    run_example("train", f"--data={data}", "--defense=pgd_at", "--steps=1", "--epochs=1",
                "--batch_size=32", "--eval_limit=16", "--report=fgsm", "--epsilon=4/255",
                "--step_size=4/255", "--attack_batchnorm=batch", "--bn_momentum=0.9",
                "--kernel_l2=5e-4", "--weight_decay=0", "--activation=swish",
                f"--extra_data={extra}", "--extra_fraction=0.75", "--extra_label_smoothing=0.1",
                "--awp_gamma=0.005", "--awp_warmup=1", f"--output_dir={out}", timeout=600)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["defense_config"]["weight_perturbation"] == {"gamma": 0.005, "warmup_epochs": 1}
    assert summary["history"]["awp_gamma"] == [0.0]  # the warm-up epoch: no perturbation yet
    # 64 real images, 8 real rows per batch of 32 (24 extra): 8 steps, not the 2 of 64 / 32
    assert summary["steps_per_epoch"] == 8
    assert summary["defense_config"]["attack_batchnorm"] == "batch"
    assert summary["defense_config"]["attack"]["epsilon"] == 4 / 255  # [0, 1] scale, from "4/255"
    assert set(summary["attacks"]) == {"fgsm"} and summary["clean"] >= summary["robust"]
    assert summary["worst_case"]["attack"] == "fgsm"
    assert summary["flags"]["weight_decay"] == 0 and summary["flags"]["kernel_l2"] == 5e-4
    model = keras.saving.load_model(out / "model.keras")
    assert {layer.momentum for layer in _batchnorms(model.backbone)} == {0.9}
    assert model.backbone.losses  # the kernel penalty came with the model
    activations = [layer for layer in model.backbone.layers
                   if isinstance(layer, keras.layers.Activation)]
    assert activations and not any(isinstance(layer, keras.layers.ReLU)
                                   for layer in model.backbone.layers)
    assert {layer.get_config()["activation"] for layer in activations} <= {"silu", "swish"}


@pytest.mark.slow
def test_train_example_runs_a_single_step_preset_with_the_monitor(tmp_path):
    """`--defense=n_fgsm` is pgd_at's "n-fgsm" preset, replaced only by the flags given
    (--epsilon here: the step follows it; --steps/--step_size defaults do not apply);
    `--monitor` puts the per-epoch curve in summary.json and draws it (monitor.png)."""
    data = jpeg_npz(str(tmp_path / "copy.npz"), n_train=64, n_test=16)
    out = tmp_path / "run"
    run_example("train", f"--data={data}", "--defense=n_fgsm", "--epsilon=16/255", "--epochs=2",
                "--batch_size=32", "--eval_limit=16", "--report=fgsm", "--monitor=16",
                "--monitor_steps=2", "--monitor_drop=0.99", f"--output_dir={out}", timeout=600)
    summary = json.loads((out / "summary.json").read_text())
    attack = summary["defense_config"]["attack"]
    assert (attack["steps"], attack["project"], attack["start_radius"]) == (1, False, 2.0)
    assert attack["step_size"] == pytest.approx(16 / 255) and attack["epsilon"] == 16 / 255
    assert summary["defense_config"]["attack_batchnorm"] == "batch"
    assert len(summary["history"]["monitor_robust_accuracy"]) == 2
    assert (out / "monitor.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # the curve, drawn
    assert summary["monitor_stopped_at_epoch"] is None
