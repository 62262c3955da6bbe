"""Defences: `keras.Model` subclasses that wrap a backbone and train it robustly.

The shared ones live here: `RobustModel` (the wrapper: training step, seeds,
saving, distribution, presets), `PGDATModel` (the PGD-AT baseline the
others extend) and adversarial weight perturbation over any of them
(`AWPConfig`, `AWPScheduler`, `AWP_PRESETS`; `weight_perturbation=`) and
weight averaging, an EMA of the weights, over any of them (`AveragingConfig`,
`AveragedEvaluation`, `reestimate_batchnorm`; `weight_averaging=`). Each paper's model lives in its own package
(`keras_robust.bat.BATModel`, `keras_robust.bpfc.BPFCModel`,
`keras_robust.mtlat.MTLATModel`, `keras_robust.afs.AFSModel`; the package
face `keras_robust` has them all) and enters the registry `DEFENSES` where
it is defined, so this package imports none of the papers' packages.

Example:

```python
model = keras_robust.defenses.get("pgd_at", backbone, epsilon=8 / 255)
```
"""
from __future__ import annotations

from typing import Any

import keras

from keras_robust._validation import check_choice
from keras_robust.defenses.averaging import AveragedEvaluation, AveragingConfig, reestimate_batchnorm
from keras_robust.defenses.awp import AWP_PRESETS, AWPConfig, AWPScheduler
from keras_robust.defenses.base import DEFENSES, RobustModel, TrainingBatch, register_defense, replica_scale
from keras_robust.defenses.paired import PairedModel
from keras_robust.defenses.pgd_at import PGDATModel


def get(name: str, backbone: keras.Model, **kwargs: Any) -> RobustModel:
    """Builds a defence by name around `backbone`.

    The names are those of `DEFENSES`: "plain" (ordinary training),
    "pgd_at", and each paper's ("bat", "bpfc", "grad_align", "mtlat", "trades", "mart",
    "gaussian_noise"), which their
    packages register when `keras_robust` is imported.

    Args:
        name: one of `DEFENSES`.
        backbone: a Keras model mapping [0, 1] images to logits.
        **kwargs: the defence's own arguments.

    Returns:
        The defence model.

    Example:

    >>> backbone = keras_robust.backbones.small_cnn(input_shape=(8, 8, 3))
    >>> model = get("pgd_at", backbone, epsilon=8 / 255, steps=3)
    >>> type(model).__name__, model.attack.steps, model.backbone is backbone
    ('PGDATModel', 3, True)
    >>> type(get("plain", backbone)).__name__
    'RobustModel'
    >>> sorted(DEFENSES)
    ['bat', 'bpfc', 'gaussian_noise', 'grad_align', 'mart', 'mtlat', 'pgd_at', 'plain', 'trades']
    """
    check_choice(name, DEFENSES, "defense")
    return DEFENSES[name](backbone, **kwargs)


__all__ = ["AWPConfig", "AWPScheduler", "AWP_PRESETS", "AveragedEvaluation", "AveragingConfig", "DEFENSES", "PGDATModel", "PairedModel", "RobustModel",
           "TrainingBatch", "get", "reestimate_batchnorm", "register_defense", "replica_scale"]
