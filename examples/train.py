"""Trains any keras_robust defence on CIFAR-10 and ends with its robustness report.

    python examples/train.py --defense=pgd_at --steps=3 --epochs=5
    python examples/train.py --defense=plain --data=../shared/datasets/cifar10_jpeg.npz
    python examples/train.py --defense=trades --steps=3 --step_size=3/255 --defense_kwargs='{"beta": 6}'
    python examples/train.py --defense=mart --steps=3 --step_size=3/255 --defense_kwargs='{"lam": 5}'
    python examples/train.py --defense=n_fgsm --monitor=512 --monitor_drop=0.2
    python examples/train.py --defense=grad_align --epsilon=16/255 --monitor=512
    python examples/train.py --defense=gaussian_noise --defense_kwargs='{"sigma": 0.25}' --report=none
    python examples/train.py --defense=pgd_at --preset=at-awp --monitor=1000 --monitor_split=test
    python examples/train.py --defense=trades --awp_gamma=0.005 --awp_warmup=10
    python examples/train.py --defense=trades --activation=swish --extra_data=generated.npz --ema=0.995

`--data=auto` (the default) uses a local CIFAR-10 copy when one is found
(`$KERAS_ROBUST_CIFAR10`, `../shared/datasets/cifar10_jpeg.npz`) and TFDS
otherwise. Budgets (`--epsilon`, `--step_size`) are on the [0, 1] scale of the
images, pixel levels written as a fraction (`--epsilon=8/255`);
`--weight_decay` is the optimizer's decoupled weight decay and `--kernel_l2`
the coupled L2 penalty on kernels (see examples/_flags.py for the flags every
example shares). The run ends with `keras_robust.evaluate.robustness_report`
on the first `--eval_limit` test images at eps 8/255; its default suite,
`--report=summary`, is clean accuracy and FGSM, PGD-10 and PGD-20 with the
cross-entropy loss, PGD-20 with the CW margin loss and APGD-T with the DLR
margin loss. An image counts as robust to an attack when it is classified
correctly both clean and attacked. The summary's headline is the worst case
over the attacks, with the attack that reached it, and a FAIL line says when
the CE and margin-loss figures disagree by the report's check 5 (the CE loss
is then masked and overstates robustness). `--report=quick|standard` runs a
larger suite, a comma-separated list of attack keys a few of them.
`--output_dir` receives `summary.json` (flags, timings and the report's
figures), the report, the `.keras` model and a SavedModel; with `--monitor=N`
also `monitor.png`, the monitor's robust and clean accuracy by epoch (its
figures are in `summary.json`'s history).

`--extra_data=PATH.npz` mixes an extra (e.g. generated) set into every
training batch at `--extra_fraction` (the leaderboard recipe's 0.7), with
`--extra_label_smoothing` on its rows only (`keras_robust.data.mixed`; an
epoch is then one pass over the real images).

`--ema=0.995` trains with weight averaging (`weight_averaging=AveragingConfig(tau)`:
an exponential moving average of the weights with the leaderboard code's
warm-up, min(tau, (1 + t) / (10 + t)) at step t). The report, `model.keras` and
the SavedModel are then those of the averaged weights (BatchNorm on the
trained run's statistics); `summary.json` says so ("reported_weights") and
adds the trained weights' clean accuracy ("raw_clean"). In that `model.keras`
the backbone holds the averages and the averages the trained weights:
`loaded.swap_averaged_weights()` gives the trained model back.
"""
from __future__ import annotations

import json
import os
import time

from absl import app, flags

import _flags  # examples/_flags.py: the shared flags

FLAGS = flags.FLAGS
_flags.define_run(None)
_flags.define_training(5)
_flags.define_report("summary")
_flags.define_activation()
_flags.define_extra_data()
flags.DEFINE_string("defense", "pgd_at", "A name of keras_robust.defenses.DEFENSES.")
flags.DEFINE_string("backbone", "small_cnn", "A name of keras_robust.backbones.BACKBONES.")
flags.DEFINE_float("bn_momentum", None, "BatchNorm momentum (Keras: 0.99; PyTorch's 0.1 is 0.9).")
flags.DEFINE_enum("attack_batchnorm", "moving", ["moving", "batch"],
                  "BatchNorm statistics of the training attack (see RobustModel).")
flags.DEFINE_string("epsilon", "8/255", "Training budget on the [0, 1] scale (e.g. 8/255).")
flags.DEFINE_string("step_size", "2/255", "Training attack step on the [0, 1] scale.")
flags.DEFINE_integer("steps", 7, "Training attack steps.")
flags.DEFINE_string("defense_kwargs", "{}", "Other defence arguments as JSON.")
flags.DEFINE_string("preset", None,
                    "A preset of the defence (`list_presets()`): its settings, replaced only by "
                    "the flags given on the command line. `--defense=fgsm_rs|n_fgsm` is "
                    "pgd_at with the preset of that name; `--defense=grad_align` starts from "
                    "its preset \"grad-align\" (lambda from --epsilon by the authors' rule).")
flags.DEFINE_integer("monitor", 0,
                     "Measure PGD robust accuracy on this many images at each epoch end (0: off; "
                     "see keras_robust.evaluate.RobustAccuracyMonitor).")
flags.DEFINE_enum("monitor_split", "train", ["train", "test"],
                  "The monitor's images: the first training images (catastrophic overfitting) "
                  "or the first test images (robust overfitting).")
flags.DEFINE_integer("monitor_steps", 10, "The monitor's PGD steps (of epsilon / 4).")
flags.DEFINE_float("monitor_drop", None,
                   "Stop, and restore the best epoch, when the monitored robust accuracy falls "
                   "more than this below its best (0.2: 20 points); unset: only measure.")
flags.DEFINE_float("awp_gamma", None,
                   "Adversarial weight perturbation over the defence: gamma, each kernel's "
                   "perturbation relative to its norm (0.01 over PGD-AT, 0.005 over TRADES; see "
                   "keras_robust.AWPConfig). Unset: the preset's, else off.")
flags.DEFINE_integer("awp_warmup", 0, "With --awp_gamma: epochs trained without the perturbation "
                     "first (10 over TRADES in the reference).")
flags.DEFINE_float("ema", 0.0, "Weight averaging: tau of the EMA of the weights (e.g. 0.995); the "
                   "report and the saved models then use the averaged weights. 0: off.")
flags.DEFINE_float("label_smoothing", 0.0,
                   "Train toward BAT-style smoothed labels with this budget (0: one-hot).")


# Single-step training: a defence with the preset of the name (--defense=n_fgsm), so that
# only the flags given replace its settings (not --steps=7 and --step_size=2/255's defaults).
PRESET_DEFENSES = {"fgsm_rs": ("pgd_at", "fgsm-rs"), "n_fgsm": ("pgd_at", "n-fgsm"),
                   "grad_align": ("grad_align", "grad-align")}


def _defense_and_preset() -> tuple[str, str | None]:
    name, preset = PRESET_DEFENSES.get(FLAGS.defense, (FLAGS.defense, None))
    # An alias (fgsm_rs: pgd_at's "fgsm-rs") is its preset; a defence's default preset may be replaced.
    if FLAGS.preset is not None and preset is not None and FLAGS.preset != preset and name != FLAGS.defense:
        raise app.UsageError(f"--defense={FLAGS.defense} is the preset {preset!r}; drop --preset.")
    return name, FLAGS.preset or preset


def _defense_kwargs(defense_cls, preset: str | None = None) -> dict:
    import inspect

    from keras_robust import experiment

    kwargs = json.loads(FLAGS.defense_kwargs)
    # A defence may take the attack keywords through **kwargs (TRADES, MART: PGDATModel's).
    accepted = {name for cls in defense_cls.__mro__ if "__init__" in vars(cls)
                for name in inspect.signature(cls.__init__).parameters}
    # With a preset, only the flags given on the command line replace its settings.
    given = (lambda name: FLAGS[name].present) if preset else (lambda name: True)
    for name, value in (("epsilon", experiment.budget(FLAGS.epsilon)),
                        ("step_size", experiment.budget(FLAGS.step_size)),
                        ("steps", FLAGS.steps)):
        if name in accepted and name not in kwargs and given(name):
            kwargs[name] = value
    kwargs.setdefault("seed", FLAGS.seed)
    if given("attack_batchnorm"):
        kwargs.setdefault("attack_batchnorm", FLAGS.attack_batchnorm)
    return kwargs


def _callbacks() -> list:
    """The --monitor callback (none when it is 0)."""
    if not FLAGS.monitor:
        return []
    import keras_robust as kr
    from keras_robust import data, experiment

    source = experiment.resolve_source(FLAGS.data)
    x, y = data.load_arrays(source, FLAGS.monitor_split, limit=FLAGS.monitor)
    attack = kr.attacks.AttackConfig(epsilon=experiment.budget(FLAGS.epsilon), rel_stepsize=0.25,
                                     steps=FLAGS.monitor_steps)
    return [kr.evaluate.RobustAccuracyMonitor(x, y, attack, drop=FLAGS.monitor_drop,
                                              seed=FLAGS.seed)]


def _plot_monitor(monitor) -> None:
    """monitor.png in --output_dir (without matplotlib: a line saying so, and no plot)."""
    path = os.path.join(FLAGS.output_dir, "monitor.png")
    try:
        monitor.plot(path)
    except ImportError as error:
        print(f"{error} The monitor's curve ({path}) was not drawn.")
        return
    print(f"wrote {path}")


def main(argv):
    del argv
    _flags.start()  # before keras or TensorFlow is imported
    import keras

    import keras_robust as kr
    from keras_robust import experiment

    # A multi-worker strategy must exist before TensorFlow runs anything.
    strategy = experiment.strategy(FLAGS.strategy)
    keras.utils.set_random_seed(FLAGS.seed)
    train, steps_per_epoch, test, info = _flags.load_data()
    with strategy.scope():
        backbone = _flags.backbone(FLAGS.backbone, info)
        if FLAGS.bn_momentum is not None:
            kr.backbones.set_batchnorm_momentum(backbone, FLAGS.bn_momentum)
        name, preset = _defense_and_preset()
        defense_cls = kr.defenses.DEFENSES[name]
        kwargs = _defense_kwargs(defense_cls, preset)
        if FLAGS.awp_gamma is not None:
            kwargs["weight_perturbation"] = kr.AWPConfig(gamma=FLAGS.awp_gamma,
                                                         warmup_epochs=FLAGS.awp_warmup)
        if FLAGS.ema:
            kwargs["weight_averaging"] = kr.AveragingConfig(tau=FLAGS.ema)
        model = (defense_cls.from_preset(preset, backbone, **kwargs) if preset
                 else defense_cls(backbone, **kwargs))
        loss = kr.losses.SmoothedLabelCrossentropy(FLAGS.label_smoothing) if FLAGS.label_smoothing else None
        model.compile(loss=loss, optimizer=_flags.optimizer(steps_per_epoch), metrics=["accuracy"])
    start = time.time()
    callbacks = _callbacks()
    # Mixed batches (--extra_data) come from an endless dataset: fit counts its epochs.
    history = model.fit(train, epochs=FLAGS.epochs, verbose=2, callbacks=callbacks,
                        steps_per_epoch=steps_per_epoch if FLAGS.extra_data else None)
    train_seconds = time.time() - start
    if callbacks:
        _plot_monitor(callbacks[0])
    print(f"\n{FLAGS.defense} / {FLAGS.backbone}, {FLAGS.epochs} epochs on {info.name}, trained in "
          f"{train_seconds:.0f} s")
    summary = {
        "defense": FLAGS.defense, "backbone": FLAGS.backbone, "data": info.name,
        "epochs": FLAGS.epochs, "batch_size": FLAGS.batch_size, "steps_per_epoch": steps_per_epoch,
        "train_seconds": train_seconds,
        "images_per_second": steps_per_epoch * FLAGS.batch_size * FLAGS.epochs / train_seconds,
        "defense_config": {k: v for k, v in model.get_config().items() if k != "backbone"},
        "history": history.history, "flags": _flags.values(),
        "monitor_stopped_at_epoch": callbacks[0].fired_epoch if callbacks else None,
    }
    # The report prints its summary: the worst case first, then each attack and any FAIL.
    if model.weight_averaging is None:
        summary["reported_weights"] = "trained"
        experiment.finish(model, test, FLAGS.output_dir, _flags.report_attacks(), extra=summary)
        return
    x_test, y_test = test
    summary["raw_clean"] = float(model.evaluate(kr.data.to_float(x_test), y_test, verbose=0,
                                                return_dict=True)["accuracy"])
    summary["reported_weights"] = f"averaged (EMA, tau={FLAGS.ema})"
    print(f"trained weights: clean {summary['raw_clean']:.4f}; "
          "the report is on the averaged weights")
    with model.averaged_weights():
        experiment.finish(model, test, FLAGS.output_dir, _flags.report_attacks(), extra=summary)


if __name__ == "__main__":
    app.run(main)
