"""Keras layers for robust training, each usable in any Keras model.

- `Mixup`: mixes each sample of a batch with a shuffled partner (Zhang et al.
  2018; eq. 1 of M-TLAT), during training only;
- `TLATLabelMixer`: the label of Targeted Labeling Adversarial Training,
  `(1 - eps) * y + eps * y_target` (eq. 4 and 6 of M-TLAT);
- the stateless functions they share with `keras_robust.MTLATModel`
  (`sample_beta`, `shuffle_indices`, `mixup`, `tlat_labels`...);

all from `keras_robust.mtlat.layers`, and

- `BitPlaneQuantization`: BPFC's coarse quantization, from `keras_robust.bpfc.quantization`.

Example:

```python
import keras, keras_robust as kr
images = keras.Input((32, 32, 3))
labels = keras.Input((10,))
mixed_images, mixed_labels = kr.layers.Mixup(alpha=0.4, seed=0)([images, labels])
augment = keras.Model([images, labels], [mixed_images, mixed_labels])
```
"""
from keras_robust.bpfc.quantization import BitPlaneQuantization
from keras_robust.mtlat.layers import (
    GAMMA_PROPOSALS,
    Mixup,
    MixupResult,
    TLATLabelMixer,
    check_alpha,
    mixup,
    sample_beta,
    sample_log_gamma,
    sample_uniform,
    shuffle_indices,
    tlat_labels,
)

__all__ = [
    "BitPlaneQuantization", "GAMMA_PROPOSALS", "Mixup", "MixupResult", "TLATLabelMixer", "check_alpha", "mixup",
    "sample_beta", "sample_log_gamma", "sample_uniform", "shuffle_indices", "tlat_labels",
]
