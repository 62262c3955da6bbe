"""Fixtures the attack tests share: small models and data for the ball, strength and refusal tests."""
from __future__ import annotations

import keras
import numpy as np
import pytest

from tests.helpers import linear_model, mlp, robust_feature_data


@pytest.fixture
def four_class():
    model = linear_model(num_classes=4, scale=0.5, seed=2)
    rng = np.random.default_rng(1)
    x = rng.random((12, 8, 8, 1), dtype=np.float32)
    y = rng.integers(0, 4, 12).astype(np.int32)
    return model, x, y


@pytest.fixture(scope="module")
def trained_mlp():
    """A plainly trained MLP on the robust/non-robust feature task: ~80% clean,
    well below under an L-inf attack of 0.1."""
    keras.utils.set_random_seed(0)
    x, y = robust_feature_data(n=1024, seed=0)
    model = mlp(num_classes=2, width=32)
    model.compile(keras.optimizers.Adam(1e-2),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=4, batch_size=64, verbose=0)
    x_test, y_test = robust_feature_data(n=256, seed=1)
    return model, x_test, y_test


@pytest.fixture
def separable():
    model = linear_model(num_classes=4, scale=0.5, seed=5)
    rng = np.random.default_rng(4)
    x = 0.25 + 0.5 * rng.random((16, 8, 8, 1), dtype=np.float32)
    y = np.argmax(model.predict(x, verbose=0), -1)
    return model, x, y
