"""Bilateral adversarial training (BAT) on CIFAR-10, as in Wang & Zhang (ICCV 2019).

    python examples/cifar10_bat.py                       # the paper: WRN-28-10, 100 epochs
    python examples/cifar10_bat.py --backbone=small_cnn --epochs=5 --schedule=cosine \
        --kernel_l2=0 --weight_decay=5e-4 --variant=R-MC-LS \
        --output_dir=runs/bat_ls                        # a CPU run of a variant

Defaults are the paper's R-MC-LA: WRN-28-10, eps 8/255, one-step attack toward
the most confusing class from a random start, adversarial labels with beta 9
(target and label from the clean image's logits, as the authors' code;
`--label_source=start` saves a forward pass), SGD momentum 0.9, batch 128,
lr 0.1 / 0.01 / 0.001 with decays at epochs 60 and 90 of 100, coupled L2
weight decay 2e-4 on kernels (`--kernel_l2`, the authors' code) and no
decoupled weight decay (`--weight_decay=0`). `--epsilon` is on the [0, 1]
scale (`--epsilon=8/255`); see examples/_flags.py for the shared flags. `--variant` picks any model of the
paper's Tables 3-6 (R-FGSM, R-LL, R-MC, R-FGSM-LS, R-MC-LS, R-MC-LA, Madry-LA).
The run ends with the robustness report and writes model.keras, a SavedModel
and the report to `--output_dir`.
"""
from __future__ import annotations

import time

from absl import app, flags

import _flags  # examples/_flags.py: the shared flags

FLAGS = flags.FLAGS
_flags.define_run("runs/cifar10_bat", data_help="auto, cifar10 (TFDS), a JPEG .npz copy or an image folder.")
_flags.define_training(100, schedule="piecewise", lr_boundaries=["60", "90"], weight_decay=0.0,
                       kernel_l2=2e-4)
_flags.define_report("standard")
_flags.define_activation()
flags.DEFINE_string("variant", "R-MC-LA", "A BAT variant: one of keras_robust.BATModel.list_presets().")
flags.DEFINE_string("backbone", "wrn_28_10", "A name of keras_robust.backbones.BACKBONES.")
flags.DEFINE_string("epsilon", "8/255", "Image budget on the [0, 1] scale (e.g. 8/255).")
flags.DEFINE_integer("steps", None, "Attack steps (default: the variant's, 1 for BAT).")
flags.DEFINE_float("beta", 9.0, "The adversarial label's multiplier (eq. 16).")
flags.DEFINE_float("label_epsilon", 0.5, "The budget of smoothed labels (LS variants).")
flags.DEFINE_enum("label_source", "clean", ["clean", "start"],
                  "Target and label from a clean pass (the paper and the authors' code) or from "
                  "the random-start logits (one forward pass fewer).")
flags.DEFINE_enum("label_log", "log_softmax", ["log_softmax", "saturated"],
                  "v = -log p of eq. 13 exactly, or the authors' -log(p + 1e-8).")
flags.DEFINE_float("bn_momentum", None,
                   "BatchNorm moving-average momentum (Keras: 0.99; the authors' code: 0.9). The "
                   "training attack runs on the moving statistics, so this sets how stale they are.")


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
    epsilon = experiment.budget(FLAGS.epsilon)
    overrides = dict(epsilon=epsilon, beta=FLAGS.beta,
                     label_epsilon=FLAGS.label_epsilon, label_source=FLAGS.label_source,
                     label_log=FLAGS.label_log, seed=FLAGS.seed)
    if FLAGS.steps:
        overrides["steps"] = FLAGS.steps
    with strategy.scope():
        backbone = _flags.backbone(FLAGS.backbone, info)
        if FLAGS.bn_momentum is not None:
            kr.backbones.set_batchnorm_momentum(backbone, FLAGS.bn_momentum)
        model = kr.BATModel.from_preset(FLAGS.variant, backbone, **overrides)
        model.compile(optimizer=_flags.optimizer(steps_per_epoch), metrics=["accuracy"])
    start = time.time()
    model.fit(train, epochs=FLAGS.epochs, verbose=2)
    seconds = time.time() - start
    experiment.finish(
        model, test, FLAGS.output_dir, FLAGS.report, epsilon=epsilon,
        extra={"variant": FLAGS.variant, "train_seconds": seconds,
               "config": {k: v for k, v in model.get_config().items() if k != "backbone"}},
    )


if __name__ == "__main__":
    app.run(main)
