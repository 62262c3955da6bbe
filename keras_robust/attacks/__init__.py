"""Adversarial attacks as `tf.function` routines over batches.

Every attack takes any model mapping [0, 1] images to logits (a Keras model,
an `Ensemble`, a list of models, or a callable), works on whole batches inside
TensorFlow, keeps its output inside its ball and [0, 1], and accepts a `seed`
for reproducible randomness.

Example:

```python
import keras_robust as kr
x_adv = kr.attacks.pgd(model, x, y, epsilon=8 / 255, step_size=2 / 255, steps=10)
config = kr.attacks.AttackConfig(epsilon=8 / 255, step_size=2 / 255, steps=10, restarts=5)
x_adv = kr.attacks.pgd(model, x, y, None, config=config)   # the same settings as one value
```

`AttackConfig` holds the settings of the iterative attacks (PGD, FGSM, MI-FGSM,
eq. 6); `APGDConfig`, `APGDTargetedConfig`, `FABConfig`, `CWConfig` and
`SquareConfig` those of the other attacks (each attack takes its `config=`); `keras_robust.attacks.engine` runs them (`run_attack`, `with_restarts`)
and compiles every attack once per model and settings (`compiled_attack`).
"""
from keras_robust.attacks.common import Ensemble
from keras_robust.attacks.config import (
    APGDConfig, APGDTargetedConfig, AttackConfig, CWConfig, FABConfig, SquareConfig,
)
from keras_robust.attacks.apgd import apgd, apgd_targeted
from keras_robust.attacks.cw import cw_l2
from keras_robust.attacks.fab import fab
from keras_robust.attacks.momentum import mi_fgsm
from keras_robust.attacks.objectives import OBJECTIVES, objective
from keras_robust.attacks.pgd import fgsm, pgd
from keras_robust.attacks.square import square
from keras_robust.attacks.targets import TARGET_MODES
from keras_robust.attacks.transfer import TRANSFER_ATTACKS, transfer_attack

__all__ = [
    "APGDConfig", "APGDTargetedConfig", "AttackConfig", "CWConfig", "FABConfig", "SquareConfig", "Ensemble", "OBJECTIVES", "TARGET_MODES", "TRANSFER_ATTACKS", "apgd",
    "apgd_targeted", "cw_l2",
    "fab", "fgsm", "mi_fgsm", "objective", "pgd", "square", "transfer_attack",
]
