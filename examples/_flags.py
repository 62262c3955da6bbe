"""The flags the examples share, each with one meaning, and the calls that read them.

Units and names, the same in every example:

- budgets (`--epsilon`, `--step_size`, AFS's `--budgets`, the data-centric
  `--linf_epsilon`, ...) are on the [0, 1] scale of the images under every
  norm, as the library's arguments are; pixel levels are written as a
  fraction: `--epsilon=8/255`. `keras_robust.experiment.budget` reads them
  and refuses an L-inf budget above 1 (`--epsilon=8` says to write 8/255);
- `--weight_decay` is the optimizer's decoupled weight decay (SGD's, or
  Adam's where an example offers Adam);
- `--kernel_l2` is the coupled L2 penalty on every kernel, as PyTorch's
  `SGD(weight_decay=...)`: the loss gains kernel_l2 / 2 * ||w||^2, so its
  gradient adds kernel_l2 * w (the papers' "weight decay" in BAT's and BPFC's
  code);
- `--verbose` shows TensorFlow's start-up and INFO logs (quiet by default).

Each example calls `define_run` (and `define_training` when it trains) with
its own defaults, then `start()` first in its `main`.
"""
from __future__ import annotations

import logging
import os
import sys
from typing import Sequence

from absl import flags
from absl import logging as absl_logging

FLAGS = flags.FLAGS
STRATEGIES = ("default", "mirrored", "multi_worker")  # keras_robust.experiment.STRATEGIES

flags.DEFINE_boolean("verbose", False, "Show TensorFlow's start-up and INFO logs (quiet by "
                     "default; a TF_CPP_MIN_LOG_LEVEL you set is always respected).")


def define_data(help_text: str = "auto, a TFDS name, a JPEG .npz copy or an image folder.") -> None:
    """--data: where the images come from (`keras_robust.experiment.resolve_source`)."""
    flags.DEFINE_string("data", "auto", help_text + " auto: a local CIFAR-10 copy when found "
                        "($KERAS_ROBUST_CIFAR10, ../shared/datasets/cifar10_jpeg.npz), else TFDS.")


def define_run(output_dir: str | None, strategies: Sequence[str] = STRATEGIES,
               data_help: str = "auto, a TFDS name, a JPEG .npz copy or an image folder.") -> None:
    """--data, --seed, --strategy and --output_dir (default `output_dir`)."""
    define_data(data_help)
    flags.DEFINE_integer("seed", 0, "Seed of weights, data order and the defences' randomness.")
    flags.DEFINE_enum("strategy", "default", list(strategies), "Distribution strategy.")
    define_output(output_dir)


def define_output(output_dir: str | None) -> None:
    """--output_dir (default `output_dir`)."""
    flags.DEFINE_string("output_dir", output_dir, "Where to write the results and the models.")


def define_limits(train_limit: int | None = None, eval_limit: int = 1000) -> None:
    """--train_limit and --eval_limit: how many training and test images a run uses."""
    flags.DEFINE_integer("train_limit", train_limit, "Use only the first N training images "
                         "(0: all).")
    flags.DEFINE_integer("eval_limit", eval_limit, "Evaluate on the first N test images.")


def define_epochs(epochs: int) -> None:
    """--epochs: training epochs."""
    flags.DEFINE_integer("epochs", epochs, "Training epochs.")


def define_training(epochs: int | None, *, lr: float | None = 0.1, schedule: str | None = "cosine",
                    lr_boundaries: Sequence[str] | None = (), weight_decay: float | None = 5e-4,
                    kernel_l2: float | None = 0.0, augment: bool = True,
                    eval_limit: int = 1000) -> None:
    """--epochs, --batch_size, --lr, --schedule, --lr_boundaries, --weight_decay,
    --kernel_l2, --augment, --train_limit and --eval_limit with an example's defaults
    (no --epochs when `epochs` is None: the example names its own stages' epochs)."""
    if epochs is not None:
        define_epochs(epochs)
    flags.DEFINE_integer("batch_size", 128, "Global batch size.")
    flags.DEFINE_float("lr", lr, "Initial learning rate.")
    flags.DEFINE_enum("schedule", schedule, ["cosine", "piecewise", "constant"], "LR schedule.")
    flags.DEFINE_list("lr_boundaries", None if lr_boundaries is None else list(lr_boundaries),
                      "Epochs of the piecewise decays.")
    flags.DEFINE_float("weight_decay", weight_decay, "The optimizer's decoupled weight decay.")
    flags.DEFINE_float("kernel_l2", kernel_l2,
                       "Coupled L2 weight decay on kernels, as PyTorch's SGD(weight_decay=...): "
                       "the loss gains kernel_l2 / 2 * ||w||^2.")
    flags.DEFINE_boolean("augment", augment, "Pad-4 random crop and flip.")
    define_limits(None, eval_limit)


def define_activation() -> None:
    """--activation: the backbone's activation ("relu", or "swish" as the leaderboard WRNs)."""
    flags.DEFINE_string("activation", "relu", "The backbone's activation: relu, swish (the "
                        "leaderboard WRNs of Gowal et al. / Rebuffi et al.) or another Keras "
                        "activation name (small_cnn, vgg, preact_resnet18, wide_resnet, resnet).")


def define_extra_data() -> None:
    """--extra_data, --extra_fraction, --extra_label_smoothing: the leaderboard recipe's mixed
    batches (`keras_robust.data.mixed`), real images with an extra or generated set."""
    flags.DEFINE_string("extra_data", None, "An .npz of extra (e.g. generated) training images "
                        "mixed into every batch: arrays `image` (uint8 NHWC) and `label` (class "
                        "indices), as the published generated CIFAR-10 sets, or `x` and `y`.")
    flags.DEFINE_float("extra_fraction", 0.7, "The share of each batch from --extra_data (the "
                       "leaderboard recipe: 0.7).")
    flags.DEFINE_float("extra_label_smoothing", 0.0, "Label smoothing on the extra rows only.")


def load_extra(path: str):
    """`(images, labels)` of an --extra_data file (keys image/label or x/y)."""
    import numpy as np

    with np.load(path) as archive:
        for images, labels in (("image", "label"), ("x", "y")):
            if images in archive.files and labels in archive.files:
                return archive[images], archive[labels].astype("int32").reshape(-1)
        raise ValueError(f"--extra_data={path} holds {sorted(archive.files)}; expected the arrays "
                         "`image` and `label` (or `x` and `y`): uint8 images [N, H, W, C] and class "
                         "indices [N].")


def define_report(default: str) -> None:
    """--report: the robustness report's attacks at the end of a run (see `report_attacks`)."""
    flags.DEFINE_string("report", default, "The robustness report's attacks: a suite (summary, "
                        "quick, standard), comma-separated attack keys, or none (written to "
                        "output_dir/report).")


def report_attacks() -> str | list[str]:
    """--report as `keras_robust.experiment.finish` takes it: "none", a suite or a key list."""
    from keras_robust.evaluate import SUITES

    return FLAGS.report if FLAGS.report in ("none", *SUITES) else FLAGS.report.split(",")


def start() -> None:
    """Imports TensorFlow quietly unless `--verbose` (the first call of every `main`).

    It imports TensorFlow through `keras_robust` before anything else does,
    which drops TensorFlow's C++ start-up lines (see
    `keras_robust/_startup.py`), and sets the `tensorflow` Python logger to
    WARNING (the SavedModel writer's INFO lines); with `--verbose`, or
    `TF_CPP_MIN_LOG_LEVEL` set by the user, TensorFlow logs as it always does.
    """
    if FLAGS.verbose:
        os.environ.setdefault("KERAS_ROBUST_VERBOSE", "1")
    import keras_robust  # noqa: F401  (imports TensorFlow: keras_robust/_startup.py)

    if not FLAGS.verbose:
        logging.getLogger("tensorflow").setLevel(logging.WARNING)
        absl_logging.set_verbosity(absl_logging.WARNING)  # e.g. the SavedModel writer's lines


def load_data():
    """`keras_robust.experiment.load_cifar` with --data, --batch_size, --augment, --train_limit,
    --eval_limit and --seed: `(train, steps_per_epoch, (x_test, y_test), info)`; with
    --extra_data (where the example defines it) the training batches are
    `keras_robust.data.mixed` of the real training images and the extra set."""
    from keras_robust import data, experiment

    train, steps, test, info = experiment.load_cifar(FLAGS.data, FLAGS.batch_size, FLAGS.augment,
                                                     FLAGS.train_limit, FLAGS.eval_limit, FLAGS.seed)
    if "extra_data" not in FLAGS or not FLAGS.extra_data:
        return train, steps, test, info
    real = data.load_arrays(experiment.resolve_source(FLAGS.data), "train",
                            limit=FLAGS.train_limit or None)
    train, steps = data.mixed(real, load_extra(FLAGS.extra_data), FLAGS.batch_size,
                              extra_fraction=FLAGS.extra_fraction,
                              label_smoothing_extra=FLAGS.extra_label_smoothing,
                              num_classes=info.num_classes, seed=FLAGS.seed, augment=FLAGS.augment)
    return train, steps, test, info


def backbone(name: str, info, **kwargs):
    """The backbone `name` for the data `info`, with --kernel_l2 on its kernels (and
    --activation where the example defines it and it is not relu)."""
    import keras_robust as kr

    if "activation" in FLAGS and FLAGS.activation != "relu":
        kwargs.setdefault("activation", FLAGS.activation)
    try:
        return kr.backbones.get(name, input_shape=info.image_shape, num_classes=info.num_classes,
                                normalization=info.normalization, weight_decay=FLAGS.kernel_l2 / 2,
                                **kwargs)
    except TypeError as error:
        if "activation" not in str(error):
            raise
        raise ValueError(f"--activation={kwargs['activation']} needs a backbone that takes "
                         f"`activation` (small_cnn, vgg, vgg16, preact_resnet18, wide_resnet, "
                         f"wrn_28_10, wrn_34_10, resnet, resnet20, resnet50), not {name!r}.") from None


def optimizer(steps_per_epoch: int, epochs: int | None = None, lr: float | None = None, **kwargs):
    """SGD (`keras_robust.optimizers.sgd`) with --lr, --schedule, --lr_boundaries and
    --weight_decay over --epochs (or `epochs`, `lr`)."""
    from keras_robust import optimizers

    kwargs.setdefault("boundaries", [int(b) for b in FLAGS.lr_boundaries or []])
    return optimizers.sgd(FLAGS.epochs if epochs is None else epochs, steps_per_epoch,
                          FLAGS.lr if lr is None else lr, FLAGS.schedule,
                          weight_decay=FLAGS.weight_decay, **kwargs)


def values() -> dict:
    """The flags of the running example and of this module, by name (for summary.json)."""
    return {f.name: f.value for module in (sys.argv[0], __name__)
            for f in FLAGS.get_flags_for_module(module)}
