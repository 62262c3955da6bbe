"""Bit-plane quantisation (Algorithm 1 of BPFC), from `keras_robust.bpfc.quantization`.

Example:

```python
layer = keras_robust.layers.BitPlaneQuantization(k=5, seed=0)
coarse = layer(images, training=True)     # identity when training is False
```
"""
from keras_robust.bpfc.quantization import (  # noqa: F401 (the public face)
    BitPlaneQuantization,
    bit_plane_quantize,
    check_bits,
)
