"""M-TLAT: Mixup and Targeted Labeling Adversarial Training (Laugros et al., ECCV-W 2020),
the method in one package.

- `model`: `MTLATModel` (Algorithm 1) and `PRESETS`, every model the paper trains;
- `layers`: the stateless draws (Beta lambdas, partners, uniform budgets),
  `mixup`, `tlat_labels` and the `Mixup` / `TLATLabelMixer` layers, public as
  `keras_robust.layers`.

The paper's perturbation benchmark (Tables 1 and 2) is
`keras_robust.evaluate.perturbation_benchmark`: it is built on the shared
evaluation (metrics, plots, corruptions) and the evaluation package exports it.

Example:

```python
import keras_robust as kr
model = kr.mtlat.MTLATModel.from_preset("M-TLAT", backbone)
```
"""
from keras_robust.mtlat.model import ADVERSARIES, ATTACK, PRESETS, MTLATBatch, MTLATModel

# The layers' public path is `keras_robust.layers` (one path per name).
__all__ = ["ADVERSARIES", "ATTACK", "MTLATBatch", "MTLATModel", "PRESETS"]
