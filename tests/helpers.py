"""Tiny models and data for fast, meaningful tests."""
from __future__ import annotations

import os
import subprocess
import sys

import keras
import numpy as np
import tensorflow as tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# TensorFlow's C++ start-up lines, and the SavedModel writer's INFO lines, that the
# examples and benches print only with --verbose (keras_robust/_startup.py,
# examples/_flags.py).
STARTUP_NOISE = ("oneDNN custom operations are on", "Could not find cuda drivers",
                 "failed call to cuInit", "cpu_feature_guard", "InitializeLog",
                 "signature_serialization", "Assets written to", "Writing fingerprint")


def linear_model(input_shape=(8, 8, 1), num_classes=3, seed=0, scale=1.0) -> keras.Model:
    """logits = W flatten(x) + b with fixed random weights."""
    rng = np.random.default_rng(seed)
    inputs = keras.Input(input_shape)
    outputs = keras.layers.Dense(num_classes, name="linear")(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, outputs)
    dim = int(np.prod(input_shape))
    model.get_layer("linear").set_weights(
        [scale * rng.normal(size=(dim, num_classes)).astype("float32"),
         rng.normal(size=num_classes).astype("float32")]
    )
    return model


def mlp(input_shape=(8, 8, 1), num_classes=2, width=32) -> keras.Model:
    """Flatten -> Dense(relu) -> Dense: a small backbone that can use pixel positions."""
    inputs = keras.Input(input_shape)
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Dense(width, activation="relu")(x)
    return keras.Model(inputs, keras.layers.Dense(num_classes)(x))


def tiny_cnn(input_shape=(8, 8, 1), num_classes=2) -> keras.Model:
    """Conv + BatchNorm + Flatten + Dense: exercises BatchNorm in defences."""
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(8, 3, padding="same")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(num_classes)(x))


def robust_feature_data(n=2048, seed=0, eta=0.05, noise=0.05, robust_agreement=0.8):
    """A 2-class task with one robust and many non-robust features (Tsipras et al. 2019).

    The top-left 4x4 patch is 0.5 +/- 0.35 and agrees with the label 80% of the
    time (robust: a budget of 0.1 cannot flip it); every other pixel is
    0.5 + eta * (+/-1) + noise, each weak but jointly near-perfect (non-robust:
    an L-inf budget of 2 * eta flips them all). Plain training leans partly on
    the non-robust pixels and loses about half its accuracy under a 0.1 attack
    (measured: 80% clean, 40% robust); adversarial training leans on the patch
    and keeps about 80%.

    Returns:
        (images float32 [n, 8, 8, 1] in [0, 1], labels int32 [n]).
    """
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n).astype(np.int32)
    sign = 2.0 * y - 1.0
    x = 0.5 + eta * sign[:, None, None, None] + noise * rng.normal(size=(n, 8, 8, 1))
    agree = rng.random(n) < robust_agreement
    patch_sign = np.where(agree, sign, -sign)
    x[:, :4, :4, :] = 0.5 + 0.35 * patch_sign[:, None, None, None]
    return np.clip(x, 0.0, 1.0).astype(np.float32), y


def assert_in_ball(x_adv, x, eps, norm):
    """Adversarial images are float32, in [0, 1] and inside the `norm` ball (eps per sample)."""
    x_adv, x = np.asarray(x_adv), np.asarray(x)
    assert x_adv.dtype == np.float32
    assert x_adv.shape == x.shape
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0
    delta = (x_adv - x).reshape(len(x), -1)
    eps = np.broadcast_to(np.asarray(eps, np.float32), (len(x),))
    if norm == "linf":
        assert np.all(np.abs(delta).max(axis=1) <= eps + 1e-6)
    else:
        assert np.all(np.linalg.norm(delta, axis=1) <= eps + 1e-5)


def jpeg_npz(path, n_train=20, n_test=10, seed=0):
    """A small archive in the cifar10_jpeg.npz layout."""
    rng = np.random.default_rng(seed)
    archive = {"label_names": np.array([f"class{i}" for i in range(10)])}
    for split, n in (("train", n_train), ("test", n_test)):
        images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
        blobs = [tf.io.encode_jpeg(image, quality=95).numpy() for image in images]
        offsets = np.cumsum([0] + [len(b) for b in blobs]).astype(np.int64)
        archive[f"{split}_jpeg"] = np.frombuffer(b"".join(blobs), np.uint8)
        archive[f"{split}_offsets"] = offsets
        archive[f"{split}_labels"] = (np.arange(n) % 10).astype(np.uint8)
    np.savez(path, **archive)
    return path


def run_example(name: str, *flags: str, timeout: float = 900,
                check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    """Runs `examples/<name>.py` with absl `flags` from the project root, as a user does.

    With `check` (the default) a non-zero exit fails the test with the end of
    the example's stderr; without it the caller inspects the returned process.
    `env` replaces the environment (default: this process's).
    """
    done = subprocess.run([sys.executable, os.path.join(ROOT, "examples", f"{name}.py"), *flags],
                          capture_output=True, text=True, cwd=ROOT, timeout=timeout, env=env)
    if check:
        assert done.returncode == 0, f"examples/{name}.py {' '.join(flags)}:\n{done.stderr[-3000:]}"
    return done
