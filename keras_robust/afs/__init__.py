"""Adversarial feature stacking (Liu & Zhao, 2022), the whole method in one package.

- `model`: `AFSModel`, the linear merger over frozen extractors (eq. 5), and
  `build_stack` / `feature_extractor`, which assemble it;
- `pipeline`: `train_extractors`, `delta_z` / `delta_z_curve` (eq. 8) with
  `concave_budgets`, and `importance` (Fig. 5b).

Example:

```python
import keras_robust as kr
extractors = kr.afs.train_extractors(lambda: kr.backbones.small_cnn(), [2/255, 5/255, 8/255],
                                     train_ds, epochs=5, output_dir="runs/afs/extractors")
curve = kr.afs.delta_z_curve(extractors, x_test[:500], epsilon=8 / 255, plot="dz.png")
model = kr.AFSModel.from_preset("cifar10", extractors, steps=3)
ratios = kr.afs.importance(model, plot="importance.png")
```
"""
from keras_robust.afs.model import PRESETS, AFSModel, build_stack, feature_extractor
from keras_robust.afs.pipeline import (
    concave_budgets,
    delta_z,
    delta_z_curve,
    extractor_path,
    importance,
    train_extractors,
)

__all__ = [
    "AFSModel", "PRESETS", "build_stack", "concave_budgets", "delta_z", "delta_z_curve", "extractor_path",
    "feature_extractor", "importance", "train_extractors",
]
