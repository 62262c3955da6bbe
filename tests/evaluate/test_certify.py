"""Randomized-smoothing certification against independent references: the closed-form
largest radius, scipy's Beta quantiles and binomial test, the exact p_A of a linear
classifier (a half-space: p_A = Phi(d / sigma)), the N(0, sigma^2) quantiles of the noise;
plus the wiring (seed streams, records, the curve, the report files)."""
from __future__ import annotations

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy.stats import beta, binom, binomtest, norm

import keras_robust as kr
from keras_robust.evaluate import (ABSTAIN, SmoothedClassifier, SmoothingConfig, certified_accuracy,
                                   certified_report, certify_dataset, clopper_pearson,
                                   predict_from_counts, radius_from_counts)

CLASSES = 10
SHAPE = (2, 2, 1)


def _constant_model(answer: int, shape=SHAPE, classes=CLASSES) -> keras.Model:
    """Logits that ignore the input: class `answer` first by a margin of 10."""
    inputs = keras.Input(shape)
    dense = keras.layers.Dense(classes)
    model = keras.Model(inputs, dense(keras.layers.Flatten()(inputs)))
    dense.set_weights([np.zeros((int(np.prod(shape)), classes), "float32"),
                       10.0 * np.eye(classes, dtype="float32")[answer]])
    return model


def _linear_model(weights, bias, shape=SHAPE) -> keras.Model:
    inputs = keras.Input(shape)
    dense = keras.layers.Dense(weights.shape[1])
    model = keras.Model(inputs, dense(keras.layers.Flatten()(inputs)))
    dense.set_weights([weights.astype("float32"), bias.astype("float32")])
    return model


def _alternating(x, training=False):
    """A 'model' whose answer depends on the sample's index: classes 0 and 3 in turn."""
    return 10.0 * tf.one_hot(3 * (tf.range(tf.shape(x)[0]) % 2), CLASSES)


# ------------------------------------------------------------------ the closed forms
def test_the_largest_radius_constant_at_n_1e4_alpha_1e3():
    # All n samples agree: p_lower = Beta.ppf(alpha, n, 1) = alpha^(1/n).
    assert norm.ppf(0.001 ** (1 / 10_000)) == pytest.approx(3.1986, abs=1e-4)
    assert beta.ppf(0.001, 10_000, 1) == pytest.approx(0.001 ** (1 / 10_000), rel=1e-12)
    assert SmoothingConfig(sigma=1.0, n=10_000).max_radius() == pytest.approx(3.1986, abs=1e-4)


def test_a_model_that_always_answers_the_label_certifies_exactly_the_largest_radius():
    sigma = 0.5
    config = SmoothingConfig(sigma=sigma, n0=100, n=10_000, alpha=0.001, batch_size=5000)
    smoothed = SmoothedClassifier(_constant_model(7), CLASSES, config)
    certificate = smoothed.certify(np.full(SHAPE, 0.5, "float32"))
    assert certificate.predicted == 7 and certificate.count == 10_000
    assert certificate.radius == pytest.approx(sigma * norm.ppf(0.001 ** (1 / 10_000)), rel=1e-9)
    assert certificate.radius == pytest.approx(3.1986 * sigma, abs=1e-4 * sigma)


CASES = [(1, 10), (5, 10), (9, 10), (10, 10), (550, 1000), (990, 1000), (123, 4567),
         (99_000, 100_000)]


def test_the_lower_bound_is_the_beta_quantile():
    for (k, n), alpha in zip(CASES * 2, [0.001] * len(CASES) + [0.05] * len(CASES)):
        low, high = clopper_pearson(k, n, alpha)
        assert low == pytest.approx(beta.ppf(alpha, k, n - k + 1), rel=1e-12), (k, n, alpha)
        if k < n:
            assert high == pytest.approx(beta.ppf(1 - alpha, k + 1, n - k), rel=1e-12)
        p_lower = beta.ppf(alpha, k, n - k + 1)
        expected = 0.0 if p_lower < 0.5 else 0.25 * norm.ppf(p_lower)
        assert radius_from_counts(k, n, 0.25, alpha) == pytest.approx(expected, rel=1e-12)


def test_the_lower_bound_is_zero_at_k_zero_and_counts_are_checked():
    assert clopper_pearson(0, 50, 0.001)[0] == 0.0
    assert radius_from_counts(0, 50, 0.5, 0.001) == 0.0
    with pytest.raises(ValueError, match="successes"):
        clopper_pearson(11, 10)
    with pytest.raises(ValueError, match="alpha"):
        clopper_pearson(1, 10, alpha=0.0)


# ------------------------------------------------------------------ PREDICT's decision
def test_a_tie_abstains_with_minus_one_not_class_zero():
    config = SmoothingConfig(sigma=0.25, n=1000, batch_size=100)  # even batches: exact halves
    smoothed = SmoothedClassifier(_alternating, CLASSES, config)
    counts = smoothed.counts(np.zeros(SHAPE, "float32"), 1000, seed=0)
    assert counts[0] == counts[3] == 500 and counts.sum() == 1000
    assert smoothed.predict(np.zeros(SHAPE, "float32")) == ABSTAIN == -1
    assert predict_from_counts(counts, 0.001) == -1
    certificate = smoothed.certify(np.zeros(SHAPE, "float32"))
    assert certificate.predicted == -1 and certificate.radius == 0.0


def test_predict_follows_the_two_sided_binomial_test_of_the_top_two():
    cases = [
        [60, 40, 10, 10, 10, 10, 10, 10, 10, 10],   # 60 of 100: p 0.057 (60 of 180 would predict)
        [500, 10, 480, 0, 0, 0, 0, 0, 0, 0],        # the runner-up is class 2, not class 1
        [0, 0, 0, 950, 50, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0, 0, 0, 3, 25],
        [7, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0, 0, 0, 3, 5],
    ]
    decisions = []
    for counts in cases:
        ordered = sorted(counts, reverse=True)
        p_value = binomtest(ordered[0], ordered[0] + ordered[1], 0.5).pvalue
        expected = -1 if p_value > 0.001 else int(np.argmax(counts))
        assert predict_from_counts(np.array(counts), 0.001) == expected, counts
        decisions.append(expected)
    assert decisions == [-1, -1, 3, 9, -1, -1]


def test_predict_agrees_with_the_label_on_a_clear_model():
    smoothed = SmoothedClassifier(_constant_model(0), CLASSES, SmoothingConfig(sigma=0.5, n=200))
    assert smoothed.predict(np.zeros(SHAPE, "float32")) == 0  # class 0 is a class, not -1


# ------------------------------------------------------------------ soundness on a half-space
def _half_space_run(points: int, n: int, seed: int = 0):
    """A 2-class linear f on 1x1x4 images: f(x) = 0 iff u.x + c > 0, |u| = 1, so the
    smoothed classifier's p_A = Phi(d / sigma), d = |u.x + c| the distance to the boundary."""
    rng = np.random.default_rng(seed)
    u = rng.normal(size=4)
    u /= np.linalg.norm(u)
    c = -u.sum() / 2                                     # the boundary through the cube's centre
    model = _linear_model(np.stack([u / 2, -u / 2], 1), np.array([c / 2, -c / 2]), (1, 1, 4))
    x = rng.uniform(0, 1, (points, 1, 1, 4)).astype("float32")
    signed = x.reshape(points, 4).astype(np.float64) @ u + c
    sigma, alpha = 0.12, 0.001
    smoothed = SmoothedClassifier(model, 2, SmoothingConfig(sigma=sigma, n0=100, n=n,
                                                            alpha=alpha, batch_size=n))
    certificates = [smoothed.certify(image, index) for index, image in enumerate(x)]
    predicted = np.array([c.predicted for c in certificates])
    radius = np.array([c.radius for c in certificates])
    return predicted, radius, (signed < 0).astype(int), np.abs(signed), norm.cdf(np.abs(signed) / sigma)


def _check_half_space(points: int, n: int):
    predicted, radius, side, distance, p_a = _half_space_run(points, n)
    # A certificate fails when g's class is wrong or the radius exceeds the true distance;
    # each answer fails with probability <= alpha, so the count is at most Binomial(points,
    # alpha): allow its 1 - 1e-6 quantile.
    failed = (predicted != -1) & ((predicted != side) | (radius > distance))
    assert failed.sum() <= binom.ppf(1 - 1e-6, points, 0.001), failed.sum()
    # Tightness: radius / d = Phi^-1(p_lower) / Phi^-1(p_A); at n = 5000 the one-sided 0.999
    # bound is p_A - 3.1 sqrt(p_A (1 - p_A) / 5000), which measured gives a median ratio of
    # 0.92 over these points (0.88 at n = 2000, 0.95 at n = 10^4). Where p_A >= 0.999 the
    # radius saturates at sigma Phi^-1(alpha^(1/n)), so those points are left out.
    keep = p_a < 0.999
    assert np.median(radius[keep] / distance[keep]) >= 0.9
    assert (predicted[p_a > 0.9999] == side[p_a > 0.9999]).all()


def test_certificates_of_a_half_space_are_sound_and_tight():
    _check_half_space(points=250, n=5000)


@pytest.mark.slow
def test_certificates_of_a_half_space_are_sound_and_tight_on_1000_points():
    _check_half_space(points=1000, n=5000)


# ------------------------------------------------------------------ the noise and its seeds
def test_the_noise_is_sigma_times_a_standard_normal_and_not_clipped():
    """A read-out of one pixel of a zero image: its class is the interval of the noisy value
    among (-inf, -sigma, 0, sigma, inf); N(0, sigma^2) puts 0.1587, 0.3413, 0.3413, 0.1587 there
    (clipping to [0, 1] would leave the first two empty)."""
    sigma = 0.3

    def read_out(x, training=False):
        value = x[:, 1, 0, 0]
        index = tf.add_n([tf.cast(value >= t, tf.int32) for t in (-sigma, 0.0, sigma)])
        return tf.one_hot(index, 4)

    n = 20_000
    smoothed = SmoothedClassifier(read_out, 4, SmoothingConfig(sigma=sigma, batch_size=250))
    counts = smoothed.counts(np.zeros(SHAPE, "float32"), n, seed=5)
    expected = np.diff(norm.cdf([-np.inf, -1.0, 0.0, 1.0, np.inf]))
    error = np.sqrt(expected * (1 - expected) / n)
    np.testing.assert_array_less(np.abs(counts / n - expected), 5 * error)
    # Each batch draws its own noise: two batches are not one batch counted twice.
    one = smoothed.counts(np.zeros(SHAPE, "float32"), 250, seed=5)
    assert not np.array_equal(smoothed.counts(np.zeros(SHAPE, "float32"), 500, seed=5), 2 * one)


def test_same_seed_same_counts_other_seed_other_counts():
    rng = np.random.default_rng(0)
    model = _linear_model(rng.normal(size=(4, CLASSES)), np.zeros(CLASSES))
    smoothed = SmoothedClassifier(model, CLASSES, SmoothingConfig(sigma=0.5, batch_size=64))
    image = np.full(SHAPE, 0.5, "float32")
    first = smoothed.counts(image, 500, seed=1)
    assert first.sum() == 500 and (first > 0).sum() >= 3
    np.testing.assert_array_equal(first, smoothed.counts(image, 500, seed=1))
    assert not np.array_equal(first, smoothed.counts(image, 500, seed=2))
    again = SmoothedClassifier(model, CLASSES, SmoothingConfig(sigma=0.5, batch_size=64))
    np.testing.assert_array_equal(first, again.counts(image, 500, seed=1))


def test_certify_counts_the_top_class_on_a_fresh_stream():
    rng = np.random.default_rng(0)
    model = _linear_model(rng.normal(size=(4, CLASSES)), np.zeros(CLASSES))
    config = SmoothingConfig(sigma=0.5, n0=50, n=500, batch_size=128, seed=3)
    smoothed = SmoothedClassifier(model, CLASSES, config)
    image = np.full(SHAPE, 0.5, "float32")
    seeds = {s: smoothed.stream_seed(4, s).numpy() for s in ("selection", "estimation",
                                                             "prediction")}
    assert len({tuple(seed) for seed in seeds.values()}) == 3
    assert not np.array_equal(smoothed.stream_seed(5, "estimation"), seeds["estimation"])
    certificate = smoothed.certify(image, index=4)
    top = int(np.argmax(smoothed.counts(image, 50, seeds["selection"])))
    estimation = smoothed.counts(image, 500, seeds["estimation"])
    assert certificate.count == estimation[top]
    assert certificate.count != smoothed.counts(image, 500, seeds["selection"])[top]
    assert certificate.p_lower == pytest.approx(beta.ppf(0.001, estimation[top],
                                                         500 - estimation[top] + 1))


# ------------------------------------------------------------------ records, curve, report
def _records_data(points=6):
    rng = np.random.default_rng(1)
    model = _linear_model(3 * rng.normal(size=(4, CLASSES)), rng.normal(size=CLASSES))
    images = rng.uniform(0, 1, (points, *SHAPE)).astype("float32")
    labels = np.argmax(model.predict(images, verbose=0), -1)
    labels[0] = (labels[0] + 1) % CLASSES                # one wrong label
    return model, images, labels


def test_certify_dataset_records_and_the_certified_accuracy_curve():
    model, images, labels = _records_data()
    config = SmoothingConfig(sigma=0.25, n0=20, n=400, batch_size=200)
    records = certify_dataset(model, images, tf.constant(labels), config, progress=False)
    assert [r["index"] for r in records] == list(range(6))
    smoothed = SmoothedClassifier(model, CLASSES, config)
    for record, image, label in zip(records, images, labels):
        certificate = smoothed.certify(image, record["index"])
        assert (record["predicted"], record["radius"]) == (certificate.predicted,
                                                           certificate.radius)
        assert record["correct"] == (certificate.predicted == label) and record["label"] == label
    radii = [0.0, 0.1, 0.3, 10.0]
    expected = [np.mean([r["correct"] and r["radius"] >= t for r in records]) for t in radii]
    np.testing.assert_allclose(certified_accuracy(records, radii), expected)
    assert certified_accuracy(records, [10.0])[0] == 0.0


def test_abstentions_count_as_wrong_in_the_curve():
    records = [dict(correct=False, radius=0.0, predicted=-1, label=0),
               dict(correct=True, radius=0.5, predicted=0, label=0)]
    assert certified_accuracy(records, [0.0]).tolist() == [0.5]


def test_certified_report_writes_the_json_and_the_plot(tmp_path):
    model, images, labels = _records_data(4)
    config = SmoothingConfig(sigma=0.25, n0=20, n=200, batch_size=200)
    report = certified_report(model, (images, labels), config, radii=(0.0, 0.25, 0.5),
                              output_dir=str(tmp_path), progress=False)
    saved = json.loads((tmp_path / "certified.json").read_text())
    assert saved["config"] == config.get_config()
    assert saved["radii"] == [0.0, 0.25, 0.5] and len(saved["records"]) == 4
    assert saved["certified_accuracy"] == pytest.approx(
        certified_accuracy(saved["records"], [0.0, 0.25, 0.5]).tolist())
    assert "smoothed" in saved["note"].lower() and "L2" in saved["note"] and saved["seconds"] > 0
    assert (tmp_path / "certified_accuracy.png").stat().st_size > 1000
    assert report.paths["certified.json"].endswith("certified.json")
    assert "r=0.25" in report.summary()


# ------------------------------------------------------------------ clear errors
def test_bad_settings_are_refused():
    for fields, error, match in [
        (dict(sigma=0.0), ValueError, "sigma"),
        (dict(sigma=0.25, n=0), ValueError, "`n`"),
        (dict(sigma=0.25, alpha=1.0), ValueError, "alpha"),
        (dict(sigma=0.25, batch_size=1.5), TypeError, "batch_size"),
    ]:
        with pytest.raises(error, match=match):
            SmoothingConfig(**fields)


def test_bad_inputs_are_refused():
    config = SmoothingConfig(sigma=0.25, n0=10, n=20)
    model = _constant_model(1)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        certify_dataset(model, np.full((2, *SHAPE), 255.0, "float32"), [0, 1], config, False)
    with pytest.raises(ValueError, match="labels"):
        certify_dataset(model, np.zeros((2, *SHAPE), "float32"), [0, 1, 2], config, False)
    with pytest.raises(ValueError, match=r"class indices in \[0, 10\)"):
        certify_dataset(model, tf.zeros((2, *SHAPE)), tf.constant([0, 10]), config, False)
    with pytest.raises(TypeError, match="config"):
        SmoothedClassifier(model, CLASSES, dict(sigma=0.25))
    with pytest.raises(ValueError, match="one image"):
        SmoothedClassifier(model, CLASSES, config).counts(np.zeros((1, *SHAPE), "float32"), 5, 0)
