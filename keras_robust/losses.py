"""Soft labels and the losses built on them (BAT's, from `keras_robust.bat.losses`).

- `adversarial_labels`: BAT's closed-form adversarial label (eq. 14 of Wang &
  Zhang 2019) with the largest budget that keeps the true class `beta` times
  the most likely other class (eq. 18).
- `smoothed_labels`: label smoothing as BAT writes it (eq. 15).
- `AdversarialLabelCrossentropy`, `SmoothedLabelCrossentropy`: Keras losses
  that train toward those labels.

Example:

```python
y_adv = keras_robust.losses.adversarial_labels(logits, y, beta=9.0)
model.compile(loss=keras_robust.losses.AdversarialLabelCrossentropy(beta=9.0))
```
"""
from keras_robust.bat.losses import (  # noqa: F401 (the public face)
    LABEL_LOGS,
    AdversarialLabelCrossentropy,
    SmoothedLabelCrossentropy,
    adversarial_label_budget,
    adversarial_labels,
    smoothed_labels,
)
