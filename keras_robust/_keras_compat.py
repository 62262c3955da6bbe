"""The only home of private Keras internals used by keras_robust.

Everything else in the package uses public Keras API. Each use below names the
Keras behaviour it works around; `tests/test_keras_compat.py` checks that every
private name still exists with the expected signature, so a Keras release that
removes or changes one fails there, by name, instead of deep in a `fit`.

Private names used (Keras 3.15 and, tested, with TensorFlow 2.18):

- `Layer._flatten_layers(include_self=..., recursive=...)`: Keras has no public
  recursive iterator over the layers of a model (`Model.layers` is one level
  deep and plain layers keep their sub-layers privately).
- `Trainer._distribute_strategy`: the strategy the model was created under, or
  None; the public `distribute_strategy` falls back to the current strategy and
  cannot tell "created under no strategy" apart.
- `Trainer._symbolic_build(data_batch=...)` and
  `Trainer._maybe_symbolic_build(iterator=..., data_batch=...)`: under a
  distribution strategy Keras builds the compiled loss, metrics and optimizer
  from the first *distributed* batch, which fails under
  `MultiWorkerMirroredStrategy` ("Attempt to convert a value (PerReplica ...)
  to a Tensor", plain Keras models included). `PrebuiltCompiledState` builds
  that state from a plain batch and makes Keras skip its own step.
"""
from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

#: The private Keras names this module relies on, and where: checked by the tests.
PRIVATE_KERAS_API = {
    "keras.layers.Layer._flatten_layers": ("include_self", "recursive"),
    "keras.Model._symbolic_build": ("iterator", "data_batch"),
    "keras.Model._maybe_symbolic_build": ("iterator", "data_batch"),
}


def flatten_layers(model: keras.layers.Layer) -> list[keras.layers.Layer]:
    """Every layer nested in `model` (itself excluded), in Keras' order.

    Works around: Keras has no public recursive layer iterator.
    """
    return list(model._flatten_layers(include_self=False, recursive=True))


def creation_strategy(model: keras.Model) -> tf.distribute.Strategy | None:
    """The distribution strategy `model` was created under, or None.

    Works around: the public `Model.distribute_strategy` returns the current
    strategy when the model was created under none.
    """
    return getattr(model, "_distribute_strategy", None)


class PrebuiltCompiledState:
    """Mixin for a `keras.Model`: build the compiled state from a plain batch.

    Works around: Keras 3.15's `_maybe_symbolic_build` peeks at the first
    distributed batch and reduces it with `strategy.reduce("MEAN")`, which
    fails under `MultiWorkerMirroredStrategy`. Call `_build_compiled_state`
    before `fit`; Keras then skips its own symbolic build.
    """

    def _build_compiled_state(self, x: Any, y: Any) -> None:
        """Builds the compiled loss, metrics and optimizer from one plain batch.

        Does nothing when the model was created under no strategy (Keras
        builds lazily then) or when `x` is None.
        """
        strategy = creation_strategy(self)
        if strategy is None or x is None or not hasattr(self, "_symbolic_build"):
            return
        with strategy.scope():
            self._symbolic_build(
                data_batch=(tf.convert_to_tensor(x[:1]), tf.convert_to_tensor(y[:1])))
        self._compiled_state_prebuilt = True

    def _maybe_symbolic_build(self, iterator: Any = None, data_batch: Any = None) -> None:
        # Overrides Keras' private hook (see the class docstring).
        if getattr(self, "_compiled_state_prebuilt", False):
            return
        super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)
