"""Bit-plane feature consistency (Addepalli et al., CVPR 2020).

No adversarial examples: each step trains on the batch and its coarse bit-plane
quantisation q(x), with loss

    CE(f(x), y) + lambda * mean_i ||g(x_i) - g(q(x_i))||_2^2

on the logits g (eq. 2). lambda starts low and steps up during training; the
authors' CIFAR-10 code (`val-iisc/BPFC`, `bpfc_cifar10.py` with `-p_val 5
-l_ce 1 -l_reg 1 -mul_ru 9`) uses k = 5 and multiplies lambda by 9 at epochs 25,
50 and 75 of 100 (1, 9, 81, 729), dividing the learning rate by 5 each time.
"""
from __future__ import annotations

from typing import Any, Sequence

import keras
import tensorflow as tf

from keras_robust._validation import check_choice, check_positive, check_positive_int
from keras_robust.defenses.base import RobustModel, TrainingBatch, register_defense, replica_scale
from keras_robust.defenses.paired import half_weights
from keras_robust.bpfc.quantization import bit_plane_quantize, check_bits

PASSES = ("separate", "joint")


@keras.saving.register_keras_serializable(package="keras_robust")
class LambdaSchedule:
    """lambda as a piecewise-constant function of the epoch.

    Epochs count from 0, as Keras callbacks do; `schedule(e)` is the lambda
    that epoch `e` trains with.

    Args:
        boundaries: increasing epochs (0-based) from which lambda changes.
        values: len(boundaries) + 1 values; `values[i]` holds from
            `boundaries[i-1]` (or 0) up to `boundaries[i] - 1`.

    Example:

    >>> schedule = LambdaSchedule([26, 51, 76], [1.0, 9.0, 81.0, 729.0])   # the authors'
    >>> [schedule(e) for e in (25, 26, 75, 76)]
    [1.0, 9.0, 81.0, 729.0]
    """

    def __init__(self, boundaries: Sequence[int], values: Sequence[float]):
        boundaries = [int(b) for b in boundaries]
        values = [float(v) for v in values]
        if len(values) != len(boundaries) + 1:
            raise ValueError(
                f"A LambdaSchedule needs len(boundaries) + 1 values, got {len(boundaries)} "
                f"boundaries and {len(values)} values."
            )
        if any(b <= a for a, b in zip(boundaries, boundaries[1:])) or any(b < 0 for b in boundaries):
            raise ValueError(f"`boundaries` must be increasing non-negative epochs, got {boundaries}.")
        if any(v < 0 for v in values):
            raise ValueError(f"lambda values must be >= 0, got {values}.")
        self.boundaries, self.values = boundaries, values

    @classmethod
    def authors(cls, epochs: int = 100, initial: float = 1.0, factor: float = 9.0) -> "LambdaSchedule":
        """The authors' schedule stretched to `epochs`: x`factor` after 1/4, 1/2, 3/4.

        `bpfc_cifar10.py` multiplies lambda by 9 once epoch 25 (then 50, 75)
        of `range(100)` has finished, so the new value first applies at epoch
        round(epochs * f) + 1: boundaries 26, 51, 76 for 100 epochs (segments
        of 26, 25, 25 and 24 epochs). For very short runs the last boundary
        can equal `epochs` and is never reached, as in the authors' loop.

        Args:
            epochs: the length of training.
            initial: lambda before the first step (`-l_reg 1`).
            factor: the multiplier at each step (`-mul_ru 9`).

        Returns:
            A `LambdaSchedule`.

        Example:

        >>> LambdaSchedule.authors(100).boundaries
        [26, 51, 76]
        """
        epochs = check_positive_int(epochs, "epochs")
        boundaries = sorted({round(epochs * f) + 1 for f in (0.25, 0.5, 0.75)})
        return cls(boundaries, [initial * factor**i for i in range(len(boundaries) + 1)])

    @classmethod
    def constant(cls, value: float) -> "LambdaSchedule":
        return cls([], [value])

    def __call__(self, epoch: int) -> float:
        index = sum(1 for b in self.boundaries if epoch >= b)
        return self.values[index]

    def get_config(self) -> dict:
        return {"boundaries": self.boundaries, "values": self.values}

    @classmethod
    def from_config(cls, config: dict) -> "LambdaSchedule":
        return cls(**config)


class LambdaScheduler(keras.callbacks.Callback):
    """Sets a `BPFCModel`'s lambda from its schedule at the start of each epoch.

    `BPFCModel.fit` adds one automatically; pass your own to control it.
    At the start of epoch `e` it assigns `float(schedule(e))` to the model's
    `lam` variable (epochs count from 0); at the end of each epoch it adds
    the current value to the logs as "lambda" (so `History` records it). The
    model must be a `BPFCModel` (anything with a `lam` variable and, without
    `schedule`, a `lam_schedule`).

    Args:
        schedule: a `LambdaSchedule` or any callable epoch -> lambda; default
            the model's own `lam_schedule`.

    Example:

    >>> backbone = keras_robust.backbones.small_cnn(input_shape=(8, 8, 3))
    >>> model = BPFCModel(backbone, lam_schedule=LambdaSchedule([2], [1.0, 9.0]))
    >>> scheduler = LambdaScheduler()             # the model's own schedule
    >>> scheduler.set_model(model)                # as `fit` does
    >>> scheduler.on_epoch_begin(3)
    >>> float(model.lam.numpy())
    9.0
    >>> ramp = LambdaScheduler(lambda epoch: 0.5 * epoch)   # e.g. fit(..., callbacks=[ramp])
    """

    def __init__(self, schedule: Any = None):
        super().__init__()
        self.schedule = schedule

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        schedule = self.schedule or self.model.lam_schedule
        self.model.lam.assign(float(schedule(epoch)))

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None:
            logs["lambda"] = float(self.model.lam.numpy())


@register_defense("bpfc")
@keras.saving.register_keras_serializable(package="keras_robust")
class BPFCModel(RobustModel):
    """Bit-plane feature consistency: CE on x plus lambda * ||g(x) - g(q(x))||^2.

    Each step trains on the batch and its quantised copy q(x) (Algorithm 1);
    cross-entropy is taken on the clean logits only, the consistency term on
    the logits of both. With `passes="separate"` (the authors' code) x and
    q(x) go through the backbone in two training-mode passes, so each is
    normalised by its own BatchNorm statistics; with `passes="joint"` one pass
    over their concatenation shares the statistics (the moving statistics get
    one update per step instead of two). The quantiser exists only here, in
    training: `call` and `export` are the backbone alone.

    Args:
        backbone: a Keras model mapping [0, 1] images to logits.
        k: low bits dropped by the quantiser (5 for CIFAR-10).
        lam: lambda before the schedule is applied (and when there is none).
        lam_schedule: a `LambdaSchedule` (or `None` for a constant `lam`);
            `BPFCModel.fit` applies it at the start of each epoch.
        bits: the bit depth the images are seen at.
        noise: the uniform pre-quantisation noise of Algorithm 1.
        passes: "separate" (one pass per view, as the authors) or "joint".
        **kwargs: passed to `RobustModel` (`seed`, ...).

    Example:

    ```python
    model = keras_robust.BPFCModel(backbone, k=5,
                                   lam_schedule=keras_robust.bpfc.LambdaSchedule([1], [1.0, 9.0]))
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), metrics=["accuracy"])
    model.fit(train_ds, epochs=5)
    ```
    """

    def __init__(
        self,
        backbone: keras.Model,
        k: int = 5,
        lam: float = 1.0,
        lam_schedule: LambdaSchedule | dict | None = None,
        bits: int = 8,
        noise: bool = True,
        passes: str = "separate",
        **kwargs: Any,
    ):
        super().__init__(backbone, **kwargs)
        self.k, self.bits = check_bits(k, bits)
        self.noise = bool(noise)
        self.passes = check_choice(passes, PASSES, "passes")
        self.initial_lam = float(lam) if lam == 0 else check_positive(lam, "lam")
        if isinstance(lam_schedule, dict):
            lam_schedule = keras.saving.deserialize_keras_object(lam_schedule)
        if lam_schedule is not None and not callable(lam_schedule):
            raise TypeError(f"`lam_schedule` must be a LambdaSchedule or None, got {lam_schedule!r}.")
        self.lam_schedule = lam_schedule or LambdaSchedule.constant(self.initial_lam)
        self.lam = keras.Variable(self.initial_lam, trainable=False, dtype="float32", name="lam")

    def quantize_images(self, x: tf.Tensor) -> tf.Tensor:
        """q(x) for this step (stateless noise keyed on the step and replica)."""
        return bit_plane_quantize(x, self.k, self.bits, self.noise, self.step_seed(3))

    def training_batch(self, x, y, sample_weight) -> TrainingBatch:
        quantized = self.quantize_images(x)
        # The mean over the 2B rows with weights (2w, 0) is the clean half's CE.
        return TrainingBatch(tf.concat([x, quantized], 0), tf.concat([y, y], 0),
                             half_weights(x, sample_weight))

    def training_logits(self, batch: TrainingBatch) -> tf.Tensor:
        if self.passes == "joint":
            return super().training_logits(batch)
        clean, quantized = tf.split(batch.x, 2, axis=0)
        return tf.concat([self(clean, training=True), self(quantized, training=True)], axis=0)

    def training_loss(self, batch: TrainingBatch, y_pred: tf.Tensor) -> tf.Tensor:
        cross_entropy = super().training_loss(batch, y_pred)
        clean, quantized = tf.split(tf.cast(y_pred, tf.float32), 2, axis=0)
        consistency = tf.reduce_mean(tf.reduce_sum(tf.square(clean - quantized), axis=-1))
        return cross_entropy + replica_scale(self.lam * consistency)

    def fit(self, *args: Any, **kwargs: Any):
        """`keras.Model.fit`, applying `lam_schedule` each epoch (a `LambdaScheduler`
        is added unless one is passed)."""
        callbacks = list(kwargs.get("callbacks") or [])
        if not any(isinstance(c, LambdaScheduler) for c in callbacks):
            callbacks.append(LambdaScheduler())
        kwargs["callbacks"] = callbacks
        return super().fit(*args, **kwargs)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            k=self.k, lam=self.initial_lam, bits=self.bits, noise=self.noise, passes=self.passes,
            lam_schedule=keras.saving.serialize_keras_object(self.lam_schedule),
        )
        return config
