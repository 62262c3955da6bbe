"""GaussianNoiseModel: the training batch is x + sigma * a stateless N(0, 1) draw of the
step seed (Box-Muller on Philox integers: XLA-stable), not clipped; a seeded fit is reproducible; bad sigma refused; presets and config round trip."""
from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_robust as kr
from tests.helpers import linear_model

SHAPE = (4, 4, 1)
CLASSES = 10
_SALT = 5  # the model's noise salt, restated: the expected noise is drawn here independently


def _model(sigma=0.25, seed=3):
    model = kr.GaussianNoiseModel(linear_model(SHAPE, CLASSES), sigma=sigma, seed=seed)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    return model


def _box_muller(shape, seed):
    """N(0, 1) by Box-Muller in NumPy from Philox integers k / 2**23 of folds 0 and 1 of seed."""
    def unit(salt):
        folded = tf.random.experimental.stateless_fold_in(seed, salt, alg="philox")
        k = tf.random.stateless_uniform(shape, folded, 0, 2**23, dtype=tf.int32, alg="philox")
        return k.numpy().astype(np.float64) / 2**23
    return np.sqrt(-2 * np.log(unit(0) + 2.0**-23)) * np.cos(2 * np.pi * unit(1))


def test_training_batch_is_x_plus_sigma_times_the_stateless_normal_of_the_step_seed():
    model = _model(sigma=0.5, seed=3)
    x = np.random.default_rng(0).uniform(0, 1, (64, *SHAPE)).astype("float32")
    y = model.label_probabilities(np.arange(64) % CLASSES)
    batch = model.training_batch(tf.constant(x), y, None)
    # Independently: seed [seed, salt] folded by philox with the optimizer step (0), then
    # with the replica (0, the default replica context).
    seed = tf.constant([3, _SALT], tf.int64)
    for data in (tf.constant(0, tf.int64),) * 2:
        seed = tf.random.experimental.stateless_fold_in(seed, data, alg="philox")
    expected = x + 0.5 * _box_muller(x.shape, seed)
    np.testing.assert_allclose(batch.x.numpy(), expected, atol=1e-6)
    np.testing.assert_array_equal(batch.y.numpy(), y.numpy())


def test_noise_statistics_mean_zero_std_sigma_and_not_clipped():
    model = _model(sigma=0.25)
    x = np.full((256, *SHAPE), 0.5, "float32")
    batch = model.training_batch(tf.constant(x), model.label_probabilities(np.zeros(256, int)), None)
    noise = batch.x.numpy() - x
    n = noise.size  # 4096 draws: the mean's standard error is 0.25 / 64
    assert abs(noise.mean()) < 4 * 0.25 / np.sqrt(n)
    assert noise.std() == pytest.approx(0.25, rel=0.05)
    # Not clipped: near the edges of [0, 1] the noisy images leave it on both sides.
    high = model.training_batch(tf.constant(np.full((256, *SHAPE), 0.9, "float32")),
                                batch.y, None).x.numpy()
    low = model.training_batch(tf.constant(np.full((256, *SHAPE), 0.1, "float32")),
                               batch.y, None).x.numpy()
    assert high.max() > 1.0 and low.min() < 0.0


def test_the_noise_changes_with_the_step_and_the_seed():
    model = _model(seed=3)
    x = tf.zeros([8, *SHAPE])
    y = model.label_probabilities(np.zeros(8, int))
    first = model.training_batch(x, y, None).x.numpy()
    assert np.array_equal(first, model.training_batch(x, y, None).x.numpy())
    assert not np.array_equal(first, _model(seed=4).training_batch(x, y, None).x.numpy())
    model.optimizer.iterations.assign(1)
    assert not np.array_equal(first, model.training_batch(x, y, None).x.numpy())


def _fit_weights(seed):
    keras.utils.set_random_seed(0)
    model = _model(sigma=0.5, seed=seed)
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, (32, *SHAPE)).astype("float32")
    y = (np.arange(32) % CLASSES).astype("int32")
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    return model.backbone.get_layer("linear").get_weights()[0]


def test_a_seeded_fit_is_reproducible_and_trains_on_the_noise():
    first = _fit_weights(seed=7)
    np.testing.assert_array_equal(first, _fit_weights(seed=7))
    assert not np.allclose(first, _fit_weights(seed=8))  # another seed, other noise


@pytest.mark.parametrize("sigma", [0.0, -0.25, float("nan"), float("inf")])
def test_a_sigma_that_is_not_positive_is_refused(sigma):
    with pytest.raises(ValueError, match="sigma"):
        kr.GaussianNoiseModel(linear_model(SHAPE, CLASSES), sigma=sigma)


def test_a_sigma_that_is_not_a_number_is_refused():
    with pytest.raises(TypeError, match="sigma"):
        kr.GaussianNoiseModel(linear_model(SHAPE, CLASSES), sigma="0.25")


def test_presets_config_round_trip_and_registration():
    assert kr.GaussianNoiseModel.list_presets() == ["sigma-0.12", "sigma-0.25", "sigma-0.5",
                                                    "sigma-1.0"]
    model = kr.GaussianNoiseModel.from_preset("sigma-1.0", linear_model(SHAPE, CLASSES), seed=2)
    assert model.sigma == 1.0
    config = model.get_config()
    again = kr.GaussianNoiseModel.from_config(config)
    assert (again.sigma, again.seed) == (1.0, 2)
    assert kr.defenses.DEFENSES["gaussian_noise"] is kr.GaussianNoiseModel
    built = kr.defenses.get("gaussian_noise", linear_model(SHAPE, CLASSES), sigma=0.12)
    assert isinstance(built, kr.GaussianNoiseModel) and built.sigma == 0.12


def test_saved_and_loaded_model_keeps_sigma(tmp_path):
    model = _model(sigma=0.12)
    model.ensure_built()
    path = str(tmp_path / "noise.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, kr.GaussianNoiseModel) and loaded.sigma == 0.12
