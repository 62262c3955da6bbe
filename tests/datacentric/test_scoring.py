"""The competition score R (eq. 7) and its test sets, crafted on a different ensemble."""
from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest

from keras_robust import corruptions as kc
from keras_robust import datacentric as dc
from keras_robust import evaluate

from tests.helpers import tiny_cnn

SHAPE = (16, 16, 3)


def paper_steps(steps):
    """The paper's eq. 6 with `steps` steps."""
    return dc.Eq6Config().replace(steps=steps)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (24, *SHAPE), dtype=np.uint8), rng.integers(0, 3, 24)


def test_test_sets_hold_the_same_images_clean_adversarial_and_corrupted(data):
    x, y = data
    train_ensemble = [tiny_cnn(SHAPE, 3)]
    test_ensemble = [tiny_cnn(SHAPE, 3), tiny_cnn(SHAPE, 3)]
    sets = dc.build_test_sets(x, y, test_ensemble, exclude=train_ensemble, attack=paper_steps(3),
                              options=dc.RunOptions(seed=1, batch_size=10))
    assert np.array_equal(sets.clean[0], x) and np.array_equal(sets.clean[1], y)
    for images, labels in (sets.adversarial, sets.corrupted, *sets.variants.values()):
        assert images.shape == x.shape and images.dtype == np.uint8
        np.testing.assert_array_equal(labels, y)
    linf = sets.variants["adversarial_linf"][0].astype(int) - x
    assert 0 < np.abs(linf).max() <= 8
    l2 = (sets.variants["adversarial_l2"][0].astype(float) - x) / 255
    assert np.sqrt((l2 ** 2).sum(axis=(1, 2, 3))).max() <= 1.0 + 3 * 0.5 / 255 * np.sqrt(16 * 16 * 3)
    assert not np.array_equal(sets.adversarial[0], x)
    record = sets.details["corruptions"][5]
    np.testing.assert_array_equal(
        sets.corrupted[0][5], kc.corrupt(x[5], record["corruption"], record["severity"],
                                         seed=record["seed"]))
    assert [s["name"] for s in sets.details["surrogates"]] == [m.name for m in test_ensemble]


def test_the_training_ensemble_is_refused_for_the_test_set(tmp_path, data):
    x, y = data
    ensemble = [tiny_cnn(SHAPE, 3), tiny_cnn(SHAPE, 3)]
    with pytest.raises(ValueError, match="DIFFERENT"):
        dc.build_test_sets(x, y, [ensemble[1]], exclude=ensemble, attack=paper_steps(1))
    copy = keras.models.clone_model(ensemble[0])
    copy.set_weights(ensemble[0].get_weights())
    with pytest.raises(ValueError, match="same weights"):
        dc.build_test_sets(x, y, [copy], exclude=ensemble, attack=paper_steps(1))
    out = str(tmp_path / "enhanced")
    result = dc.enhance(x, y, ensemble, attack=paper_steps(1),
                        options=dc.RunOptions(output_dir=out, progress=False))
    for exclude in (out, result, result.metadata):
        with pytest.raises(ValueError, match="same weights"):
            dc.build_test_sets(x, y, [copy], exclude=exclude, attack=paper_steps(1))
    with pytest.warns(UserWarning, match="cannot check"):
        dc.build_test_sets(x, y, [tiny_cnn(SHAPE, 3)], attack=paper_steps(1))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        dc.build_test_sets(x, y, [tiny_cnn(SHAPE, 3)], exclude=out, attack=paper_steps(1))


def test_score_is_the_mean_of_the_three_accuracies(tmp_path, data):
    x, y = data
    model = tiny_cnn(SHAPE, 3)
    sets = dc.build_test_sets(x, y, [tiny_cnn(SHAPE, 3)], exclude=[model], attack=paper_steps(2))
    result = dc.score(model, sets)
    for name, pair in (("clean", sets.clean), ("adversarial", sets.adversarial),
                       ("corrupted", sets.corrupted)):
        assert result[name] == pytest.approx(evaluate.accuracy(model, *pair))
    assert set(result) == {"clean", "adversarial", "corrupted", "R", "adversarial_linf",
                           "adversarial_l2"}
    explicit = dc.score(model, clean=sets.clean, adversarial=sets.adversarial,
                        corrupted=sets.corrupted)
    assert explicit["R"] == result["R"] and "adversarial_linf" not in explicit
    path = str(tmp_path / "sets.npz")
    sets.save(path)
    loaded = dc.TestSets.load(path)
    assert dc.score(model, loaded) == result
    assert dc.Eq6Config.from_config(loaded.details["attack"]) == paper_steps(2)
    with pytest.raises(ValueError, match="missing"):
        dc.score(model, clean=sets.clean, adversarial=sets.adversarial)
    with pytest.raises(ValueError, match="not both"):
        dc.score(model, sets, clean=sets.clean)


def _class_code_model(num_classes=10):
    """A linear model that predicts the class written in pixel (0, 0, 0): c -> (c + 0.5) / C.

    logits_j = 2 a_j v - a_j^2 = v^2 - (v - a_j)^2 with a_j = (j + 0.5) / C and v the pixel,
    so the argmax is the code nearest to v; every other pixel has weight 0.
    """
    codes = (np.arange(num_classes) + 0.5) / num_classes
    model = keras.Sequential([keras.Input(SHAPE), keras.layers.Flatten(),
                              keras.layers.Dense(num_classes)])
    kernel = np.zeros((int(np.prod(SHAPE)), num_classes), np.float32)
    kernel[0] = 2 * codes
    model.layers[-1].set_weights([kernel, (-codes ** 2).astype(np.float32)])
    return model


def _coded_set(rng, predicted, correct):
    """uint8 images that the model classifies as `predicted`; the first `correct` labels agree."""
    images = rng.integers(0, 256, (len(predicted), *SHAPE), dtype=np.uint8)
    images[:, 0, 0, 0] = np.round(255 * (predicted + 0.5) / 10).astype(np.uint8)
    labels = predicted.copy()
    labels[correct:] = (predicted[correct:] + 1 + rng.integers(0, 9, len(predicted) - correct)) % 10
    return images, labels


def test_score_matches_accuracies_known_by_construction():
    # 10 classes, 20 images per set; the model is right on 15 / 8 / 5 of them, so
    # ACC = 0.75 / 0.40 / 0.25 and R = (0.75 + 0.40 + 0.25) / 3 (eq. 7); the variants
    # (6/20 and 2/20) are reported but are not part of R.
    rng = np.random.default_rng(0)
    model = _class_code_model()
    sets = {name: _coded_set(rng, rng.integers(0, 10, 20), correct)
            for name, correct in (("clean", 15), ("adversarial", 8), ("corrupted", 5),
                                  ("adversarial_linf", 6), ("adversarial_l2", 2))}
    expected = {"clean": 0.75, "adversarial": 0.4, "corrupted": 0.25, "R": 1.4 / 3,
                "adversarial_linf": 0.3, "adversarial_l2": 0.1}
    test_sets = dc.TestSets(sets["clean"], sets["adversarial"], sets["corrupted"],
                            {k: sets[k] for k in ("adversarial_linf", "adversarial_l2")}, {})
    assert dc.score(model, test_sets, batch_size=7) == pytest.approx(expected, abs=1e-9)
    explicit = dc.score(model, clean=sets["clean"], adversarial=sets["adversarial"],
                        corrupted=sets["corrupted"])
    assert explicit == pytest.approx({k: expected[k] for k in ("clean", "adversarial",
                                                               "corrupted", "R")}, abs=1e-9)
    # float images in [0, 1] score the same
    as_float = {k: (v[0].astype(np.float32) / 255, v[1]) for k, v in sets.items()}
    assert dc.score(model, clean=as_float["clean"], adversarial=as_float["adversarial"],
                    corrupted=as_float["corrupted"])["R"] == pytest.approx(1.4 / 3, abs=1e-9)
