"""BPFC: Algorithm 1's quantiser, the loss by hand, the schedule, and robustness."""
from __future__ import annotations

import functools

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_robust as kr
from keras_robust.bpfc import LambdaSchedule
from keras_robust.quantization import BitPlaneQuantization, bit_plane_quantize
from tests.helpers import linear_model, mlp, robust_feature_data, tiny_cnn


@pytest.mark.parametrize("k", [1, 3, 5, 7])
def test_quantised_values_lie_on_the_grid_and_within_the_error_bound(k):
    x = tf.constant(np.random.default_rng(k).random((16, 8, 8, 3), dtype=np.float32))
    q = np.round(bit_plane_quantize(x, k=k, seed=tf.constant([1, 2])).numpy() * 255)
    grid = set(range(2 ** (k - 1), 256, 2**k)) | {0, 255}
    assert set(np.unique(q).astype(int)) <= grid
    # |q(x) - x| <= 2^(k-1) + 2^(k-2) levels (+ 0.5 for rounding x to 8 bits)
    bound = 2 ** (k - 1) + (2 ** (k - 2) if k >= 2 else 0.5) + 0.5
    assert np.abs(q - x.numpy() * 255).max() <= bound


def _algorithm1(x, noise, k=5, n=8):
    """Algorithm 1 of the paper in NumPy, on [0, 1] images, given the U(-2^(k-2), 2^(k-2))
    noise draw: add noise, zero the k low bits, shift up by 2^(k-1), clip to [0, 2^n - 1]."""
    x_pre = np.round(x.astype(np.float64) * (2**n - 1)) + noise
    x_q = x_pre - np.mod(x_pre, 2**k) + 2 ** (k - 1)
    return np.clip(x_q, 0, 2**n - 1) / (2**n - 1)


@pytest.mark.parametrize("k", [3, 5])
def test_quantiser_equals_algorithm_1_with_the_same_noise_draw(k):
    x = tf.constant(np.random.default_rng(k).random((8, 8, 8, 3), dtype=np.float32))
    seed = tf.constant([4, 2], tf.int64)
    # the draw the quantiser makes for this seed: U(-2^(k-2), 2^(k-2)) (8 levels at k = 5,
    # the authors' `uniform_(-1, 1) * 2^min(p-2, 3)`)
    noise = tf.random.stateless_uniform(x.shape, seed, -(2.0 ** (k - 2)), 2.0 ** (k - 2)).numpy()
    assert np.abs(noise).max() > 0.9 * 2 ** (k - 2)
    q = bit_plane_quantize(x, k=k, seed=seed).numpy()
    np.testing.assert_allclose(q, _algorithm1(x.numpy(), noise, k), atol=1e-6)


def test_the_pre_noise_moves_a_level_to_the_neighbouring_bin_as_often_as_it_should():
    # Level 100 at k = 5: x_pre ~ U(92, 108) falls in [64, 96) (-> 80) with probability
    # 4 / 16 and in [96, 128) (-> 112) with 12 / 16; without noise it is always 112.
    # Level 70: U(62, 78) -> 48 (2/16) or 80 (14/16).
    for level, low, p_low, high in ((100, 80, 0.25, 112), (70, 48, 0.125, 80)):
        x = tf.fill([4, 32, 32, 3], level / 255)
        for seed in ([0, 1], [7, 3]):
            q = np.round(bit_plane_quantize(x, k=5, seed=tf.constant(seed)).numpy() * 255)
            assert set(np.unique(q)) == {low, high}
            assert np.mean(q == low) == pytest.approx(p_low, abs=0.02)
    a = bit_plane_quantize(x, k=5, seed=tf.constant([0, 1])).numpy()
    b = bit_plane_quantize(x, k=5, seed=tf.constant([0, 2])).numpy()
    assert 0.1 < np.mean(a != b) < 0.4  # two draws disagree on ~2 p (1 - p) = 22% of pixels


def test_without_noise_it_keeps_the_high_bit_planes():
    levels = tf.constant(np.arange(256, dtype=np.float32).reshape(1, 16, 16, 1) / 255)
    q = np.round(bit_plane_quantize(levels, k=5, noise=False).numpy() * 255).astype(int).ravel()
    expected = np.minimum((np.arange(256) // 32) * 32 + 16, 255)
    np.testing.assert_array_equal(q, expected)


def test_layer_is_identity_at_inference_and_reproducible_in_training():
    x = tf.constant(np.random.default_rng(0).random((4, 8, 8, 3), dtype=np.float32))
    layer = BitPlaneQuantization(k=5, seed=3)
    np.testing.assert_array_equal(layer(x, training=False).numpy(), x.numpy())
    np.testing.assert_array_equal(layer(x).numpy(), x.numpy())
    a = BitPlaneQuantization(k=5, seed=3)(x, training=True).numpy()
    b = BitPlaneQuantization(k=5, seed=3)(x, training=True).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, x.numpy())
    with pytest.raises(ValueError, match="bits - 1"):
        BitPlaneQuantization(k=8, bits=8)


def _graph_op_types(saved_model_dir: str) -> set[str]:
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    with open(f"{saved_model_dir}/saved_model.pb", "rb") as f:
        proto.ParseFromString(f.read())
    graph = proto.meta_graphs[0].graph_def
    ops = {node.op for node in graph.node}
    for function in graph.library.function:
        ops |= {node.op for node in function.node_def}
    return ops


def test_quantiser_is_absent_from_exported_graphs(tmp_path):
    # A user model with the layer: inference is the identity, nothing is exported.
    inputs = keras.Input((8, 8, 1))
    outputs = tiny_cnn(num_classes=3)(BitPlaneQuantization(k=5)(inputs))
    user_model = keras.Model(inputs, outputs)
    user_model.export(str(tmp_path / "user"), verbose=False)
    assert "FloorMod" not in _graph_op_types(str(tmp_path / "user"))
    # BPFCModel: serving is the backbone alone.
    model = kr.BPFCModel(tiny_cnn(num_classes=3), seed=0)
    model.compile(optimizer="sgd")
    x = np.random.default_rng(0).random((16, 8, 8, 1), dtype=np.float32)
    model.fit(x, np.arange(16) % 3, batch_size=8, epochs=1, verbose=0)
    model.export(str(tmp_path / "bpfc"), verbose=False)
    ops = _graph_op_types(str(tmp_path / "bpfc"))
    assert "FloorMod" not in ops and "StatelessRandomUniformV2" not in ops
    loaded = tf.saved_model.load(str(tmp_path / "bpfc"))  # keep a reference: it owns the variables
    np.testing.assert_allclose(loaded.serve(x).numpy(), model.predict(x, verbose=0), atol=1e-5)


def _quantized_by_hand(x):
    """Algorithm 1 without noise at k = 5: 32-level bins, centred, clipped to 255."""
    return (np.minimum((np.round(x * 255) // 32) * 32 + 16, 255) / 255).astype(np.float32)


def test_loss_equals_hand_computation_on_a_tiny_model():
    model_backbone = linear_model(input_shape=(4, 4, 1), num_classes=3, scale=2.0)
    model = kr.BPFCModel(model_backbone, k=5, lam=2.5, noise=False, seed=0)
    model.compile(optimizer=keras.optimizers.SGD(0.0))
    rng = np.random.default_rng(0)
    x = rng.random((8, 4, 4, 1), dtype=np.float32)
    y = np.array([0, 1, 2, 0, 1, 2, 0, 1])
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    weights, bias = model_backbone.get_layer("linear").get_weights()
    q = _quantized_by_hand(x)
    g = x.reshape(8, -1) @ weights + bias
    gq = q.reshape(8, -1) @ weights + bias
    log_probs = g - np.log(np.exp(g).sum(-1, keepdims=True))
    expected = -np.mean(log_probs[np.arange(8), y]) + 2.5 * np.mean(np.sum((g - gq) ** 2, -1))
    np.testing.assert_allclose(history.history["loss"][0], expected, rtol=1e-4)


@pytest.mark.parametrize("passes", ["separate", "joint"])
def test_passes_normalise_the_two_views_apart_or_together(passes):
    """With BatchNorm, "separate" normalises x and q(x) by their own batch
    statistics (the authors' two passes) and "joint" by the concatenation's."""
    backbone = tiny_cnn(input_shape=(8, 8, 1), num_classes=3)
    reference = keras.models.clone_model(backbone)
    reference.set_weights(backbone.get_weights())
    model = kr.BPFCModel(backbone, k=5, lam=2.0, noise=False, passes=passes, seed=0)
    model.compile(optimizer=keras.optimizers.SGD(0.0))
    x = np.random.default_rng(1).random((8, 8, 8, 1), dtype=np.float32)
    y = np.arange(8) % 3
    loss = model.fit(x, y, batch_size=8, epochs=1, verbose=0).history["loss"][0]
    q = _quantized_by_hand(x)
    if passes == "separate":
        g, gq = reference(x, training=True).numpy(), reference(q, training=True).numpy()
    else:
        g, gq = np.split(reference(np.concatenate([x, q]), training=True).numpy(), 2)
    log_probs = g - np.log(np.exp(g).sum(-1, keepdims=True))
    expected = -np.mean(log_probs[np.arange(8), y]) + 2.0 * np.mean(np.sum((g - gq) ** 2, -1))
    np.testing.assert_allclose(loss, expected, rtol=1e-4)
    assert kr.BPFCModel.from_config(model.get_config()).passes == passes
    with pytest.raises(ValueError, match="passes"):
        kr.BPFCModel(tiny_cnn(), passes="both")


def _authors_per_epoch(max_epochs=100, l_reg=1.0, mul_ru=9.0, base_lr=0.1):
    """(lambda, lr) each epoch trains with, transcribed from the training loop of
    val-iisc/BPFC CIFAR10/bpfc_cifar10.py: `for epoch in range(epochs):` trains, then
    `if epoch == 25: l_reg *= mul_ru; lr = base_lr / 5` (50: / 25, 75: / 125)."""
    lr, rows = base_lr, []
    for epoch in range(max_epochs):
        rows.append((l_reg, lr))
        if epoch == 25:
            l_reg, lr = l_reg * mul_ru, base_lr / 5
        elif epoch == 50:
            l_reg, lr = l_reg * mul_ru, base_lr / 25
        elif epoch == 75:
            l_reg, lr = l_reg * mul_ru, base_lr / 125
    return rows


def test_lambda_and_lr_follow_the_authors_loop_every_epoch():
    authors = _authors_per_epoch()
    schedule = LambdaSchedule.authors(100)
    assert [schedule(e) for e in range(100)] == [lam for lam, _ in authors]
    scheduler = kr.bpfc.LambdaScheduler()  # what BPFCModel.fit runs
    model = kr.BPFCModel(tiny_cnn(num_classes=3), lam_schedule=schedule)
    scheduler.set_model(model)
    for epoch, (lam, _) in enumerate(authors):
        scheduler.on_epoch_begin(epoch)
        assert float(model.lam.numpy()) == lam, epoch
    # The example's learning rate: piecewise at the same boundaries, x0.2 each, checked
    # at the first, a middle and the last of the 10 steps of every epoch.
    from keras_robust import experiment

    optimizer = experiment.sgd(100, 10, 0.1, "piecewise", boundaries=schedule.boundaries,
                               decay_rate=0.2)
    for step_in_epoch in (0, 5, 9):
        rates = []
        for epoch in range(100):
            optimizer.iterations.assign(10 * epoch + step_in_epoch)
            rates.append(float(optimizer.learning_rate))
        np.testing.assert_allclose(rates, [lr for _, lr in authors], rtol=1e-6,
                                   err_msg=f"step {step_in_epoch} of each epoch")


def test_lambda_schedule_steps_up_per_epoch_and_serialises(tmp_path):
    schedule = LambdaSchedule.authors(100)
    assert schedule.boundaries == [26, 51, 76] and schedule.values == [1.0, 9.0, 81.0, 729.0]
    model = kr.BPFCModel(tiny_cnn(num_classes=3), lam_schedule=LambdaSchedule([1, 2], [1, 9, 81]),
                         seed=0)
    model.compile(optimizer="sgd")
    x = np.random.default_rng(0).random((16, 8, 8, 1), dtype=np.float32)
    history = model.fit(x, np.arange(16) % 3, batch_size=8, epochs=3, verbose=0)
    assert history.history["lambda"] == [1.0, 9.0, 81.0]
    model.save(str(tmp_path / "bpfc.keras"))
    loaded = keras.saving.load_model(str(tmp_path / "bpfc.keras"), safe_mode=True)
    assert loaded.lam_schedule.values == [1.0, 9.0, 81.0] and loaded.k == 5
    with pytest.raises(ValueError, match="values"):
        LambdaSchedule([1, 2], [1.0])


def test_bpfc_is_more_robust_than_plain_training():
    # Quantising to 32 levels erases the weak non-robust pixels (+-13 levels) but not
    # the robust patch (+-89 levels), so consistency pushes the model onto the patch.
    x, y = robust_feature_data(2048, seed=0)
    x_test, y_test = robust_feature_data(512, seed=1)
    attack = functools.partial(kr.attacks.pgd, epsilon=0.1, step_size=0.025, steps=10, seed=0)
    scores = {}
    for name, make in (("plain", lambda: kr.RobustModel(mlp(), seed=0)),
                       ("bpfc", lambda: kr.BPFCModel(mlp(), k=5, lam=9.0, seed=0))):
        keras.utils.set_random_seed(0)
        model = make()
        model.compile(optimizer=keras.optimizers.Adam(3e-3), metrics=["accuracy"])
        model.fit(x, y, batch_size=64, epochs=8, verbose=0)
        scores[name] = kr.evaluate.robust_accuracy(model, x_test, y_test, attack)
    assert scores["bpfc"] > scores["plain"] + 0.2, scores
