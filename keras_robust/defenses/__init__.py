"""Defences: `keras.Model` subclasses that wrap a backbone and train it robustly.

Example:

```python
model = keras_robust.defenses.get("pgd_at", backbone, epsilon=8 / 255)
```
"""
from __future__ import annotations

from typing import Any

import keras

from keras_robust._validation import check_choice
from keras_robust.defenses.bat import VARIANTS as BAT_VARIANTS
from keras_robust.defenses.bat import BATModel
from keras_robust.defenses.afs import AFSModel
from keras_robust.defenses.base import RobustModel, TrainingBatch, replica_scale
from keras_robust.defenses.bpfc import BPFCModel, LambdaSchedule, LambdaScheduler
from keras_robust.defenses.mtlat import VARIANTS as MTLAT_VARIANTS
from keras_robust.defenses.mtlat import MTLATModel
from keras_robust.defenses.pgd_at import PGDATModel

DEFENSES: dict[str, type[RobustModel]] = {
    "plain": RobustModel,
    "pgd_at": PGDATModel,
    "bat": BATModel,
    "bpfc": BPFCModel,
    "mtlat": MTLATModel,
}


def get(name: str, backbone: keras.Model, **kwargs: Any) -> RobustModel:
    """Builds a defence by name around `backbone`.

    Args:
        name: one of `DEFENSES` ("plain" is ordinary training).
        backbone: a Keras model mapping [0, 1] images to logits.
        **kwargs: the defence's own arguments.

    Returns:
        The defence model.

    Example:

    >>> backbone = keras_robust.backbones.small_cnn(input_shape=(8, 8, 3))
    >>> model = get("pgd_at", backbone, epsilon=8 / 255, steps=3)
    >>> type(model).__name__, model.steps, model.backbone is backbone
    ('PGDATModel', 3, True)
    >>> type(get("plain", backbone)).__name__
    'RobustModel'
    """
    check_choice(name, DEFENSES, "defense")
    return DEFENSES[name](backbone, **kwargs)


__all__ = [
    "AFSModel", "BATModel", "BAT_VARIANTS", "BPFCModel", "DEFENSES", "LambdaSchedule", "LambdaScheduler",
    "MTLATModel", "MTLAT_VARIANTS", "PGDATModel", "RobustModel", "TrainingBatch", "get", "replica_scale"]
