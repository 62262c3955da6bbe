"""Training throughput of every defence against plain training, in one run.

    python bench/throughput.py --defenses=plain,pgd_at:steps=3,pgd_at:steps=7

Each configuration trains the same backbone (same initial weights) on the same
in-memory batches with `model.fit`; configurations are timed in interleaved
rounds (this machine is shared and noisy, so only ratios taken in one run mean
anything) and the median round is kept. The run also measures

    c = (time of one input-gradient pass) / (time of one plain training step),

the cost of one attack step relative to a training step, and prints for each
defence the speed its op count allows (for PGD-AT with k steps, 1 / (1 + k c);
see `op_count`) and how close `fit` comes to it. Results go to JSON.

    python bench/throughput.py --defenses="plain,pgd_at:steps=3,pgd_at:preset=fgsm-rs,\
pgd_at:preset=n-fgsm,trades:steps=3,mart:steps=3,pgd_at:steps=3;weight_perturbation=at-awp"
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import time

from absl import app, flags

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

FLAGS = flags.FLAGS
flags.DEFINE_string("backbone", "small_cnn", "Backbone name.")
flags.DEFINE_integer("batch_size", 128, "Batch size.")
flags.DEFINE_integer("batches", 20, "Timed batches per round and configuration.")
flags.DEFINE_integer("rounds", 3, "Interleaved timing rounds (the median is kept).")
flags.DEFINE_list(
    "defenses", ["plain", "pgd_at:steps=3", "pgd_at:steps=7", "bat", "bpfc", "mtlat"],
    "name[:key=value[;key=value]] of keras_robust.defenses.DEFENSES; the first must be plain. "
    "Keys jit=true and policy=mixed_float16|mixed_bfloat16 set how a configuration runs; "
    "preset=NAME builds it with the defence's from_preset (e.g. pgd_at:preset=n-fgsm).",
)
flags.DEFINE_string("output", "bench/results/throughput.json", "JSON output path.")
flags.DEFINE_boolean("jit_compile", False, "Compile train steps with XLA.")
flags.DEFINE_boolean("progress", True, "A bar over the rounds on stderr when it is a terminal "
                     "(KERAS_ROBUST_PROGRESS=1 forces it).")

# Work per training step in units of one plain training step: c is one
# input-gradient pass, f one inference forward pass (both measured), k the
# built model's attack steps (so a preset's are counted, not a default's).
TRAINING_PASSES = {"plain": 1.0, "pgd_at": 1.0, "bat": 1.0, "mtlat": 1.0,
                   # BPFC, TRADES and MART train on two views of the batch
                   "bpfc": 2.0, "trades": 2.0, "mart": 2.0, "grad_align": 1.0,
                   "gaussian_noise": 1.0}
ATTACK_WORK = {
    "plain": lambda cfg, k, c, f: 0.0,
    "pgd_at": lambda cfg, k, c, f: k * c,
    # one attack step per training step (BAT's default); "clean" labels add a forward pass
    "bat": lambda cfg, k, c, f: k * c + (f if cfg.get("label_source") == "clean" else 0.0),
    "bpfc": lambda cfg, k, c, f: 0.0,
    # M-TLAT: one FGSM-like step on the TLAT half of the batch
    "mtlat": lambda cfg, k, c, f: 0.5 * c,
    # the KL's target: one inference pass of the clean batch, then k steps
    "trades": lambda cfg, k, c, f: f + k * c,
    "mart": lambda cfg, k, c, f: k * c,
    # the FGSM step, then two input gradients (2 c) each differentiated again (about 2 c more)
    "grad_align": lambda cfg, k, c, f: k * c + 4 * c,
    "gaussian_noise": lambda cfg, k, c, f: 0.0,
}
# Keys of a configuration that set how it is built or runs rather than the defence's arguments.
RUN_KEYS = ("jit", "policy", "preset")


def op_count(name: str, cfg: dict, model, c: float, f: float) -> float:
    """Plain training steps' worth of work in one training step of `model`.

    Adversarial weight perturbation adds one more pass of the defence's
    training loss and its weight gradient (the ascent direction).
    """
    attack = getattr(model, "attack", None)
    steps = getattr(attack, "steps", 1) if attack is not None else 0
    passes = TRAINING_PASSES[name]
    awp = passes if getattr(model, "weight_perturbation", None) is not None else 0.0
    return passes + awp + ATTACK_WORK[name](cfg, steps, c, f)


def parse_config(text: str) -> tuple[str, dict]:
    """"pgd_at:steps=3;epsilon=0.03" -> ("pgd_at", {"steps": 3, "epsilon": 0.03})."""
    name, _, rest = text.partition(":")
    kwargs = {}
    for item in filter(None, rest.split(";")):
        key, _, value = item.partition("=")
        kwargs[key] = json.loads(value) if value[:1].isdigit() or value in ("true", "false") else value
    return name, kwargs


class _BatchTimer:
    """Times batches 2..N of a fit (the first batch may still trace)."""

    def __init__(self):
        import keras

        class Callback(keras.callbacks.Callback):
            def on_train_batch_end(cb, batch, logs=None):
                if batch == 0:
                    cb.start = time.perf_counter()
                cb.end, cb.count = time.perf_counter(), batch

        self.callback = Callback()

    def seconds_per_batch(self) -> float:
        return (self.callback.end - self.callback.start) / self.callback.count


def build_models(configs: list, dataset, initial: list) -> list:
    """One compiled, traced model per configuration, all from the same initial weights."""
    import keras

    import keras_robust as kr

    models = []
    for name, kwargs in configs:
        run = {key: kwargs.pop(key) for key in RUN_KEYS if key in kwargs}
        keras.mixed_precision.set_global_policy(run.get("policy", "float32"))
        backbone = kr.backbones.get(FLAGS.backbone, num_classes=10)
        backbone.set_weights(initial)
        if "preset" in run:
            model = kr.defenses.DEFENSES[name].from_preset(run["preset"], backbone, seed=0, **kwargs)
        else:
            model = kr.defenses.get(name, backbone, seed=0, **kwargs)
        model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                      jit_compile=bool(run.get("jit", FLAGS.jit_compile)))
        keras.mixed_precision.set_global_policy("float32")
        model.fit(dataset, epochs=1, steps_per_epoch=3, verbose=0)  # trace
        models.append(model)
    return models


def reference_passes(reference):
    """The plain backbone's input-gradient pass and inference forward pass, compiled."""
    import tensorflow as tf

    @tf.function(jit_compile=FLAGS.jit_compile)
    def input_gradient(images, labels):
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(images)
            logits = reference(images, training=False)
            loss = tf.reduce_sum(
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
            )
        return tape.gradient(loss, images)

    @tf.function(jit_compile=FLAGS.jit_compile)
    def forward(images):
        return reference(images, training=False)

    return input_gradient, forward


def timing_rounds(models: list, dataset, passes: tuple, batch_x, batch_y) -> tuple:
    """The interleaved rounds: per round the two passes, then every model's `fit`.

    Returns the seconds per batch of each model (by index) per round, and of
    the input-gradient and the forward pass per round.
    """
    from keras_robust import progress as _progress

    input_gradient, forward = passes
    input_gradient(batch_x, batch_y).numpy()
    forward(batch_x).numpy()
    timings = {i: [] for i in range(len(models))}
    gradient_times, forward_times = [], []
    bar = _progress.bar("[bench throughput] ", FLAGS.rounds * len(models), FLAGS.progress,
                        unit="fit")
    for _ in range(FLAGS.rounds):
        for function, args, times in ((input_gradient, (batch_x, batch_y), gradient_times),
                                      (forward, (batch_x,), forward_times)):
            start = time.perf_counter()
            for _ in range(FLAGS.batches):
                result = function(*args)
            result.numpy()
            times.append((time.perf_counter() - start) / FLAGS.batches)
        for index, model in enumerate(models):
            timer = _BatchTimer()
            model.fit(dataset, epochs=1, steps_per_epoch=FLAGS.batches, verbose=0,
                      callbacks=[timer.callback])
            timings[index].append(timer.seconds_per_batch())
            bar.update()  # outside the timed fit
    return timings, gradient_times, forward_times


def table_rows(configs: list, models: list, timings: dict, step: dict, grad: float, c: float,
               f: float) -> list:
    """Prints the table (speed, ratio to plain, op-count bound) and returns its rows."""
    rows = []
    print(f"\n{FLAGS.backbone}, batch {FLAGS.batch_size}, {FLAGS.rounds} rounds x "
          f"{FLAGS.batches} batches, jit_compile={FLAGS.jit_compile}")
    print(f"plain step {1000 * step[0]:.1f} ms, input-gradient pass {1000 * grad:.1f} ms: "
          f"c = {c:.3f}; inference forward pass: f = {f:.3f}\n")
    print(f"{'defence':<44}{'images/s':>10}{'ratio':>8}{'bound':>8}{'ratio/bound':>13}")
    for index, (name, kwargs) in enumerate(configs):
        ratio = step[0] / step[index]
        bound = 1.0 / op_count(name, kwargs, models[index], c, f)
        label = FLAGS.defenses[index]
        rows.append({
            "defense": label, "images_per_second": FLAGS.batch_size / step[index],
            "seconds_per_step": step[index], "ratio_to_plain": ratio, "op_count_bound": bound,
            "ratio_over_bound": ratio / bound, "rounds_seconds_per_step": timings[index],
        })
        print(f"{label:<44}{FLAGS.batch_size / step[index]:>10.0f}{ratio:>8.3f}{bound:>8.3f}"
              f"{ratio / bound:>13.3f}")
    return rows


def main(argv):
    del argv
    import keras
    import numpy as np
    import tensorflow as tf

    import keras_robust as kr

    rng = np.random.default_rng(0)
    n = FLAGS.batch_size * (FLAGS.batches + 1)
    x = rng.random((n, 32, 32, 3), dtype=np.float32)
    y = rng.integers(0, 10, n).astype(np.int32)
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(FLAGS.batch_size).cache().repeat()
    keras.utils.set_random_seed(0)
    initial = kr.backbones.get(FLAGS.backbone, num_classes=10).get_weights()

    configs = [parse_config(text) for text in FLAGS.defenses]
    if configs[0][0] != "plain":
        raise ValueError("The first configuration must be 'plain' (the reference).")
    models = build_models(configs, dataset, initial)
    batch_x, batch_y = tf.constant(x[: FLAGS.batch_size]), tf.constant(y[: FLAGS.batch_size])
    timings, gradient_times, forward_times = timing_rounds(
        models, dataset, reference_passes(models[0].backbone), batch_x, batch_y)

    step = {i: statistics.median(t) for i, t in timings.items()}
    grad = statistics.median(gradient_times)
    c = grad / step[0]
    f = statistics.median(forward_times) / step[0]
    rows = table_rows(configs, models, timings, step, grad, c, f)
    payload = {
        "backbone": FLAGS.backbone, "batch_size": FLAGS.batch_size, "batches": FLAGS.batches,
        "rounds": FLAGS.rounds, "jit_compile": FLAGS.jit_compile, "c": c, "f": f,
        "input_gradient_seconds": grad, "plain_step_seconds": step[0], "rows": rows,
        "command": " ".join(sys.argv),
    }
    os.makedirs(os.path.dirname(os.path.abspath(FLAGS.output)), exist_ok=True)
    with open(FLAGS.output, "w") as f:
        json.dump(payload, f, indent=2)
    print(f"\nwrote {FLAGS.output}")


if __name__ == "__main__":
    app.run(main)
