"""GradAlign (Andriushchenko & Flammarion, NeurIPS 2020): FGSM training without catastrophic overfitting.

Example:

```python
import keras_robust as kr
model = kr.GradAlignModel.from_preset("grad-align", kr.backbones.small_cnn())   # 8/255, lambda 0.2
```
"""
from keras_robust.gradalign.model import PRESETS, GradAlignModel, grad_align_lambda

__all__ = ["PRESETS", "GradAlignModel", "grad_align_lambda"]
