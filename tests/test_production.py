"""Production: several devices and machines, preemption, serving, mixed precision, XLA.

Every test is parametrised over tests/defense_cases.py::CASES, so a new
defence is covered by adding one line there.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_robust as kr
from tests.defense_cases import CASES
from tests.helpers import mlp, tiny_cnn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAMES = sorted(CASES)


def _data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 8, 8, 1), dtype=np.float32), (np.arange(n) % 3).astype(np.int32)


def _fit_once(case, strategy, epochs=1):
    """One epoch of the deterministic variant on an MLP (no BatchNorm, so the
    per-replica batch statistics of MirroredStrategy cannot differ)."""
    x, y = _data()
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = case.deterministic(lambda: mlp(num_classes=3, width=16))
        model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    history = model.fit(dataset, epochs=epochs, verbose=0)
    return history.history["loss"][-1], model.get_weights()


# Summation order differs between one device and two replicas (all-reduce), so
# parity holds to float32 rounding, not bit for bit.
PARITY_TOLERANCE = 1e-5


@pytest.mark.parametrize("name", NAMES)
def test_mirrored_strategy_matches_a_single_device(name, mirrored_strategy):
    single_loss, single_weights = _fit_once(CASES[name], tf.distribute.get_strategy())
    mirrored_loss, mirrored_weights = _fit_once(CASES[name], mirrored_strategy)
    assert mirrored_loss == pytest.approx(single_loss, rel=PARITY_TOLERANCE, abs=PARITY_TOLERANCE)
    for a, b in zip(single_weights, mirrored_weights):
        np.testing.assert_allclose(a, b, atol=PARITY_TOLERANCE, rtol=PARITY_TOLERANCE)


def test_robustness_report_under_mirrored_strategy(mirrored_strategy):
    x, y = _data(48)
    keras.utils.set_random_seed(0)
    plain = tiny_cnn(num_classes=3)
    weights = plain.get_weights()
    with mirrored_strategy.scope():
        mirrored = tiny_cnn(num_classes=3)
        mirrored.set_weights(weights)
        report = kr.evaluate.robustness_report(mirrored, (x, y), attacks=["fgsm", "pgd7_ce"],
                                               epsilon=0.05, progress=False)
    expected = kr.evaluate.robustness_report(plain, (x, y), attacks=["fgsm", "pgd7_ce"],
                                             epsilon=0.05, progress=False)
    assert report.to_dict()["attacks"]["pgd7_ce"]["accuracy"] == pytest.approx(
        expected.to_dict()["attacks"]["pgd7_ce"]["accuracy"])
    assert report.clean_accuracy == pytest.approx(expected.clean_accuracy)


@pytest.mark.parametrize("name", NAMES)
def test_export_serves_in_a_fresh_process_and_the_cli_lists_serve(tmp_path, name):
    x, y = _data(16)
    keras.utils.set_random_seed(0)
    model = CASES[name].make(lambda: tiny_cnn(num_classes=3))
    model.compile(optimizer="sgd")
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    model.export(str(tmp_path / "served"), verbose=False)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "expected.npy", model.predict(x, verbose=0))
    code = (
        "import sys, numpy as np, tensorflow as tf; p = sys.argv[1]; "
        "m = tf.saved_model.load(p + '/served'); x = np.load(p + '/x.npy'); "
        "d = float(np.abs(m.serve(tf.constant(x)).numpy() - np.load(p + '/expected.npy')).max()); "
        "print(d); sys.exit(0 if d <= 1e-5 else 1)"
    )
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    shown = subprocess.run([cli, "show", "--dir", str(tmp_path / "served"), "--all"],
                           capture_output=True, text=True, timeout=300)
    assert shown.returncode == 0, shown.stderr
    assert "signature_def['serve']" in shown.stdout
    assert "shape: (-1, 8, 8, 1)" in shown.stdout and "DT_FLOAT" in shown.stdout


@pytest.mark.parametrize("name", NAMES)
def test_mixed_precision_trains_and_attacks_stay_float32(name):
    x, y = _data(32)
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        keras.utils.set_random_seed(0)
        model = CASES[name].make(lambda: tiny_cnn(num_classes=3))
        model.compile(optimizer=keras.optimizers.SGD(0.05))
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        before = [w.copy() for w in model.get_weights()]
        history = model.fit(x, y, batch_size=16, epochs=1, verbose=0)
        assert np.isfinite(history.history["loss"][0])
        assert any(not np.array_equal(a, b) for a, b in zip(model.get_weights(), before))
        x_adv = kr.attacks.pgd(model, x, y, 0.05, 0.02, 3, seed=0)
        assert x_adv.dtype == tf.float32
        assert float(tf.reduce_max(tf.abs(x_adv - x))) <= 0.05 + 1e-6
        assert float(tf.reduce_max(tf.abs(x_adv - x))) > 0.0  # gradients did not underflow
    finally:
        keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("name", NAMES)
def test_xla_train_step_matches_the_graph_step(name):
    losses = []
    for jit in (False, True):
        x, y = _data(32)
        keras.utils.set_random_seed(0)
        model = CASES[name].deterministic(lambda: tiny_cnn(num_classes=3))
        model.compile(optimizer=keras.optimizers.SGD(0.05), jit_compile=jit)
        losses.append(model.fit(x, y, batch_size=16, epochs=1, verbose=0).history["loss"][0])
    assert losses[1] == pytest.approx(losses[0], rel=1e-3)


@pytest.mark.parametrize("attack", ["fgsm", "pgd", "pgd_l2", "mi_fgsm", "apgd", "square", "cw_l2"])
def test_attacks_compile_with_xla(attack):
    from tests.helpers import linear_model

    model = linear_model(num_classes=4, scale=2.0)
    x = np.random.default_rng(0).random((8, 8, 8, 1), dtype=np.float32)
    y = np.arange(8) % 4
    calls = {
        "fgsm": lambda jit: kr.attacks.fgsm(model, x, y, 0.05, jit_compile=jit),
        "pgd": lambda jit: kr.attacks.pgd(model, x, y, 0.05, 0.01, 5, random_start=False,
                                          jit_compile=jit),
        "pgd_l2": lambda jit: kr.attacks.pgd(model, x, y, 0.5, 0.1, 5, norm="l2",
                                             random_start=False, jit_compile=jit),
        "mi_fgsm": lambda jit: kr.attacks.mi_fgsm(model, x, y, 0.05, 0.01, 5, smoothing_kernel=3,
                                                  jit_compile=jit),
        "apgd": lambda jit: kr.attacks.apgd(model, x, y, 0.05, steps=10, seed=0, jit_compile=jit),
        "square": lambda jit: kr.attacks.square(model, x, y, 0.05, queries=20, seed=0,
                                                jit_compile=jit),
        "cw_l2": lambda jit: kr.attacks.cw_l2(model, x, y, steps=10, jit_compile=jit),
    }
    graph, xla = (np.asarray(calls[attack](jit)) for jit in (False, True))
    assert xla.dtype == np.float32 and xla.min() >= 0 and xla.max() <= 1
    if attack == "square":
        # Random search: XLA may draw its stateless random numbers with another
        # generator, so compare what the attack achieves, not its pixels.
        assert np.abs(xla - x).max() <= 0.05 + 1e-6

        def accuracy(images):
            return np.mean(np.argmax(model.predict(images, verbose=0), -1) == y)

        assert abs(accuracy(xla) - accuracy(graph)) <= 0.25
        return
    # XLA may reorder float sums; allow rare sign flips of near-zero gradients.
    assert np.mean(np.abs(graph - xla) <= 1e-4) > 0.97


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Three processes per case make this the suite's costliest parametrisation: one case per
# kind of resumed state. pgd_at stands for every defence whose randomness is a draw keyed on
# `step_seed` (plain, BAT, its batch-BN variant, Gaussian noise); BPFC adds its lambda
# schedule, M-TLAT its Mixup draws, AFS its stacked extractors, TRADES the paired passes,
# AWP its gamma schedule and weight perturbation.
SIGKILL_NAMES = ("afs", "bpfc", "mtlat", "pgd_at", "pgd_at_awp", "trades")


@pytest.mark.slow
@pytest.mark.parametrize("name", SIGKILL_NAMES)
def test_backup_and_restore_resumes_after_sigkill(tmp_path, name):
    worker = os.path.join(ROOT, "tests", "workers", "resume.py")
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    straight = subprocess.run(
        [sys.executable, worker, name, str(tmp_path / "backup_a"), str(tmp_path / "a.npz")],
        capture_output=True, text=True, timeout=600, env=env)
    assert straight.returncode == 0, straight.stderr[-2000:]
    marker = tmp_path / "hanging"
    victim = subprocess.Popen(
        [sys.executable, worker, name, str(tmp_path / "backup_b"), str(tmp_path / "b.npz"),
         str(marker)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    deadline = time.time() + 600
    while not marker.exists():
        assert victim.poll() is None, victim.stderr.read().decode()[-2000:]
        assert time.time() < deadline, "the worker never reached epoch 1"
        time.sleep(0.5)
    victim.send_signal(signal.SIGKILL)  # mid-epoch 1, after the epoch-0 backup
    assert victim.wait(timeout=60) == -signal.SIGKILL
    assert not (tmp_path / "b.npz").exists()
    resumed = subprocess.run(
        [sys.executable, worker, name, str(tmp_path / "backup_b"), str(tmp_path / "b.npz")],
        capture_output=True, text=True, timeout=600, env=env)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a, b = np.load(tmp_path / "a.npz"), np.load(tmp_path / "b.npz")
    # Randomness is keyed on (seed, optimizer step), which the backup restores,
    # and the data order is fixed: the resumed run is the uninterrupted one.
    for key in a.files:
        np.testing.assert_allclose(a[key], b[key], atol=1e-6)


@pytest.mark.slow
def test_multi_worker_training_on_two_local_processes(tmp_path):
    ports = [_free_port(), _free_port()]
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    worker = os.path.join(ROOT, "tests", "workers", "multiworker.py")
    processes = []
    for index in range(2):
        config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        env = {**os.environ, "TF_CONFIG": json.dumps(config), "CUDA_VISIBLE_DEVICES": ""}
        processes.append(subprocess.Popen([sys.executable, worker, str(tmp_path)], env=env,
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                          text=True))
    outputs = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr[-3000:]
        outputs.append(json.loads(stdout.strip().splitlines()[-1]))
    assert all(o["replicas"] == 2 for o in outputs)
    assert all(np.isfinite(o["loss"]) for o in outputs)
    chief_model = keras.saving.load_model(str(tmp_path / "model.keras"), safe_mode=True)
    assert isinstance(chief_model, kr.PGDATModel)
    assert outputs[0]["saved"] == str(tmp_path / "model.keras")
    assert outputs[1]["saved"] != str(tmp_path / "model.keras")
    # Synchronous training: gradients are all-reduced, so both workers end with the
    # same trainable weights. (BatchNorm moving statistics are per worker, as in any
    # tf.distribute run without synchronized BatchNorm; the chief's are saved.)
    other = keras.saving.load_model(outputs[1]["saved"], safe_mode=True)
    for a, b in zip(chief_model.trainable_weights, other.trainable_weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)


def test_nothing_in_the_library_pickles():
    package = os.path.join(ROOT, "keras_robust")
    offenders = []
    for folder, _, files in os.walk(package):
        for file in files:
            if file.endswith(".py"):
                text = open(os.path.join(folder, file)).read()
                for needle in ("import pickle", "cloudpickle", "import dill", "allow_pickle=True",
                               "pickle.load", "pickle.dump"):
                    if needle in text:
                        offenders.append(f"{file}: {needle}")
    assert not offenders, offenders


@pytest.mark.parametrize("name", NAMES)
def test_every_saved_defence_loads_in_safe_mode(tmp_path, name):
    model = CASES[name].make(lambda: tiny_cnn(num_classes=3))
    model.compile(optimizer="sgd")
    path = str(tmp_path / f"{name}.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert type(loaded) is type(model)
