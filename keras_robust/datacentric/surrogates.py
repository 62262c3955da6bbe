"""Surrogate models for the data-centric enhancement: the paper's five kinds.

The paper (Zhong et al., AAAI 2022) crafts its transferable perturbations on
an ensemble of ResNet-50, WideResNet, DenseNet-121, VGG-16 and MobileNetV2.
This module builds those five kinds for small images, in two presets:

- `"small"`: CPU variants that train in a minute or two on CIFAR-10 and attack
  at hundreds of images per second on two cores (ResNet-8 with 16 filters,
  WRN-10-2, a DenseNet-BC-16 with growth rate 8 (three blocks of two layers),
  a VGG-11 at 1/8 width, a MobileNetV2 at width 0.25 with one block per
  stage);
- `"paper"`: the paper's sizes (ResNet-50 with bottlenecks, WRN-28-10,
  DenseNet-121, VGG-16, MobileNetV2 at width 1), CIFAR stems (no stride-2 stem,
  so 32x32 inputs keep their resolution).

The architectures are `keras_robust.backbones` builders (`resnet`,
`wide_resnet`, `densenet`, `vgg`, `mobilenet_v2`; `resnet`, `densenet` and
`mobilenet_v2` are re-exported here for existing callers): functional Keras
models from float32 [0, 1] NHWC images to float32 logits that own their
normalisation, built from standard Keras layers only (so `.keras` files load
with `safe_mode=True` and no custom objects). This module holds the presets,
`build`, `multiply_adds` (a cost measure), `train_surrogates`, which trains a
list of kinds and saves them, and `load_surrogates`; any Keras model that maps
[0, 1] images to logits can be a surrogate too.

Example:

```python
from keras_robust.datacentric import surrogates
models = surrogates.train_surrogates(
    ["resnet", "densenet", "mobilenet"], train_ds, epochs=5, directory="runs/surrogates")
```
"""
from __future__ import annotations

import os
import sys
from typing import Any, Callable, Sequence

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from keras_robust import backbones
from keras_robust._validation import check_choice, check_positive_int
from keras_robust.backbones import densenet, mobilenet_v2, resnet

#: The paper's five surrogate kinds.
SURROGATE_KINDS: tuple[str, ...] = ("resnet", "wide_resnet", "densenet", "vgg", "mobilenet")
PRESETS: tuple[str, ...] = ("small", "paper")

Normalization = backbones.Normalization


def _presets() -> dict[str, dict[str, Callable[..., keras.Model]]]:
    return {
        "small": {
            "resnet": lambda **kw: resnet((1, 1, 1), 16, name="resnet8", **kw),
            "wide_resnet": lambda **kw: backbones.wide_resnet(10, 2, name="wrn_10_2", **kw),
            "densenet": lambda **kw: densenet((2, 2, 2), 8, name="densenet_bc16_k8", **kw),
            "vgg": lambda **kw: backbones.vgg(11, width_multiplier=0.125, name="vgg11_w0.125",
                                              **kw),
            "mobilenet": lambda **kw: mobilenet_v2(
                0.25, (1,) * 7, 256, name="mobilenet_v2_0.25_short", **kw),
        },
        "paper": {
            "resnet": lambda **kw: resnet((3, 4, 6, 3), 64, bottleneck=True, name="resnet50", **kw),
            "wide_resnet": lambda **kw: backbones.wide_resnet(28, 10, **kw),
            "densenet": lambda **kw: densenet((6, 12, 24, 16), 32, name="densenet121", **kw),
            "vgg": lambda **kw: backbones.vgg(16, **kw),
            "mobilenet": lambda **kw: mobilenet_v2(1.0, name="mobilenet_v2", **kw),
        },
    }


def build(
    kind: str,
    preset: str = "small",
    *,
    input_shape: Sequence[int] = (32, 32, 3),
    num_classes: int = 10,
    normalization: Normalization = "cifar10",
    weight_decay: float = 0.0,
    name: str | None = None,
) -> keras.Model:
    """Builds one surrogate of the paper's five kinds.

    Args:
        kind: one of `SURROGATE_KINDS` ("resnet", "wide_resnet", "densenet",
            "vgg", "mobilenet").
        preset: "small" (CPU variants) or "paper" (the paper's sizes); see the
            module docstring for the architectures.
        input_shape: (height, width, channels) of the [0, 1] images.
        num_classes: number of logits.
        normalization: see `keras_robust.backbones.small_cnn`.
        weight_decay: L2 factor on kernels.
        name: the model's name (default: the architecture's, e.g. "resnet8").

    Returns:
        An untrained functional `keras.Model` from images to float32 logits.

    Example:

    >>> model = build("densenet", "small", num_classes=10)
    >>> model.name
    'densenet_bc16_k8'
    """
    check_choice(kind, SURROGATE_KINDS, "surrogate kind")
    check_choice(preset, PRESETS, "surrogate preset")
    model = _presets()[preset][kind](
        input_shape=tuple(input_shape), num_classes=num_classes, normalization=normalization,
        weight_decay=weight_decay,
    )
    if name is not None:
        model.name = name
    return model


def multiply_adds(model: keras.Model) -> int:
    """Multiply-adds of one forward pass on one image (convolutions and dense layers).

    A rough cost measure to choose surrogates by: an attack step costs about
    three forward passes per surrogate.

    Args:
        model: a built functional Keras model.

    Returns:
        The number of multiply-adds.

    Example:

    >>> multiply_adds(build("resnet")) < 20_000_000
    True
    """
    total = 0
    for layer in model.layers:
        if isinstance(layer, layers.DepthwiseConv2D):
            _, h, w, c = layer.output.shape
            total += h * w * c * int(np.prod(layer.kernel_size))
        elif isinstance(layer, layers.Conv2D):
            _, h, w, c = layer.output.shape
            total += h * w * c * int(np.prod(layer.kernel_size)) * int(layer.input.shape[-1])
        elif isinstance(layer, layers.Dense):
            total += int(layer.input.shape[-1]) * int(layer.units)
    return int(total)


def train_surrogates(
    kinds: Sequence[str | keras.Model],
    train_dataset: tf.data.Dataset,
    epochs: int,
    *,
    directory: str | None = None,
    preset: str = "small",
    num_classes: int = 10,
    normalization: Normalization = "cifar10",
    learning_rate: float = 0.05,
    weight_decay: float = 5e-4,
    validation_data: Any = None,
    strategy: tf.distribute.Strategy | None = None,
    seed: int | None = 0,
    name_suffix: str = "",
    verbose: int = 2,
) -> list[keras.Model]:
    """Trains surrogates (plain training, SGD with a cosine schedule) and saves them.

    Each surrogate is saved as `directory/<name>.keras` when it finishes; a
    surrogate whose file exists already is loaded instead of trained, so a
    killed run continues where it stopped.

    Args:
        kinds: surrogate kinds (see `SURROGATE_KINDS`) or untrained Keras
            models mapping [0, 1] images to logits.
        train_dataset: batched `(float32 images in [0, 1], int labels)`, e.g.
            `keras_robust.data.load(source, "train", augment=True)`.
        epochs: training epochs per surrogate.
        directory: where to save (and look for) the trained models; None
            keeps them in memory only.
        preset: "small" or "paper" (see `build`).
        num_classes: number of classes.
        normalization: see `keras_robust.backbones.small_cnn`.
        learning_rate: initial SGD learning rate (momentum 0.9, cosine to 0).
        weight_decay: decoupled weight decay.
        validation_data: passed to `fit`.
        strategy: build and train inside this distribution strategy.
        seed: with an int, `keras.utils.set_random_seed(seed + i)` before
            surrogate i (this sets Python's, NumPy's and TensorFlow's global
            seeds); None leaves the seeds alone.
        name_suffix: appended to every model name (and file name), e.g.
            "_test" for a second, independent ensemble.
        verbose: `fit` verbosity.

    Returns:
        The trained surrogates (the backbones, not wrapped), in `kinds` order.

    Raises:
        ValueError: an unknown kind, names that collide, or bad arguments.

    Example:

    >>> train = keras_robust.data.load(source, "train", augment=True)  # doctest: +SKIP
    >>> models = train_surrogates(["resnet", "vgg"], train, epochs=3,
    ...                           directory="runs/sur")  # doctest: +SKIP
    >>> import tempfile
    >>> x = np.random.default_rng(0).random((8, 8, 8, 3), "float32")
    >>> train = keras_robust.data.from_arrays(x, np.arange(8) % 10, batch_size=4)
    >>> def linear():                            # an untrained model can stand for a kind
    ...     return keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
    ...                              keras.layers.Dense(10)], name="linear")
    >>> folder = tempfile.mkdtemp()
    >>> models = train_surrogates([linear()], train, epochs=1, directory=folder,
    ...                           name_suffix="_test", verbose=0)
    >>> [m.name for m in models], sorted(os.listdir(folder))
    (['linear_test'], ['linear_test.keras'])
    >>> again = train_surrogates([linear()], train, epochs=1, directory=folder,
    ...                          name_suffix="_test", verbose=0)   # found on disk: loaded
    >>> [m.name for m in again], sorted(os.listdir(folder))
    (['linear_test'], ['linear_test.keras'])
    """
    from keras_robust.defenses.base import RobustModel
    from keras_robust.optimizers import sgd

    epochs = check_positive_int(epochs, "epochs")
    kinds = list(kinds)
    if not kinds:
        raise ValueError("`kinds` is empty; expected surrogate kinds such as ['resnet', 'vgg'].")
    if not isinstance(train_dataset, tf.data.Dataset):
        raise TypeError(
            "`train_dataset` must be a batched tf.data.Dataset of (images, labels), got "
            f"{type(train_dataset).__name__}; use keras_robust.data.from_arrays for arrays."
        )
    image_spec = train_dataset.element_spec[0]
    if image_spec.shape.rank != 4 or None in image_spec.shape[1:]:
        raise ValueError(
            "`train_dataset` must yield batched images [batch, H, W, C] with known H, W, C, got "
            f"{image_spec.shape}."
        )
    input_shape = tuple(int(d) for d in image_spec.shape[1:])
    steps = int(train_dataset.cardinality())
    if steps < 1:
        steps = sum(1 for _ in train_dataset)
    strategy = strategy or tf.distribute.get_strategy()
    models, names = [], set()
    for index, kind in enumerate(kinds):
        if seed is not None:
            keras.utils.set_random_seed(int(seed) + index)
        with strategy.scope():
            if isinstance(kind, keras.Model):
                backbone = kind
            else:
                backbone = build(kind, preset, input_shape=input_shape, num_classes=num_classes,
                                 normalization=normalization)
            if name_suffix:
                backbone.name = backbone.name + name_suffix
        if backbone.name in names:
            backbone.name = f"{backbone.name}_{index}"
        names.add(backbone.name)
        path = os.path.join(directory, f"{backbone.name}.keras") if directory else None
        if path and os.path.isfile(path):
            print(f"surrogate {backbone.name}: loading {path} (already trained)", file=sys.stderr)
            with strategy.scope():
                models.append(keras.saving.load_model(path, safe_mode=True))
            continue
        with strategy.scope():
            model = RobustModel(backbone, seed=None if seed is None else int(seed) + index)
            model.compile(
                optimizer=sgd(epochs, steps, learning_rate, "cosine", weight_decay=weight_decay),
                metrics=["accuracy"],
            )
        print(f"surrogate {backbone.name}: training {epochs} epochs "
              f"({multiply_adds(backbone) / 1e6:.1f}M multiply-adds per image)", file=sys.stderr)
        model.fit(train_dataset, epochs=epochs, validation_data=validation_data, verbose=verbose)
        if path:
            os.makedirs(directory, exist_ok=True)
            temporary = f"{path}.tmp-{os.getpid()}.keras"
            backbone.save(temporary)
            os.replace(temporary, path)
        models.append(backbone)
    return models


def load_surrogates(directory: str, names: Sequence[str] | None = None) -> list[keras.Model]:
    """Loads surrogates saved by `train_surrogates` (every `.keras` file, sorted by name).

    Args:
        directory: the folder `train_surrogates` wrote.
        names: model names to load (file names without `.keras`); None loads all.

    Returns:
        The models.

    Raises:
        FileNotFoundError: the folder or a named model is missing.

    Example:

    >>> models = load_surrogates("runs/surrogates", ["resnet8", "vgg11_w0.125"])  # doctest: +SKIP
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> for kind in ["resnet", "vgg"]:
    ...     model = build(kind)
    ...     model.save(os.path.join(folder, f"{model.name}.keras"))
    >>> [model.name for model in load_surrogates(folder)]                # all, sorted by name
    ['resnet8', 'vgg11_w0.125']
    >>> [model.name for model in load_surrogates(folder, ["vgg11_w0.125"])]
    ['vgg11_w0.125']
    """
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"No surrogate folder at {directory!r}.")
    if names is None:
        names = sorted(f[:-len(".keras")] for f in os.listdir(directory)
                       if f.endswith(".keras") and ".tmp-" not in f)
        if not names:
            raise FileNotFoundError(f"No .keras surrogates in {directory!r}.")
    models = []
    for name in names:
        path = os.path.join(directory, f"{name}.keras")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"No surrogate {name!r} at {path!r}.")
        models.append(keras.saving.load_model(path, safe_mode=True))
    return models


__all__ = [
    "PRESETS", "SURROGATE_KINDS", "build", "densenet", "load_surrogates", "mobilenet_v2",
    "multiply_adds", "resnet", "train_surrogates",
]
