"""Robust accuracy during training: a callback that measures it each epoch and can stop a collapse.

Two questions need the robust accuracy of every epoch, not only of the last:
whether single-step training has overfitted catastrophically (FGSM accuracy
stays, PGD accuracy falls to zero within an epoch; Wong et al. 2020 stop at
the first fall) and whether multi-step training overfits robustly (Rice et
al. 2020: PGD accuracy on test images peaks, then falls while the training
loss keeps falling). `RobustAccuracyMonitor` answers both: PGD on a fixed set
of images at each epoch end, logged as `monitor_clean_accuracy` and
`monitor_robust_accuracy` (so `History` and summary.json keep the curve), a
result line per epoch, and, with `drop` set, a stop and a restore of the best
epoch's weights when the robust accuracy falls more than `drop` below its best.

Example:

```python
monitor = keras_robust.evaluate.RobustAccuracyMonitor(x_train[:512], y_train[:512], drop=0.2)
model.fit(train_ds, epochs=30, callbacks=[monitor])
monitor.fired_epoch   # None: no catastrophic overfitting
```
"""
from __future__ import annotations

from typing import Any

import keras
import numpy as np

from keras_robust import progress
from keras_robust._validation import check_fraction, check_positive_int
from keras_robust.attacks.config import AttackConfig
from keras_robust.evaluate.metrics import _as_float_images, _as_sparse, predict_logits

# PGD-10 at 8/255 with steps of epsilon / 4 and a random start: the monitor's default attack.
MONITOR_ATTACK = AttackConfig(epsilon=8 / 255, rel_stepsize=0.25, steps=10)


class RobustAccuracyMonitor(keras.callbacks.Callback):
    """PGD robust accuracy on fixed images at each epoch end; optionally stops a collapse.

    An image counts as robust when it is classified correctly both clean and
    attacked (the report's rule). The attack runs with a fixed seed, on the
    model in inference mode (the reference's early stopping attacks in
    `model.train()`; this measures the model that will be deployed), so
    epochs compare on the same draws.

    With `drop` set, the first epoch whose robust accuracy lies more than
    `drop` below the best so far stops training (`model.stop_training`) and,
    with `restore_best_weights`, gets the best epoch's weights back: the
    early stopping of Wong et al.'s FGSM-RS (`train_fgsm.py --early-stop`:
    PGD-5 on one training batch, a fall of 0.2 from the previous epoch),
    measured against the best epoch instead of the previous one, so a slow
    slide is caught too.

    Args:
        images: float [0, 1] (or uint8) images [N, H, W, C]: training images
            to watch for catastrophic overfitting, test images for robust
            overfitting.
        labels: class indices [N] (or one-hot rows).
        attack: the `AttackConfig` (default `MONITOR_ATTACK`, PGD-10 at 8/255
            with steps of 2/255).
        drop: stop when the robust accuracy falls more than this fraction
            below its best (0.2: 20 points), or None to only measure.
        restore_best_weights: on a stop, set the best epoch's weights back.
        every: measure every `every` epochs (and at the last epoch fit runs).
        seed: the attack's seed.
        batch_size: images per attack batch.
        verbose: print one result line per measured epoch (stderr).

    Attributes:
        history: one `(epoch, clean, robust)` per measured epoch (epochs from 1).
        best: the best robust accuracy so far, `best_epoch` its epoch.
        fired_epoch: the epoch that stopped training, or None.

    Example:

    >>> backbone = keras_robust.backbones.small_cnn(input_shape=(8, 8, 3))
    >>> model = keras_robust.RobustModel(backbone)
    >>> model.compile(optimizer="sgd", metrics=["accuracy"])
    >>> x = np.random.default_rng(0).random((32, 8, 8, 3), "float32")
    >>> y = np.arange(32) % 10
    >>> monitor = RobustAccuracyMonitor(x[:8], y[:8], AttackConfig(epsilon=8 / 255, steps=2),
    ...                                 verbose=False)
    >>> history = model.fit(x, y, epochs=2, batch_size=16, callbacks=[monitor], verbose=0)
    >>> len(history.history["monitor_robust_accuracy"]), monitor.fired_epoch
    (2, None)
    """

    def __init__(
        self,
        images: Any,
        labels: Any,
        attack: AttackConfig | None = None,
        drop: float | None = None,
        restore_best_weights: bool = True,
        every: int = 1,
        seed: int = 0,
        batch_size: int = 500,
        verbose: bool = True,
    ):
        super().__init__()
        self.images = _as_float_images(images)
        if self.images.ndim != 4 or not len(self.images):
            raise ValueError(
                f"`images` must be a non-empty batch [N, H, W, C], got shape {self.images.shape}.")
        self.labels = _as_sparse(labels, len(self.images))
        self.attack = MONITOR_ATTACK if attack is None else attack
        if not isinstance(self.attack, AttackConfig) or self.attack.epsilon is None:
            raise ValueError(
                f"`attack` must be an AttackConfig with its epsilon set, got {self.attack!r}.")
        self.drop = None if drop is None else check_fraction(drop, "drop")
        self.restore_best_weights = bool(restore_best_weights)
        self.every = check_positive_int(every, "every")
        self.seed, self.verbose = int(seed), bool(verbose)
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self._reset()

    def _reset(self) -> None:
        self.history: list[tuple[int, float, float]] = []
        self.best, self.best_epoch, self.fired_epoch = -1.0, None, None
        self._best_weights = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._reset()

    def measure(self, model: Any | None = None) -> tuple[float, float]:
        """Clean and robust accuracy of `model` (default: the one being fit) on the images.

        Args:
            model: a model mapping [0, 1] images to logits, or None.

        Returns:
            `(clean, robust)` accuracies in [0, 1].
        """
        from keras_robust.attacks.pgd import pgd

        model = self.model if model is None else model
        clean = predict_logits(model, self.images, self.batch_size).argmax(axis=1) == self.labels
        adversarial = [
            np.asarray(pgd(model, self.images[i:i + self.batch_size],
                           self.labels[i:i + self.batch_size], None, config=self.attack,
                           seed=self.seed + i))
            for i in range(0, len(self.images), self.batch_size)]
        attacked = predict_logits(model, np.concatenate(adversarial), self.batch_size).argmax(axis=1)
        return float(clean.mean()), float((clean & (attacked == self.labels)).mean())

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        last = self.params is not None and epoch + 1 == self.params.get("epochs")
        if (epoch + 1) % self.every and not last:
            return
        clean, robust = self.measure()
        if logs is not None:
            logs["monitor_clean_accuracy"], logs["monitor_robust_accuracy"] = clean, robust
        self.history.append((epoch + 1, clean, robust))
        if robust > self.best:
            self.best, self.best_epoch = robust, epoch + 1
            if self.drop is not None and self.restore_best_weights:
                self._best_weights = self.model.get_weights()
        progress.line(
            f"epoch {epoch + 1}: {self._attack_name()} on {len(self.images)} images: "
            f"{100 * robust:.1f}% robust, {100 * clean:.1f}% clean (best {100 * self.best:.1f}% "
            f"at epoch {self.best_epoch})", enabled=self.verbose)
        if self.drop is not None and self.best - robust > self.drop:
            self._stop(epoch + 1, robust)

    def _stop(self, epoch: int, robust: float) -> None:
        self.model.stop_training = True
        self.fired_epoch = epoch
        restored = self.restore_best_weights and self._best_weights is not None
        if restored:
            self.model.set_weights(self._best_weights)
        progress.line(
            f"catastrophic overfitting at epoch {epoch}: robust accuracy {100 * robust:.1f}% is "
            f"more than {100 * self.drop:.0f} points below its best, {100 * self.best:.1f}% at "
            f"epoch {self.best_epoch}; training stopped"
            + (f", the weights of epoch {self.best_epoch} restored." if restored else "."),
            enabled=True)

    def plot(self, path: str) -> str:
        """A PNG of the measured curve: robust and clean accuracy against the epoch.

        The title names the attack, the best epoch and, when the monitor
        stopped training, the epoch it stopped at. Needs matplotlib (the
        `plots` extra).

        Args:
            path: the PNG to write.

        Returns:
            The path written.

        Raises:
            ValueError: nothing was measured yet (call it after `fit`).

        Example:

        >>> import os, tempfile
        >>> monitor = RobustAccuracyMonitor(np.zeros((2, 8, 8, 3), "float32"), [0, 1])
        >>> monitor.history = [(1, 0.5, 0.2), (2, 0.6, 0.3)]  # (epoch, clean, robust), as fit leaves it
        >>> monitor.best, monitor.best_epoch = 0.3, 2
        >>> path = monitor.plot(os.path.join(tempfile.mkdtemp(), "monitor.png"))
        >>> os.path.getsize(path) > 0
        True
        """
        from keras_robust.evaluate import plots

        if not self.history:
            raise ValueError("The monitor has measured nothing yet: call `plot` after `fit`.")
        epochs, clean, robust = (list(column) for column in zip(*self.history))
        title = f"best {100 * self.best:.1f}% at epoch {self.best_epoch}"
        if self.fired_epoch is not None:
            title += f"; stopped at epoch {self.fired_epoch}"
        return plots.line_plot(path, epochs, robust, "epoch", title,
                               extra={"clean": (epochs, clean)},
                               label=f"{self._attack_name()}, {len(self.images)} images")

    def _attack_name(self) -> str:
        eps = self.attack.epsilon
        budget = f"{eps * 255:.3g}/255" if self.attack.norm == "linf" else f"{eps:.3g} (L2)"
        return f"PGD-{self.attack.steps} ({self.attack.loss.upper()}) at {budget}"


__all__ = ["MONITOR_ATTACK", "RobustAccuracyMonitor"]
