"""Bilateral adversarial training (Wang & Zhang, ICCV 2019), the whole method in one package.

- `model`: `BATModel` (PGD-AT plus the label adversary) and `PRESETS`, every
  model of the paper's Tables 3 to 6 with its attack;
- `losses`: the adversarial label (eq. 14, budget eq. 18), label smoothing
  (eq. 15) and the Keras losses built on them, public as `keras_robust.losses`.

Example:

```python
import keras_robust as kr
model = kr.bat.BATModel.from_preset("R-MC-LA", backbone)
```
"""
from keras_robust.bat.model import PRESETS, BATModel

# The losses' public path is `keras_robust.losses` (one path per name).
__all__ = ["BATModel", "PRESETS"]
