"""Optimizers with the learning-rate schedules of the papers.

Example:

```python
import keras_robust as kr
optimizer = kr.optimizers.sgd(epochs=100, steps_per_epoch=391, schedule="piecewise",
                              boundaries=(60, 90))
```
"""
from __future__ import annotations

from typing import Any, Sequence

import keras

from keras_robust._validation import check_choice, check_positive_int

SCHEDULES = ("cosine", "piecewise", "constant")


def sgd(
    epochs: int,
    steps_per_epoch: int,
    learning_rate: float = 0.1,
    schedule: str = "cosine",
    momentum: float = 0.9,
    weight_decay: float = 5e-4,
    boundaries: Sequence[int] = (),
    decay_rate: float = 0.1,
) -> keras.optimizers.Optimizer:
    """SGD with momentum and a per-step learning-rate schedule.

    Args:
        epochs: training epochs.
        steps_per_epoch: optimizer steps per epoch.
        learning_rate: initial learning rate.
        schedule: "cosine" (to 0 over all steps), "piecewise" (multiplied by
            `decay_rate` at each epoch of `boundaries`, as the BAT paper's
            0.1/0.01/0.001 at 60/90/100) or "constant".
        momentum: SGD momentum.
        weight_decay: decoupled weight decay (0 for none).
        boundaries: epochs at which "piecewise" decays.
        decay_rate: the "piecewise" factor.

    Returns:
        A `keras.optimizers.SGD`.

    Example:

    >>> optimizer = sgd(epochs=100, steps_per_epoch=10, schedule="piecewise", boundaries=[60, 90])
    >>> type(optimizer).__name__, round(float(optimizer.learning_rate), 3), optimizer.momentum
    ('SGD', 0.1, 0.9)
    """
    check_choice(schedule, SCHEDULES, "schedule")
    epochs = check_positive_int(epochs, "epochs")
    steps_per_epoch = check_positive_int(steps_per_epoch, "steps_per_epoch")
    if schedule == "cosine":
        rate: Any = keras.optimizers.schedules.CosineDecay(learning_rate, epochs * steps_per_epoch)
    elif schedule == "piecewise" and boundaries:
        # Keras' piecewise schedule keeps the old value while step <= boundary, and
        # `optimizer.iterations` counts from 0: the first step of epoch b is b * steps - 1 + 1.
        steps = [int(b) * steps_per_epoch - 1 for b in boundaries]
        values = [learning_rate * decay_rate**i for i in range(len(steps) + 1)]
        rate = keras.optimizers.schedules.PiecewiseConstantDecay(steps, values)
    else:
        rate = learning_rate
    return keras.optimizers.SGD(rate, momentum=momentum, weight_decay=weight_decay or None)


__all__ = ["SCHEDULES", "sgd"]
