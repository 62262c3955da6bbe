"""Bit-plane feature consistency (Addepalli et al., CVPR 2020), the whole method in one package.

- `model`: `BPFCModel` and its lambda schedule (`LambdaSchedule`, `LambdaScheduler`);
- `quantization`: the bit-plane quantisation of Algorithm 1 (`bit_plane_quantize`,
  the `BitPlaneQuantization` layer), public as `keras_robust.quantization.bit_plane_quantize`
  and `keras_robust.layers.BitPlaneQuantization`.

Example:

```python
import keras_robust as kr
model = kr.bpfc.BPFCModel(backbone, k=5)
model.fit(train, epochs=100, callbacks=[kr.bpfc.LambdaScheduler()])
```
"""
from keras_robust.bpfc.model import BPFCModel, LambdaSchedule, LambdaScheduler

# The quantiser's public paths are `keras_robust.layers.BitPlaneQuantization` and
# `keras_robust.quantization.bit_plane_quantize` (one path per name).
__all__ = ["BPFCModel", "LambdaSchedule", "LambdaScheduler"]
