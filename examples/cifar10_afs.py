"""Adversarial feature stacking (AFS) on CIFAR-10, the whole pipeline (Liu & Zhao, 2022).

    python examples/cifar10_afs.py                       # the paper: WRN-28-10 at 3..8/255
    python examples/cifar10_afs.py --backbone=small_cnn --budgets=2,5,8 \
        --extractor_epochs=5 --extractor_steps=3 --extractor_step_ratio=0.5 \
        --merger_epochs=2 --merger_steps=3 --noaugment --weight_decay=0 --alpha=0.1 \
        --merger_init=most_robust --merger_lr=0.01 --output_dir=runs/afs_noaug  # CPU acceptance

1. trains one PGD-AT extractor per budget (resumable: finished extractors in
   `output_dir/extractors/` are not trained again; an existing PGD-AT model can
   be dropped there as `eps_<b>.keras`);
2. measures Delta-z (eq. 8) of every extractor at the evaluation budget, plots
   it against the training budget and prints the budgets where the curve is
   concave (the paper's selection rule);
3. trains the linear merger over the frozen extractors on
   alpha * L(clean) + (1 - alpha) * L(PGD against the stack) (eq. 5);
4. plots the merger's per-extractor importance ratios (Fig. 5b), compares every
   extractor with AFS on clean accuracy, PGD-20 with the CE and with the CW
   margin loss, and their worst case (with a WARNING where the two losses
   disagree by the report's check 5), and ends with the robustness report;
   writes model.keras and a SavedModel.
"""
from __future__ import annotations

import os
import time

from absl import app, flags

import _quiet  # examples/_quiet.py: the --verbose flag

FLAGS = flags.FLAGS
flags.DEFINE_string("backbone", "wrn_28_10", "Extractor architecture (keras_robust.backbones).")
flags.DEFINE_list("budgets", ["3", "4", "5", "6", "7", "8"], "Extractor budgets in pixel levels.")
flags.DEFINE_string("data", "auto", "auto, cifar10 (TFDS), a JPEG .npz copy or an image folder.")
flags.DEFINE_integer("batch_size", 128, "Global batch size.")
flags.DEFINE_integer("extractor_epochs", 100, "Epochs per extractor.")
flags.DEFINE_integer("extractor_steps", 10, "PGD steps when training extractors.")
flags.DEFINE_float("extractor_step_ratio", None,
                   "Extractor PGD step as a fraction of its budget (default 2.5 / steps).")
flags.DEFINE_integer("merger_epochs", 5, "Epochs of the merger (the paper: 5).")
flags.DEFINE_integer("merger_steps", 10, "PGD steps against the stack when training the merger.")
flags.DEFINE_float("alpha", 0.5, "Weight of the clean loss in eq. 5.")
flags.DEFINE_float("epsilon", 8.0, "Merger and evaluation budget in pixel levels.")
flags.DEFINE_float("lr", 0.1, "Initial learning rate of the extractors (cosine decay).")
flags.DEFINE_float("merger_lr", None, "Initial learning rate of the merger (default: --lr).")
flags.DEFINE_float("weight_decay", 5e-4, "Decoupled weight decay.")
flags.DEFINE_boolean("augment", True,
                     "Pad-4 random crop and flip (--noaugment: the 5-epoch CPU recipe).")
flags.DEFINE_enum("merger_init", "random", ["random", "most_robust"],
                  "random: a fresh linear merger (the paper); most_robust: start from the "
                  "largest-budget extractor's own classifier, all other weights zero, so "
                  "training starts from that extractor's predictions.")
flags.DEFINE_integer("train_limit", None, "Use only the first N training images.")
flags.DEFINE_integer("eval_limit", 1000, "Evaluate on the first N test images.")
flags.DEFINE_integer("delta_z_images", 500, "Test images for Delta-z.")
flags.DEFINE_enum("report", "standard", ["standard", "quick", "none"], "Robustness report suite.")
flags.DEFINE_enum("strategy", "default", ["default", "mirrored", "multi_worker"], "Distribution.")
flags.DEFINE_integer("seed", 0, "Seed.")
flags.DEFINE_string("output_dir", "runs/cifar10_afs", "Where to write everything.")


def main(argv):
    del argv
    _quiet.start()  # before keras or TensorFlow is imported
    import keras

    import keras_robust as kr
    from keras_robust import experiment

    # A multi-worker strategy must exist before TensorFlow runs anything.
    strategy = experiment.strategy(FLAGS.strategy)
    keras.utils.set_random_seed(FLAGS.seed)
    train, steps_per_epoch, (x_test, y_test), info = experiment.load_cifar(
        FLAGS.data, FLAGS.batch_size, FLAGS.augment, FLAGS.train_limit, FLAGS.eval_limit, FLAGS.seed)
    budgets = [float(b) / 255 for b in FLAGS.budgets]
    epsilon = FLAGS.epsilon / 255

    def backbone_fn():
        return kr.backbones.get(FLAGS.backbone, input_shape=info.image_shape,
                                num_classes=info.num_classes, normalization=info.normalization)

    def optimizer_fn(epochs, lr=FLAGS.lr):
        return lambda: experiment.sgd(epochs, steps_per_epoch, lr, "cosine",
                                      weight_decay=FLAGS.weight_decay)

    start = time.time()
    with strategy.scope():
        extractors = kr.afs.train_extractors(
            backbone_fn, budgets, train, epochs=FLAGS.extractor_epochs,
            output_dir=os.path.join(FLAGS.output_dir, "extractors"), steps=FLAGS.extractor_steps,
            step_size=lambda b: b * (FLAGS.extractor_step_ratio or 2.5 / FLAGS.extractor_steps),
            optimizer_fn=optimizer_fn(FLAGS.extractor_epochs), seed=FLAGS.seed)
    extractor_seconds = time.time() - start

    curve = kr.afs.delta_z_curve(extractors, x_test[: FLAGS.delta_z_images], budgets, epsilon,
                                 plot=os.path.join(FLAGS.output_dir, "delta_z.png"))
    concave = kr.afs.concave_budgets(curve)
    print("Delta-z at eps %g/255: %s" % (FLAGS.epsilon, ", ".join(
        f"{255 * p['budget']:g}/255: {p['delta_z']:.3f}" for p in curve)))
    print("budgets on the concave part of the curve:", [round(255 * b, 2) for b in concave])

    with strategy.scope():
        warm_start = budgets.index(max(budgets)) if FLAGS.merger_init == "most_robust" else None
        model = kr.AFSModel(extractors, alpha=FLAGS.alpha, epsilon=epsilon,
                            steps=FLAGS.merger_steps, warm_start=warm_start, seed=FLAGS.seed)
        merger_lr = FLAGS.lr if FLAGS.merger_lr is None else FLAGS.merger_lr
        model.compile(optimizer=optimizer_fn(FLAGS.merger_epochs, merger_lr)(),
                      metrics=["accuracy"])
    start = time.time()
    model.fit(train, epochs=FLAGS.merger_epochs, verbose=2)
    merger_seconds = time.time() - start
    ratios = kr.afs.importance(model, plot=os.path.join(FLAGS.output_dir, "importance.png"),
                               labels=[f"{b:g}/255" for b in map(float, FLAGS.budgets)])

    from keras_robust.evaluate.suites import pgd_spec

    # PGD-20 with the CE and with the CW margin loss (step eps/4, random start);
    # the worst case is the lower one, and check 5 of the report flags a masked CE loss.
    pgd20, cw20 = pgd_spec(epsilon, 20, "ce"), pgd_spec(epsilon, 20, "cw")
    rows = []
    candidates = [(f"extractor {b}/255", e) for b, e in zip(FLAGS.budgets, extractors)]
    for name, candidate in candidates + [("AFS", model)]:
        ce, cw = (kr.evaluate.robust_accuracy(candidate, x_test, y_test, spec.run)
                  for spec in (pgd20, cw20))
        rows.append({"model": name, "clean": kr.evaluate.accuracy(candidate, x_test, y_test),
                     "pgd20": ce, "cw20": cw, "worst": min(ce, cw),
                     "ce_vs_margin": kr.evaluate.ce_margin_agreement(ce, cw, pgd20.name,
                                                                     cw20.name).to_dict()})
    print(f"\n{'model':<22}{'clean':>8}{'PGD-20':>8}{'CW-20':>8}{'worst':>8}  (worst: the lower "
          "of the two attacks)")
    for row in rows:
        print(f"{row['model']:<22}" + "".join(f"{100 * row[k]:>7.1f}%"
                                              for k in ("clean", "pgd20", "cw20", "worst")))
    for row in rows:
        if row["ce_vs_margin"]["status"] == "FAIL":
            print(f"WARNING {row['model']}: {row['ce_vs_margin']['name']} FAILED: "
                  f"{row['ce_vs_margin']['detail']}")
    print("merger importance ratios:", ", ".join(f"{r:.3f}" for r in ratios))
    experiment.finish(
        model, (x_test, y_test), FLAGS.output_dir, FLAGS.report, epsilon=epsilon,
        extra={"delta_z": curve, "concave_budgets": concave, "importance": ratios,
               "comparison": rows,
               "extractor_seconds": extractor_seconds, "merger_seconds": merger_seconds,
               "budgets": budgets, "alpha": FLAGS.alpha,
               "merger_init": FLAGS.merger_init, "merger_lr": merger_lr},
    )


if __name__ == "__main__":
    app.run(main)
