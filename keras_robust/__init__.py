"""keras_robust: robust training and honest robustness evaluation for Keras 3.

Example:

```python
import keras, keras_robust as kr
backbone = kr.backbones.small_cnn(num_classes=10)
model = kr.PGDATModel(backbone, epsilon=8 / 255)
model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), metrics=["accuracy"])
model.fit(kr.data.load("cifar10", "train", augment=True), epochs=5)
```
"""
from keras_robust import _startup

_startup.import_tensorflow_quietly()  # before any module imports TensorFlow

# The shared defences first: the methods' packages (afs, bat, bpfc, mtlat) build on them.
from keras_robust import defenses  # isort: skip
from keras_robust import (afs, attacks, backbones, bat, bpfc, data, datacentric, evaluate, experiment, layers,
                          losses, mtlat, optimizers, progress, quantization)
from keras_robust.defenses import AFSModel, BATModel, BPFCModel, MTLATModel, PGDATModel, RobustModel
from keras_robust.version import __version__

__all__ = [
    "AFSModel", "BATModel", "BPFCModel", "MTLATModel", "PGDATModel", "RobustModel", "__version__", "afs",
    "attacks", "backbones", "bat", "bpfc", "data", "datacentric", "defenses", "evaluate", "experiment", "layers", "losses",
    "mtlat", "optimizers", "progress",
]
