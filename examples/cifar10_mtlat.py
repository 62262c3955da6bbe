"""M-TLAT on CIFAR-10 against a standard model, scored on the perturbation benchmark.

    python examples/cifar10_mtlat.py                         # small_cnn, 10 epochs, both models
    python examples/cifar10_mtlat.py --variants=M-TLAT,Mixup,TLAT   # with the ablations
    python examples/cifar10_mtlat.py --optimizer=adam --epochs=90 --backbone=preact_resnet18
        # the paper's schedule: Adam 0.002, coupled L2 1e-4 (--kernel_l2), lr / 10 at 30, 60, 80

Trains a standard model (`RobustModel`, plain training) and each M-TLAT
variant with the same backbone, data and schedule (by default the
foundation's: SGD momentum 0.9, cosine from 0.1, batch 128, decoupled weight
decay 5e-4), trains a narrow VGG surrogate for the black-box attacks, runs the
M-TLAT perturbation benchmark (19 corruptions x 5 severities; PGD, PGD_LL,
CW_L2, MI-FGSM 0.04 / 0.08) on the first `--eval_limit` test images, prints
the paper's table and writes to `--output_dir`: `benchmark/` (Markdown, JSON,
PNG), and per model `model.keras`, a SavedModel `savedmodel/` and
`summary.json`. `--weight_decay` is the optimizer's decoupled weight decay
(default 5e-4 with SGD, 0 with Adam) and `--kernel_l2` the coupled L2 penalty on
kernels (default 0 with SGD, the paper's 1e-4 with Adam); `--epsilon_max` is on
the [0, 1] scale (see examples/_flags.py for the shared flags).
"""
from __future__ import annotations

import os
import sys
import time

from absl import app, flags

import _flags  # examples/_flags.py: the shared flags

FLAGS = flags.FLAGS
_flags.define_run("runs/cifar10_mtlat", data_help="auto, cifar10 (TFDS), a JPEG .npz copy or an image folder.")
_flags.define_training(10, lr=None, schedule=None, lr_boundaries=None, weight_decay=None,
                       kernel_l2=None)
flags.DEFINE_string("backbone", "small_cnn", "A name of keras_robust.backbones.BACKBONES.")
flags.DEFINE_enum("optimizer", "sgd", ["sgd", "adam"],
                  "sgd: momentum 0.9, decoupled weight decay (the foundation's recipe); adam: "
                  "the paper's (coupled L2 weight decay on kernels). Defaults by optimizer: "
                  "--lr 0.1 / 0.002, --schedule cosine / piecewise, --lr_boundaries none / "
                  "30,60,80, --weight_decay 5e-4 / 0, --kernel_l2 0 / 1e-4.")
flags.DEFINE_list("variants", ["M-TLAT"], "M-TLAT variants to train: M-TLAT, IAT (Table 1), "
                  "Mixup, TLAT (Table 2), FGSM, target-FGSM, LS (Table 3).")
flags.DEFINE_float("mixup_alpha", 0.4, "Beta(alpha, alpha) of Mixup.")
flags.DEFINE_float("epsilon_max", 0.025, "Largest TLAT budget on the [0, 1] scale.")
flags.DEFINE_enum("halves", "sum", ["sum", "mean"],
                  "Loss over Algorithm 1's two halves: sum (L1 + L2, the paper) or mean "
                  "((L1 + L2) / 2, the library's former default).")
flags.DEFINE_integer("surrogate_depth", 11, "VGG depth of the black-box surrogate.")
flags.DEFINE_float("surrogate_width", 0.25, "VGG width multiplier of the surrogate.")
flags.DEFINE_integer("surrogate_epochs", 10, "Surrogate training epochs.")
flags.DEFINE_list("severities", ["1", "2", "3", "4", "5"], "Corruption severities.")
flags.DEFINE_list("extra_attacks", [],
                  "Benchmark attacks beyond the paper's five (e.g. cw_l2_misclassified).")
flags.DEFINE_boolean("reuse", False, "Load models already in output_dir instead of training.")

_DIRS = {"standard": "standard", "M-TLAT": "mtlat", "Mixup": "mixup", "TLAT": "tlat", "IAT": "iat",
         "FGSM": "fgsm", "target-FGSM": "target_fgsm", "LS": "label_smoothing"}


def _recipe() -> dict:
    """The optimizer settings, from the flags and the chosen optimizer's defaults."""
    adam = FLAGS.optimizer == "adam"
    return {
        "optimizer": FLAGS.optimizer,
        "lr": FLAGS.lr if FLAGS.lr is not None else (0.002 if adam else 0.1),
        "schedule": FLAGS.schedule or ("piecewise" if adam else "cosine"),
        "boundaries": [int(b) for b in
                       (FLAGS.lr_boundaries or (["30", "60", "80"] if adam else []))],
        "weight_decay": FLAGS.weight_decay if FLAGS.weight_decay is not None
        else (0.0 if adam else 5e-4),
        "kernel_l2": FLAGS.kernel_l2 if FLAGS.kernel_l2 is not None else (1e-4 if adam else 0.0),
    }


def _optimizer(recipe: dict, epochs: int, steps_per_epoch: int):
    import keras

    from keras_robust import experiment

    if recipe["optimizer"] == "sgd":
        return experiment.sgd(epochs, steps_per_epoch, recipe["lr"], recipe["schedule"],
                              weight_decay=recipe["weight_decay"], boundaries=recipe["boundaries"])
    # Adam (the paper): the same schedules; its weight decay is --kernel_l2, inside the backbone.
    rate = recipe["lr"]
    if recipe["schedule"] == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(rate, epochs * steps_per_epoch)
    elif recipe["schedule"] == "piecewise" and recipe["boundaries"]:
        steps = [b * steps_per_epoch for b in recipe["boundaries"]]
        rate = keras.optimizers.schedules.PiecewiseConstantDecay(
            steps, [recipe["lr"] * 0.1**i for i in range(len(steps) + 1)])
    return keras.optimizers.Adam(rate, weight_decay=recipe["weight_decay"] or None)


def _train(name: str, make_model, backbone_fn, train, steps_per_epoch, epochs, recipe, test,
           output_dir):
    """Trains (or with --reuse loads) one model; writes model.keras, savedmodel/, summary.json."""
    import keras

    from keras_robust import experiment

    path = os.path.join(output_dir, "model.keras")
    if FLAGS.reuse and os.path.isfile(path):
        print(f"[cifar10_mtlat] {name}: loading {path}", file=sys.stderr, flush=True)
        return keras.saving.load_model(path, safe_mode=True), None
    with experiment.strategy(FLAGS.strategy).scope():
        model = make_model(backbone_fn())
        model.compile(optimizer=_optimizer(recipe, epochs, steps_per_epoch), metrics=["accuracy"])
    print(f"[cifar10_mtlat] training {name} for {epochs} epochs", file=sys.stderr, flush=True)
    start = time.time()
    history = model.fit(train, epochs=epochs, verbose=2)
    seconds = time.time() - start
    print(f"[cifar10_mtlat] {name}: trained in {seconds:.0f} s", file=sys.stderr, flush=True)
    experiment.finish(
        model, test, output_dir, report="none",
        extra={"model": name, "train_seconds": seconds, "epochs": epochs, "recipe": recipe,
               "history": history.history,
               "config": {k: v for k, v in model.get_config().items() if k != "backbone"}},
    )
    return model, seconds


def main(argv):
    del argv
    _flags.start()  # before keras or TensorFlow is imported
    import keras

    import keras_robust as kr
    from keras_robust import experiment
    from keras_robust.mtlat import MTLATModel
    from keras_robust.evaluate.benchmark import PAPER_ATTACKS, perturbation_benchmark

    for variant in FLAGS.variants:
        if variant not in MTLATModel.list_presets():
            raise app.UsageError(
                f"--variants: {variant!r} is not one of {MTLATModel.list_presets()}.")
    keras.utils.set_random_seed(FLAGS.seed)
    train, steps_per_epoch, test, info = _flags.load_data()
    recipe = _recipe()

    def backbone(name=FLAGS.backbone, **kwargs):
        keras.utils.set_random_seed(FLAGS.seed)  # the same initial weights for every model
        return kr.backbones.get(name, input_shape=info.image_shape,
                                num_classes=info.num_classes, normalization=info.normalization,
                                weight_decay=recipe["kernel_l2"] / 2, **kwargs)

    models, train_seconds = {}, {}
    models["standard"], train_seconds["standard"] = _train(
        "standard", lambda bb: kr.RobustModel(bb, seed=FLAGS.seed), backbone, train,
        steps_per_epoch, FLAGS.epochs, recipe, test,
        os.path.join(FLAGS.output_dir, _DIRS["standard"]))
    for variant in FLAGS.variants:
        make = lambda bb, v=variant: MTLATModel.from_preset(  # noqa: E731
            v, bb, mixup_alpha=FLAGS.mixup_alpha, epsilon_max=FLAGS.epsilon_max, seed=FLAGS.seed,
            halves=FLAGS.halves)
        models[variant], train_seconds[variant] = _train(
            variant, make, backbone, train, steps_per_epoch, FLAGS.epochs, recipe, test,
            os.path.join(FLAGS.output_dir, _DIRS[variant]))
    surrogate, train_seconds["surrogate"] = _train(
        "surrogate", lambda bb: kr.RobustModel(bb, seed=FLAGS.seed),
        lambda: backbone("vgg", depth=FLAGS.surrogate_depth,
                         width_multiplier=FLAGS.surrogate_width),
        train, steps_per_epoch, FLAGS.surrogate_epochs, recipe, test,
        os.path.join(FLAGS.output_dir, "surrogate"))

    start = time.time()
    result = perturbation_benchmark(
        models, test[0], test[1], surrogate=surrogate, reference="standard",
        severities=[int(s) for s in FLAGS.severities],
        attacks=list(PAPER_ATTACKS) + list(FLAGS.extra_attacks), seed=FLAGS.seed,
        output_dir=os.path.join(FLAGS.output_dir, "benchmark"))
    benchmark_seconds = time.time() - start
    print(result.to_markdown())
    experiment.save_json(os.path.join(FLAGS.output_dir, "summary.json"), {
        "train_seconds": train_seconds, "benchmark_seconds": benchmark_seconds,
        "clean": result.clean, "robustness": result.robustness,
        "better_count": {m: result.better_count(m) for m in result.models if m != "standard"},
        "recipe": recipe, "data": info.name, "command": " ".join(sys.argv),
        "flags": _flags.values(),
    })
    print(f"train seconds: {train_seconds}; benchmark {benchmark_seconds:.0f} s; "
          f"wrote {FLAGS.output_dir}/")


if __name__ == "__main__":
    app.run(main)
