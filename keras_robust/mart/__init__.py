"""MART (Wang et al., ICLR 2020): misclassification-aware adversarial training.

Example:

```python
import keras_robust as kr
model = kr.MARTModel.from_preset("mart-resnet", kr.backbones.small_cnn())   # lambda 5
```
"""
from keras_robust.mart.model import PRESETS, MARTModel

__all__ = ["MARTModel", "PRESETS"]
