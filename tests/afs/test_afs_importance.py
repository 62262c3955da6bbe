"""AFS importance (Fig. 5b): the ratios sum absolute merger weights, worked out by hand."""
from __future__ import annotations

import keras
import numpy as np

import keras_robust as kr
from keras_robust import afs


def _extractor(seed: int, width: int) -> keras.Model:
    """A one-hidden-layer classifier whose layer -2 ("features") has `width` units."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((6, 6, 1))
    features = keras.layers.Dense(width, activation="relu", name="features")(
        keras.layers.Flatten()(inputs))
    return keras.Model(inputs, keras.layers.Dense(3, name="logits")(features), name=f"net{seed}")


def test_afs_importance_ratios_sum_absolute_merger_weights():
    # The importance of an extractor (Fig. 5b of the AFS paper) is the sum of the
    # |weights| of its block of merger rows, normalised over the extractors: weights of
    # opposite signs count, they do not cancel. By hand: blocks of 4 and 2 rows, 3 outputs.
    model = kr.AFSModel([_extractor(1, width=4), _extractor(2, width=2)], steps=1)
    first = np.array([[2.0, -2.0, 1.0], [-1.0, 3.0, -3.0], [0.5, -0.5, 0.0], [-4.0, 4.0, 0.0]])
    second = np.array([[1.0, 1.0, 1.0], [-1.0, -1.0, -1.0]])
    model.merger.set_weights([np.concatenate([first, second]).astype("float32"),
                              np.zeros(3, "float32")])
    total_first, total_second = 2 + 2 + 1 + 1 + 3 + 3 + 0.5 + 0.5 + 4 + 4, 6.0
    expected = [total_first / (total_first + total_second),
                total_second / (total_first + total_second)]
    np.testing.assert_allclose(afs.importance(model), expected, rtol=1e-6)
