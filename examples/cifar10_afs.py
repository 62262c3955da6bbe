"""Adversarial feature stacking (AFS) on CIFAR-10, the whole pipeline (Liu & Zhao, 2022).

    python examples/cifar10_afs.py                       # the paper: WRN-28-10 at 3..8/255
    python examples/cifar10_afs.py --backbone=small_cnn --budgets=2/255,5/255,8/255 \
        --extractor_epochs=5 --extractor_steps=3 --extractor_step_ratio=0.5 \
        --merger_epochs=2 --merger_steps=3 --noaugment --weight_decay=0 --alpha=0.1 \
        --merger_init=most_robust --merger_lr=0.01 --output_dir=runs/afs_noaug  # CPU acceptance

Budgets (`--budgets`, `--epsilon`) are on the [0, 1] scale (`8/255`);
`--weight_decay` is the optimizer's decoupled weight decay (see
examples/_flags.py for the shared flags).

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

import _flags  # examples/_flags.py: the shared flags

FLAGS = flags.FLAGS
_flags.define_run("runs/cifar10_afs", data_help="auto, cifar10 (TFDS), a JPEG .npz copy or an image folder.")
_flags.define_training(None, lr_boundaries=None)
flags.DEFINE_integer("extractor_epochs", 100, "Epochs per extractor.")
_flags.define_report("standard")
_flags.define_activation()
flags.DEFINE_string("backbone", "wrn_28_10", "Extractor architecture (keras_robust.backbones).")
flags.DEFINE_list("budgets", [f"{b}/255" for b in range(3, 9)],
                  "Extractor budgets on the [0, 1] scale (e.g. 3/255,8/255).")
flags.DEFINE_integer("extractor_steps", 10, "PGD steps when training extractors.")
flags.DEFINE_float("extractor_step_ratio", None,
                   "Extractor PGD step as a fraction of its budget (default 2.5 / steps).")
flags.DEFINE_integer("merger_epochs", 5, "Epochs of the merger (the paper: 5).")
flags.DEFINE_integer("merger_steps", 10, "PGD steps against the stack when training the merger.")
flags.DEFINE_float("alpha", 0.5, "Weight of the clean loss in eq. 5.")
flags.DEFINE_string("epsilon", "8/255", "Merger and evaluation budget on the [0, 1] scale.")
flags.DEFINE_float("merger_lr", None, "Initial learning rate of the merger (default: --lr).")
flags.DEFINE_enum("merger_init", "random", ["random", "most_robust"],
                  "random: a fresh linear merger (the paper); most_robust: start from the "
                  "largest-budget extractor's own classifier, all other weights zero, so "
                  "training starts from that extractor's predictions.")
flags.DEFINE_integer("delta_z_images", 500, "Test images for Delta-z.")


def main(argv):
    del argv
    _flags.start()  # before keras or TensorFlow is imported
    import keras

    import keras_robust as kr
    from keras_robust import experiment

    # A multi-worker strategy must exist before TensorFlow runs anything.
    strategy = experiment.strategy(FLAGS.strategy)
    keras.utils.set_random_seed(FLAGS.seed)
    train, steps_per_epoch, (x_test, y_test), info = _flags.load_data()
    budgets = [experiment.budget(b) for b in FLAGS.budgets]
    labels = [kr.evaluate.plots.budget_label(b) for b in budgets]
    epsilon = experiment.budget(FLAGS.epsilon)

    def backbone_fn():
        return _flags.backbone(FLAGS.backbone, info)

    def optimizer_fn(epochs, lr=FLAGS.lr):
        return lambda: _flags.optimizer(steps_per_epoch, epochs, lr)

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
    print("Delta-z at eps %s: %s" % (kr.evaluate.plots.budget_label(epsilon), ", ".join(
        f"{kr.evaluate.plots.budget_label(p['budget'])}: {p['delta_z']:.3f}" for p in curve)))
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
                               labels=labels)

    # PGD-20 with the CE and with the CW margin loss (the report's pgd20_ce and pgd20_cw);
    # the worst case is the lower one, and the report's check 5 flags a masked CE loss.
    rows = []
    candidates = [(f"extractor {label}", e) for label, e in zip(labels, extractors)]
    for name, candidate in candidates + [("AFS", model)]:
        report = kr.evaluate.robustness_report(candidate, (x_test, y_test), epsilon=epsilon,
                                               attacks=["pgd20_ce", "pgd20_cw"], progress=False)
        ce, cw = (report.results["attacks"][k]["accuracy"] for k in ("pgd20_ce", "pgd20_cw"))
        check = next(c for c in report.checks if c.name == kr.evaluate.CE_MARGIN_CHECK)
        rows.append({"model": name, "clean": report.clean_accuracy, "pgd20": ce, "cw20": cw,
                     "worst": min(ce, cw), "ce_vs_margin": check.to_dict()})
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
