"""The main job: a short CIFAR-10 adversarial training and its robustness summary.

    python examples/quickstart.py
    python examples/quickstart.py --epochs=5 --train_limit=0    # longer: every training image

The README's usage block at a small scale, top to bottom: load the data
(`kr.data`), build the backbone (`small_cnn`), wrap it in `kr.BATModel` (BAT's
R-MC-LA: one targeted step toward the most confusing class from a random
start, adversarial labels with beta 9, eps 8/255), `compile` (SGD momentum
0.9, learning rate 0.1 with cosine decay, no weight decay), `fit` for 2 epochs
on 10,000 CIFAR-10 images without augmentation (the short-run recipe: in 2
epochs augmentation and weight decay only slow the fit), then
`kr.evaluate.robustness_report(..., attacks="summary")` on 500 test images at
eps 8/255: clean accuracy and accuracy under FGSM, PGD-10 and PGD-20 with the
cross-entropy (CE) loss, PGD-20 with the CW margin loss and APGD-T with the DLR
margin loss. The summary's first line is the worst case over these attacks,
with the attack that reached it; a FAIL line follows when the CE and
margin-loss figures disagree by the report's check 5 (the CE loss is masked
and overstates robustness). Last, `model.save` and `model.export` write the
model and a SavedModel to `--output_dir` (runs/quickstart/, with the report in
report/).

Measured with the local copy (seed 0, TF 2.21 on CPU): 31.2% clean, 12.4%
FGSM, 11.6% PGD-10, 11.4% PGD-20, 6.6% CW-20, 6.4% APGD-T, so a worst case of
6.4% (APGD-T) and check 5 failing: this BAT model masks the CE loss, and its
PGD-20 figure alone would overstate the worst case by 5.0 points. It takes a
few minutes on an idle 2-core CPU. Data: a local CIFAR-10 copy when found (`$KERAS_ROBUST_CIFAR10` or
`../shared/datasets/cifar10_jpeg.npz`), else TFDS (`--data`). The flags shared
by every example are in examples/_flags.py.
"""
from __future__ import annotations

import os

from absl import app, flags

import _flags  # examples/_flags.py: the shared flags

FLAGS = flags.FLAGS
_flags.define_data()
_flags.define_epochs(2)
_flags.define_limits(train_limit=10_000, eval_limit=500)
_flags.define_output("runs/quickstart")


def main(argv):
    del argv
    _flags.start()  # before keras or TensorFlow is imported
    import keras

    import keras_robust as kr
    from keras_robust import experiment

    keras.utils.set_random_seed(0)
    source = experiment.resolve_source(FLAGS.data)  # the local copy, else TFDS "cifar10"
    info = kr.data.info(source)
    train = kr.data.load(source, "train", batch_size=128, limit=FLAGS.train_limit or None, seed=0)
    x_test, y_test = kr.data.load_arrays(source, "test", limit=FLAGS.eval_limit)

    backbone = kr.backbones.small_cnn(input_shape=info.image_shape, num_classes=info.num_classes,
                                      normalization=info.normalization)
    # R-MC-LA: one step toward the most confusing class, adversarial labels (beta 9), eps 8/255.
    model = kr.BATModel.from_preset("R-MC-LA", backbone, seed=0)
    model.compile(optimizer=kr.optimizers.sgd(FLAGS.epochs, len(train), learning_rate=0.1,
                                              schedule="cosine", weight_decay=0.0),
                  metrics=["accuracy"])
    model.fit(train, epochs=FLAGS.epochs, verbose=2)

    report = kr.evaluate.robustness_report(model, (x_test, y_test), epsilon=8 / 255,
                                           attacks="summary", progress=False,
                                           output_dir=os.path.join(FLAGS.output_dir, "report"))
    print(report.summary())  # the worst case first, then each attack, then any FAILed check
    model.save(os.path.join(FLAGS.output_dir, "model.keras"))
    model.export(os.path.join(FLAGS.output_dir, "savedmodel"), verbose=False)  # `serve`: images -> logits
    print(f"wrote {FLAGS.output_dir}/: model.keras, savedmodel/, report/")


if __name__ == "__main__":
    app.run(main)
