"""The private Keras internals keras_robust relies on, all in `keras_robust._keras_compat`.

If one of these tests fails after a Keras upgrade, that Keras release removed
or changed a private name the library works around; the message says which
and what to look at.
"""
from __future__ import annotations

import ast
import inspect
import pathlib

import keras
import pytest
import tensorflow as tf

import keras_robust
from keras_robust import _keras_compat

PACKAGE = pathlib.Path(keras_robust.__file__).parent


def _resolve(dotted: str):
    owner_path, name = dotted.rsplit(".", 1)
    owner = {"keras.layers.Layer": keras.layers.Layer, "keras.Model": keras.Model}[owner_path]
    return owner, name


@pytest.mark.parametrize("dotted", sorted(_keras_compat.PRIVATE_KERAS_API))
def test_private_keras_names_still_exist_with_their_signature(dotted):
    owner, name = _resolve(dotted)
    member = getattr(owner, name, None)
    assert member is not None, (
        f"Keras {keras.__version__} no longer has {dotted}, which keras_robust/_keras_compat.py "
        "works around (see its docstring); adapt that module to this Keras release or pin "
        "the last Keras release that has it."
    )
    parameters = set(inspect.signature(member).parameters)
    expected = set(_keras_compat.PRIVATE_KERAS_API[dotted])
    assert expected <= parameters, (
        f"Keras {keras.__version__} changed the signature of {dotted}: expected the "
        f"parameters {sorted(expected)}, got {sorted(parameters - {'self'})}; adapt "
        "keras_robust/_keras_compat.py to this Keras release."
    )


def test_the_creation_strategy_attribute_is_still_set_by_keras():
    plain = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    assert _keras_compat.creation_strategy(plain) is None
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    with strategy.scope():
        distributed = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    assert _keras_compat.creation_strategy(distributed) is strategy, (
        f"Keras {keras.__version__} no longer records the creation strategy in "
        "`Model._distribute_strategy`; adapt keras_robust/_keras_compat.creation_strategy."
    )


def test_flatten_layers_reaches_layers_nested_in_plain_layers():
    class Block(keras.layers.Layer):
        def __init__(self):
            super().__init__()
            self.norm = keras.layers.BatchNormalization()

        def call(self, x):
            return self.norm(x)

    inner = keras.Sequential([keras.Input((4,)), Block()])
    model = keras.Sequential([keras.Input((4,)), inner, keras.layers.Dense(2)])
    names = [type(layer).__name__ for layer in _keras_compat.flatten_layers(model)]
    assert names.count("BatchNormalization") == 1 and "Dense" in names, names


def _keras_private_names() -> set[str]:
    names: set[str] = set()
    for cls in (keras.Model, keras.layers.Layer, keras.metrics.Metric, keras.optimizers.Optimizer,
                keras.losses.Loss, keras.Variable):
        names |= {n for n in dir(cls) if n.startswith("_") and not n.startswith("__")}
    # Instance attributes too (`_loss_tracker`, `_distribute_strategy`, ...): a compiled model's.
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    names |= {n for n in dir(model) if n.startswith("_") and not n.startswith("__")}
    return names


def test_no_private_keras_name_is_used_outside_the_compat_module():
    private = _keras_private_names()
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "_keras_compat.py":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            name = None
            if isinstance(node, ast.Attribute):
                name = node.attr
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = node.name
            elif (isinstance(node, ast.Call) and getattr(node.func, "id", None) in
                  ("getattr", "hasattr", "setattr") and len(node.args) > 1
                  and isinstance(node.args[1], ast.Constant)):
                name = node.args[1].value
            if isinstance(name, str) and name in private:
                offenders.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {name}")
    assert not offenders, (
        "Private Keras names used outside keras_robust/_keras_compat.py (use the public "
        "Keras API, or move the use into that module with a comment and a test):\n"
        + "\n".join(offenders)
    )
