"""Data-centric dataset enhancement on CIFAR-10 (Zhong et al., AAAI 2022), end to end.

    python examples/cifar10_datacentric.py                        # 10k subset, 50 iterations
    python examples/cifar10_datacentric.py --subset=0 --iterations=300 \
        --surrogate_preset=paper --epochs=100                     # the paper's setting (GPU)

Steps, each skipped when its output already exists in `--output_dir` (so a
killed run continues where it stopped; file names carry the settings they
depend on, so a run with other settings does not reuse them):

1. train the enhancement surrogates (`--enhance_surrogates`) on the subset and
   an independent test ensemble (`--test_surrogates`, trained on other
   training images, `--test_surrogate_offset`);
2. enhance the subset (`keras_robust.datacentric.enhance`, ratio `--ratio`,
   eq. 6 with `--iterations`; `--enhance_loss` and `--enhance_smoothing_kernel`
   change the enhancement's attack only), written as TFRecord shards to
   `enhanced_*/` (with `--tfds` also as a TensorFlow Datasets data set in
   `tfds/`, `keras_robust.datacentric.write_tfds`);
3. build the test sets P_ori, P_adv (crafted on the *test* ensemble) and P_cor
   from the first `--test_size` test images;
4. train the same model (`--model`, default small_cnn) on the original and on
   the enhanced subset with the same seed and schedule;
5. print the paper's Table 1 layout (ACC on P_ori, P_adv, P_cor and R) and a
   transferability table (the original model's accuracy under the test
   ensemble's eq. 6 perturbations vs plain PGD from each single test
   surrogate), and write `results_*.json` and `results_*.md`.

Budgets and steps (`--linf_epsilon`, `--linf_step`, `--l2_epsilon`, `--l2_step`)
are on the [0, 1] scale of the images under both norms, pixel levels written as
a fraction (`--linf_epsilon=8/255`); see examples/_flags.py for the shared flags.
"""
from __future__ import annotations

import functools
import json
import os
import sys
import time

from absl import app, flags

import _flags  # examples/_flags.py: the shared flags

FLAGS = flags.FLAGS
_flags.define_run("runs/cifar10_datacentric", strategies=("default", "mirrored"),
                  data_help="auto, a TFDS name or a JPEG .npz copy of CIFAR-10.")
flags.DEFINE_integer("subset", 10000, "Enhance the first N training images (0: all).")
flags.DEFINE_integer("test_size", 1000, "Test images per test set (0: all).")
flags.DEFINE_list("ratio", ["0", "1", "4"], "clean:adversarial:corrupted.")
flags.DEFINE_integer("iterations", 50, "Steps of each eq. 6 attack (the paper: 300).")
flags.DEFINE_string("linf_epsilon", "8/255", "L-inf budget on the [0, 1] scale.")
flags.DEFINE_string("linf_step", "2/255", "L-inf step on the [0, 1] scale.")
flags.DEFINE_string("l2_epsilon", "1.0", "L2 budget on the [0, 1] scale.")
flags.DEFINE_string("l2_step", "0.025", "L2 step on the [0, 1] scale.")
flags.DEFINE_float("diversity_prob", 0.7, "Input-diversity probability (Zhao et al.: 0.7).")
flags.DEFINE_integer("smoothing_kernel", 5, "Gaussian gradient kernel size (Zhao et al.: 5).")
flags.DEFINE_enum("enhance_loss", None, ["logit", "ce", "cw", "dlr"],
                  "The enhancement attack's loss, if not eq. 6's logit loss (the test sets keep "
                  "eq. 6, so R is measured on the same P_adv).")
flags.DEFINE_integer("enhance_smoothing_kernel", None,
                     "The enhancement attack's Gaussian kernel, if not --smoothing_kernel (0: "
                     "off; the test sets keep --smoothing_kernel).")
flags.DEFINE_list("enhance_surrogates", ["resnet", "densenet", "mobilenet"],
                  "Surrogate kinds of the enhancement ensemble.")
flags.DEFINE_list("test_surrogates", ["vgg", "wide_resnet", "resnet"],
                  "Surrogate kinds of the (independently trained) test ensemble.")
flags.DEFINE_enum("surrogate_preset", "small", ["small", "paper"], "Surrogate sizes.")
flags.DEFINE_integer("surrogate_epochs", 15,
                     "Training epochs per surrogate (5 left the small ones at 40-54% accuracy).")
flags.DEFINE_integer("test_surrogate_offset", 25000,
                     "The test ensemble trains on train[offset:offset+subset].")
flags.DEFINE_string("model", "small_cnn", "The model trained on both sets (a backbone name).")
flags.DEFINE_integer("epochs", 30,
                     "Training epochs of the compared models (15 under-fit the enhanced set).")
flags.DEFINE_integer("batch_size", 128, "Training batch size.")
flags.DEFINE_float("lr", 0.05, "Initial learning rate (SGD momentum 0.9, cosine).")
flags.DEFINE_integer("attack_batch_size", 256, "Images per attack batch.")
flags.DEFINE_integer("shard_size", 2048, "Examples per TFRecord shard.")
flags.DEFINE_integer("pgd_steps", 10, "Steps of the plain-PGD transfer baseline.")
flags.DEFINE_boolean("tfds", False, "Also write the enhanced set in the TensorFlow Datasets "
                     "layout to <output_dir>/tfds/ (tfds.load('enhanced_<settings>', "
                     "data_dir=<output_dir>/tfds), with every image's provenance).")


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _enhanced_tag(iterations, ratio, settings, test_settings) -> str:
    """The enhanced folder's name: iterations, ratio, and what the enhancement's attack
    changes from the test sets' eq. 6 (nothing by default, so older folders keep their names)."""
    tag = f"it{iterations}_r" + "-".join(f"{float(r):g}" for r in ratio)
    ball, test_ball = settings.balls()[0][1], test_settings.balls()[0][1]
    if ball.loss != test_ball.loss:
        tag += f"_{ball.loss}"
    if ball.smoothing_kernel != test_ball.smoothing_kernel:
        tag += f"_ti{ball.smoothing_kernel}"
    return tag


def _train_model(name, train_dataset, steps_per_epoch, path, info):
    """Trains (or loads) the compared model; returns (backbone, seconds)."""
    import keras

    import keras_robust as kr
    from keras_robust import experiment

    if os.path.isfile(path):
        _log(f"{name}: loading {path}")
        return keras.saving.load_model(path, safe_mode=True), 0.0
    keras.utils.set_random_seed(FLAGS.seed)  # the same initial weights for both models
    backbone = kr.backbones.get(FLAGS.model, input_shape=info.image_shape,
                                num_classes=info.num_classes, normalization=info.normalization)
    model = kr.RobustModel(backbone, seed=FLAGS.seed)
    model.compile(optimizer=experiment.sgd(FLAGS.epochs, steps_per_epoch, FLAGS.lr, "cosine"),
                  metrics=["accuracy"])
    start = time.time()
    _log(f"{name}: training {FLAGS.model} for {FLAGS.epochs} epochs")
    model.fit(train_dataset, epochs=FLAGS.epochs, verbose=2)
    seconds = time.time() - start
    backbone.save(path)
    return backbone, seconds


def _transfer_table(target, test_sets, test_surrogates, x_test, y_test):
    """Accuracy of `target` on eq. 6 (test ensemble) vs plain PGD from single surrogates."""
    import numpy as np

    import keras_robust as kr

    clean = kr.evaluate.accuracy(target, x_test, y_test)
    rows = {"clean": clean}
    for name, key in (("eq6 ensemble L-inf", "adversarial_linf"),
                      ("eq6 ensemble L2", "adversarial_l2")):
        rows[name] = kr.evaluate.accuracy(target, *test_sets.variants[key])
    rows["eq6 ensemble L-inf + L2"] = kr.evaluate.accuracy(target, *test_sets.adversarial)
    x = x_test.astype(np.float32) / 255.0
    from keras_robust import experiment

    eps, step = experiment.budget(FLAGS.linf_epsilon), experiment.budget(FLAGS.linf_step)
    l2_eps = experiment.budget(FLAGS.l2_epsilon, "l2")
    for surrogate in test_surrogates:
        linf = functools.partial(kr.attacks.pgd, epsilon=eps, step_size=step,
                                 steps=FLAGS.pgd_steps, seed=FLAGS.seed)
        l2 = functools.partial(kr.attacks.pgd, epsilon=l2_eps,
                               step_size=2.5 * l2_eps / FLAGS.pgd_steps,
                               steps=FLAGS.pgd_steps, norm="l2", seed=FLAGS.seed)
        x_linf = np.concatenate([np.asarray(linf(surrogate, x[i:i + 500], y_test[i:i + 500]))
                                 for i in range(0, len(x), 500)])
        x_l2 = np.concatenate([np.asarray(l2(surrogate, x[i:i + 500], y_test[i:i + 500]))
                               for i in range(0, len(x), 500)])
        summed = np.clip(x_linf + x_l2 - x, 0.0, 1.0)
        prefix = f"PGD-{FLAGS.pgd_steps} {surrogate.name}"
        rows[f"{prefix} L-inf"] = kr.evaluate.accuracy(target, x_linf, y_test)
        rows[f"{prefix} L2"] = kr.evaluate.accuracy(target, x_l2, y_test)
        rows[f"{prefix} L-inf + L2"] = kr.evaluate.accuracy(target, summed, y_test)
    return rows


def _markdown(table, transfer, settings) -> str:
    lines = [
        "# Data-centric enhancement on CIFAR-10",
        "",
        f"Settings: {json.dumps(settings)}",
        "",
        f"| (%) | {FLAGS.model} on original | {FLAGS.model} on enhanced |",
        "| --- | --- | --- |",
    ]
    for key, label in (("clean", "ACC(P_ori)"), ("adversarial", "ACC(P_adv)"),
                       ("corrupted", "ACC(P_cor)"), ("R", "R(f, theta)")):
        lines.append(f"| {label} | {100 * table['original'][key]:.2f} | "
                     f"{100 * table['enhanced'][key]:.2f} |")
    lines += ["", f"Transferability to the original-trained {FLAGS.model} (held out from every "
              "surrogate):", "", "| attack | accuracy (%) | drop (points) |", "| --- | --- | --- |"]
    for name, value in transfer.items():
        lines.append(f"| {name} | {100 * value:.2f} | {100 * (transfer['clean'] - value):.2f} |")
    return "\n".join(lines) + "\n"


def _load_data(source: str):
    """The training subset, the test ensemble's other training images and the test images."""
    import numpy as np

    import keras_robust as kr

    x_all, y_all = kr.data.load_arrays(source, "train")
    subset = FLAGS.subset or len(x_all)
    x_train, y_train = np.asarray(x_all[:subset]), np.asarray(y_all[:subset])
    offset = FLAGS.test_surrogate_offset
    x_other, y_other = np.asarray(x_all[offset:offset + subset]), np.asarray(y_all[offset:offset + subset])
    if len(x_other) == 0:
        _log("no training images left at --test_surrogate_offset: the test ensemble trains on the "
             "enhanced subset too (still different models, but less independent)")
        x_other, y_other = x_train, y_train
    x_test, y_test = kr.data.load_arrays(source, "test", limit=FLAGS.test_size or None)
    x_test, y_test = np.asarray(x_test), np.asarray(y_test)
    _log(f"data: {source}: {len(x_train)} training images to enhance, {len(x_test)} test images")
    return (x_train, y_train), (x_other, y_other), (x_test, y_test)


def _loader():
    """The training pipeline of the surrogates and the compared models."""
    import keras_robust as kr

    return functools.partial(kr.data.from_arrays, batch_size=FLAGS.batch_size, shuffle=True,
                             augment=True, seed=FLAGS.seed)


def _train_surrogates(info, strategy, train, other, test, timings):
    """Step 1: the enhancement and the test ensembles, and their test accuracies."""
    import keras_robust as kr
    from keras_robust import datacentric as dc

    start = time.time()
    loader = _loader()
    common = dict(preset=FLAGS.surrogate_preset, num_classes=info.num_classes,
                  normalization=info.normalization, strategy=strategy)
    tag = f"{FLAGS.surrogate_preset}_e{FLAGS.surrogate_epochs}_n{len(train[0])}_s{FLAGS.seed}"
    enhance_surrogates = dc.surrogates.train_surrogates(
        FLAGS.enhance_surrogates, loader(*train), FLAGS.surrogate_epochs,
        directory=os.path.join(FLAGS.output_dir, f"surrogates_enhance_{tag}"), seed=FLAGS.seed,
        **common)
    test_surrogates = dc.surrogates.train_surrogates(
        FLAGS.test_surrogates, loader(*other), FLAGS.surrogate_epochs,
        directory=os.path.join(FLAGS.output_dir, f"surrogates_test_{tag}"), seed=FLAGS.seed + 100,
        name_suffix="_test", **common)
    timings["surrogates_s"] = time.time() - start
    surrogate_accuracy = {m.name: kr.evaluate.accuracy(m, *test)
                          for m in enhance_surrogates + test_surrogates}
    _log(f"surrogate test accuracies: {surrogate_accuracy}")
    return enhance_surrogates, test_surrogates, surrogate_accuracy


def _attack_settings():
    """The eq. 6 settings of the flags: (flag values, test sets' config, enhancement's config)."""
    from keras_robust import datacentric as dc
    from keras_robust import experiment

    attack = dict(iterations=FLAGS.iterations, linf_epsilon=experiment.budget(FLAGS.linf_epsilon),
                  linf_step=experiment.budget(FLAGS.linf_step),
                  l2_epsilon=experiment.budget(FLAGS.l2_epsilon, "l2"),
                  l2_step=experiment.budget(FLAGS.l2_step, "l2"), diversity_prob=FLAGS.diversity_prob,
                  smoothing_kernel=FLAGS.smoothing_kernel)
    test_settings = dc.Eq6Config.from_config(attack)
    enhance_settings = test_settings
    if FLAGS.enhance_loss is not None:
        enhance_settings = enhance_settings.replace(loss=FLAGS.enhance_loss)
    if FLAGS.enhance_smoothing_kernel is not None:
        enhance_settings = enhance_settings.replace(smoothing_kernel=FLAGS.enhance_smoothing_kernel)
    return attack, test_settings, enhance_settings


def _enhance(train, surrogates, settings, enhanced_dir, strategy, timings):
    """Step 2: the enhanced subset as TFRecord shards in `enhanced_dir`."""
    from keras_robust import datacentric as dc

    start = time.time()
    with strategy.scope():
        result = dc.enhance(*train, surrogates,
                            ratio=tuple(float(r) for r in FLAGS.ratio), attack=settings,
                            options=dc.RunOptions(seed=FLAGS.seed,
                                                  batch_size=FLAGS.attack_batch_size,
                                                  shard_size=FLAGS.shard_size,
                                                  output_dir=enhanced_dir))
    timings["enhance_s"] = time.time() - start
    _log(f"enhanced: {result.counts} in {timings['enhance_s']:.0f} s -> {enhanced_dir}")
    return result


def _write_tfds(enhanced_dir, enhanced_tag):
    """With --tfds: the enhanced set in the TensorFlow Datasets layout (once)."""
    from keras_robust import datacentric as dc

    tfds_dir = os.path.join(FLAGS.output_dir, "tfds")
    tfds_name = f"enhanced_{enhanced_tag}".replace("-", "_").lower()
    tfds_folder = os.path.join(tfds_dir, tfds_name, "1.0.0")
    if os.path.isfile(os.path.join(tfds_folder, "dataset_info.json")):
        _log(f"TFDS copy: {tfds_folder} already written")
    else:
        dc.write_tfds(enhanced_dir, tfds_dir, name=tfds_name)
        _log(f"TFDS copy: wrote {tfds_folder} (tfds.load({tfds_name!r}, data_dir={tfds_dir!r}))")


def _test_sets(test, test_surrogates, settings, enhanced_dir, strategy, timings):
    """Step 3: P_ori, P_adv and P_cor, loaded when built before with the same settings."""
    from keras_robust import datacentric as dc

    sets_path = os.path.join(FLAGS.output_dir, f"test_sets_it{FLAGS.iterations}_n{len(test[0])}.npz")
    start = time.time()
    test_sets = dc.TestSets.load(sets_path) if os.path.isfile(sets_path) else None
    if test_sets is not None and (
            dc.Eq6Config.from_config(test_sets.details["attack"]) != settings
            or [s["name"] for s in test_sets.details["surrogates"]]
            != [m.name for m in test_surrogates]):
        _log(f"test sets: {sets_path} was built with other settings; rebuilding")
        test_sets = None
    if test_sets is not None:
        _log(f"test sets: loaded {sets_path}")
    else:
        with strategy.scope():
            test_sets = dc.build_test_sets(*test, test_surrogates, exclude=enhanced_dir,
                                           attack=settings,
                                           options=dc.RunOptions(
                                               seed=FLAGS.seed + 1,
                                               batch_size=FLAGS.attack_batch_size))
        test_sets.save(sets_path)
    timings["test_sets_s"] = time.time() - start
    return test_sets


def _train_both(train, enhanced_dir, enhanced_tag, info, timings):
    """Step 4: the same model trained on the original and on the enhanced subset."""
    from keras_robust import datacentric as dc

    steps = -(-len(train[0]) // FLAGS.batch_size)
    model_tag = f"{FLAGS.model}_e{FLAGS.epochs}_lr{FLAGS.lr:g}_b{FLAGS.batch_size}_s{FLAGS.seed}"
    original, timings["train_original_s"] = _train_model(
        "original", _loader()(*train), steps,
        os.path.join(FLAGS.output_dir, f"model_original_{model_tag}.keras"), info)
    enhanced_train = dc.load(enhanced_dir, batch_size=FLAGS.batch_size, shuffle=True, augment=True,
                             seed=FLAGS.seed)
    enhanced, timings["train_enhanced_s"] = _train_model(
        "enhanced", enhanced_train, steps,
        os.path.join(FLAGS.output_dir, f"model_enhanced_{enhanced_tag}_{model_tag}.keras"),
        info)
    return original, enhanced, model_tag


def _print_tables(table, transfer, num_train, num_test):
    """Step 5: the paper's Table 1 layout and the transferability table."""
    print(f"\nPerformance of {FLAGS.model} trained on original / enhanced CIFAR-10 subset "
          f"({num_train} images; {num_test} test images per set) (%)")
    print(f"{'':14s}{'original':>10s}{'enhanced':>10s}")
    for key, label in (("clean", "ACC(P_ori)"), ("adversarial", "ACC(P_adv)"),
                       ("corrupted", "ACC(P_cor)"), ("R", "R(f,theta)")):
        print(f"{label:14s}{100 * table['original'][key]:10.2f}{100 * table['enhanced'][key]:10.2f}")
    print(f"R gain: {100 * (table['enhanced']['R'] - table['original']['R']):+.2f} points")
    print(f"\nTransferability to the original-trained {FLAGS.model} (accuracy %, drop in points):")
    for name, value in transfer.items():
        print(f"  {name:40s}{100 * value:7.2f}{100 * (transfer['clean'] - value):8.2f}")


def _save_results(name, settings, payload, table, transfer):
    """Step 5: results_<settings>.json and .md in --output_dir."""
    from keras_robust import experiment

    experiment.save_json(os.path.join(FLAGS.output_dir, f"{name}.json"), payload)
    with open(os.path.join(FLAGS.output_dir, f"{name}.md"), "w") as f:
        f.write(_markdown(table, transfer, settings))
    _log(f"wrote {FLAGS.output_dir}/{name}.json and .md; timings {payload['timings']}")


def main(argv):
    del argv
    _flags.start()  # before keras or TensorFlow is imported
    import tensorflow as tf

    import keras_robust as kr
    from keras_robust import datacentric as dc
    from keras_robust import experiment

    timings = {}
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    source = experiment.resolve_source(FLAGS.data)
    info = kr.data.info(source)
    train, other, test = _load_data(source)
    strategy = experiment.strategy(FLAGS.strategy)
    enhance_surrogates, test_surrogates, surrogate_accuracy = _train_surrogates(
        info, strategy, train, other, test, timings)

    attack, test_settings, enhance_settings = _attack_settings()
    # A different run in this folder (other surrogates or settings) makes enhance raise.
    enhanced_tag = _enhanced_tag(FLAGS.iterations, FLAGS.ratio, enhance_settings, test_settings)
    enhanced_dir = os.path.join(FLAGS.output_dir, f"enhanced_{enhanced_tag}")
    result = _enhance(train, enhance_surrogates, enhance_settings, enhanced_dir, strategy, timings)
    if FLAGS.tfds:
        _write_tfds(enhanced_dir, enhanced_tag)
    test_sets = _test_sets(test, test_surrogates, test_settings, enhanced_dir, strategy, timings)
    original, enhanced, model_tag = _train_both(train, enhanced_dir, enhanced_tag, info, timings)

    table = {"original": dc.score(original, test_sets), "enhanced": dc.score(enhanced, test_sets)}
    start = time.time()
    transfer = _transfer_table(original, test_sets, test_surrogates, *test)
    timings["transfer_s"] = time.time() - start
    _print_tables(table, transfer, len(train[0]), len(test[0]))

    settings = {"subset": len(train[0]), "test_size": len(test[0]), "ratio": FLAGS.ratio,
                "enhance_surrogates": [m.name for m in enhance_surrogates],
                "test_surrogates": [m.name for m in test_surrogates], **attack,
                "enhance_attack": enhance_settings.get_config(),
                "epochs": FLAGS.epochs, "surrogate_epochs": FLAGS.surrogate_epochs,
                "model": FLAGS.model, "seed": FLAGS.seed}
    payload = {"settings": settings, "table": table, "transfer": transfer,
               "surrogate_accuracy": surrogate_accuracy, "counts": result.counts,
               "timings": timings, "device": [d.name for d in tf.config.list_logical_devices()]}
    _save_results(f"results_{enhanced_tag}_{model_tag}", settings, payload, table, transfer)


if __name__ == "__main__":
    app.run(main)
