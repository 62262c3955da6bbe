"""M-TLAT: the Mixup and TLAT layers, MTLATModel's batches (Algorithm 1), and the benchmark."""
from __future__ import annotations

import itertools
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_robust as kr
from keras_robust.mtlat import PRESETS, MTLATModel
from keras_robust.evaluate.benchmark import (
    ATTACKS,
    PAPER_ATTACKS,
    BenchmarkResult,
    perturbation_benchmark,
)
from keras_robust.layers import (
    Mixup,
    TLATLabelMixer,
    mixup,
    sample_beta,
    sample_uniform,
    shuffle_indices,
    tlat_labels,
)
from tests.helpers import linear_model, tiny_cnn

SEED = tf.constant([7, 11], tf.int64)


def _data(n=32, classes=3, seed=0, shape=(8, 8, 1)):
    rng = np.random.default_rng(seed)
    x = rng.random((n, *shape), dtype=np.float32)
    return x, rng.integers(0, classes, n).astype(np.int32)


# ------------------------------------------------------------------ shared functions
def test_beta_draws_have_the_beta_distribution():
    alpha = 0.4
    lam = sample_beta([20000], alpha, seed=SEED).numpy()
    assert lam.min() >= 0.0 and lam.max() <= 1.0
    assert abs(lam.mean() - 0.5) < 0.01
    assert abs(lam.var() - 1 / (4 * (2 * alpha + 1))) < 0.005  # Var Beta(a, a) = 1/(4(2a+1))
    # U-shaped for alpha < 1: the tails are heavier than the middle
    assert np.mean(lam < 0.1) > np.mean((lam > 0.45) & (lam < 0.55)) * 2
    scipy_stats = pytest.importorskip("scipy.stats")
    assert scipy_stats.kstest(lam, scipy_stats.beta(alpha, alpha).cdf).pvalue > 1e-3
    # stateless: same seed, same draws; another seed, other draws; alpha 0: no mixing
    np.testing.assert_array_equal(lam, sample_beta([20000], alpha, seed=SEED).numpy())
    assert not np.allclose(lam[:50], sample_beta([50], alpha, seed=[7, 12]).numpy())
    np.testing.assert_array_equal(sample_beta([5], 0.0, seed=0).numpy(), np.ones(5))


def test_mixup_mixes_with_a_permuted_partner():
    x, y = _data(16)
    rows = tf.one_hot(y, 3)
    result = mixup(x, rows, 0.4, SEED)
    partner, lam = result.partner.numpy(), result.lam.numpy()
    assert sorted(partner.tolist()) == list(range(16))
    assert 0 < lam.min() and lam.max() < 1 and lam.std() > 0.1
    expected = lam[:, None, None, None] * x + (1 - lam[:, None, None, None]) * x[partner]
    np.testing.assert_allclose(result.images.numpy(), expected, atol=1e-6)
    expected_y = lam[:, None] * rows.numpy() + (1 - lam[:, None]) * rows.numpy()[partner]
    np.testing.assert_allclose(result.labels.numpy(), expected_y, atol=1e-6)
    np.testing.assert_allclose(result.labels.numpy().sum(-1), 1.0, atol=1e-6)
    with pytest.raises(ValueError, match="label rows"):
        mixup(x, y, 0.4, SEED)


def test_partners_are_uniform_random_permutations():
    # Zhang et al.'s randperm: each of the 3! = 6 permutations of a batch of 3
    # equally likely (1200 seeds: 200 expected each; chi-square, 5 dof, p < 1e-4
    # above 25.7); draws are keyed on the seed only.
    counts = {}
    for k in range(1200):
        key = tuple(shuffle_indices(3, [k, 5]).numpy().tolist())
        counts[key] = counts.get(key, 0) + 1
    assert sorted(counts) == sorted(itertools.permutations(range(3)))
    chi2 = sum((c - 200) ** 2 / 200 for c in counts.values())
    assert chi2 < 25.7, counts
    np.testing.assert_array_equal(shuffle_indices(50, [1, 2]).numpy(),
                                  shuffle_indices(50, [1, 2]).numpy())
    assert not np.array_equal(shuffle_indices(50, [1, 2]).numpy(),
                              shuffle_indices(50, [1, 3]).numpy())


def test_uniform_draws_cover_the_interval_evenly():
    u = sample_uniform([100000], SEED, 0.0, 0.025).numpy()
    assert u.min() >= 0.0 and u.max() < 0.025
    assert abs(u.mean() - 0.0125) < 1e-4 and abs(u.var() - 0.025 ** 2 / 12) < 2e-6  # U[a, b)
    counts = np.histogram(u, bins=10, range=(0, 0.025))[0]
    assert np.all(np.abs(counts - 10000) < 500)


def test_tlat_labels_move_eps_of_the_mass_to_the_target():
    labels = tf.constant([[0.7, 0.3, 0.0], [0.0, 1.0, 0.0]])
    eps = tf.constant([0.1, 0.02])
    out = tlat_labels(labels, [2, 1], eps).numpy()
    np.testing.assert_allclose(out, [[0.63, 0.27, 0.1], [0.0, 1.0, 0.0]], atol=1e-6)
    same = tlat_labels(labels, tf.one_hot([2, 1], 3), eps[:, None]).numpy()
    np.testing.assert_allclose(out, same, atol=1e-7)
    np.testing.assert_allclose(tlat_labels(labels, [0, 0], 0.0).numpy(), labels.numpy())


# ------------------------------------------------------------------ layers
def test_layers_in_a_functional_model_and_keras_round_trip(tmp_path):
    images, labels = keras.Input((8, 8, 1)), keras.Input((3,))
    targets, eps = keras.Input((3,)), keras.Input((1,))
    mixed_images, mixed_labels = Mixup(alpha=0.4, seed=3, name="mixup")([images, labels])
    tlat = TLATLabelMixer(name="tlat")([mixed_labels, targets, eps])
    model = keras.Model([images, labels, targets, eps], [mixed_images, tlat])

    x, y = _data(8)
    rows = np.eye(3, dtype=np.float32)[y]
    target_rows = np.eye(3, dtype=np.float32)[(y + 1) % 3]
    budgets = np.linspace(0, 0.5, 8, dtype=np.float32)[:, None]
    inputs = [x, rows, target_rows, budgets]

    # Inference: Mixup is the identity; the label mixer still mixes.
    out_x, out_y = (t.numpy() for t in model(inputs, training=False))
    np.testing.assert_array_equal(out_x, x)
    np.testing.assert_allclose(out_y, (1 - budgets) * rows + budgets * target_rows, atol=1e-6)
    # Training: images and labels are mixed, label rows stay on the simplex.
    train_x, train_y = (t.numpy() for t in model(inputs, training=True))
    assert not np.allclose(train_x, x)
    np.testing.assert_allclose(train_y.sum(-1), 1.0, atol=1e-5)
    assert np.all(train_x >= 0) and np.all(train_x <= 1)

    path = str(tmp_path / "layers.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded.get_layer("mixup"), Mixup)
    assert loaded.get_layer("mixup").get_config()["alpha"] == 0.4
    assert isinstance(loaded.get_layer("tlat"), TLATLabelMixer)
    for a, b in zip(loaded(inputs, training=False), model(inputs, training=False)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)
    assert Mixup.from_config(Mixup(0.2, seed=5).get_config()).seed == 5


def test_mixup_layer_mixes_as_eq_1():
    x, y = _data(8, classes=10)
    rows = np.eye(10, dtype=np.float32)[y]
    layer = Mixup(alpha=0.4)
    result = layer.mix(x, rows, SEED)
    lam, partner = result.lam.numpy(), result.partner.numpy()
    assert sorted(partner.tolist()) == list(range(8)) and 0 <= lam.min() and lam.max() <= 1
    lam4 = lam[:, None, None, None]
    np.testing.assert_allclose(result.images.numpy(), lam4 * x + (1 - lam4) * x[partner], atol=1e-6)
    np.testing.assert_allclose(result.labels.numpy(),
                               lam[:, None] * rows + (1 - lam[:, None]) * rows[partner], atol=1e-6)
    with pytest.raises(ValueError, match=">= 0"):
        Mixup(alpha=-0.1)
    with pytest.raises(ValueError, match="list of 2"):
        layer(x, training=True)


# ------------------------------------------------------------------ MTLATModel batches
def _model(backbone=None, **kwargs) -> MTLATModel:
    kwargs.setdefault("seed", 0)
    return MTLATModel(backbone or tiny_cnn(num_classes=3), **kwargs)


# What the paper says each model does to the second half (Sec. 3-5.4), written
# here independently of PRESETS: mix = Mixup on both halves; attack = the FGSM
# of the second half; label = its label; before = IAT's order (attack, then mix).
PAPER = {
    "M-TLAT": dict(mix=True, attack="targeted", label="tlat", before=False),   # Algorithm 1
    "IAT": dict(mix=True, attack="untargeted", label="same", before=True),     # Sec. 3, [28]
    "Mixup": dict(mix=True, attack=None),                                      # Table 2
    "TLAT": dict(mix=False, attack="targeted", label="tlat", before=False),    # eq. 4
    "FGSM": dict(mix=False, attack="untargeted", label="same", before=False),  # Table 3
    "target-FGSM": dict(mix=False, attack="targeted", label="same", before=False),
    "LS": dict(mix=False, attack="targeted", label="smooth", before=False),    # s = eps, [41]
}


def _reference_batch(spec, x, y, lam, partner, eps, target, kernel, bias, classes):
    """The training batch the paper describes, in NumPy, from the given draws.

    The model is linear (logits = flatten(x) W + b), so the FGSM gradient of
    the cross-entropy is closed-form: d CE(softmax(z), t) / dx = W (p - e_t).
    """
    half = len(x) // 2
    rows = np.eye(classes)[y]

    def fgsm(images, label_rows, budget, goal):
        flat = images.reshape(len(images), -1).astype(np.float64)
        z = flat @ kernel + bias
        p = np.exp(z - z.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        cls = goal if spec["attack"] == "targeted" else label_rows.argmax(-1)
        grad = (p - np.eye(classes)[cls]) @ kernel.T
        step = -np.sign(grad) if spec["attack"] == "targeted" else np.sign(grad)
        adv = np.clip(flat + budget[:, None] * step, 0.0, 1.0).reshape(images.shape)
        if spec["label"] == "tlat":      # eq. 6: (1 - eps) y + eps y_target
            label_rows = (1 - budget[:, None]) * label_rows + budget[:, None] * np.eye(classes)[goal]
        elif spec["label"] == "smooth":  # Szegedy et al.: (1 - s) y + s / N with s = eps
            label_rows = (1 - budget[:, None]) * label_rows + budget[:, None] / classes
        return adv, label_rows

    src_x, src_y = x.astype(np.float64), rows.copy()
    if spec["attack"] and spec["before"]:
        src_x[half:], src_y[half:] = fgsm(src_x[half:], src_y[half:], eps[half:], target[half:])
    out_x, out_y = src_x, src_y
    if spec["mix"]:                      # eq. 1, each sample with its partner
        lam4 = lam[:, None, None, None]
        out_x = lam4 * src_x + (1 - lam4) * src_x[partner]
        out_y = lam[:, None] * src_y + (1 - lam[:, None]) * src_y[partner]
    if spec["attack"] and not spec["before"]:
        out_x[half:], out_y[half:] = fgsm(out_x[half:], out_y[half:], eps[half:], target[half:])
    return out_x, out_y


@pytest.mark.parametrize("name", sorted(PAPER))
def test_each_paper_model_builds_the_batch_the_paper_describes(name):
    spec, classes, size, eps_max = PAPER[name], 10, 25, 0.1
    x, y = _data(size, classes=classes, shape=(4, 4, 1))
    backbone = linear_model((4, 4, 1), classes, seed=3, scale=0.3)
    kernel, bias = (w.astype(np.float64) for w in backbone.get_layer("linear").get_weights())
    model = MTLATModel.from_preset(name, backbone, epsilon_max=eps_max, seed=0)
    batch = model.mtlat_batch(x, y, seed=SEED)
    lam, partner = batch.lam.numpy(), batch.partner.numpy()
    eps, target = batch.epsilon.numpy(), batch.target.numpy()
    half = size // 2

    # the draws have the laws of Algorithm 1
    assert sorted(partner[:half]) == list(range(half))          # partners within each half
    assert sorted(partner[half:]) == list(range(half, size))
    if spec["mix"]:
        assert 0 <= lam.min() and lam.max() <= 1 and lam.std() > 0.1
    else:
        np.testing.assert_array_equal(lam, np.ones(size))
        np.testing.assert_array_equal(partner, np.arange(size))
    assert np.all(eps[:half] == 0) and np.all(target[:half] == -1)
    if spec["attack"]:
        assert np.all(eps[half:] >= 0) and np.all(eps[half:] < eps_max) and eps[half:].std() > 0
    else:
        assert np.all(eps == 0)
    if spec["attack"] == "targeted":
        assert np.all((target[half:] >= 0) & (target[half:] < classes))
        assert len(set(target[half:].tolist())) > 3
    else:
        assert np.all(target == -1)
    np.testing.assert_array_equal(batch.adversarial.numpy(),
                                  (np.arange(size) >= half) & bool(spec["attack"]))

    # the batch, rebuilt in NumPy from those draws
    expected_x, expected_y = _reference_batch(spec, x, y, lam, partner, eps, target, kernel, bias,
                                              classes)
    np.testing.assert_allclose(batch.x.numpy(), expected_x, atol=1e-5)
    np.testing.assert_allclose(batch.y.numpy(), expected_y, atol=1e-6)
    np.testing.assert_allclose(batch.y.numpy().sum(-1), 1.0, atol=1e-5)
    if spec["attack"]:
        assert np.abs(batch.x.numpy()[half:] - batch.mixed.numpy()[half:]).max() > 0
    # stateless: the same seed gives the same batch
    np.testing.assert_array_equal(model.mtlat_batch(x, y, seed=SEED).x.numpy(), batch.x.numpy())


@pytest.mark.parametrize("halves,factor", [("sum", 1.0), ("mean", 0.5)])
def test_loss_is_algorithm_1s_sum_of_the_two_halves(halves, factor):
    # loss = L1 + L2 (Algorithm 1), L_k the mean cross-entropy of half k; with
    # an odd batch of 7 the halves hold 3 and 4 samples.
    x, y = _data(7, classes=10, shape=(4, 4, 1))
    backbone = linear_model((4, 4, 1), 10, seed=1, scale=0.5)
    model = MTLATModel(backbone, mixup=False, adversary=None, halves=halves, seed=0)
    model.compile(optimizer=keras.optimizers.SGD(0.0))
    loss = model.fit(x, y, batch_size=7, epochs=1, verbose=0, shuffle=False).history["loss"][0]
    kernel, bias = backbone.get_layer("linear").get_weights()
    z = x.reshape(7, -1).astype(np.float64) @ kernel + bias
    ce = np.log(np.exp(z).sum(-1)) - z[np.arange(7), y]
    assert loss == pytest.approx(factor * (ce[:3].mean() + ce[3:].mean()), rel=1e-5)


def test_partners_stay_within_each_half_and_lambda_is_sane():
    x, y = _data(4000, shape=(2, 2, 1))
    batch = _model(linear_model((2, 2, 1), 3)).mtlat_batch(x, y, seed=SEED)
    partner, lam, h = batch.partner.numpy(), batch.lam.numpy(), 2000
    assert sorted(partner[:h].tolist()) == list(range(h))
    assert sorted(partner[h:].tolist()) == list(range(h, 4000))
    assert abs(lam.mean() - 0.5) < 0.02 and lam.min() >= 0 and lam.max() <= 1
    lam4 = lam[:, None, None, None]
    np.testing.assert_allclose(batch.mixed.numpy(), lam4 * x + (1 - lam4) * x[partner], atol=1e-6)
    rows = np.eye(3)[y]
    np.testing.assert_allclose(batch.mixed_labels.numpy(),
                               lam[:, None] * rows + (1 - lam[:, None]) * rows[partner], atol=1e-6)


def test_zero_budget_reduces_tlat_to_mixup():
    x, y = _data(24)
    backbone = tiny_cnn(num_classes=3)
    tlat = _model(backbone).mtlat_batch(x, y, seed=SEED, epsilon=0.0)
    mix = _model(backbone, tlat=False).mtlat_batch(x, y, seed=SEED)
    np.testing.assert_array_equal(tlat.x.numpy(), mix.x.numpy())
    np.testing.assert_allclose(tlat.y.numpy(), mix.y.numpy(), atol=1e-7)


def test_perturbation_within_each_budget_and_images_in_range():
    rng = np.random.default_rng(1)
    x = rng.choice([0.0, 0.02, 0.5, 0.98, 1.0], size=(64, 8, 8, 1)).astype(np.float32)
    y = rng.integers(0, 3, 64)
    batch = _model(epsilon_max=0.3).mtlat_batch(x, y, seed=SEED)
    delta = np.abs(batch.x.numpy() - batch.mixed.numpy()).reshape(64, -1).max(-1)
    eps = batch.epsilon.numpy()
    assert np.all(delta <= eps + 1e-6)
    assert np.all(delta[32:] > 0)
    assert batch.x.numpy().min() >= 0.0 and batch.x.numpy().max() <= 1.0


def test_fgsm_step_raises_the_target_probability():
    x = np.random.default_rng(2).uniform(0.3, 0.7, (64, 8, 8, 1)).astype(np.float32)
    y = np.random.default_rng(3).integers(0, 3, 64)
    model = _model(linear_model(scale=0.3), mixup=False, epsilon_max=0.05)
    batch = model.mtlat_batch(x, y, seed=SEED)
    adv = batch.adversarial.numpy()
    target = batch.target.numpy()[adv]
    before = tf.nn.softmax(model(batch.mixed)).numpy()[adv, target]
    after = tf.nn.softmax(model(batch.x)).numpy()[adv, target]
    moved = batch.epsilon.numpy()[adv] > 1e-3
    assert moved.sum() > 25
    assert np.all(after[moved] > before[moved])


def test_ablation_switches_and_variants():
    x, y = _data(16)
    rows = np.eye(3)[y]
    tlat_only = _model(mixup=False).mtlat_batch(x, y, seed=SEED)
    np.testing.assert_array_equal(tlat_only.lam.numpy(), np.ones(16))
    np.testing.assert_array_equal(tlat_only.partner.numpy(), np.arange(16))
    np.testing.assert_array_equal(tlat_only.x.numpy()[:8], x[:8])  # first half clean
    np.testing.assert_array_equal(tlat_only.mixed.numpy(), x)
    np.testing.assert_allclose(tlat_only.y.numpy()[:8], rows[:8])
    assert not np.allclose(tlat_only.x.numpy()[8:], x[8:])

    mixup_only = _model(tlat=False).mtlat_batch(x, y, seed=SEED)
    np.testing.assert_array_equal(mixup_only.x.numpy(), mixup_only.mixed.numpy())
    np.testing.assert_array_equal(mixup_only.y.numpy(), mixup_only.mixed_labels.numpy())
    assert not mixup_only.adversarial.numpy().any() and np.all(mixup_only.epsilon.numpy() == 0)
    assert not np.allclose(mixup_only.x.numpy(), x)

    plain = _model(mixup=False, tlat=False).mtlat_batch(x, y, seed=SEED)
    np.testing.assert_array_equal(plain.x.numpy(), x)
    assert set(PRESETS) == set(PAPER)  # Tables 1-3
    variant = MTLATModel.from_preset("TLAT", tiny_cnn(num_classes=3), epsilon_max=0.05)
    assert (variant.mixup, variant.adversary, variant.attack.epsilon) == (False, "tlat", 0.05)
    with pytest.raises(ValueError, match="Unknown MTLATModel preset 'PGD'; known presets: 'M-TLAT'"):
        MTLATModel.from_preset("PGD", tiny_cnn(num_classes=3))


@pytest.mark.parametrize("size", [1, 3, 7])
def test_odd_batch_sizes(size):
    x, y = _data(size)
    batch = _model().mtlat_batch(x, y, np.ones(size, np.float32), seed=SEED)
    assert batch.x.shape == (size, 8, 8, 1) and batch.y.shape == (size, 3)
    assert int(batch.adversarial.numpy().sum()) == size - size // 2
    np.testing.assert_allclose(batch.sample_weight.numpy(), np.ones(size), atol=1e-6)
    partner = batch.partner.numpy()
    assert np.all(partner[: size // 2] < size // 2) and np.all(partner[size // 2:] >= size // 2)


@pytest.mark.parametrize(
    "kwargs,error",
    [(dict(mixup_alpha=-0.4), ValueError), (dict(mixup_alpha="0.4"), TypeError),
     (dict(epsilon_max=0.0), ValueError), (dict(epsilon_max=1.5), ValueError),
     (dict(epsilon_max=-0.01), ValueError), (dict(epsilon_max="0.05"), TypeError),
     (dict(mixup="yes"), TypeError), (dict(tlat=1), TypeError),
     (dict(adversary="pgd"), ValueError), (dict(adversary=True), ValueError),
     (dict(tlat=True, adversary=None), ValueError), (dict(halves="avg"), ValueError),
     (dict(attack_before_mixup=1), TypeError)],
)
def test_constructor_refuses_bad_arguments(kwargs, error):
    with pytest.raises(error):
        _model(**kwargs)


# ------------------------------------------------------------------ training, saving, serving
def _fitted(**kwargs):
    x, y = _data(45)
    model = _model(epsilon_max=0.05, **kwargs)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), metrics=["accuracy"])
    history = model.fit(x, y, batch_size=16, epochs=2, verbose=0)  # batches 16, 16, 13
    return model, x, y, history


def test_fits_round_trips_and_exports(tmp_path):
    model, x, y, history = _fitted()
    assert np.all(np.isfinite(history.history["loss"]))
    config = model.get_config()
    clone = MTLATModel.from_config(config)
    assert "epsilon_max" not in config and config["attack"]["epsilon"] == 0.05
    for key in ("mixup_alpha", "attack", "mixup", "adversary", "attack_before_mixup",
                "halves", "seed"):
        assert clone.get_config()[key] == config[key], key

    path = str(tmp_path / "mtlat.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert type(loaded) is MTLATModel
    assert (loaded.mixup_alpha, loaded.attack.epsilon, loaded.seed) == (0.4, 0.05, 0)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               atol=1e-5)
    loaded.fit(x, y, batch_size=16, epochs=1, verbose=0)  # resumes

    export = str(tmp_path / "savedmodel")
    model.export(export, verbose=False)
    served = tf.saved_model.load(export)
    np.testing.assert_allclose(served.serve(tf.constant(x)).numpy(),
                               model.predict(x, verbose=0), atol=1e-5)


def test_fit_with_sample_weights_and_under_mirrored_strategy():
    x, y = _data(30)
    model = _model()
    model.compile(optimizer="sgd")
    model.fit(x, y, sample_weight=np.linspace(0.5, 1.5, 30), batch_size=10, epochs=1, verbose=0)
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    if len(devices) < 2:
        pytest.skip("needs the two logical CPU devices of conftest")
    with tf.distribute.MirroredStrategy(devices[:2]).scope():
        model = _model()
        model.compile(optimizer="sgd", metrics=["accuracy"])
    history = model.fit(x, y, batch_size=14, epochs=1, verbose=0)  # 7 per replica, then 1
    assert 1.0 < history.history["loss"][0] < 5.0  # L1 + L2, about 2 ln 3 untrained


def test_mixing_compiles_with_xla_and_draws_the_same():
    # Keras jit-compiles train steps on GPUs by default, so every op of the mixing
    # needs an XLA kernel (tf.random.stateless_gamma has none, hence sample_log_gamma),
    # and TF's float uniform draws and "auto_select" seed folding differ under XLA
    # (measured), so the draws come from Philox integers: compiled or not, the
    # same lambdas and partners. (The whole MTLATModel step under XLA is
    # test_production's parity test.)
    x, y = _data(8)
    rows = tf.one_hot(y, 3)
    compiled = tf.function(lambda a, b, s: mixup(a, b, 0.4, s), jit_compile=True)
    for seed in ([7, 11], [-816000691, 1], [123456789, -5]):
        seed = tf.constant(seed, tf.int64)
        result, graph = compiled(tf.constant(x), rows, seed), mixup(x, rows, 0.4, seed)
        partner, lam = result.partner.numpy(), result.lam.numpy()[:, None, None, None]
        assert sorted(partner.tolist()) == list(range(8))
        assert lam.min() >= 0 and lam.max() <= 1
        np.testing.assert_allclose(result.images.numpy(), lam * x + (1 - lam) * x[partner],
                                   atol=1e-5)
        np.testing.assert_array_equal(partner, graph.partner.numpy())
        np.testing.assert_allclose(result.lam.numpy(), graph.lam.numpy(), atol=1e-5)


# ------------------------------------------------------------------ benchmark
def test_benchmark_scores_layout_and_files(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (12, 16, 16, 3), dtype=np.uint8)
    labels = rng.integers(0, 3, 12)
    shape = (16, 16, 3)
    models = {"standard": linear_model(shape, 3, seed=0), "other": linear_model(shape, 3, seed=1,
                                                                                 scale=0.01)}
    result = perturbation_benchmark(
        models, images, labels, surrogate=linear_model(shape, 3, seed=2),
        corruptions=["gaussian_noise", "occlusion"], severities=[1, 5], batch_size=8,
        progress=False, output_dir=str(tmp_path))
    assert result.models == ["standard", "other"] and result.attacks == list(PAPER_ATTACKS)
    assert result.perturbations == ["gaussian_noise", "occlusion", *PAPER_ATTACKS]
    for name in result.models:
        clean = kr.evaluate.accuracy(models[name], images.astype(np.float32) / 255, labels)
        assert result.clean[name] == pytest.approx(clean)
        per = result.severity_accuracy[name]["gaussian_noise"]
        assert result.accuracy[name]["gaussian_noise"] == pytest.approx((per[1] + per[5]) / 2)
        for phi in result.perturbations:
            assert result.robustness[name][phi] == pytest.approx(
                result.accuracy[name][phi] / result.clean[name])
    signs = result.compare("other")
    markdown = result.to_markdown()
    cells = " ".join(line.replace("| other |", "") for line in markdown.splitlines()
                     if line.startswith("| other |") and "/" not in line)  # not the summary
    assert cells.count("+") == sum(v > 0 for v in signs.values())
    assert cells.count("-") == sum(v < 0 for v in signs.values())
    assert "Gauss" in markdown and "PGD_LL eps=0.04" in markdown and "Obstru" in markdown
    count = result.better_count("other")
    assert count["corruptions"][1] == 2 and count["attacks"][1] == 5
    for name in ("benchmark.json", "benchmark.md", "robustness_scores.png",
                 "corruption_severity.png"):
        assert os.path.getsize(tmp_path / name) > 0
    with open(tmp_path / "benchmark.json") as f:
        reloaded = BenchmarkResult.from_dict(json.load(f))
    assert reloaded.to_markdown() == markdown


def test_benchmark_refuses_bad_inputs():
    images = np.zeros((4, 16, 16, 3), np.uint8)
    model = linear_model((16, 16, 3), 3)
    with pytest.raises(ValueError, match="reference"):
        perturbation_benchmark({"a": model}, images, np.zeros(4), surrogate=None)
    with pytest.raises(ValueError, match="Unknown attack"):
        perturbation_benchmark({"standard": model}, images, np.zeros(4), surrogate=None,
                               attacks=["pgd100"])
    with pytest.raises(ValueError, match="uint8"):
        perturbation_benchmark({"standard": model}, images.astype(np.float32), np.zeros(4),
                               surrogate=None)
    with pytest.raises(ValueError, match="labels"):
        perturbation_benchmark({"standard": model}, images, np.zeros(3), surrogate=None)
    assert set(PAPER_ATTACKS) < set(ATTACKS)


def test_the_budgets_and_targets_come_from_the_documented_folds_of_the_seed():
    # `mtlat_batch`'s contract (and the fixed-seed fingerprint): budgets from fold 3 of
    # the seed, targets from fold 4, with Philox, so that XLA and graph mode draw alike.
    x, y = _data(9)
    batch = _model(epsilon_max=0.05).mtlat_batch(x, y, seed=SEED)
    fold = lambda salt: tf.random.experimental.stateless_fold_in(SEED, salt, alg="philox")  # noqa: E731
    eps = sample_uniform([5], fold(3), 0.0, 0.05).numpy()
    target = tf.random.stateless_uniform([5], fold(4), 0, 3, dtype=tf.int32, alg="philox").numpy()
    np.testing.assert_array_equal(batch.epsilon.numpy()[4:], eps)
    np.testing.assert_array_equal(batch.target.numpy()[4:], target)
