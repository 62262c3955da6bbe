"""AttackConfig, the public engine and compiled attacks that do not retrace."""
from __future__ import annotations

import copy
import json
import logging

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_robust as kr
from keras_robust.attacks import AttackConfig
from keras_robust.attacks.common import as_logits_fn
from keras_robust.attacks.engine import run_attack, with_restarts
from tests.helpers import linear_model, mlp

EPS = 8 / 255


def test_config_round_trips_through_json():
    config = AttackConfig(norm="l2", epsilon=0.5, step_size=0.1, steps=3, loss="cw",
                          target="ll", target_source="start", random_start=False, restarts=2,
                          momentum=0.9, input_diversity=0.3, smoothing_kernel=3)
    again = AttackConfig.from_config(json.loads(json.dumps(config.get_config())))
    assert again == config and hash(again) == hash(config)
    assert config.replace(steps=5).steps == 5 and config.steps == 3
    with pytest.raises(dataclasses_frozen_error()):
        config.steps = 4


def dataclasses_frozen_error():
    import dataclasses

    return dataclasses.FrozenInstanceError


@pytest.mark.parametrize("changes, message", [
    (dict(norm="l1"), "Unknown norm 'l1'"),
    (dict(epsilon=2.0), r"`epsilon` must be in \(0, 1\]"),
    (dict(steps=0), "`steps` must be an integer >= 1"),
    (dict(restarts=1.5), "`restarts` must be an integer"),
    (dict(loss="mse"), "Unknown loss 'mse'"),
    (dict(target="best"), "Unknown target 'best'"),
    (dict(target=[1, 2]), "pass target labels to the attack call"),
    (dict(target_source="x"), "Unknown target_source"),
    (dict(smoothing_kernel=4), "positive odd size"),
    (dict(input_diversity=1.5), r"`input_diversity` must be in \[0.0, 1.0\]"),
    (dict(early_stop=True, input_diversity=0.5), "input diversity"),
    (dict(step_size=-1.0), "`step_size` must be a positive"),
    (dict(start="normal"), "Unknown start 'normal'"),
    (dict(start_scale=0.0), "`start_scale` must be a positive"),
    (dict(loss="kl", random_start=False), "zero gradient at x' = x"),
    (dict(loss="kl", target="mc"), "KL objective is untargeted"),
    (dict(loss="kl", early_stop=True), "training attack"),
    (dict(loss="kl", restarts=2), "training attack"),
])
def test_config_refuses_bad_settings_with_the_fix(changes, message):
    with pytest.raises((ValueError, TypeError), match=message):
        AttackConfig(**changes)


def test_a_callable_loss_runs_but_is_not_serialised():
    config = AttackConfig(loss=lambda logits, y, target: logits[:, 0])
    with pytest.raises(ValueError, match="callable `loss` cannot be serialised"):
        config.get_config()


def test_pgd_with_a_config_equals_pgd_with_keywords():
    model = mlp(num_classes=4)
    rng = np.random.default_rng(0)
    x, y = rng.random((5, 8, 8, 1), dtype=np.float32), rng.integers(0, 4, 5)
    by_keywords = kr.attacks.pgd(model, x, y, 0.5, 0.2, 3, norm="l2", loss="cw", restarts=2,
                                 seed=3)
    config = AttackConfig(norm="l2", epsilon=0.5, step_size=0.2, steps=3, loss="cw",
                          restarts=2)
    by_config = kr.attacks.pgd(model, x, y, None, config=config, seed=3)
    np.testing.assert_array_equal(by_keywords.numpy(), by_config.numpy())
    # The engine, called directly (as defences do), gives the same images.
    engine = with_restarts(as_logits_fn(model), tf.constant(x), y, config,
                           seed=tf.constant([3, 0], tf.int64))
    np.testing.assert_array_equal(by_keywords.numpy(), engine.numpy())


def test_per_call_budget_overrides_the_config():
    model = linear_model(num_classes=4)
    x = tf.random.stateless_uniform([3, 8, 8, 1], [0, 0])
    config = AttackConfig(epsilon=None, steps=2, random_start=False)
    with pytest.raises(ValueError, match="pass `epsilon=`"):
        run_attack(as_logits_fn(model), x, [0, 1, 2], config)
    eps = tf.constant([0.01, 0.02, 0.03])
    x_adv = run_attack(as_logits_fn(model), x, [0, 1, 2], config, epsilon=eps).x_adv
    linf = tf.reduce_max(tf.abs(x_adv - x), axis=[1, 2, 3]).numpy()
    assert np.all(linf <= eps.numpy() + 1e-6) and linf[2] > 0.02


class _Capture(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_attacks_do_not_warn_about_retracing():
    # Before: "5 out of the last 5 calls to <function run_compiled.<locals>.bound ...>
    # triggered tf.function retracing" (the closure's code object was the key of
    # TensorFlow's count, shared by every attack and model).
    model = linear_model(num_classes=4)
    rng = np.random.default_rng(0)
    batches = [(rng.random((n, 8, 8, 1), dtype=np.float32), rng.integers(0, 4, n))
               for n in (6, 5, 6)]
    capture = _Capture()
    logger = tf.get_logger()
    logger.addHandler(capture)
    try:
        for x, y in batches:
            for eps in (EPS, 4 / 255):
                kr.attacks.pgd(model, x, y, eps, steps=2, seed=1)
                kr.attacks.pgd(model, x, y, eps, steps=2, restarts=3, seed=2)
                kr.attacks.pgd(model, x, y, eps, steps=3, loss="cw", early_stop=True, seed=3)
                kr.attacks.fgsm(model, x, y, eps)
                kr.attacks.mi_fgsm(model, x, y, eps, steps=2, input_diversity=0.5, seed=4)
                kr.attacks.apgd(model, x, y, eps, steps=2, restarts=2, seed=5)
                kr.attacks.apgd_targeted(model, x, y, eps, steps=2, num_targets=2, seed=6)
                kr.attacks.square(model, x, y, eps, queries=3, seed=7)
                kr.attacks.cw_l2(model, x, y, steps=2)
    finally:
        logger.removeHandler(capture)
    retracing = [m for m in capture.messages if "retracing" in m]
    assert not retracing, retracing[0]


def test_new_budgets_and_seeds_do_not_retrace():
    traces = []
    layer = keras.layers.Dense(3)
    layer.build((None, 16))

    def model(images):  # a plain callable: it runs in Python only while being traced
        traces.append(1)
        return layer(tf.reshape(images, [-1, 16]))

    x = np.random.default_rng(0).random((4, 4, 4, 1), dtype=np.float32)
    y = np.array([0, 1, 2, 0])
    kr.attacks.pgd(model, x, y, EPS, steps=2, seed=0)
    before = len(traces)
    for i, eps in enumerate((1 / 255, 2 / 255, 3 / 255)):
        kr.attacks.pgd(model, x, y, eps, steps=2, seed=i + 1)
        kr.attacks.pgd(model, x, y, eps, step_size=eps / 2, steps=2, seed=i + 1)
    assert len(traces) == before


def _old_style(config: dict) -> dict:
    """A defence's config as saved before the attack had its own entry."""
    old = {k: v for k, v in config.items() if k != "attack"}
    attack = config["attack"]
    old.update(epsilon=attack["epsilon"], step_size=attack["step_size"], steps=attack["steps"],
               random_start=attack["random_start"], norm=attack["norm"], loss=attack["loss"],
               target=attack["target"])
    return old


@pytest.mark.parametrize("make, expected", [
    (lambda b: kr.PGDATModel(b, epsilon=4 / 255, step_size=1 / 255, steps=3, loss="cw", seed=0),
     AttackConfig(epsilon=4 / 255, step_size=1 / 255, steps=3, loss="cw")),
    (lambda b: kr.BATModel(b, epsilon=4 / 255, steps=2, target="ll", seed=0),
     AttackConfig(epsilon=4 / 255, step_size=2 / 255, steps=2, target="ll")),
], ids=["pgd_at", "bat"])
def test_defences_hold_one_attack_config_and_load_old_configs(make, expected):
    from tests.helpers import tiny_cnn

    model = make(tiny_cnn())
    assert model.attack == expected
    config = model.get_config()
    assert config["attack"] == model.attack.get_config()
    json.dumps(config["attack"])
    assert type(model).from_config(copy.deepcopy(config)).attack == model.attack
    # A config saved before `attack` existed (no "attack", the keywords) loads the same.
    old = _old_style(copy.deepcopy(config))
    assert "attack" not in old
    assert type(model).from_config(old).attack == model.attack
    # `attack=` is the alternative to the keywords.
    same = type(model)(tiny_cnn(), attack=model.attack, seed=0)
    assert same.attack == model.attack
    with pytest.raises(TypeError, match="`attack` must be an AttackConfig"):
        type(model)(tiny_cnn(), attack="pgd")


def test_a_defence_attack_config_trains_as_the_keywords_do():
    from tests.helpers import tiny_cnn

    rng = np.random.default_rng(0)
    x, y = rng.random((8, 8, 8, 1), dtype=np.float32), rng.integers(0, 2, 8)
    attack = AttackConfig(epsilon=4 / 255, step_size=1 / 255, steps=2)
    results = []
    for kwargs in (dict(epsilon=4 / 255, step_size=1 / 255, steps=2), dict(attack=attack)):
        keras.utils.set_random_seed(0)
        model = kr.PGDATModel(tiny_cnn(), seed=1, **kwargs)
        model.compile(optimizer="sgd")
        results.append(model.adversarial_examples(tf.constant(x), tf.one_hot(y, 2)).x_adv)
    np.testing.assert_array_equal(results[0].numpy(), results[1].numpy())


def test_masking_checks_read_the_attack_settings_from_the_specs():
    from keras_robust.evaluate import checks, suites

    suite = suites.build_suite("quick", EPS)
    specs = {spec.key: spec for spec in suite.attacks}
    assert specs["pgd20_ce_r3"].restarts == 3 and specs["pgd20_ce_r3"].config.restarts == 3
    assert specs["fgsm"].config.steps == 1 and specs["pgd7_cw"].config.loss == "cw"
    # The same attacks under names the key parser cannot read: the specs tell.
    renamed = {"one_step": specs["fgsm"], "iterative": specs["pgd20_ce"],
               "iterative_x3": specs["pgd20_ce_r3"], "margin": specs["pgd20_cw"]}
    accuracy = {"one_step": 0.5, "iterative": 0.3, "iterative_x3": 0.4, "margin": 0.31}
    results = {"attacks": {k: {"accuracy": a, "name": k} for k, a in accuracy.items()}}
    specs_renamed = [dataclasses_replace(spec, key=key) for key, spec in renamed.items()]
    found = {c.name: c for c in checks.run_checks(results, specs_renamed)}
    assert found["iterative attacks beat single-step ones"].status == "PASS"
    steps_check = found["more steps and restarts never help the model"]
    assert steps_check.status == "FAIL" and "iterative_x3 40.0% vs iterative 30.0%" in \
        steps_check.detail
    assert found["cross-entropy and margin-loss attacks agree"].status == "PASS"
    # Without the specs these keys say nothing: the checks are skipped.
    blind = {c.name: c.status for c in checks.run_checks(results)}
    assert blind["iterative attacks beat single-step ones"] == "SKIPPED"


def dataclasses_replace(obj, **changes):
    import dataclasses

    return dataclasses.replace(obj, **changes)


class _NoisyInput(keras.layers.Layer):
    """Gaussian noise on the input at every call: a model with random inference."""

    def call(self, x):
        return x + 0.5 * tf.random.normal(tf.shape(x))


@pytest.mark.slow
def test_apgd_with_eot_attacks_a_random_model_at_least_as_well():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 1))
    h = keras.layers.Flatten()(_NoisyInput()(inputs))
    h = keras.layers.Dense(64, activation="relu")(h)
    model = keras.Model(inputs, keras.layers.Dense(4)(h))
    x = np.random.default_rng(0).random((200, 8, 8, 1), dtype=np.float32)
    y = np.mean([model(x).numpy() for _ in range(50)], 0).argmax(1)  # the expected class

    def accuracy(images):  # expected accuracy over the model's randomness
        return np.mean([np.mean(model(images).numpy().argmax(1) == y) for _ in range(20)])

    plain = np.mean([accuracy(kr.attacks.apgd(model, x, y, 0.1, steps=10, seed=seed))
                     for seed in range(3)])
    eot = np.mean([accuracy(kr.attacks.apgd(model, x, y, 0.1, steps=10, seed=seed,
                                                   config=APGDConfig(eot_iter=20)))
                   for seed in range(3)])
    # Measured over seeds 0-2: 0.644 without EOT, 0.589 with it (averaged gradients are
    # less noisy); with the 20 passes run but one pass's gradient kept, 0.631 (noise).
    assert eot < plain - 0.03, (plain, eot)
    with pytest.raises(ValueError, match="`eot_iter` must be an integer >= 1"):
        kr.attacks.apgd(model, x, y, 0.1, steps=1, config=APGDConfig(eot_iter=0))


def test_the_rand_suite_is_autoattacks_rand_version():
    from keras_robust.evaluate import suites

    suite = suites.build_suite("rand", EPS)
    assert [spec.key for spec in suite.cascade] == ["apgd_ce", "apgd_dlr"]
    assert [spec.loss for spec in suite.cascade] == ["ce", "dlr"]
    assert "EOT 20" in suite.cascade[0].name and "rand version" in suite.settings
    assert [s.key for s in suite.attacks] == [
        s.key for s in suites.build_suite("standard", EPS).attacks]
    model = linear_model(num_classes=4)
    x = tf.random.stateless_uniform([2, 8, 8, 1], [0, 0])
    assert suite.cascade[1].run(model, x, tf.constant([0, 1])).shape == x.shape


# ----------------------------------------------------------- every attack's config

from keras_robust.attacks import (  # noqa: E402
    APGDConfig, APGDTargetedConfig, CWConfig, FABConfig, SquareConfig,
)
from keras_robust.attacks.config import resolve_step_size  # noqa: E402

ALL_CONFIGS = [
    APGDConfig(epsilon=0.5, norm="l2", steps=7, loss="dlr", target="mc", restarts=2, rho=0.5,
               rule="paper", eot_iter=2, early_stop=True),
    APGDTargetedConfig(epsilon=EPS, steps=5, num_targets=3, loss="ce", restarts=2),
    FABConfig(epsilon=EPS, targeted=False, num_targets=2, steps=4, restarts=2, alpha_max=0.2,
              eta=1.1, beta=0.8, minimal=True),
    CWConfig(confidence=2.0, steps=5, learning_rate=0.1, initial_const=0.5,
             binary_search_steps=2, fallback="input", abort_early=True, target="ll"),
    SquareConfig(epsilon=0.5, norm="l2", queries=30, p_init=0.3, loss="ce", target="random"),
    AttackConfig(epsilon=EPS, steps=4, rel_stepsize=0.3),
]


@pytest.mark.parametrize("config", ALL_CONFIGS, ids=lambda c: type(c).__name__)
def test_every_attack_config_round_trips_through_json_and_keras(config):
    again = type(config).from_config(json.loads(json.dumps(config.get_config())))
    assert again == config and hash(again) == hash(config)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(config))
    assert type(restored) is type(config) and restored == config
    with pytest.raises(dataclasses_frozen_error()):
        config.steps = 4
    # The budget is a number of the call: it stays out of the graph key.
    key = config.graph_key()
    assert getattr(key, "epsilon", None) is None
    if hasattr(config, "epsilon"):
        assert config.replace(epsilon=0.25).graph_key() == key


@pytest.mark.parametrize("cls, changes, message", [
    (APGDConfig, dict(steps=0), "`steps` must be an integer >= 1"),
    (APGDConfig, dict(loss="cw"), "Unknown loss 'cw'"),
    (APGDConfig, dict(rho=1.5), r"`rho` must be in \[0.0, 1.0\]"),
    (APGDConfig, dict(rule="book"), "Unknown rule 'book'"),
    (APGDConfig, dict(target=[1, 2]), "pass target labels to the attack call"),
    (APGDConfig, dict(epsilon=2.0), r"`epsilon` must be in \(0, 1\]"),
    (APGDTargetedConfig, dict(num_targets=0), "`num_targets` must be an integer >= 1"),
    (APGDTargetedConfig, dict(eot_iter=0), "`eot_iter` must be an integer >= 1"),
    (FABConfig, dict(eta=0.5), "`eta` is FAB's overshoot"),
    (FABConfig, dict(beta=0.0), r"`beta` must be in \(0, 1\]"),
    (FABConfig, dict(targeted="yes"), "True \\(FAB-T\\) or False \\(FAB\\)"),
    (FABConfig, dict(norm="l1"), "Unknown norm 'l1'"),
    (CWConfig, dict(confidence=-1.0), "`confidence` must be a finite number >= 0"),
    (CWConfig, dict(fallback="best"), "Unknown fallback 'best'"),
    (CWConfig, dict(learning_rate=0.0), "`learning_rate` must be a positive"),
    (SquareConfig, dict(p_init=0.0), r"`p_init` must be in \(0, 1\]"),
    (SquareConfig, dict(queries=-3), "`queries` must be an integer >= 1"),
    (SquareConfig, dict(loss="dlr"), "Unknown loss 'dlr'"),
    (AttackConfig, dict(rel_stepsize=0.0), "`rel_stepsize` must be a positive"),
])
def test_every_attack_config_refuses_bad_settings(cls, changes, message):
    with pytest.raises((ValueError, TypeError), match=message):
        cls(**changes)


def _batch(classes=4, count=4, seed=0):
    rng = np.random.default_rng(seed)
    return (mlp(num_classes=classes), rng.random((count, 8, 8, 1), dtype=np.float32),
            rng.integers(0, classes, count))


@pytest.mark.parametrize("attack, keywords, config", [
    (kr.attacks.apgd, dict(steps=4, loss="dlr", restarts=2, config=APGDConfig(rho=0.5, rule="paper")),
     APGDConfig(steps=4, loss="dlr", restarts=2, rho=0.5, rule="paper")),
    (kr.attacks.apgd_targeted, dict(steps=3, num_targets=2, restarts=1),
     APGDTargetedConfig(steps=3, num_targets=2)),
    (kr.attacks.fab, dict(steps=3, num_targets=2, restarts=2, config=FABConfig(eta=1.1)),
     FABConfig(steps=3, num_targets=2, restarts=2, eta=1.1)),
    (kr.attacks.square, dict(queries=15, p_init=0.5, loss="ce"),
     SquareConfig(queries=15, p_init=0.5, loss="ce")),
], ids=["apgd", "apgd_targeted", "fab", "square"])
def test_an_attack_with_its_config_equals_the_attack_with_keywords(attack, keywords, config):
    model, x, y = _batch()
    by_keywords = attack(model, x, y, 0.1, seed=3, **keywords)
    by_config = attack(model, x, y, 0.1, seed=3, config=config)
    np.testing.assert_array_equal(by_keywords.numpy(), by_config.numpy())
    # The budget may live in the config too.
    in_config = attack(model, x, y, seed=3, config=config.replace(epsilon=0.1))
    np.testing.assert_array_equal(by_keywords.numpy(), in_config.numpy())
    assert np.abs(by_keywords.numpy() - x).max() > 0


def test_cw_with_its_config_equals_cw_with_keywords_and_presets():
    model, x, y = _batch()
    by_keywords = kr.attacks.cw_l2(model, x, y, steps=4, learning_rate=0.05, seed=1)
    by_config = kr.attacks.cw_l2(model, x, y, config=CWConfig(steps=4, learning_rate=0.05),
                                 seed=1)
    np.testing.assert_array_equal(by_keywords.numpy(), by_config.numpy())
    assert np.abs(by_keywords.numpy() - x).max() > 0
    paper = CWConfig(**kr.attacks.cw.CW_PRESETS["carlini_wagner"]).replace(steps=3)
    np.testing.assert_array_equal(
        kr.attacks.cw_l2(model, x, y, preset="carlini_wagner", steps=3).numpy(),
        kr.attacks.cw_l2(model, x, y, config=paper).numpy())


def test_keywords_override_the_config_and_a_wrong_config_is_refused():
    model, x, y = _batch()
    by_keywords = kr.attacks.apgd(model, x, y, 0.1, steps=2, seed=0)
    overridden = kr.attacks.apgd(model, x, y, 0.1, steps=2, seed=0, config=APGDConfig(steps=9))
    np.testing.assert_array_equal(by_keywords.numpy(), overridden.numpy())
    with pytest.raises(TypeError, match="`config` must be a SquareConfig"):
        kr.attacks.square(model, x, y, 0.1, config=APGDConfig())
    with pytest.raises(ValueError, match="No budget"):
        kr.attacks.fab(model, x, y)


def test_the_relative_step_is_a_multiple_of_epsilon():
    eps = tf.constant([0.1, 0.2])
    np.testing.assert_array_equal(resolve_step_size(eps, 10, rel_stepsize=0.25).numpy(),
                                  (0.25 * eps).numpy())
    # The absolute step overrides it; neither gives PGD's 2.5 * epsilon / steps.
    assert resolve_step_size(eps, 10, step_size=0.01, rel_stepsize=0.25) == 0.01
    np.testing.assert_array_equal(resolve_step_size(eps, 10).numpy(), (2.5 * eps / 10).numpy())
    config = AttackConfig(epsilon=0.1, steps=10, rel_stepsize=0.25)
    assert float(config.step_for()) == pytest.approx(0.025)
    assert config.graph_key().rel_stepsize is None
    # PGD with a relative step equals PGD with that absolute step.
    model, x, y = _batch()
    relative = kr.attacks.pgd(model, x, y, None, config=config.replace(random_start=False))
    absolute = kr.attacks.pgd(model, x, y, 0.1, np.float32(0.25) * np.float32(0.1), 10,
                              random_start=False)
    np.testing.assert_array_equal(relative.numpy(), absolute.numpy())
    # And so does the engine, called directly as the defences do.
    engine = run_attack(as_logits_fn(model), tf.constant(x), y,
                        config.replace(random_start=False)).x_adv
    np.testing.assert_array_equal(relative.numpy(), engine.numpy())


def test_each_refusal_comes_from_one_place():
    model, x, y = _batch()
    message = "input diversity"
    with pytest.raises(ValueError, match=message):
        AttackConfig(early_stop=True, input_diversity=0.5)
    from keras_robust.attacks.engine import early_stop_attack

    with pytest.raises(ValueError, match=message):
        early_stop_attack(as_logits_fn(model), tf.constant(x), y, AttackConfig(input_diversity=0.5))
    for attack in (kr.attacks.pgd, kr.attacks.mi_fgsm):
        kwargs = dict(config=AttackConfig(input_diversity=0.5)) if attack is kr.attacks.pgd else dict(
            input_diversity=0.5)
        with pytest.raises(ValueError, match="XLA cannot compile"):
            attack(model, x, y, EPS, jit_compile=True, **kwargs)
