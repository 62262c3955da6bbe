"""Test configuration shared by the whole suite.

- `@pytest.mark.slow` tests run only with `--slow` (the README's full test
  command, and CI, pass it); the default suite stays under 15 minutes here.
- The CPU is split into two logical devices before TensorFlow starts, so
  `MirroredStrategy` tests run with two replicas on a machine without GPUs.
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
import tensorflow as tf

try:
    _cpus = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(
        _cpus[0], [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
    )
except RuntimeError:  # TensorFlow already initialised by a plugin: one device it is
    pass


def pytest_addoption(parser):
    parser.addoption("--slow", action="store_true", default=False, help="also run slow tests")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long test, runs only with --slow")
    if getattr(config.option, "durations", None) is None:
        # The 30 slowest tests close every run (CI's included): the suite's budget
        # is kept by trimming what this list names. `--durations=N` overrides it.
        config.option.durations = 30


def pytest_collection_modifyitems(config, items):
    if config.getoption("--slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    """Each test starts from a clean Keras session and a fixed seed."""
    import keras

    keras.backend.clear_session()
    keras.utils.set_random_seed(1234)
    yield


@pytest.fixture
def tiny_images() -> tuple[np.ndarray, np.ndarray]:
    """32 random 16x16 RGB images in [0, 1] and labels for 10 classes."""
    rng = np.random.default_rng(0)
    return rng.random((32, 16, 16, 3), dtype=np.float32), rng.integers(0, 10, 32).astype(np.int32)


_MIRRORED = []


@pytest.fixture
def mirrored_strategy() -> tf.distribute.MirroredStrategy:
    """One two-replica MirroredStrategy (two logical CPU devices) for the session.

    On CPU devices MirroredStrategy all-reduces with collective ops, whose
    instance keys clash across programs once `keras.backend.clear_session()`
    has run between tests ("Shape mismatch in the collective instance 100",
    measured here). Reduction to one device has no instance keys and keeps
    everything else MirroredStrategy does (replicas, mirrored variables,
    per-replica steps, reductions); GPUs use NCCL instead of either.
    """
    if not _MIRRORED:
        devices = [d.name for d in tf.config.list_logical_devices("CPU")][:2]
        assert len(devices) == 2, "the CPU split into two logical devices is missing"
        _MIRRORED.append(tf.distribute.MirroredStrategy(
            devices, cross_device_ops=tf.distribute.ReductionToOneDevice()))
    return _MIRRORED[0]
