"""Bit-plane feature consistency (BPFC) on CIFAR-10, as in Addepalli et al. (CVPR 2020).

    python examples/cifar10_bpfc.py                      # the paper: ResNet-18, 100 epochs
    python examples/cifar10_bpfc.py --backbone=small_cnn --epochs=5 --schedule=cosine \
        --kernel_l2=0 --weight_decay=5e-4 --lam_boundaries=1 --lam_values=1,9 \
        --output_dir=runs/bpfc_small_cnn                 # the CPU acceptance run

Defaults follow the authors' CIFAR-10 code (`val-iisc/BPFC`, `-p_val 5 -l_ce 1
-l_reg 1 -mul_ru 9`): k = 5, SGD momentum 0.9, batch 128, lr 0.1 divided by 5
and lambda multiplied by 9 (1, 9, 81, 729) after epochs 25, 50 and 75 of 100
(0-based, as the authors' loop: the new values apply from epochs 26, 51, 76),
coupled L2 weight decay 5e-4 on kernels (`--kernel_l2`; no decoupled
`--weight_decay`; see examples/_flags.py for the shared flags). No adversarial example is used in training;
the run ends with the full robustness report (BPFC's claim is robustness
without gradient masking, so the report's checks matter) and writes
model.keras, a SavedModel and the report to `--output_dir`.
"""
from __future__ import annotations

import time

from absl import app, flags

import _flags  # examples/_flags.py: the shared flags

FLAGS = flags.FLAGS
_flags.define_run("runs/cifar10_bpfc", data_help="auto, cifar10 (TFDS), a JPEG .npz copy or an image folder.")
_flags.define_training(100, schedule="piecewise", weight_decay=0.0, kernel_l2=5e-4)
_flags.define_report("standard")
_flags.define_activation()
flags.DEFINE_string("backbone", "preact_resnet18", "A name of keras_robust.backbones.BACKBONES.")
flags.DEFINE_float("lr_decay", 0.2, "Piecewise learning-rate factor at each lambda step.")
flags.DEFINE_integer("k", 5, "Low bits dropped by the quantiser.")
flags.DEFINE_list("lam_boundaries", None,
                  "Epochs (0-based) from which lambda changes (default: the authors', after "
                  "1/4, 1/2 and 3/4 of training: 26, 51, 76 of 100; the LR decays there too).")
flags.DEFINE_list("lam_values", None, "lambda values (default 1, 9, 81, 729).")
flags.DEFINE_enum("passes", "separate", ["separate", "joint"],
                  "x and q(x) in separate training passes (the authors) or one joint pass.")


def main(argv):
    del argv
    _flags.start()  # before keras or TensorFlow is imported
    import keras

    import keras_robust as kr
    from keras_robust import experiment
    from keras_robust.bpfc import LambdaSchedule

    # A multi-worker strategy must exist before TensorFlow runs anything.
    strategy = experiment.strategy(FLAGS.strategy)
    keras.utils.set_random_seed(FLAGS.seed)
    train, steps_per_epoch, test, info = _flags.load_data()
    if FLAGS.lam_boundaries or FLAGS.lam_values:
        schedule = LambdaSchedule([int(b) for b in FLAGS.lam_boundaries or []],
                                  [float(v) for v in FLAGS.lam_values or []])
    else:
        schedule = LambdaSchedule.authors(FLAGS.epochs)
    with strategy.scope():
        backbone = _flags.backbone(FLAGS.backbone, info)
        model = kr.BPFCModel(backbone, k=FLAGS.k, lam_schedule=schedule, passes=FLAGS.passes,
                             seed=FLAGS.seed)
        model.compile(
            optimizer=_flags.optimizer(
                steps_per_epoch, boundaries=LambdaSchedule.authors(FLAGS.epochs).boundaries,
                decay_rate=FLAGS.lr_decay),
            metrics=["accuracy"],
        )
    start = time.time()
    model.fit(train, epochs=FLAGS.epochs, verbose=2)
    seconds = time.time() - start
    experiment.finish(
        model, test, FLAGS.output_dir, FLAGS.report,
        extra={"train_seconds": seconds, "lam_schedule": schedule.get_config(),
               "config": {k: v for k, v in model.get_config().items() if k != "backbone"}},
    )


if __name__ == "__main__":
    app.run(main)
