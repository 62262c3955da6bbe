"""Bilateral adversarial training (Wang & Zhang, ICCV 2019), the whole method in one package.

- `model`: `BATModel` (PGD-AT plus the label adversary) and `PRESETS`, every
  model of the paper's Tables 3 to 6 with its attack;
- `losses`: the adversarial label (eq. 14, budget eq. 18), label smoothing
  (eq. 15) and the Keras losses built on them (also `keras_robust.losses`).

Example:

```python
import keras_robust as kr
model = kr.bat.BATModel.from_preset("R-MC-LA", backbone)
```
"""
from keras_robust.bat.losses import (
    LABEL_LOGS,
    AdversarialLabelCrossentropy,
    SmoothedLabelCrossentropy,
    adversarial_label_budget,
    adversarial_labels,
    smoothed_labels,
)
from keras_robust.bat.model import PRESETS, BATModel

# The losses' names are re-exported as `keras_robust.losses` has them (outside `__all__`:
# their docstrings show usage, not runnable examples).
__all__ = ["BATModel", "PRESETS"]
