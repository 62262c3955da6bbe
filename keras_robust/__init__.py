"""keras_robust: robust training and honest robustness evaluation for Keras 3.

Example:

```python
import keras, keras_robust as kr
backbone = kr.backbones.small_cnn(num_classes=10)
model = kr.PGDATModel.from_preset("madry", backbone)
model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), metrics=["accuracy"])
model.fit(kr.data.load("cifar10", "train", augment=True), epochs=5)
```
"""
from keras_robust import _startup

_startup.import_tensorflow_quietly()  # before any module imports TensorFlow

from keras_robust import (afs, attacks, backbones, bat, bpfc, data, datacentric, defenses, evaluate, experiment,
                          gradalign, layers, losses, mart, mtlat, optimizers, progress, quantization, smoothing,
                          trades)
from keras_robust.afs import AFSModel
from keras_robust.bat import BATModel
from keras_robust.bpfc import BPFCModel
from keras_robust.defenses import (AWP_PRESETS, AWPConfig, AWPScheduler, AveragedEvaluation, AveragingConfig,
                                   PGDATModel, RobustModel, reestimate_batchnorm)
from keras_robust.gradalign import GradAlignModel
from keras_robust.mart import MARTModel
from keras_robust.mtlat import MTLATModel
from keras_robust.smoothing import GaussianNoiseModel
from keras_robust.trades import TRADESModel
from keras_robust.version import __version__

__all__ = [
    "AWPConfig", "AWPScheduler", "AWP_PRESETS", "AFSModel", "AveragedEvaluation", "AveragingConfig", "BATModel", "BPFCModel", "GaussianNoiseModel", "GradAlignModel", "MARTModel", "MTLATModel", "PGDATModel", "RobustModel", "TRADESModel",
    "__version__", "afs", "attacks", "backbones", "bat", "bpfc", "data", "datacentric", "defenses", "evaluate",
    "experiment", "gradalign", "layers", "losses", "mart", "mtlat", "optimizers", "progress", "reestimate_batchnorm", "smoothing", "trades",
]
