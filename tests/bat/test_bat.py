"""BAT: eq. 14 / 18 against hand computation, and BATModel's training pairs."""
from __future__ import annotations

import functools

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_robust as kr
from keras_robust.losses import adversarial_label_budget, adversarial_labels, smoothed_labels
from tests.helpers import linear_model, mlp, robust_feature_data, tiny_cnn


def _numpy_reference(probs, c, beta, gamma):
    """Eq. 13, 14 and 18 written out with NumPy, one sample."""
    n = len(probs)
    v = -np.log(probs)
    others = [k for k in range(n) if k != c]
    v_mc, v_ll = min(v[k] for k in others), max(v[k] for k in others)
    mean = sum(v[k] for k in others) / (n - 1)
    eps = 1 / (1 + beta / (n - 1) * (v_ll - v_mc + gamma) / (mean - v_mc + gamma))
    y = np.zeros(n)
    for k in others:
        y[k] = eps / (n - 1) * (v[k] - v_mc + gamma) / (mean - v_mc + gamma)
    y[c] = 1 - eps
    return y, eps


def test_equal_other_probabilities_give_label_smoothing_eq15_eq19():
    n, beta = 10, 9.0
    logits = np.zeros((3, n), np.float32)
    logits[:, 2] = [4.0, 1.0, 0.0]  # others all equal
    labels = adversarial_labels(tf.constant(logits), [2, 2, 2], beta=beta).numpy()
    eps = 1 / (1 + beta / (n - 1))  # eq. 19: 0.5 for beta = 9, n = 10
    assert eps == pytest.approx(0.5)
    for row in labels:
        np.testing.assert_allclose(row[2], 1 - eps, atol=1e-6)
        np.testing.assert_allclose(np.delete(row, 2), eps / (n - 1), atol=1e-6)
    np.testing.assert_allclose(labels, smoothed_labels([2, 2, 2], n, eps).numpy(), atol=1e-6)
    for beta, expected in ((81.0, 0.1), (1.0, 0.9)):  # the paper's other two CIFAR-10 pairs
        budget = adversarial_label_budget(tf.constant(logits), [2, 2, 2], beta=beta).numpy()
        np.testing.assert_allclose(budget, expected, atol=1e-6)


def test_matches_a_hand_computed_example():
    probs = np.array([0.6, 0.25, 0.1, 0.05])
    logits = tf.constant(np.log(probs)[None], tf.float32)
    labels = adversarial_labels(logits, [0], beta=9.0, gamma=0.01).numpy()[0]
    expected, eps = _numpy_reference(probs, 0, 9.0, 0.01)
    np.testing.assert_allclose(labels, expected, rtol=1e-5, atol=1e-7)
    # By hand: v = -log p = (0.511, 1.386, 2.303, 2.996); v_MC = 1.386, v_LL = 2.996,
    # mean_{k!=c} v = 2.228; eps_y = 1 / (1 + 9/3 * 1.620 / 0.852) = 0.1491.
    assert eps == pytest.approx(0.1491, abs=1e-3)
    assert labels[0] == pytest.approx(1 - 0.1491, abs=1e-3)


@pytest.mark.parametrize("seed", range(5))
def test_labels_on_simplex_with_beta_ratio_and_mc_smallest(seed):
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=3.0, size=(64, 10)).astype(np.float32)
    y = rng.integers(0, 10, 64)
    for beta in (1.0, 9.0, 100.0):
        labels = adversarial_labels(tf.constant(logits), y, beta=beta).numpy()
        assert labels.min() >= 0
        np.testing.assert_allclose(labels.sum(-1), 1.0, atol=1e-5)
        for i in range(64):
            others = np.delete(labels[i], y[i])
            # eq. 16 holds with equality at eq. 18's budget
            np.testing.assert_allclose(labels[i, y[i]], beta * others.max(), rtol=1e-4)
            masked = logits[i].copy()
            masked[y[i]] = -np.inf
            mc, ll = np.argmax(masked), np.argmin(np.where(np.isinf(masked), np.inf, masked))
            assert labels[i, mc] == pytest.approx(np.delete(labels[i], y[i]).min())
            assert labels[i, ll] == pytest.approx(others.max())
        # eq. 21: the budget lies in (1/(1+beta), 1/(1+beta/(n-1))]
        eps = 1 - labels[np.arange(64), y]
        assert np.all(eps > 1 / (1 + beta) - 1e-6) and np.all(eps <= 1 / (1 + beta / 9) + 1e-6)


def test_budget_reaches_the_lower_bound_of_eq21_as_in_eq20():
    # eq. 20's extreme: (v_LL - v_MC) / (mean_{k!=c} v_k - v_MC) -> n - 1, which happens
    # when one other class is far less likely than the rest (all equal): eps_y -> 1/(1+beta).
    logits = np.zeros((1, 10), np.float32)
    logits[0, 9] = -60.0
    eps = adversarial_label_budget(tf.constant(logits), [0], beta=9.0).numpy()[0]
    assert eps == pytest.approx(1 / (1 + 9.0), abs=2e-3)


def test_soft_and_one_hot_labels_give_the_same_result():
    logits = tf.constant(np.random.default_rng(0).normal(size=(8, 5)), tf.float32)
    y = np.arange(8) % 5
    a = adversarial_labels(logits, y).numpy()
    b = adversarial_labels(logits, np.eye(5)[y]).numpy()
    np.testing.assert_allclose(a, b)


def test_keras_loss_matches_hand_computation_and_serialises():
    logits = np.random.default_rng(1).normal(size=(4, 6)).astype(np.float32)
    y = np.eye(6, dtype=np.float32)[[0, 1, 2, 3]]
    loss = kr.losses.AdversarialLabelCrossentropy(beta=9.0)
    target = adversarial_labels(tf.constant(logits), y).numpy()
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = -np.mean(np.sum(target * log_probs, -1))
    np.testing.assert_allclose(float(loss(y, logits)), expected, rtol=1e-5)
    clone = kr.losses.AdversarialLabelCrossentropy.from_config(loss.get_config())
    assert clone.beta == 9.0
    ls = kr.losses.SmoothedLabelCrossentropy(0.5)
    smooth = smoothed_labels(y, 6, 0.5).numpy()
    np.testing.assert_allclose(float(ls(y, logits)),
                               -np.mean(np.sum(smooth * log_probs, -1)), rtol=1e-5)


def _softmax(z):
    z = z - z.max(-1, keepdims=True)
    return np.exp(z) / np.exp(z).sum(-1, keepdims=True)


def _built(model):
    """A compiled BATModel whose step counter exists, ready for `training_batch`."""
    model.compile(optimizer="sgd")
    model.build(None)
    model.optimizer.build(model.trainable_variables)
    return model


def test_training_batch_holds_only_perturbed_pairs():
    rng = np.random.default_rng(0)
    x = rng.uniform(0.2, 0.8, (32, 8, 8, 1)).astype(np.float32)
    y = np.arange(32) % 10
    backbone = mlp(num_classes=10)
    model = _built(kr.BATModel(backbone, epsilon=0.1, seed=0))
    batch = model.training_batch(tf.constant(x), tf.one_hot(y, 10), None)
    delta = np.abs(batch.x.numpy() - x).reshape(32, -1).max(-1)
    assert np.all(delta <= 0.1 + 1e-6) and np.all(delta > 0)
    assert batch.x.shape[0] == 32  # only the perturbed images, no clean copies
    # The default labels: eq. 14 / 18 from the clean logits, against NumPy.
    probs = _softmax(backbone(x).numpy().astype(np.float64))
    expected = np.stack([_numpy_reference(probs[i], y[i], 9.0, 0.01)[0] for i in range(32)])
    np.testing.assert_allclose(batch.y.numpy(), expected, atol=1e-5)


# What the paper says each named model is (section 5 and Tables 3-5): eps 8 pixels in
# training; "R-" = random start; one-step attacks step by the whole budget; FGSM is
# untargeted, LL / MC target the least likely / most confusing class; "LS" is label
# smoothing with eps_y = 0.5 (Table 5); "LA" is the adversarial label of eq. 14 / 18 with
# beta = 9; Madry-LA is Madry's PGD7-2 (7 steps of 2 pixels, random start, untargeted)
# with the adversarial label.
PAPER_VARIANTS = {
    "R-FGSM": dict(target=None, label="onehot", steps=1, step=8),
    "R-LL": dict(target="ll", label="onehot", steps=1, step=8),
    "R-MC": dict(target="mc", label="onehot", steps=1, step=8),
    "R-FGSM-LS": dict(target=None, label="smoothing", steps=1, step=8, label_eps=0.5),
    "R-MC-LS": dict(target="mc", label="smoothing", steps=1, step=8, label_eps=0.5),
    "R-MC-LA": dict(target="mc", label="adversarial", steps=1, step=8, beta=9.0),
    "Madry-LA": dict(target=None, label="adversarial", steps=7, step=2, beta=9.0),
}


def _numpy_training_pair(name, weights, bias, x, y, eps=8 / 255, num_classes=10):
    """The paper's variant `name` on a linear model, in NumPy, without random start:
    sign steps on CE (ascent on the true class, descent toward a target chosen at the
    clean logits), projected to the eps-box and [0, 1]; then the training label."""
    spec = PAPER_VARIANTS[name]
    flat = x.reshape(len(x), -1).astype(np.float64)
    clean = flat @ weights + bias
    masked = np.where(np.eye(num_classes)[y] > 0, np.nan, clean)
    target = {"mc": np.nanargmax(masked, -1), "ll": np.nanargmin(masked, -1)}.get(spec["target"])
    x_adv, tiny = flat.copy(), np.zeros(flat.shape, bool)
    for _ in range(spec["steps"]):
        probs = _softmax(x_adv @ weights + bias)
        toward = np.eye(num_classes)[y if target is None else target]
        grad = (probs - toward) @ weights.T  # d CE / d x
        tiny |= np.abs(grad) < 1e-5
        sign = np.sign(grad) if target is None else -np.sign(grad)
        x_adv = np.clip(x_adv + spec["step"] / 255 * sign, flat - eps, flat + eps).clip(0, 1)
    if spec["label"] == "onehot":
        label = np.eye(num_classes)[y]
    elif spec["label"] == "smoothing":
        e = spec["label_eps"]
        label = np.where(np.eye(num_classes)[y] > 0, 1 - e, e / (num_classes - 1))
    else:
        probs = _softmax(clean)
        label = np.stack([_numpy_reference(probs[i], y[i], spec["beta"], 0.01)[0]
                          for i in range(len(y))])
    return x_adv.reshape(x.shape), tiny.reshape(x.shape), label


@pytest.mark.parametrize("name", sorted(PAPER_VARIANTS))
def test_each_variant_crafts_the_papers_image_and_label_with_10_classes(name):
    # 10 classes, so MC, LL and FGSM directions differ and LA differs from LS: swapping
    # a target, a label kind, beta, a step size or the step count changes the pair.
    rng = np.random.default_rng(1)
    x = rng.uniform(0.2, 0.8, (16, 4, 4, 1)).astype(np.float32)
    y = np.arange(16) % 10
    backbone = linear_model(input_shape=(4, 4, 1), num_classes=10, scale=0.5)
    weights, bias = backbone.get_layer("linear").get_weights()
    model = _built(kr.BATModel.from_preset(name, backbone, random_start=False, seed=0))
    batch = model.training_batch(tf.constant(x), tf.one_hot(y, 10), None)
    x_np, tiny, label = _numpy_training_pair(name, weights, bias, x, y)
    close = np.isclose(batch.x.numpy(), x_np, atol=1e-5)
    assert np.all(close | tiny), f"{name}: {np.mean(~close):.1%} of pixels differ"
    np.testing.assert_allclose(batch.y.numpy(), label, atol=1e-5)


def test_variants_match_the_papers_description():
    backbone = mlp()
    assert kr.BATModel.list_presets() == list(kr.bat.PRESETS) and set(kr.bat.PRESETS) == set(PAPER_VARIANTS)
    for name, spec in PAPER_VARIANTS.items():
        model = kr.BATModel.from_preset(name, backbone)
        attack = model.attack
        assert attack.target == spec["target"], name
        assert model.label == spec["label"], name
        assert attack.random_start, name
        assert attack.epsilon == pytest.approx(8 / 255), name
        assert attack.steps == spec["steps"], name
        assert attack.step_size == pytest.approx(spec["step"] / 255), name
        assert model.label_source == "clean", name  # eq. 11-14: from the clean image
        if spec["label"] == "smoothing":
            assert model.label_epsilon == pytest.approx(spec["label_eps"]), name
        if spec["label"] == "adversarial":
            assert model.beta == spec["beta"], name
        assert isinstance(model, kr.PGDATModel)
    with pytest.raises(ValueError, match="Unknown BATModel preset 'R-XX'; known presets: .*'R-MC-LA'"):
        kr.BATModel.from_preset("R-XX", backbone)
    with pytest.raises(ValueError, match="adversarial"):
        kr.BATModel(backbone, label="mixup")
    with pytest.raises(ValueError, match="'saturated'"):
        kr.BATModel(backbone, label_log="log")


def _start_detector(clean_logits, start_shift):
    """logits = clean_logits + start_shift * tanh(1e4 * mean((x - 0.5)^2)): exactly
    `clean_logits` on the all-0.5 image and `clean_logits + start_shift` on any random
    start of a 0.1 ball around it (mean squared offset ~ 0.0033, tanh(33) = 1.0)."""
    inputs = keras.Input((8, 8, 1))
    s = keras.layers.Lambda(
        lambda x: tf.tanh(1e4 * tf.reduce_mean(tf.square(x - 0.5), axis=[1, 2, 3]))[:, None]
    )(inputs)
    dense = keras.layers.Dense(len(clean_logits))
    model = keras.Model(inputs, dense(s))
    dense.set_weights([np.asarray(start_shift, np.float32)[None], np.asarray(clean_logits, np.float32)])
    return model


def test_label_source_takes_the_label_from_the_clean_or_the_start_logits():
    # Clean logits rank the classes 0 > 1 > ... > 9; the random start reverses the
    # ranking of 1..9, so for a true class 0 the MC class is 1 (clean) or 9 (start).
    clean = np.array([6.0, 3.0, 2.5, 2.0, 1.5, 1.0, 0.5, 0.0, -0.5, -1.0])
    start = clean + np.array([0.0, -4.0, -3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 4.0])
    x = np.full((10, 8, 8, 1), 0.5, np.float32)
    y = np.arange(10)
    rows = tf.one_hot(y, 10)
    expected = {}
    for source, logits in (("clean", clean), ("start", start)):
        probs = _softmax(logits)
        expected[source] = np.stack([_numpy_reference(probs, c, 9.0, 0.01)[0] for c in y])
    assert np.argmin(np.delete(expected["clean"][0], 0)) + 1 == 1  # MC: smallest share
    assert np.argmin(np.delete(expected["start"][0], 0)) + 1 == 9
    assert np.abs(expected["clean"] - expected["start"]).max() > 0.05
    for source in ("clean", "start"):
        model = _built(kr.BATModel(_start_detector(clean, start - clean), epsilon=0.1,
                                   label_source=source, seed=0))
        labels = model.training_batch(tf.constant(x), rows, None).y.numpy()
        np.testing.assert_allclose(labels, expected[source], atol=1e-5, err_msg=source)
    assert kr.BATModel(mlp()).label_source == "clean"  # the paper's order is the default


def test_saturated_labels_match_the_authors_formula_and_differ_on_confident_models():
    def authors(probs, c, beta=9.0, gamma=0.01):
        # adv_labels of the authors' train.py, written out for one sample
        v = -np.log(probs + 1e-8)
        others = np.delete(v, c)
        v_min, v_max = others.min(), others.max()
        denominator = others.sum() - (len(v) - 1) * (v_min - gamma)
        delta = 1 / (1 + beta * (v_max - v_min + gamma) / denominator)
        label = delta / denominator * (v - v_min + gamma)
        label[c] = 1 - delta
        return label

    rng = np.random.default_rng(0)
    logits = rng.normal(scale=12.0, size=(32, 10)).astype(np.float32)
    logits[np.arange(32), np.arange(32) % 10] += 20.0  # confident: many p_k << 1e-8
    y = np.arange(32) % 10
    saturated = adversarial_labels(tf.constant(logits), y, label_log="saturated").numpy()
    probs = _softmax(logits.astype(np.float64))
    # float32 softmax near p ~ 1e-8 costs ~1e-4 of precision in v
    np.testing.assert_allclose(saturated, np.stack([authors(probs[i], y[i]) for i in range(32)]),
                               atol=2e-4)
    exact = adversarial_labels(tf.constant(logits), y).numpy()
    assert np.abs(saturated - exact).max() > 0.05
    # The extreme: eight classes at -40 and one at -1000 saturate to equal v (label
    # smoothing, eps_y = 0.5) where eq. 13 sees the far class (eps_y -> 1 / (1 + 9)).
    extreme = tf.constant([[0.0] + [-40.0] * 8 + [-1000.0]])
    gap = adversarial_labels(extreme, [0], label_log="saturated") - adversarial_labels(extreme, [0])
    assert float(gap[0, 0]) == pytest.approx(-0.4, abs=2e-3)
    loss = kr.losses.AdversarialLabelCrossentropy(label_log="saturated")
    assert kr.losses.AdversarialLabelCrossentropy.from_config(loss.get_config()).label_log == \
        "saturated"
    with pytest.raises(ValueError, match="label_log"):
        adversarial_labels(extreme, [0], label_log="exact")


def test_old_keras_files_without_the_new_keys_still_load(tmp_path):
    import json
    import zipfile

    model = kr.BATModel(mlp(num_classes=10), epsilon=0.1, seed=0)
    model.compile(optimizer="sgd")
    model.predict(np.zeros((1, 8, 8, 1), np.float32), verbose=0)
    model.save(str(tmp_path / "new.keras"))
    with zipfile.ZipFile(tmp_path / "new.keras") as source, \
            zipfile.ZipFile(tmp_path / "old.keras", "w") as old:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "config.json":
                config = json.loads(data)
                for key in ("label_source", "label_log"):
                    assert config["config"].pop(key) is not None
                data = json.dumps(config).encode()
            old.writestr(item, data)
    loaded = keras.saving.load_model(str(tmp_path / "old.keras"), safe_mode=True)
    assert (loaded.label_source, loaded.label_log) == ("clean", "log_softmax")
    x = np.random.default_rng(0).random((4, 8, 8, 1), dtype=np.float32)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def test_label_sources_agree_without_random_start():
    x = np.random.default_rng(0).random((16, 8, 8, 1), dtype=np.float32)
    y = np.arange(16) % 10
    rows = tf.one_hot(y, 10)
    outputs = []
    for source in ("start", "clean"):
        keras.utils.set_random_seed(0)
        model = kr.BATModel(tiny_cnn(num_classes=10), epsilon=0.1, random_start=False,
                            label_source=source, seed=0)
        model.compile(optimizer="sgd")
        model.build(None)
        model.optimizer.build(model.trainable_variables)
        outputs.append(model.training_batch(tf.constant(x), rows, None))
    np.testing.assert_allclose(outputs[0].x.numpy(), outputs[1].x.numpy(), atol=1e-6)
    np.testing.assert_allclose(outputs[0].y.numpy(), outputs[1].y.numpy(), atol=1e-6)


def _robust_feature_data_10(n, seed):
    """robust_feature_data with 10 classes: the first 20 pixels (row-major) are a
    robust one-hot code of a class, two pixels per class (0.85 vs 0.15, agreeing with
    the label 80% of the time; a 0.1 budget cannot flip it), every other pixel is 0.5 + 0.05 * code_y + noise
    with a random +-1 code per class (weak but jointly near-perfect; a 0.1 L-inf budget
    moves them all to another class's code)."""
    rng = np.random.default_rng(seed)
    codes = np.random.default_rng(100).choice([-1.0, 1.0], size=(10, 64))
    y = rng.integers(0, 10, n).astype(np.int32)
    x = 0.5 + 0.05 * codes[y] + 0.05 * rng.normal(size=(n, 64))
    shown = np.where(rng.random(n) < 0.8, y, rng.integers(0, 10, n))
    x[:, :20] = np.where(np.repeat(np.eye(10)[shown], 2, axis=1) > 0, 0.85, 0.15)
    return np.clip(x, 0, 1).reshape(n, 8, 8, 1).astype(np.float32), y


def test_bat_is_more_robust_than_plain_training():
    # 10 classes: MC, LL and random targets differ, and the adversarial label is not
    # label smoothing, unlike a 2-class task.
    x, y = _robust_feature_data_10(2048, seed=0)
    x_test, y_test = _robust_feature_data_10(512, seed=1)
    attack = functools.partial(kr.attacks.pgd, epsilon=0.1, step_size=0.025, steps=10, seed=0)
    scores = {}
    for name, make in (("plain", lambda: kr.RobustModel(mlp(num_classes=10), seed=0)),
                       ("bat", lambda: kr.BATModel(mlp(num_classes=10), epsilon=0.1, seed=0))):
        keras.utils.set_random_seed(0)
        model = make()
        model.compile(optimizer=keras.optimizers.Adam(3e-3), metrics=["accuracy"])
        model.fit(x, y, batch_size=64, epochs=8, verbose=0)
        scores[name] = kr.evaluate.robust_accuracy(model, x_test, y_test, attack)
    assert scores["bat"] > scores["plain"] + 0.2, scores


def test_preset_overrides_replace_attack_fields_and_keep_the_papers_step_rule():
    backbone = mlp()
    # One step of the whole budget: a new budget or step count moves the step with it.
    assert kr.BATModel.from_preset("R-MC-LA", backbone, epsilon=4 / 255).attack.step_size == 4 / 255
    two = kr.BATModel.from_preset("R-MC-LA", backbone, steps=2).attack
    assert (two.steps, two.step_size, two.target) == (2, 4 / 255, "mc")
    # Madry-LA's 2/255 is a fixed step, kept under a new budget; overrides win over the preset.
    madry = kr.BATModel.from_preset("Madry-LA", backbone, epsilon=4 / 255, beta=3.0)
    assert (madry.attack.epsilon, madry.attack.step_size, madry.beta) == (4 / 255, 2 / 255, 3.0)
    assert kr.BATModel(backbone, attack=madry.attack, target="ll").attack.target == "ll"
    assert kr.BATModel(backbone, target=None).attack.target is None  # R-FGSM's attack
    # The other defences' presets.
    mnist = kr.PGDATModel.from_preset("madry-mnist", backbone).attack
    assert (mnist.epsilon, mnist.step_size, mnist.steps) == (0.3, 0.01, 40)
    assert kr.PGDATModel(backbone).attack == kr.PGDATModel.from_preset("madry", backbone).attack
    assert kr.PGDATModel.list_presets() == ["madry", "madry-mnist", "at-awp", "fgsm-rs", "n-fgsm"]
    for model in (kr.BATModel.from_preset("R-MC", backbone), kr.PGDATModel(backbone)):
        assert not {"epsilon", "steps", "step_size", "target"} & set(model.get_config())
