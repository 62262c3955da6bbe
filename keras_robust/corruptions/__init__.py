"""Common-corruption catalogue for robustness training and evaluation.

imgaug 0.4.0 is the engine (made to run on NumPy 2 / OpenCV 5 by
:mod:`keras_robust.corruptions._imgaug` without touching the user's numpy).
Every corruption has severities 1..5: the CIFAR-10-C parameters for small
images (``min(H, W) <= 64``), the ImageNet-C parameters otherwise, with pixel
quantities scaled to the image side.

* :data:`NAMES`: all kinds; :data:`MTLAT_19`: the M-TLAT benchmark;
  :data:`DATACENTRIC_14`: the data-centric enhancement's draw.
* :func:`corrupt`, :func:`augmenter`, :func:`corrupt_random`: NumPy / imgaug.
* :func:`corrupt_tf`, :func:`corrupt_dataset`: TensorFlow / tf.data.
* :class:`RandomCorruption`: Keras training-time augmentation layer.
* :func:`corruption_accuracy`: accuracy per ``(name, severity)``.

Example:

>>> import numpy as np
>>> import keras_robust.corruptions as kc
>>> x = np.zeros((4, 32, 32, 3), np.uint8)
>>> kc.corrupt(x, "frost", severity=3, seed=0).shape
(4, 32, 32, 3)
"""
# Argument checks other packages reuse (the data-centric enhancement checks its
# images and corruption choices exactly as the corruption functions do).
from keras_robust.corruptions._checks import MIN_SIDE
from keras_robust.corruptions._checks import names as check_names
from keras_robust.corruptions._checks import severities as check_severities
from keras_robust.corruptions.accuracy import corruption_accuracy
from keras_robust.corruptions.api import augmenter, corrupt, corrupt_random, derive_seed
from keras_robust.corruptions.layers import RandomCorruption
from keras_robust.corruptions.names import DATACENTRIC_14, MTLAT_19, NAMES
from keras_robust.corruptions.tf_data import corrupt_dataset, corrupt_tf

__all__ = [
    "DATACENTRIC_14",
    "MTLAT_19",
    "NAMES",
    "RandomCorruption",
    "augmenter",
    "corrupt",
    "corrupt_dataset",
    "corrupt_random",
    "corrupt_tf",
    "corruption_accuracy",
    "derive_seed",
]
