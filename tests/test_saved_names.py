"""Models saved before the papers moved to their own packages still load.

Keras finds a custom class by its registered name ("keras_robust>BATModel"),
which the moves keep; the saved "module" string ("keras_robust.defenses.bat")
names a module that no longer exists. Two checks:

- a `.keras` file written by the code before the moves
  (`tests/fixtures/make_main_models.py`) with the three custom layers and the two
  BAT losses loads, with the moved classes and the same outputs;
- every defence, layer and loss serialised now, with its "module" rewritten to
  the path it had before the moves, deserialises to the same class.
"""
from __future__ import annotations

import os
from typing import Any

import keras
import numpy as np
import pytest

import keras_robust as kr

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")

# Where each class lived before the moves (what old .keras files say).
OLD_MODULES = {
    "RobustModel": "keras_robust.defenses.base",
    "PGDATModel": "keras_robust.defenses.pgd_at",
    "BATModel": "keras_robust.defenses.bat",
    "BPFCModel": "keras_robust.defenses.bpfc",
    "LambdaSchedule": "keras_robust.defenses.bpfc",
    "MTLATModel": "keras_robust.defenses.mtlat",
    "AFSModel": "keras_robust.defenses.afs",
    "InferenceModeExtractor": "keras_robust.defenses.afs",
    "BitPlaneQuantization": "keras_robust.quantization",
    "Mixup": "keras_robust.layers",
    "TLATLabelMixer": "keras_robust.layers",
    "AdversarialLabelCrossentropy": "keras_robust.losses",
    "SmoothedLabelCrossentropy": "keras_robust.losses",
}


def _backbone() -> keras.Model:
    return kr.backbones.small_cnn(input_shape=(8, 8, 3), num_classes=10, filters=(4, 8, 8))


def _old_modules(config: Any, seen: set[str]) -> Any:
    """`config` with the "module" of every keras_robust object set to its old home."""
    if isinstance(config, list):
        return [_old_modules(item, seen) for item in config]
    if not isinstance(config, dict):
        return config
    config = {key: _old_modules(value, seen) for key, value in config.items()}
    if str(config.get("module", "")).startswith("keras_robust"):
        registered = config["registered_name"]
        class_name = registered.split(">")[-1]
        assert registered.startswith("keras_robust>"), registered
        config["module"] = OLD_MODULES[class_name]
        seen.add(class_name)
    return config


def test_a_keras_file_saved_by_main_before_the_moves_loads():
    model = keras.saving.load_model(os.path.join(FIXTURES, "layers_before_package_moves.keras"),
                                    safe_mode=True)
    custom = {type(layer).__name__: type(layer) for layer in model.layers
              if type(layer).__module__.startswith("keras_robust")}
    assert custom == {"BitPlaneQuantization": kr.layers.BitPlaneQuantization, "Mixup": kr.layers.Mixup,
                      "TLATLabelMixer": kr.layers.TLATLabelMixer}
    assert [type(loss) for loss in model.loss] == [kr.losses.SmoothedLabelCrossentropy,
                                                   kr.losses.AdversarialLabelCrossentropy]
    reference = np.load(os.path.join(FIXTURES, "layers_before_package_moves_outputs.npz"))
    x = reference["x"]
    labels = np.eye(10, dtype="float32")[[0, 1, 2, 3]]
    quantized, tlat = model([x, labels, labels[::-1], np.full(4, 0.1, "float32")], training=False)
    np.testing.assert_array_equal(np.asarray(quantized), reference["quantized"])
    np.testing.assert_array_equal(np.asarray(tlat), reference["tlat"])


@pytest.mark.parametrize("name", ["plain", "pgd_at", "bat", "bpfc", "mtlat", "afs"])
def test_each_defence_deserialises_from_its_old_module_string(name):
    make = {
        "plain": lambda: kr.RobustModel(_backbone(), seed=0),
        "pgd_at": lambda: kr.PGDATModel(_backbone(), epsilon=0.05, steps=2, seed=0),
        "bat": lambda: kr.BATModel(_backbone(), epsilon=0.05, seed=0),
        "bpfc": lambda: kr.BPFCModel(_backbone(), seed=0),
        "mtlat": lambda: kr.MTLATModel(_backbone(), epsilon_max=0.05, seed=0),
        "afs": lambda: kr.AFSModel([_backbone(), _backbone()], epsilon=0.05, steps=2, seed=0),
    }[name]
    model = make()
    seen: set[str] = set()
    config = _old_modules(keras.saving.serialize_keras_object(model), seen)
    assert type(model).__name__ in seen
    again = keras.saving.deserialize_keras_object(config, safe_mode=True)
    assert type(again) is type(model)
    assert again.get_config().keys() == model.get_config().keys()


def test_each_layer_and_loss_deserialises_from_its_old_module_string():
    for obj in (kr.layers.Mixup(alpha=0.4, seed=0), kr.layers.TLATLabelMixer(),
                kr.layers.BitPlaneQuantization(k=5, seed=0),
                kr.losses.AdversarialLabelCrossentropy(beta=9.0),
                kr.losses.SmoothedLabelCrossentropy(epsilon=0.5)):
        seen: set[str] = set()
        config = _old_modules(keras.saving.serialize_keras_object(obj), seen)
        assert seen == {type(obj).__name__}
        again = keras.saving.deserialize_keras_object(config, safe_mode=True)
        assert type(again) is type(obj) and again.get_config() == obj.get_config()


# What `get_config()` held before each defence kept its attack as one `attack` config:
# the attack's fields as flat keys (M-TLAT: `epsilon_max`, and `tlat` before `adversary`).
OLD_ATTACK_KEYS = {
    "pgd_at": (lambda: kr.PGDATModel(_backbone(), epsilon=0.05, steps=2, seed=0),
               dict(epsilon=0.05, step_size=2 / 255, steps=2, random_start=True, norm="linf",
                    loss="ce", target=None)),
    "bat": (lambda: kr.BATModel(_backbone(), epsilon=0.05, seed=0),
            dict(epsilon=0.05, steps=1, target="mc", random_start=True, step_size=None)),
    "mtlat": (lambda: kr.MTLATModel(_backbone(), epsilon_max=0.05, seed=0),
              dict(epsilon_max=0.05, tlat=True)),
    "afs": (lambda: kr.AFSModel([_backbone(), _backbone()], epsilon=0.05, steps=2, seed=0),
            dict(epsilon=0.05, steps=2, step_size=None)),
}


@pytest.mark.parametrize("name", sorted(OLD_ATTACK_KEYS))
def test_a_config_with_the_attack_as_flat_keys_loads_with_the_same_attack(name):
    make, old_keys = OLD_ATTACK_KEYS[name]
    model = make()
    config = keras.saving.serialize_keras_object(model)
    assert "attack" in config["config"] and not set(old_keys) & set(config["config"])
    config["config"] = {**{k: v for k, v in config["config"].items() if k != "attack"}, **old_keys}
    again = keras.saving.deserialize_keras_object(config, safe_mode=True)
    assert again.attack == model.attack and again.attack.epsilon == 0.05  # every case's budget
    assert again.get_config().keys() == model.get_config().keys()
