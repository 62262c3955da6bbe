"""Trains any keras_robust defence on CIFAR-10 and ends with a robustness summary.

    python examples/train.py --defense=pgd_at --steps=3 --epochs=5
    python examples/train.py --defense=plain --data=../shared/datasets/cifar10_jpeg.npz

`--data=auto` (the default) uses a local CIFAR-10 copy when one is found
(`$KERAS_ROBUST_CIFAR10`, `../shared/datasets/cifar10_jpeg.npz`) and TFDS
otherwise. Budgets are in pixel levels (8 means 8/255). The summary is clean
accuracy, FGSM and PGD-10/PGD-20 (eps 8/255, step 2/255, random start) on the
first `--eval_limit` test images (`--report=quick|standard` adds the full
robustness report); `--output_dir` receives `summary.json`, the `.keras` model
and a SavedModel.
"""
from __future__ import annotations

import functools
import json
import os
import sys
import time

from absl import app, flags, logging

FLAGS = flags.FLAGS
flags.DEFINE_string("defense", "pgd_at", "A name of keras_robust.defenses.DEFENSES.")
flags.DEFINE_string("backbone", "small_cnn", "A name of keras_robust.backbones.BACKBONES.")
flags.DEFINE_string("data", "auto", "auto, a TFDS name, a JPEG .npz copy or an image folder.")
flags.DEFINE_integer("epochs", 5, "Training epochs.")
flags.DEFINE_integer("batch_size", 128, "Global batch size.")
flags.DEFINE_float("lr", 0.1, "Initial learning rate.")
flags.DEFINE_enum("schedule", "cosine", ["cosine", "piecewise", "constant"], "LR schedule.")
flags.DEFINE_list("lr_boundaries", [], "Epochs of the piecewise decays (x0.1 each).")
flags.DEFINE_float("weight_decay", 5e-4, "Decoupled weight decay.")
flags.DEFINE_float("kernel_l2", 0.0,
                   "Coupled weight decay on kernels, as PyTorch's SGD(weight_decay=...): the loss "
                   "gains kernel_l2 / 2 * ||w||^2, so its gradient adds kernel_l2 * w.")
flags.DEFINE_float("bn_momentum", None, "BatchNorm momentum (Keras: 0.99; PyTorch's 0.1 is 0.9).")
flags.DEFINE_enum("attack_batchnorm", "moving", ["moving", "batch"],
                  "BatchNorm statistics of the training attack (see RobustModel).")
flags.DEFINE_float("epsilon", 8.0, "Training budget in pixel levels (/255).")
flags.DEFINE_float("step_size", 2.0, "Training attack step in pixel levels (/255).")
flags.DEFINE_integer("steps", 7, "Training attack steps.")
flags.DEFINE_string("defense_kwargs", "{}", "Other defence arguments as JSON.")
flags.DEFINE_integer("train_limit", None, "Use only the first N training images.")
flags.DEFINE_integer("eval_limit", 1000, "Evaluate on the first N test images.")
flags.DEFINE_list("eval_attacks", ["fgsm", "pgd10", "pgd20"], "Summary attacks.")
flags.DEFINE_enum("strategy", "default", ["default", "mirrored", "multi_worker"], "Distribution.")
flags.DEFINE_integer("seed", 0, "Seed of weights, data order and the defence's randomness.")
flags.DEFINE_string("output_dir", None, "Where to write summary.json and the models.")
flags.DEFINE_boolean("augment", True, "Pad-4 random crop and flip.")
flags.DEFINE_float("label_smoothing", 0.0,
                   "Train toward BAT-style smoothed labels with this budget (0: one-hot).")
flags.DEFINE_enum("report", "none", ["none", "quick", "standard"],
                  "Also run the full robustness report (written to output_dir/report).")


def _defense_kwargs(defense_cls) -> dict:
    import inspect

    kwargs = json.loads(FLAGS.defense_kwargs)
    accepted = inspect.signature(defense_cls.__init__).parameters
    for name, value in (("epsilon", FLAGS.epsilon / 255), ("step_size", FLAGS.step_size / 255),
                        ("steps", FLAGS.steps)):
        if name in accepted and name not in kwargs:
            kwargs[name] = value
    kwargs.setdefault("seed", FLAGS.seed)
    kwargs.setdefault("attack_batchnorm", FLAGS.attack_batchnorm)
    return kwargs


def summary_attacks() -> dict:
    """The summary's attacks by name (all at 8/255)."""
    import keras_robust as kr

    eps, step = 8 / 255, 2 / 255
    return {
        "fgsm": functools.partial(kr.attacks.fgsm, epsilon=eps, seed=0),
        "pgd10": functools.partial(kr.attacks.pgd, epsilon=eps, step_size=step, steps=10, seed=0),
        "pgd20": functools.partial(kr.attacks.pgd, epsilon=eps, step_size=step, steps=20, seed=0),
        "cw20": functools.partial(
            kr.attacks.pgd, epsilon=eps, step_size=step, steps=20, loss="cw", seed=0
        ),
    }


def main(argv):
    del argv
    import keras
    import keras_robust as kr
    from keras_robust import experiment

    # A multi-worker strategy must exist before TensorFlow runs anything.
    strategy = experiment.strategy(FLAGS.strategy)
    keras.utils.set_random_seed(FLAGS.seed)
    train, steps_per_epoch, (x_test, y_test), data_info = experiment.load_cifar(
        FLAGS.data, FLAGS.batch_size, FLAGS.augment, FLAGS.train_limit, FLAGS.eval_limit,
        FLAGS.seed)
    source = data_info.name
    logging.info("data: %s (%d classes)", source, data_info.num_classes)

    with strategy.scope():
        backbone = kr.backbones.get(
            FLAGS.backbone, input_shape=data_info.image_shape, num_classes=data_info.num_classes,
            normalization=data_info.normalization, weight_decay=FLAGS.kernel_l2 / 2,
        )
        if FLAGS.bn_momentum is not None:
            kr.backbones.set_batchnorm_momentum(backbone, FLAGS.bn_momentum)
        defense_cls = kr.defenses.DEFENSES[FLAGS.defense]
        model = defense_cls(backbone, **_defense_kwargs(defense_cls))
        loss = kr.losses.SmoothedLabelCrossentropy(FLAGS.label_smoothing) if FLAGS.label_smoothing else None
        model.compile(
            loss=loss,
            optimizer=experiment.sgd(
                FLAGS.epochs, steps_per_epoch, FLAGS.lr, FLAGS.schedule,
                weight_decay=FLAGS.weight_decay,
                boundaries=[int(b) for b in FLAGS.lr_boundaries],
            ),
            metrics=["accuracy"],
        )
    start = time.time()
    history = model.fit(train, epochs=FLAGS.epochs, verbose=2)
    train_seconds = time.time() - start

    results = {}
    if experiment.is_chief():  # evaluation only: the chief's is enough
        results["clean"] = kr.evaluate.accuracy(model, x_test, y_test)
        attacks = summary_attacks()
        for name in FLAGS.eval_attacks:
            results[name] = kr.evaluate.robust_accuracy(model, x_test, y_test, attacks[name])
        print(f"\n{FLAGS.defense} / {FLAGS.backbone}, {FLAGS.epochs} epochs, trained in "
              f"{train_seconds:.0f} s ({len(x_test)} test images, eps 8/255):")
        for name, value in results.items():
            print(f"  {name:>8}: {100 * value:5.1f}%")
    summary = {
        "defense": FLAGS.defense, "backbone": FLAGS.backbone, "data": source,
        "epochs": FLAGS.epochs, "batch_size": FLAGS.batch_size, "train_seconds": train_seconds,
        "images_per_second": steps_per_epoch * FLAGS.batch_size * FLAGS.epochs / train_seconds,
        "defense_config": {k: v for k, v in model.get_config().items() if k != "backbone"},
        "accuracy": results, "history": history.history,
        "flags": {f.name: f.value for f in FLAGS.get_flags_for_module(sys.argv[0])},
    }
    experiment.finish(model, (x_test, y_test), FLAGS.output_dir, FLAGS.report, extra=summary)


if __name__ == "__main__":
    app.run(main)
