"""Data-centric dataset enhancement for robustness (Zhong, Wu, Liu & Jiang, AAAI 2022).

Rewrites a training set without growing it: a random split clean :
adversarial : corrupted (default 0:1:4); the adversarial part gets the sum of
an L-inf and an L2 transferable perturbation crafted on a surrogate ensemble
(eq. 6: input diversity, logit loss, momentum on L1-normalised gradients,
Gaussian-smoothed gradients), the corrupted part one of 14 common corruptions.
The score is R, the mean accuracy on clean, adversarial and corrupted test sets
(eq. 7), with the adversarial test set crafted on a *different* ensemble.

- `enhance`, `enhance_dataset`: in memory / streamed from `tf.data`, sharded
  TFRecord output that resumes after a kill and splits over workers; they
  take the attack (`Eq6Config`: two `keras_robust.attacks.AttackConfig`) and
  the run options (`RunOptions`) as values;
- `load`: the output as a `tf.data` pipeline like `keras_robust.data.load`;
- `write_tfds`: the output in the TensorFlow Datasets layout, with provenance
  (`tfds.builder_from_directory`, `tfds.load(name, data_dir=...)`);
- `surrogates`: the paper's five kinds (small CPU and paper-size presets) and
  `train_surrogates`;
- `build_test_sets`, `score`: the competition's evaluation.

Example:

```python
import keras_robust as kr
from keras_robust import datacentric as dc
x, y = kr.data.load_arrays("../shared/datasets/cifar10_jpeg.npz", "train", limit=10000)
train = kr.data.from_arrays(x, y, batch_size=128, shuffle=True, augment=True)
ensemble = dc.surrogates.train_surrogates(["resnet", "densenet", "mobilenet"], train, epochs=4)
dc.enhance(x, y, ensemble, attack=dc.Eq6Config().replace(steps=50),
           options=dc.RunOptions(output_dir="runs/enhanced"))
model.fit(dc.load("runs/enhanced", shuffle=True, augment=True), epochs=10)
```
"""
from keras_robust.datacentric import surrogates
from keras_robust.datacentric.enhance import (
    EnhancementResult,
    Progress,
    enhance,
    enhance_dataset,
    finalize,
)
from keras_robust.datacentric.options import RunOptions
from keras_robust.datacentric.perturb import (
    L2_ATTACK,
    LINF_ATTACK,
    AttackSettings,
    Eq6Config,
    combine,
    perturbations,
)
from keras_robust.datacentric.plan import PARTS, make_plan, part_counts
from keras_robust.datacentric.records import (
    IncompleteOutputError,
    load,
    read_metadata,
    read_records,
)
from keras_robust.datacentric.scoring import TestSets, build_test_sets, score
from keras_robust.datacentric.tfds_export import write_tfds

__all__ = [
    "AttackSettings", "EnhancementResult", "Eq6Config", "L2_ATTACK", "LINF_ATTACK", "RunOptions", "IncompleteOutputError", "PARTS", "Progress",
    "TestSets", "build_test_sets", "combine", "enhance", "enhance_dataset", "finalize", "load",
    "make_plan", "part_counts", "perturbations", "read_metadata", "read_records", "score",
    "surrogates", "write_tfds",
]
