"""Randomized smoothing (Cohen, Rosenfeld & Kolter, ICML 2019): training with Gaussian noise.

The base classifier of a smoothed classifier is trained on x + sigma * N(0, I)
(`GaussianNoiseModel`); `keras_robust.evaluate.certify` certifies the smoothed
classifier in L2.

Example:

```python
import keras_robust as kr
model = kr.GaussianNoiseModel.from_preset("sigma-0.25", kr.backbones.small_cnn())
```
"""
from keras_robust.smoothing.model import PRESETS, GaussianNoiseModel

__all__ = ["PRESETS", "GaussianNoiseModel"]
