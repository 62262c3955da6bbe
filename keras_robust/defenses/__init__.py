"""Defences: `keras.Model` subclasses that wrap a backbone and train it robustly.

The shared ones live here: `RobustModel` (the wrapper: training step, seeds,
saving, distribution) and `PGDATModel` (the PGD-AT baseline the others extend).
Each paper's model lives in its own package (`keras_robust.bat`, `.bpfc`,
`.mtlat`, `.afs`) and is re-exported here.

Example:

```python
model = keras_robust.defenses.get("pgd_at", backbone, epsilon=8 / 255)
```
"""
from __future__ import annotations

from typing import Any

import keras

from keras_robust._validation import check_choice
from keras_robust.defenses.base import RobustModel, TrainingBatch, replica_scale
from keras_robust.defenses.pgd_at import PGDATModel

# The methods' own packages build on the two shared defences above; this
# package re-exports their models, so `keras_robust.defenses.BATModel` is the
# same class as `keras_robust.bat.BATModel`.
from keras_robust.afs.model import AFSModel  # noqa: E402
from keras_robust.bat.model import VARIANTS as BAT_VARIANTS  # noqa: E402
from keras_robust.bat.model import BATModel  # noqa: E402
from keras_robust.bpfc.model import BPFCModel, LambdaSchedule, LambdaScheduler  # noqa: E402
from keras_robust.mtlat.model import VARIANTS as MTLAT_VARIANTS  # noqa: E402
from keras_robust.mtlat.model import MTLATModel  # noqa: E402

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
