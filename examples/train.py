"""Trains any keras_robust defence on CIFAR-10 and ends with a robustness summary.

    python examples/train.py --defense=pgd_at --steps=3 --epochs=5
    python examples/train.py --defense=plain --data=../shared/datasets/cifar10_jpeg.npz

`--data=auto` (the default) uses a local CIFAR-10 copy when one is found
(`$KERAS_ROBUST_CIFAR10`, `../shared/datasets/cifar10_jpeg.npz`) and TFDS
otherwise. Budgets are in pixel levels (8 means 8/255). The summary is clean
accuracy and, at eps 8/255, FGSM, PGD-10 and PGD-20 with the cross-entropy loss
(step 2/255, random start), PGD-20 with the CW margin loss and APGD-T with the
DLR margin loss (3 targets x 20 steps), on the first `--eval_limit` test images
(`--eval_attacks` picks a subset). An image counts as robust to an attack when it is
classified correctly both clean and attacked. The headline robust figure is the
worst case over the summary's attacks, with the attack that reached it, and a
WARNING line says when the CE and margin-loss figures disagree by the rule of
the report's check 5 (`keras_robust.evaluate.ce_margin_agreement`): the CE loss
is then masked and overstates robustness. `--report=quick|standard` adds the
full robustness report; `--output_dir` receives `summary.json` (figures, worst
case, verdict), the `.keras` model and a SavedModel.
"""
from __future__ import annotations

import functools
import json
import sys
import time

from absl import app, flags, logging

import _quiet  # examples/_quiet.py: the --verbose flag

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
SUMMARY_ATTACKS = ("fgsm", "pgd10", "pgd20", "cw20", "apgd_t")  # the keys of summary_attacks()
flags.DEFINE_list("eval_attacks", ["fgsm", "pgd10", "pgd20", "cw20", "apgd_t"],
                  "Summary attacks: fgsm, pgd10, pgd20 (CE loss), cw20 (PGD-20, CW margin loss), "
                  "apgd_t (APGD-T, DLR margin loss).")
flags.register_validator(
    "eval_attacks", lambda names: set(names) <= set(SUMMARY_ATTACKS),
    f"--eval_attacks takes names among {', '.join(SUMMARY_ATTACKS)} (comma-separated)")
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


def summary_attacks(epsilon: float = 8 / 255) -> dict:
    """The summary's attacks by name, as the report's `AttackSpec`s (PGD: step eps/4,
    random start, seed 0; `loss` tells cross-entropy from margin-loss attacks)."""
    import keras_robust as kr
    from keras_robust.evaluate import AttackSpec, build_suite
    from keras_robust.evaluate.suites import pgd_spec

    return {
        "fgsm": build_suite("quick", epsilon).attacks[0],
        "pgd10": pgd_spec(epsilon, 10, "ce"),
        "pgd20": pgd_spec(epsilon, 20, "ce"),
        "cw20": pgd_spec(epsilon, 20, "cw"),
        "apgd_t": AttackSpec(
            "apgd_t", "APGD-T (DLR, 3 targets x 20)",
            functools.partial(kr.attacks.apgd_targeted, epsilon=epsilon, steps=20, num_targets=3,
                              seed=0),
            "apgd", "dlr", 60),
    }


def robust_figures(model, x_test, y_test, names) -> tuple[dict, dict, float, dict]:
    """Clean and per-attack accuracy; an image is robust when it is right clean and attacked.

    Returns `(accuracy, seconds, per_image_worst, robust)`: accuracy by "clean"
    and attack name, attack seconds by name, the fraction of images robust to
    every attack at once, and each attack's per-image robust mask (for the
    paired check 5).
    """
    import numpy as np
    import keras_robust as kr

    y = np.asarray(y_test).reshape(-1)
    correct = np.argmax(kr.evaluate.predict_logits(model, x_test), -1) == y
    robust_all = correct.copy()
    accuracy, seconds, masks = {"clean": float(correct.mean())}, {}, {}
    specs = summary_attacks()
    for name in names:
        start = time.time()
        _, x_adv = kr.evaluate.robust_accuracy(model, x_test, y, specs[name].run,
                                               return_adversarial=True)
        robust = correct & (np.argmax(kr.evaluate.predict_logits(model, x_adv), -1) == y)
        seconds[name] = time.time() - start
        accuracy[name] = float(robust.mean())
        robust_all &= robust
        masks[name] = robust
        logging.info("%s: %.1f%% (%.0f s)", specs[name].name, 100 * accuracy[name], seconds[name])
    return accuracy, seconds, float(robust_all.mean()), masks


def verdict(accuracy: dict, masks: dict | None = None) -> tuple[dict, dict | None, list[str]]:
    """The headline of a summary: the worst case and the CE vs margin-loss check.

    `accuracy` maps "clean" and names of `summary_attacks()` to accuracies;
    `masks` (optional) maps the same names to per-image robust masks, which
    make check 5 paired (b: images robust to the CE attack that the
    margin-loss attack breaks; c: the reverse).
    Returns `(worst_case, check, lines)`: the attack with the lowest accuracy
    ({"attack", "name", "accuracy"}), check 5 of the report on the summary's
    strongest CE-PGD and margin-loss figures as a dict (None without both),
    and the lines to print (with a WARNING when the check fails or cannot run).
    """
    import keras_robust as kr

    specs = summary_attacks()
    attacks = [k for k in accuracy if k != "clean"]
    lines = []
    worst = None
    if attacks:
        key = min(attacks, key=lambda k: accuracy[k])
        worst = {"attack": key, "name": specs[key].name, "accuracy": accuracy[key]}
        lines.append(f"  robust accuracy, worst case over {len(attacks)} attacks: "
                     f"{100 * worst['accuracy']:.1f}% ({worst['name']})")
    ce = [k for k in attacks if specs[k].family == "pgd" and specs[k].loss == "ce"]
    margin = [k for k in attacks if specs[k].loss in ("cw", "dlr")]
    check = None
    if ce and margin:
        ce_key = min(ce, key=lambda k: accuracy[k])
        margin_key = min(margin, key=lambda k: accuracy[k])
        paired = {}
        if masks and ce_key in masks and margin_key in masks:
            ce_robust, margin_robust = masks[ce_key], masks[margin_key]
            paired = {"b": int((ce_robust & ~margin_robust).sum()),
                      "c": int((~ce_robust & margin_robust).sum())}
        check = kr.evaluate.ce_margin_agreement(
            accuracy[ce_key], accuracy[margin_key], specs[ce_key].name, specs[margin_key].name,
            **paired)
        if not check.passed:
            lines.append(f"  WARNING: {check.name} FAILED: {check.detail}")
        check = check.to_dict()
    elif ce:
        lines.append("  WARNING: no margin-loss attack among --eval_attacks (add cw20 or apgd_t): "
                     "the cross-entropy figures are unchecked and may overstate robustness")
    return worst, check, lines


def main(argv):
    del argv
    _quiet.start()  # before keras or TensorFlow is imported
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

    results, seconds, worst, check, all_attacks = {}, {}, None, None, None
    if experiment.is_chief():  # evaluation only: the chief's is enough
        results, seconds, all_attacks, masks = robust_figures(model, x_test, y_test,
                                                              FLAGS.eval_attacks)
        worst, check, lines = verdict(results, masks)
        specs = summary_attacks()
        print(f"\n{FLAGS.defense} / {FLAGS.backbone}, {FLAGS.epochs} epochs, trained in "
              f"{train_seconds:.0f} s ({len(x_test)} test images, eps 8/255):")
        for name, value in results.items():
            label = specs[name].name if name in specs else ""
            print(f"  {name:>8}: {100 * value:5.1f}%  {label}".rstrip())
        if len(FLAGS.eval_attacks) > 1:
            lines.insert(1, f"  robust to all {len(FLAGS.eval_attacks)} attacks at once: "
                            f"{100 * all_attacks:.1f}%")
        print("\n".join(lines))
    summary = {
        "defense": FLAGS.defense, "backbone": FLAGS.backbone, "data": source,
        "epochs": FLAGS.epochs, "batch_size": FLAGS.batch_size, "train_seconds": train_seconds,
        "images_per_second": steps_per_epoch * FLAGS.batch_size * FLAGS.epochs / train_seconds,
        "defense_config": {k: v for k, v in model.get_config().items() if k != "backbone"},
        "accuracy": results, "worst_case": worst, "ce_vs_margin": check,
        "robust_to_all_attacks": all_attacks, "attack_seconds": seconds,
        "history": history.history,
        "flags": {f.name: f.value for f in FLAGS.get_flags_for_module(sys.argv[0])},
    }
    experiment.finish(model, (x_test, y_test), FLAGS.output_dir, FLAGS.report, extra=summary)


if __name__ == "__main__":
    app.run(main)
