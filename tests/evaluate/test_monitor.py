"""`RobustAccuracyMonitor`: its robust accuracy against the closed form of a linear
model, its curve in History, and the stop-and-restore on a fall (the early stopping
of single-step training), on a scripted curve where stopping at the previous epoch,
at the wrong epoch or not restoring all differ."""
from __future__ import annotations

import keras
import numpy as np
import pytest

import keras_robust as kr
from keras_robust.attacks import AttackConfig
from keras_robust.evaluate import RobustAccuracyMonitor
from tests.helpers import linear_model

SHAPE = (4, 4, 3)
CLASSES = 10


def _linear_robust(W, b, x, y, eps):
    """Closed form for logits = flatten(x) W + b in the L-inf ball (no [0, 1] clip binding):
    the worst margin of class y over j is (z_y - z_j) - eps * ||W_y - W_j||_1."""
    flat = x.reshape(len(x), -1).astype(np.float64)
    z = flat @ W + b
    margins = np.stack([
        z[np.arange(len(x)), y] - z[:, j] - eps * np.abs(W[:, y] - W[:, [j]]).sum(axis=0)
        for j in range(W.shape[1])], axis=1)
    margins[np.arange(len(x)), y] = np.inf
    return margins.min(axis=1), z.argmax(axis=1) == y


def test_robust_accuracy_matches_the_linear_closed_form():
    backbone = linear_model(SHAPE, CLASSES, scale=0.3)
    W, b = (w.astype(np.float64) for w in backbone.get_layer("linear").get_weights())
    rng = np.random.default_rng(0)
    x = rng.uniform(0.3, 0.7, (400, *SHAPE)).astype("float32")
    y = (np.arange(400) * 3 % CLASSES).astype("int32")
    y = np.where(rng.random(400) < 0.6, (x.reshape(400, -1) @ W + b).argmax(axis=1), y)
    margin, clean = _linear_robust(W, b, x, y, 2 / 255)
    keep = np.abs(margin) > 0.05  # away from the boundary: PGD decides each one surely
    x, y, margin, clean = x[keep], y[keep], margin[keep], clean[keep]
    assert 0.2 < (margin > 0).mean() < 0.8 and not np.all(clean == (margin > 0))
    monitor = RobustAccuracyMonitor(x, y, AttackConfig(epsilon=2 / 255, rel_stepsize=0.25, steps=20),
                                    verbose=False)
    got_clean, got_robust = monitor.measure(backbone)
    assert got_clean == pytest.approx(clean.mean())
    assert got_robust == pytest.approx((margin > 0).mean())


class _Scripted(RobustAccuracyMonitor):
    """A monitor whose measurements follow a script (the stop logic, alone)."""

    def __init__(self, curve, **kwargs):
        super().__init__(np.zeros((1, *SHAPE), "float32"), [0], verbose=False, **kwargs)
        self.curve = list(curve)

    def measure(self, model=None):
        return 0.9, self.curve[len(self.history)]


class _Snapshots(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.weights = {}

    def on_epoch_end(self, epoch, logs=None):
        self.weights.setdefault(epoch + 1, [w.copy() for w in self.model.get_weights()])


def _fit(monitor, epochs=6):
    model = kr.RobustModel(linear_model(SHAPE, CLASSES), seed=0)
    model.compile(optimizer=keras.optimizers.SGD(0.5))
    rng = np.random.default_rng(1)
    x, y = rng.random((16, *SHAPE), dtype=np.float32), np.arange(16) % CLASSES
    snapshots = _Snapshots()  # before the monitor: it sees each epoch's weights unrestored
    history = model.fit(x, y, epochs=epochs, batch_size=8, verbose=0,
                        callbacks=[snapshots, monitor])
    return model, snapshots.weights, history


def test_a_fall_below_the_best_stops_and_restores_the_best_epoch():
    """Best 0.5 at epoch 2; 0.4 (epoch 3) is within the drop, 0.25 (epoch 4) is not.
    Stopping on the previous epoch's value (0.4 - 0.25 < 0.2) would not stop here."""
    monitor = _Scripted([0.3, 0.5, 0.4, 0.25, 0.5, 0.5], drop=0.2)
    model, weights, history = _fit(monitor)
    assert monitor.fired_epoch == 4 and monitor.best_epoch == 2
    assert len(history.history["loss"]) == 4
    assert history.history["monitor_robust_accuracy"] == [0.3, 0.5, 0.4, 0.25]
    for got, want in zip(model.get_weights(), weights[2]):
        np.testing.assert_array_equal(got, want)
    assert not np.array_equal(weights[2][0], weights[4][0])


def test_without_a_drop_it_only_measures():
    monitor = _Scripted([0.5, 0.0, 0.0], drop=None)
    model, weights, history = _fit(monitor, epochs=3)
    assert monitor.fired_epoch is None and len(history.history["loss"]) == 3
    for got, want in zip(model.get_weights(), weights[3]):
        np.testing.assert_array_equal(got, want)


def test_the_plot_draws_the_measured_curve(tmp_path, monkeypatch):
    from keras_robust.evaluate import plots

    monitor = _Scripted([0.3, 0.5, 0.25], drop=0.2)
    _fit(monitor, epochs=3)
    drawn = {}
    monkeypatch.setattr(plots, "line_plot", lambda path, xs, ys, xlabel, title, **kw:
                        drawn.update(xs=xs, ys=ys, title=title, **kw) or path)
    monitor.plot(str(tmp_path / "curve.png"))
    assert drawn["xs"] == [1, 2, 3] and drawn["ys"] == [0.3, 0.5, 0.25]  # robust, by epoch
    assert drawn["extra"]["clean"][0] == [1, 2, 3]
    assert "best 50.0% at epoch 2" in drawn["title"] and "stopped at epoch 3" in drawn["title"]
    monkeypatch.undo()
    path = monitor.plot(str(tmp_path / "curve.png"))
    assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="after `fit`"):
        RobustAccuracyMonitor(np.zeros((2, *SHAPE), "float32"), [0, 1]).plot(str(tmp_path / "x.png"))


def test_every_skips_epochs_but_measures_the_last():
    monitor = _Scripted([0.5, 0.5], every=2)
    _, _, history = _fit(monitor, epochs=3)
    assert [epoch for epoch, _, _ in monitor.history] == [2, 3]


def test_bad_settings_are_refused():
    x = np.zeros((2, *SHAPE), "float32")
    with pytest.raises(ValueError, match="drop"):
        RobustAccuracyMonitor(x, [0, 1], drop=1.5)
    with pytest.raises(ValueError, match="epsilon set"):
        RobustAccuracyMonitor(x, [0, 1], AttackConfig(epsilon=None))
    with pytest.raises(ValueError, match="one label per image"):
        RobustAccuracyMonitor(x, [0, 1, 2])
    with pytest.raises(ValueError, match="non-empty batch"):
        RobustAccuracyMonitor(np.zeros((0, *SHAPE), "float32"), [])
