"""TRADES (Zhang et al., ICML 2019): the clean/robust trade-off as one loss.

Example:

```python
import keras_robust as kr
model = kr.TRADESModel.from_preset("trades", kr.backbones.small_cnn())   # beta 6, 8/255
```
"""
from keras_robust.trades.model import PRESETS, TRADESModel

__all__ = ["PRESETS", "TRADESModel"]
