"""Image classifiers that map [0, 1] NHWC images to logits.

Every backbone owns its normalisation (a `Normalization` layer right after the
input), so attacks and defences only ever see [0, 1] pixels, and its last layer
computes in float32, so logits stay float32 under a `mixed_float16` policy.
They are built from standard Keras layers only, so `.keras` files load with
`safe_mode=True` and no custom objects.

`small_cnn`, `vgg`, `vgg16`, `preact_resnet18`, `wide_resnet` and `resnet` take
`activation="relu"`: "swish" (SiLU, x * sigmoid(x)) gives the activation of the
Gowal et al. (2020) / Rebuffi et al. (2021) leaderboard WRNs, and any other name
`keras.activations.get` knows works too (an unknown name raises a `ValueError`).
The default builds exactly the models (layer names, weight order) built before
the argument existed; other activations are `keras.layers.Activation` layers
named `..._{activation}` and are saved in the model's config.

The package is laid out by architecture:

- `_layers`: the shared building blocks (inputs and normalisation, the L2
  regulariser, conv, BN-ReLU / ReLU6, the pooled float32 logits head);
- `cnn`: `small_cnn`, `vgg`, `vgg16`;
- `resnets`: `preact_resnet18`, `wide_resnet` and the post-activation `resnet`;
- `densenets`: `densenet` (DenseNet-BC);
- `mobilenets`: `mobilenet_v2`;
- `batchnorm`: `batchnorm_layers`, `set_batchnorm_momentum`.

Example:

```python
import keras_robust as kr
model = kr.backbones.small_cnn(input_shape=(32, 32, 3), num_classes=10)
same = kr.backbones.get("small_cnn", num_classes=10)
```
"""
from __future__ import annotations

from typing import Callable

import keras

from keras_robust._validation import check_choice
from keras_robust.backbones._layers import NORMALIZATION_STATS, Normalization
from keras_robust.backbones.batchnorm import batchnorm_layers, set_batchnorm_momentum
from keras_robust.backbones.cnn import small_cnn, vgg, vgg16
from keras_robust.backbones.densenets import densenet
from keras_robust.backbones.mobilenets import mobilenet_v2
from keras_robust.backbones.resnets import preact_resnet18, resnet, wide_resnet

BACKBONES: dict[str, Callable[..., keras.Model]] = {
    "small_cnn": small_cnn,
    "preact_resnet18": preact_resnet18,
    "wide_resnet": wide_resnet,
    "wrn_28_10": lambda **kw: wide_resnet(28, 10, **kw),
    "wrn_34_10": lambda **kw: wide_resnet(34, 10, **kw),
    "vgg": vgg,
    "vgg16": vgg16,
    "resnet": resnet,
    "resnet20": lambda **kw: resnet((3, 3, 3), 16, **kw),
    "resnet50": lambda **kw: resnet((3, 4, 6, 3), 64, bottleneck=True, **kw),
    "densenet": densenet,
    "densenet121": lambda **kw: densenet((6, 12, 24, 16), 32, **kw),
    "mobilenet_v2": mobilenet_v2,
}


def get(name: str, **kwargs) -> keras.Model:
    """Builds a backbone by name.

    Args:
        name: one of `BACKBONES` ("small_cnn", "preact_resnet18",
            "wide_resnet", "wrn_28_10", "wrn_34_10", "vgg", "vgg16",
            "resnet", "resnet20", "resnet50", "densenet", "densenet121",
            "mobilenet_v2").
        **kwargs: passed to the builder (`input_shape`, `num_classes`,
            `activation` for the CNN, VGG and ResNet families, ...).

    Returns:
        The backbone.

    Example:

    >>> model = get("small_cnn", num_classes=10)
    >>> swish = get("wide_resnet", depth=10, width=1, activation="swish")
    """
    check_choice(name, BACKBONES, "backbone")
    return BACKBONES[name](**kwargs)


__all__ = [
    "BACKBONES", "NORMALIZATION_STATS", "Normalization", "batchnorm_layers", "densenet", "get",
    "mobilenet_v2", "preact_resnet18", "resnet", "set_batchnorm_momentum", "small_cnn", "vgg",
    "vgg16", "wide_resnet",
]
