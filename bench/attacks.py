"""Attack speed and strength against other toolkits, in one run.

    python bench/attacks.py                                  # trains a 3-conv CNN briefly
    python bench/attacks.py --model=runs/plain/model.keras --at_model=runs/pgd_at/model.keras

On one model and one set of CIFAR-10 test images, PGD-10 (L-inf, eps 8/255,
step 2/255, random start, CE) is run by

- "keras_robust": `keras_robust.attacks.pgd`;
- "keras_robust_early_stop": `keras_robust.attacks.pgd(..., early_stop=True)`,
                  the evaluation mode: each image keeps its first adversarial
                  iterate and leaves the batch (same paths, so robust accuracy
                  is never higher than the full attack's);
- "bare_loop":    a bare `tf.function` PGD loop written below, the speed the
                  op count allows (one forward and one backward pass per step),
                  its steps a graph while-loop;
- "bare_unrolled": the same loop unrolled into a straight graph (on CPU a
                  while-loop trace runs ~35% slower in a good part of its traces,
                  see `keras_robust.attacks.common.UNROLLED_STEPS`);
- "art":          the Adversarial Robustness Toolbox's `ProjectedGradientDescent`
                  on a `TensorFlowV2Classifier`;
- "cleverhans":   cleverhans 4's `projected_gradient_descent`, wrapped in
                  `tf.function`;
- "eager_loop":   the bare loop run eagerly (no `tf.function`): what any
                  eager toolkit pays before its own overheads.

Every attack gets the same images in the same batches. The methods are timed
in interleaved rounds, in a rotated order (this machine is shared and noisy:
only ratios taken in one run mean anything); every round re-traces every graph
method and calls it once untimed first (see `make_methods` for why). Reported:
images/s of the median round, speed ratios as the median over rounds of the
per-round ratio, robust accuracy as the mean over rounds (each round draws new
random starts). The run also times APGD-100
(CE) and Square-1000 per image, and, with `--at_model` (an adversarially
trained model), compares APGD-CE-100 with PGD-20 there (APGD should not be
weaker). Results go to JSON.
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
flags.DEFINE_string("data", "auto", "auto (the examples' local-copy lookup, then TFDS), "
                    "a CIFAR-10 .npz copy or a TFDS name.")
flags.DEFINE_string("model", "", "A .keras model to attack; empty trains a 3-conv CNN briefly.")
flags.DEFINE_list("cnn_filters", ["32", "64", "128"],
                  "Filters of the default CNN's three convolutions (its compute per op: the "
                  "graph/eager gap, and so the ratio to ART, grows as it shrinks).")
flags.DEFINE_string("model_cache", "",
                    "Where the briefly trained CNN is cached (reused when present; default "
                    "bench/results/attacks_cnn3_<filters>.keras).")
flags.DEFINE_integer("train_images", 10000, "Training images for the default CNN.")
flags.DEFINE_integer("train_epochs", 3, "Epochs for the default CNN.")
flags.DEFINE_string("at_model", "", "An adversarially trained .keras model (APGD vs PGD-20).")
flags.DEFINE_integer("images", 512, "Test images attacked by every PGD-10.")
flags.DEFINE_integer("batch_size", 128, "Images per attack call.")
flags.DEFINE_integer("rounds", 3, "Interleaved timing rounds (the median is kept).")
flags.DEFINE_float("epsilon", 8 / 255, "L-inf budget.")
flags.DEFINE_float("step_size", 2 / 255, "PGD step.")
flags.DEFINE_integer("steps", 10, "PGD steps.")
flags.DEFINE_list("methods", ["keras_robust", "bare_loop", "bare_unrolled", "art", "cleverhans",
                             "eager_loop", "keras_robust_early_stop"],
                  "PGD implementations to compare (the first two are needed for the ratios).")
flags.DEFINE_boolean("jit_compile", False, "Also time keras_robust and the bare loop under XLA.")
flags.DEFINE_integer("apgd_steps", 100, "APGD steps for the per-image timing.")
flags.DEFINE_integer("square_queries", 1000, "Square queries for the per-image timing.")
flags.DEFINE_integer("slow_images", 128, "Images for the APGD / Square timings.")
flags.DEFINE_integer("at_images", 500, "Images for the adversarially trained model's checks.")
flags.DEFINE_integer("unrolling_rounds", 5,
                     "Rounds of the unrolling comparison: PGD-10, PGD-20 and APGD-CE-100 with "
                     "the library's loops unrolled UNROLLED_STEPS at a time against one "
                     "iteration per while-loop pass (0: skip).")
flags.DEFINE_boolean("overhead", True,
                     "Also split the library's per-call and per-step cost over the bare loop on a "
                     "linear model (where compute is small enough for overheads to show).")
flags.DEFINE_string("output", "bench/results/attacks.json", "JSON output path.")
flags.DEFINE_boolean("progress", True, "A bar per round (per method) on stderr when it is a "
                     "terminal (KERAS_ROBUST_PROGRESS=1 forces it).")



def data_source() -> str:
    """The `--data` flag resolved as the examples resolve it ("auto": a local copy, else TFDS)."""
    from keras_robust import experiment

    return experiment.resolve_source(FLAGS.data)

def cnn3(num_classes: int = 10, filters: tuple[int, ...] = (32, 64, 128)):
    """A 3-conv CNN (32-64-128 filters by default, max-pooling, dense head) on [0, 1] images."""
    import keras

    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Normalization(mean=[0.4914, 0.4822, 0.4465],
                                   variance=[0.2470**2, 0.2435**2, 0.2616**2])(inputs)
    for width in filters:
        x = keras.layers.Conv2D(width, 3, padding="same", activation="relu")(x)
        x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(128, activation="relu")(x)
    return keras.Model(inputs, keras.layers.Dense(num_classes)(x), name="cnn3")


def load_or_train_model():
    import keras

    import keras_robust as kr

    if FLAGS.model:
        return keras.saving.load_model(FLAGS.model, compile=False), FLAGS.model
    filters = tuple(int(f) for f in FLAGS.cnn_filters)
    widths = "-".join(map(str, filters))
    cache = FLAGS.model_cache or os.path.join("bench", "results", f"attacks_cnn3_{widths}.keras")
    if os.path.exists(cache):
        return keras.saving.load_model(cache, compile=False), cache
    x, y = kr.data.load_arrays(data_source(), "train", limit=FLAGS.train_images)
    x = kr.data.to_float(x)
    keras.utils.set_random_seed(0)
    model = cnn3(filters=filters)
    model.compile(keras.optimizers.Adam(1e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(x, y, batch_size=128, epochs=FLAGS.train_epochs, verbose=2)
    os.makedirs(os.path.dirname(cache) or ".", exist_ok=True)
    model.save(cache)
    return model, (f"cnn3 ({widths} filters) trained {FLAGS.train_epochs} epochs on "
                   f"{FLAGS.train_images} images")


def make_eager_loop(model, eps, step, steps, unroll=False):
    """PGD with nothing but the op count, run eagerly: a random start, then
    `steps` x (forward, backward, sign step, one clip to the box
    [max(x - eps, 0), min(x + eps, 1)], whose bounds are computed once, outside
    the loop). Under `tf.function` the steps are a graph while-loop, or with
    `unroll` a straight graph of `steps` copies."""
    import tensorflow as tf

    def eager(x, y, seed):
        lower, upper = tf.maximum(x - eps, 0.0), tf.minimum(x + eps, 1.0)
        x_adv = tf.clip_by_value(
            x + tf.random.stateless_uniform(tf.shape(x), seed, -eps, eps), lower, upper
        )
        for _ in (range(steps) if unroll else tf.range(steps)):
            with tf.GradientTape() as tape:
                tape.watch(x_adv)
                loss = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(
                    labels=y, logits=model(x_adv, training=False)))
            grad = tape.gradient(loss, x_adv)
            x_adv = tf.clip_by_value(x_adv + step * tf.sign(grad), lower, upper)
        return x_adv

    return eager


def make_bare_loop(model, eps, step, steps, jit_compile=False, unroll=False):
    """The same loop as `make_eager_loop`, compiled with `tf.function`."""
    import tensorflow as tf

    return tf.function(make_eager_loop(model, eps, step, steps, unroll),
                       jit_compile=jit_compile)


def fresh_library_traces() -> None:
    """Drops the library's compiled attacks, so that the next call traces anew.

    The library keeps one `tf.function` per (model, attack, settings); see
    `keras_robust.attacks.engine.compiled_attack`.
    """
    from keras_robust.attacks.engine import clear_compiled

    clear_compiled()


def make_methods(model, x, y):
    """name -> prepare(), which traces a fresh copy of the attack (untimed) and
    returns run(round) -> the adversarial images for all of x.

    Every round re-traces every graph attack: on CPU with oneDNN, two traces of
    the *same* `tf.function` differ in speed by up to ~40%, persistently for the
    life of each trace (measured: five copies of the bare loop ran at 0.86,
    1.20, 1.21, 0.86 and 0.86 s per batch), so comparing single traces
    compares luck. The median over rounds is a median over traces.
    """
    import numpy as np
    import tensorflow as tf

    import keras_robust as kr

    eps, step, steps, bs = FLAGS.epsilon, FLAGS.step_size, FLAGS.steps, FLAGS.batch_size
    batches = [(tf.constant(x[i:i + bs]), tf.constant(y[i:i + bs])) for i in range(0, len(x), bs)]
    methods, notes = {}, {}

    def batched(fn):
        def prepare():
            np.asarray(fn(*batches[0], 0))  # trace
            return lambda r: np.concatenate([np.asarray(fn(xb, yb, r)) for xb, yb in batches])
        return prepare

    def library(jit_compile, early_stop=False):
        def prepare():
            fresh_library_traces()
            return batched(lambda xb, yb, r: kr.attacks.pgd(
                model, xb, yb, eps, step, steps, seed=r, jit_compile=jit_compile,
                early_stop=early_stop))()
        return prepare

    def bare_loop(jit_compile, unroll=False):
        def prepare():
            bare = make_bare_loop(model, eps, step, steps, jit_compile=jit_compile,
                                  unroll=unroll)
            return batched(lambda xb, yb, r: bare(xb, yb, tf.constant([r, 0], tf.int64)))()
        return prepare

    for name in FLAGS.methods:
        if name == "keras_robust":
            methods[name] = library(False)
            if FLAGS.jit_compile:
                methods["keras_robust_xla"] = library(True)
        elif name == "keras_robust_early_stop":
            methods[name] = library(False, early_stop=True)
        elif name == "bare_loop":
            methods[name] = bare_loop(False)
            if FLAGS.jit_compile:
                methods["bare_loop_xla"] = bare_loop(True)
        elif name == "bare_unrolled":
            methods[name] = bare_loop(False, unroll=True)
        elif name == "eager_loop":
            eager = make_eager_loop(model, eps, step, steps)
            methods[name] = batched(
                lambda xb, yb, r: eager(xb, yb, tf.constant([r, 0], tf.int64)))
        elif name == "art":
            try:
                methods[name], notes[name] = make_art(model, eps, step, steps, bs, x, y)
            except Exception as error:  # noqa: BLE001 - reported, the bench goes on
                notes[name] = f"failed: {type(error).__name__}: {error}"
        elif name == "cleverhans":
            try:
                methods[name], notes[name] = make_cleverhans(model, eps, step, steps, batched)
            except Exception as error:  # noqa: BLE001
                notes[name] = f"failed: {type(error).__name__}: {error}"
        else:
            raise ValueError(f"Unknown method {name!r}; expected keras_robust, bare_loop, "
                             "bare_unrolled, art, cleverhans, eager_loop, "
                             "keras_robust_early_stop.")
    return methods, notes


def make_art(model, eps, step, steps, bs, x, y):
    import numpy as np
    import tensorflow as tf
    from art.attacks.evasion import ProjectedGradientDescent
    from art.estimators.classification import TensorFlowV2Classifier

    classifier = TensorFlowV2Classifier(
        model=model, nb_classes=10, input_shape=tuple(x.shape[1:]),
        loss_object=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        clip_values=(0.0, 1.0),
    )
    attack = ProjectedGradientDescent(
        classifier, norm=np.inf, eps=eps, eps_step=step, max_iter=steps, num_random_init=1,
        batch_size=bs, verbose=False,
    )
    note = (f"{type(attack._attack).__name__} (ART's implementation for TensorFlowV2Classifier,"
            " eager); ran unmodified")

    def run(r):
        np.random.seed(r)
        return attack.generate(x=x, y=y)

    def prepare():
        attack.generate(x=x[:bs], y=y[:bs])  # warm up like the others
        return run

    return prepare, note


def make_cleverhans(model, eps, step, steps, batched):
    import numpy as np
    import tensorflow as tf
    from cleverhans.tf2.attacks.projected_gradient_descent import projected_gradient_descent

    def prepare():
        @tf.function
        def pgd(xb, yb):
            return projected_gradient_descent(
                lambda images: model(images, training=False), xb, eps, step, steps, np.inf,
                clip_min=0.0, clip_max=1.0, y=yb, rand_init=True, sanity_checks=False,
            )

        return batched(lambda xb, yb, r: pgd(xb, yb))()

    note = ("projected_gradient_descent in tf.function (its Python loop unrolls the steps); "
            "ran unmodified")
    return prepare, note


def engine_overhead(repeats: int = 60) -> dict:
    """Where keras_robust's PGD spends time beyond the bare loop, op by op.

    On a linear model (3072 -> 10 logits, batch 128, 10 steps) the model costs
    little, so the attack's own ops show. Each variant is the bare loop with
    one ingredient of `engine.run_attack` added ("clip bounds hoisted"
    instead takes one away: the ball-and-box clip against bounds computed
    once, as the bench's main bare loop does); "engine" is the
    engine itself in a `tf.function`, "public pgd()" adds the argument checks
    and dispatch of `keras_robust.attacks.pgd`.
    """
    import keras
    import numpy as np
    import tensorflow as tf

    import keras_robust as kr
    from keras_robust.attacks import AttackConfig
    from keras_robust.attacks.common import as_logits_fn, normalize, per_sample, project
    from keras_robust.attacks.engine import run_attack
    from keras_robust.attacks.objectives import objective

    rng = np.random.default_rng(0)
    inputs = keras.Input((32, 32, 3))
    model = keras.Model(inputs, keras.layers.Dense(10)(keras.layers.Flatten()(inputs)))
    x = tf.constant(rng.random((128, 32, 32, 3), dtype=np.float32))
    y = tf.constant(rng.integers(0, 10, 128).astype(np.int32))
    eps, step, steps = FLAGS.epsilon, FLAGS.step_size, FLAGS.steps
    seed = tf.constant([1, 0], tf.int64)

    def variant(parallel_iterations=None, project_op=False, library_objective=False,
                hoisted=False):
        @tf.function
        def attack(x, y, seed):
            e = per_sample(eps, x) if project_op else eps
            a = per_sample(step, x) if project_op else step
            x_adv = tf.clip_by_value(
                x + tf.random.stateless_uniform(tf.shape(x), seed, -1.0, 1.0) * e, 0.0, 1.0)
            lower, upper = tf.maximum(x - eps, 0.0), tf.minimum(x + eps, 1.0)

            def body(i, x_adv):
                with tf.GradientTape(watch_accessed_variables=False) as tape:
                    tape.watch(x_adv)
                    logits = model(x_adv, training=False)
                    if library_objective:
                        loss = tf.reduce_sum(objective("ce", logits, y, None))
                    else:
                        loss = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(
                            labels=y, logits=logits))
                g = tape.gradient(loss, x_adv)
                if project_op:
                    return i + 1, project(x_adv + a * normalize(g, "linf"), x, e, "linf")
                if hoisted:
                    return i + 1, tf.clip_by_value(x_adv + step * tf.sign(g), lower, upper)
                return i + 1, tf.clip_by_value(
                    tf.clip_by_value(x_adv + step * tf.sign(g), x - eps, x + eps), 0.0, 1.0)

            kwargs = {} if parallel_iterations is None else {
                "parallel_iterations": parallel_iterations}
            return tf.while_loop(lambda i, _: i < steps, body, (tf.constant(0), x_adv),
                                 **kwargs)[1]

        return lambda: attack(x, y, seed)

    @tf.function
    def engine(x, y, seed):
        config = AttackConfig(epsilon=eps, step_size=step, steps=steps)
        return run_attack(as_logits_fn(model), x, y, config, seed=seed).x_adv

    calls = {
        "bare loop": variant(),
        "bare loop, clip bounds hoisted": variant(hoisted=True),
        "+ parallel_iterations=1": variant(parallel_iterations=1),
        "+ per-sample eps and project()": variant(project_op=True),
        "+ objectives.objective('ce')": variant(library_objective=True),
        "engine (run_attack)": lambda: engine(x, y, seed),
        "public pgd()": lambda: kr.attacks.pgd(model, x, y, eps, step, steps, seed=1),
    }
    for call in calls.values():
        call()
        call()
    times = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            np.asarray(call())
            times[name].append(time.perf_counter() - start)
    base = statistics.median(times["bare loop"])
    return {name: {"ms": 1000 * statistics.median(t),
                   "extra_ms": 1000 * (statistics.median(t) - base)} for name, t in times.items()}


def unrolling_effect(model, x, y, rounds: int) -> dict:
    """The library's attacks with their loops unrolled (`UNROLLED_STEPS` at a
    time, the default) against a plain while-loop (one iteration per pass), on
    the same batches, each round on fresh traces of both, in alternating order.

    Returns, per attack, the seconds per image of every round for both and the
    median over rounds of the per-round speed ratio unrolled / while-loop.
    """
    import numpy as np

    import keras_robust as kr
    from keras_robust.attacks import common as _common

    bs = FLAGS.batch_size
    batches = [(x[i:i + bs], y[i:i + bs]) for i in range(0, len(x), bs)]
    eps, step = FLAGS.epsilon, FLAGS.step_size
    attacks = {
        "pgd_10": lambda xb, yb: kr.attacks.pgd(model, xb, yb, eps, step, 10, seed=0),
        "pgd_20": lambda xb, yb: kr.attacks.pgd(model, xb, yb, eps, step, 20, seed=0),
        "apgd_ce_100": lambda xb, yb: kr.attacks.apgd(model, xb, yb, eps, 100, seed=0),
    }
    default = _common.UNROLLED_STEPS
    settings = {"unrolled": default, "while_loop": 1}
    times = {name: {s: [] for s in settings} for name in attacks}
    try:
        for r in range(rounds):
            for name, attack in attacks.items():
                for setting in (list(settings) if r % 2 == 0 else list(settings)[::-1]):
                    _common.UNROLLED_STEPS = settings[setting]
                    fresh_library_traces()
                    np.asarray(attack(*batches[0]))
                    seconds, _ = time_once(
                        lambda: [np.asarray(attack(xb, yb)) for xb, yb in batches])
                    times[name][setting].append(seconds / len(x))
            print(f"unrolling round {r + 1}: " + ", ".join(
                f"{n} x{times[n]['while_loop'][-1] / times[n]['unrolled'][-1]:.2f}"
                for n in attacks))
    finally:
        _common.UNROLLED_STEPS = default
        fresh_library_traces()
    return {name: {"seconds_per_image": t, "unrolled_UNROLLED_STEPS": default,
                   "speedup_unrolled_over_while_loop": statistics.median(
                       w / u for u, w in zip(t["unrolled"], t["while_loop"]))}
            for name, t in times.items()}


def accuracy(model, x, y, bs=500):
    import numpy as np

    predictions = [np.argmax(np.asarray(model(x[i:i + bs], training=False)), -1)
                   for i in range(0, len(x), bs)]
    return float(np.mean(np.concatenate(predictions) == y))


def time_once(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def timing_rounds(model, x, y, methods: dict, notes: dict) -> tuple[list, dict, dict]:
    """The interleaved rounds: each method on a fresh trace, in a rotated order.

    A method that fails is noted in `notes` and dropped from `methods`.
    Returns the names still standing, and per name the seconds and the robust
    accuracy of every round.
    """
    import numpy as np

    from keras_robust import progress as _progress

    names = list(methods)
    times = {n: [] for n in names}
    accs = {n: [] for n in names}
    for r in range(FLAGS.rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        bar = _progress.bar(f"[bench attacks] round {r + 1}/{FLAGS.rounds} ", len(order),
                            FLAGS.progress, unit="method")
        for name in order:
            bar.update(0 if name in methods else 1)
            if name not in methods:
                continue
            try:
                run = methods[name]()  # fresh trace, untimed
                seconds, x_adv = time_once(lambda: run(r + 1))
            except Exception as error:  # noqa: BLE001 - reported, the bench goes on
                notes[name] = f"failed: {type(error).__name__}: {error}"
                print(f"{name} failed: {notes[name]}")
                del methods[name]
                bar.update()
                continue
            delta = np.abs(x_adv - x).max()
            assert delta <= FLAGS.epsilon + 1e-5, (name, delta)
            times[name].append(seconds)
            accs[name].append(accuracy(model, x_adv, y))
            bar.update()
        print(f"round {r + 1}: " + ", ".join(
            f"{n} {len(x) / times[n][-1]:.0f}/s" for n in names if n in methods))
    return [n for n in names if n in methods], times, accs


def pgd_results(names: list, times: dict, accs: dict, count: int) -> dict:
    """Per method: images/s of the median and the best round, robust accuracy."""
    import numpy as np

    results = {}
    for name in names:
        median = statistics.median(times[name])
        results[name] = {
            "images_per_second": count / median,
            "images_per_second_best_round": count / min(times[name]),
            "seconds_per_round": times[name],
            "robust_accuracy": float(np.mean(accs[name])),
            "robust_accuracy_per_round": accs[name],
        }
    return results


def ratio(results: dict, times: dict, a: str, b: str) -> float | None:
    """Speed of a over speed of b: the median over rounds of the per-round
    ratio (the two ran minutes apart at most, under the same load)."""
    if a in results and b in results and len(times[a]) == len(times[b]):
        return statistics.median(tb / ta for ta, tb in zip(times[a], times[b]))
    return None


def speed_ratios(results: dict, times: dict) -> dict:
    """The ratios the JSON records (the library against each other method)."""
    pairs = [("keras_robust", "bare_loop"), ("keras_robust", "bare_unrolled"),
             ("keras_robust", "art"), ("keras_robust", "cleverhans"),
             ("keras_robust", "eager_loop"), ("eager_loop", "art"),
             ("keras_robust_early_stop", "art"), ("keras_robust_early_stop", "keras_robust"),
             ("keras_robust_early_stop", "bare_loop")]
    if FLAGS.jit_compile:
        pairs += [("keras_robust_xla", "bare_loop_xla"), ("bare_loop_xla", "bare_loop")]
    return {f"{a} / {b}": ratio(results, times, a, b) for a, b in pairs}


def per_image_timings(model, x_all, y_all) -> dict:
    """APGD-100, Square-1000 and PGD per image, with their robust accuracy."""
    import numpy as np

    import keras_robust as kr

    xs, ys = x_all[:FLAGS.slow_images], y_all[:FLAGS.slow_images]
    slow = {}
    per_batch = [(xs[i:i + FLAGS.batch_size], ys[i:i + FLAGS.batch_size])
                 for i in range(0, len(xs), FLAGS.batch_size)]
    for key, attack in (
        (f"apgd_ce_{FLAGS.apgd_steps}",
         lambda xb, yb: kr.attacks.apgd(model, xb, yb, FLAGS.epsilon, FLAGS.apgd_steps, seed=0)),
        (f"square_{FLAGS.square_queries}",
         lambda xb, yb: kr.attacks.square(model, xb, yb, FLAGS.epsilon, FLAGS.square_queries,
                                          seed=0)),
        (f"pgd_{FLAGS.steps}",
         lambda xb, yb: kr.attacks.pgd(model, xb, yb, FLAGS.epsilon, FLAGS.step_size,
                                       FLAGS.steps, seed=0)),
    ):
        np.asarray(attack(*per_batch[0]))  # trace
        seconds, outs = time_once(lambda: [np.asarray(attack(xb, yb)) for xb, yb in per_batch])
        slow[key] = {"seconds_per_image": seconds / len(xs),
                     "robust_accuracy": accuracy(model, np.concatenate(outs), ys)}
        print(f"{key}: {1000 * seconds / len(xs):.1f} ms/image, "
              f"robust accuracy {slow[key]['robust_accuracy']:.3f}")
    return slow


def print_summary(out: dict, names: list, times: dict) -> None:
    """The run's tables on stdout (what the JSON `out` holds)."""
    results, clean = out["pgd"], out["clean_accuracy"]
    print(f"\nPGD-{FLAGS.steps}, eps {FLAGS.epsilon * 255:.0f}/255, step "
          f"{FLAGS.step_size * 255:.0f}/255, {out['images']} images, batch {FLAGS.batch_size}, "
          f"{FLAGS.rounds} rounds; clean accuracy {clean:.3f}")
    print("images/s: median round; lib / it: median over rounds of the per-round speed ratio; "
          "robust acc: mean over rounds")
    print(f"{'method':<20}{'images/s':>10}{'best round':>12}{'lib / it':>10}"
          f"{'robust acc':>12}")
    for name in names:
        res = results[name]
        rel = ratio(results, times, "keras_robust", name) if results.get("keras_robust") else None
        rel = float("nan") if rel is None else rel
        print(f"{name:<20}{res['images_per_second']:>10.1f}"
              f"{res['images_per_second_best_round']:>12.1f}{rel:>10.2f}"
              f"{res['robust_accuracy']:>12.3f}")
    for name, note in out["notes"].items():
        print(f"  {name}: {note}")
    for key, value in out["ratios"].items():
        if value is not None:
            print(f"{key}: {value:.3f}")
    for key, value in out["per_image"].items():
        print(f"{key}: {1000 * value['seconds_per_image']:.1f} ms/image, robust accuracy "
              f"{value['robust_accuracy']:.3f}")
    if out["unrolling"]:
        for key, value in out["unrolling"].items():
            print(f"{key}: unrolled / while-loop speed {value['speedup_unrolled_over_while_loop']:.3f}"
                  " (median over rounds)")
    if out["engine_overhead_linear_model"]:
        print(f"\nPGD-{FLAGS.steps} on a linear model (batch 128): where the time goes")
        for key, value in out["engine_overhead_linear_model"].items():
            print(f"  {key:<34}{value['ms']:8.2f} ms {value['extra_ms']:+7.2f} ms")


def main(argv):
    del argv
    import numpy as np
    import tensorflow as tf

    import keras_robust as kr

    model, model_name = load_or_train_model()
    x_all, y_all = kr.data.load_arrays(data_source(), "test",
                                       limit=max(FLAGS.images, FLAGS.at_images,
                                                 FLAGS.slow_images))
    x_all, y_all = kr.data.to_float(x_all), np.asarray(y_all, np.int32)
    x, y = x_all[:FLAGS.images], y_all[:FLAGS.images]
    clean = accuracy(model, x, y)
    print(f"model: {model_name}; clean accuracy on {len(x)} test images: {clean:.3f}")

    methods, notes = make_methods(model, x, y)
    names, times, accs = timing_rounds(model, x, y, methods, notes)
    results = pgd_results(names, times, accs, len(x))
    ratios = speed_ratios(results, times)
    slow = per_image_timings(model, x_all, y_all)
    unrolling = (unrolling_effect(model, x, y, FLAGS.unrolling_rounds)
                 if FLAGS.unrolling_rounds else None)
    overhead = engine_overhead() if FLAGS.overhead else None
    at = None
    if FLAGS.at_model:
        at = at_checks(x_all[:FLAGS.at_images], y_all[:FLAGS.at_images])

    out = {
        "model": model_name, "clean_accuracy": clean, "images": len(x),
        "batch_size": FLAGS.batch_size, "rounds": FLAGS.rounds, "epsilon": FLAGS.epsilon,
        "step_size": FLAGS.step_size, "steps": FLAGS.steps, "pgd": results, "ratios": ratios,
        "notes": notes, "per_image": slow, "adversarially_trained": at,
        "unrolling": unrolling,
        "engine_overhead_linear_model": overhead,
        "tensorflow": tf.__version__,
    }
    print_summary(out, names, times)
    os.makedirs(os.path.dirname(FLAGS.output) or ".", exist_ok=True)
    with open(FLAGS.output, "w") as f:
        json.dump(out, f, indent=2)
    print(f"wrote {FLAGS.output}")


def at_checks(x, y):
    """APGD-CE-100 against PGD-20 (and APGD-T, Square) on an adversarially trained model."""
    import keras
    import numpy as np

    import keras_robust as kr

    model = keras.saving.load_model(FLAGS.at_model, compile=False)
    eps, bs = FLAGS.epsilon, FLAGS.batch_size

    def robust(attack):
        outs = [np.asarray(attack(x[i:i + bs], y[i:i + bs])) for i in range(0, len(x), bs)]
        return accuracy(model, np.concatenate(outs), y)

    def timed(key, attack, rounds=3):
        """Robust accuracy and seconds per image (median of `rounds`, traced first)."""
        np.asarray(attack(x[:bs], y[:bs]))
        seconds = []
        for _ in range(rounds):
            elapsed, result[key] = time_once(lambda: robust(attack))
            seconds.append(elapsed)
        result[f"{key}_seconds_per_image"] = statistics.median(seconds) / len(x)

    result = {"model": FLAGS.at_model, "images": len(x), "clean": accuracy(model, x, y)}
    timed("pgd20_ce", lambda a, b: kr.attacks.pgd(model, a, b, eps, eps / 4, 20, seed=0))
    timed("pgd20_ce_early_stop", lambda a, b: kr.attacks.pgd(model, a, b, eps, eps / 4, 20,
                                                             seed=0, early_stop=True))
    result["apgd_ce_100"] = robust(lambda a, b: kr.attacks.apgd(model, a, b, eps, 100, seed=0))
    result["apgd_dlr_100"] = robust(
        lambda a, b: kr.attacks.apgd(model, a, b, eps, 100, loss="dlr", seed=0))
    result["apgd_ce_not_weaker_than_pgd20"] = result["apgd_ce_100"] <= result["pgd20_ce"]
    print("adversarially trained model:", json.dumps(result))
    return result


if __name__ == "__main__":
    app.run(main)
