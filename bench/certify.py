"""Randomized-smoothing certification: the library's table, and the same images beside ART.

    python bench/certify.py --model=runs/gaussian_025_5ep/model.keras --sigma=0.25 \
        --every=50 --limit=200 --n=10000 --art --art_limit=50 \
        --output=bench/results/certify_small_cnn_sigma025.json

The model is a `.keras` file of a model mapping [0, 1] images to logits (a
`GaussianNoiseModel`, trained with `examples/train.py --defense=gaussian_noise`;
its backbone is what is certified). The test images are every `--every`-th of
the CIFAR-10 copy's test split, the first `--limit` of them (Cohen et al.
certify every 20th). Both certify with CERTIFY (n0 samples pick the class,
n fresh samples bound its probability with a one-sided Clopper-Pearson bound
at alpha; abstain below 1/2; radius sigma * Phi^-1(p_lower)) on the base
model's inference mode:

| | keras_robust | ART 1.20.1 |
| --- | --- | --- |
| call | `evaluate.certify_dataset` | `TensorFlowV2RandomizedSmoothing(sample_size=n0, scale=sigma, alpha).certify(x, n)` |
| noise | stateless `tf.random` draws, in compiled batches | `np.random.normal` on the host, seeded with `--seed` |

Both draw their own noise, so only Monte Carlo noise separates their answers:
the bar is certified accuracy at r = 0, 0.25 and 0.5 within 2 images.
Timing is the wall clock of each certification (`time.perf_counter`); ours
includes its one trace of the counting function (a few seconds), ART is
eager; `--timing_images` times both per image, in turn, after tracing. The
machine may be shared: only ratios measured in one run mean anything. ART runs
only with `--art` (`pip install "keras_robust[bench]"`, which brings ART and
the statsmodels its bound needs).

Printed: the certified accuracy at each radius (and ART's with `--art`), the
seconds, the per-image disagreements. Written: JSON to `--output`.
"""
from __future__ import annotations

import json
import os
import sys
import time

from absl import app, flags

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, "A .keras model mapping [0, 1] images to logits.")
flags.DEFINE_string("data", "auto", "The CIFAR-10 source (auto: the local copy).")
flags.DEFINE_float("sigma", 0.25, "The noise's standard deviation (the one trained with).")
flags.DEFINE_integer("n0", 100, "Samples that select the class.")
flags.DEFINE_integer("n", 10_000, "Samples that bound its probability.")
flags.DEFINE_float("alpha", 0.001, "Failure probability of each certificate.")
flags.DEFINE_integer("batch_size", 1000, "Noisy copies per model call (both libraries).")
flags.DEFINE_integer("every", 50, "Certify every N-th test image.")
flags.DEFINE_integer("limit", 200, "How many of those.")
flags.DEFINE_integer("seed", 0, "Noise seed (ours: the config's; ART: NumPy's global one).")
flags.DEFINE_list("radii", ["0", "0.125", "0.25", "0.5", "0.75"], "Radii of the table.")
flags.DEFINE_boolean("art", False, "Also certify the first --art_limit of the images with ART and compare.")
flags.DEFINE_integer("art_limit", 50, "How many of the images ART certifies (the comparison's images).")
flags.DEFINE_boolean("certify", True, "Certify the images (false: only the alternating timing).")
flags.DEFINE_integer("timing_images", 0, "With --art: also time the two on this many images "
                     "alternately (library, ART, library, ...), so that both see the same load.")
flags.DEFINE_string("plot", None, "A PNG of the certified-accuracy curves (library, and ART's "
                    "with --art) on a fine radius grid.")
flags.DEFINE_string("output", "bench/results/certify.json", "JSON output path.")
flags.mark_flag_as_required("model")


def test_images():
    """Every --every-th test image, the first --limit of them, as float [0, 1] and labels."""
    import numpy as np

    from keras_robust import data, experiment

    x, y = data.load_arrays(experiment.resolve_source(FLAGS.data), "test")
    index = np.arange(0, len(x), FLAGS.every)[: FLAGS.limit]
    return x[index].astype("float32") / 255.0, np.asarray(y[index]), index


def base_classifier(path: str):
    """The model at `path`; a defence's backbone (what the defence trained) when it has one."""
    import keras

    import keras_robust  # noqa: F401  (registers the library's classes for loading)

    model = keras.saving.load_model(path)
    return getattr(model, "backbone", model)


def smoothing_config():
    """The flags' `SmoothingConfig`, the one both certification paths of this script use."""
    from keras_robust import evaluate

    return evaluate.SmoothingConfig(sigma=FLAGS.sigma, n0=FLAGS.n0, n=FLAGS.n, alpha=FLAGS.alpha,
                                    batch_size=FLAGS.batch_size, seed=FLAGS.seed)


def art_classifier(base, image_shape):
    """ART's `TensorFlowV2RandomizedSmoothing` around `base` with the flags' settings."""
    import keras
    from art.estimators.certification.randomized_smoothing import TensorFlowV2RandomizedSmoothing

    return TensorFlowV2RandomizedSmoothing(
        model=base, nb_classes=int(base.output_shape[-1]), input_shape=tuple(image_shape),
        loss_object=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        clip_values=(0.0, 1.0), sample_size=FLAGS.n0, scale=FLAGS.sigma, alpha=FLAGS.alpha)


def certify_library(base, x, y) -> dict:
    """`certify_dataset` on the images, timed whole: its one trace of the counting function
    (a few seconds) is inside the time, since `certify_dataset` builds its own classifier."""
    from keras_robust import evaluate

    config = smoothing_config()
    start = time.perf_counter()
    records = evaluate.certify_dataset(base, x, y, config)
    seconds = time.perf_counter() - start
    return dict(records=records, seconds=seconds, config=config.get_config())


def certify_art(base, x, y) -> dict:
    """ART's `TensorFlowV2RandomizedSmoothing.certify` on the same images and settings."""
    import numpy as np

    classifier = art_classifier(base, x.shape[1:])
    classifier.predict(x[:2], batch_size=2)  # warm-up, untimed
    np.random.seed(FLAGS.seed)
    start = time.perf_counter()
    predicted, radius = classifier.certify(x, n=FLAGS.n, batch_size=FLAGS.batch_size)
    seconds = time.perf_counter() - start
    records = [dict(index=i, label=int(label), predicted=int(p), radius=float(r),
                    correct=bool(int(p) == int(label)))
               for i, (label, p, r) in enumerate(zip(y, predicted, radius))]
    return dict(records=records, seconds=seconds)


def alternate_timing(base, x, y) -> dict:
    """Seconds per image of each library on the first --timing_images images, taken in turn."""
    import statistics

    from keras_robust import evaluate

    ours = evaluate.SmoothedClassifier(base, int(base.output_shape[-1]), smoothing_config())
    theirs = art_classifier(base, x.shape[1:])
    ours.certify(x[0], 0)  # traces
    theirs.predict(x[:2], batch_size=2)
    library, art = [], []
    for i in range(FLAGS.timing_images):
        start = time.perf_counter()
        ours.certify(x[i], i)
        library.append(time.perf_counter() - start)
        start = time.perf_counter()
        theirs.certify(x[i: i + 1], n=FLAGS.n, batch_size=FLAGS.batch_size)
        art.append(time.perf_counter() - start)
    ratios = [a / b for a, b in zip(art, library)]
    return dict(images=FLAGS.timing_images, library_seconds=library, art_seconds=art,
                median_art_over_library=statistics.median(ratios))


def plot_curves(path: str, results: dict) -> str:
    """The certified accuracy of each library's records on radii 0, 0.025, ..., the largest."""
    import numpy as np

    from keras_robust import evaluate
    from keras_robust.evaluate.plots import line_plot

    top = smoothing_config().max_radius()
    grid = np.round(np.arange(0.0, top + 0.025, 0.025), 3).tolist()
    curve = lambda records: evaluate.certified_accuracy(records, grid).tolist()
    extra = None
    if "art" in results:  # ART's images are the library's first ones: both curves on those
        count = len(results["art"]["records"])
        extra = {f"library, first {count}": (grid, curve(results["library"]["records"][:count])),
                 f"ART 1.20.1, same {count}": (grid, curve(results["art"]["records"]))}
    return line_plot(path, grid, curve(results["library"]["records"]), "L2 radius",
                     f"smoothed classifier, sigma {FLAGS.sigma:g}, n {FLAGS.n}: "
                     f"{len(results['library']['records'])} images", extra=extra)


def compare(ours: list, art: dict, radii: list, index) -> dict:
    """Our records on ART's images against ART's: counts per radius, disagreements, time ratio."""
    import numpy as np

    from keras_robust import evaluate

    theirs = art["records"]
    counts = [[round(a * len(records)) for a in evaluate.certified_accuracy(records, radii)]
              for records in (ours, theirs)]
    differ = [i for i, (a, b) in enumerate(zip(ours, theirs)) if a["predicted"] != b["predicted"]]
    ours_seconds = sum(record["seconds"] for record in ours)
    return dict(
        images=len(theirs), library_images=counts[0], art_images=counts[1],
        largest_count_gap=int(np.max(np.abs(np.subtract(*counts)))),
        prediction_disagreements=[int(index[i]) for i in differ],
        median_radius_gap=float(np.median(np.abs([a["radius"] - b["radius"]
                                                  for a, b in zip(ours, theirs)]))),
        library_seconds=ours_seconds, art_seconds=art["seconds"],
        art_over_library_seconds=art["seconds"] / ours_seconds)


def main(argv):
    del argv
    from keras_robust import evaluate

    radii = [float(r) for r in FLAGS.radii]
    x, y, index = test_images()
    base = base_classifier(FLAGS.model)
    results = {}
    if FLAGS.certify:
        results["library"] = certify_library(base, x, y)
    if FLAGS.art and FLAGS.certify:
        results["art"] = certify_art(base, x[: FLAGS.art_limit], y[: FLAGS.art_limit])
    print(f"\n{len(x)} test images (every {FLAGS.every}th), sigma {FLAGS.sigma}, n0 {FLAGS.n0}, "
          f"n {FLAGS.n}, alpha {FLAGS.alpha}; max radius "
          f"{smoothing_config().max_radius():.3f}")
    print(f"{'':<14}" + "".join(f"{'r=' + format(r, 'g'):>9}" for r in radii) + f"{'seconds':>10}")
    for name, result in results.items():
        result["certified_accuracy"] = evaluate.certified_accuracy(result["records"], radii).tolist()
        result["certified_images"] = [round(a * len(result["records"])) for a in result["certified_accuracy"]]
        print(f"{name + ' (' + str(len(result['records'])) + ')':<14}"
              + "".join(f"{c:>9}" for c in result["certified_images"]) + f"{result['seconds']:>10.0f}")
    if FLAGS.art and FLAGS.certify:
        results["comparison"] = compare(results["library"]["records"][: FLAGS.art_limit],
                                        results["art"], radii, index)
        print(f"\non the first {FLAGS.art_limit} images: library {results['comparison']['library_images']}, "
              f"ART {results['comparison']['art_images']} certified at r = {radii}; largest gap "
              f"{results['comparison']['largest_count_gap']} images; prediction disagreements (test "
              f"index) {results['comparison']['prediction_disagreements']}; ART / library time "
              f"{results['comparison']['art_over_library_seconds']:.2f}")
    if FLAGS.art and FLAGS.timing_images:
        results["alternate_timing"] = alternate_timing(base, x, y)
        print(f"alternating on {FLAGS.timing_images} images: ART / library time per image, median "
              f"{results['alternate_timing']['median_art_over_library']:.2f}")
    if FLAGS.plot and "library" in results:
        print(f"wrote {plot_curves(FLAGS.plot, results)}")
    payload = dict(model=FLAGS.model, test_indices=index.tolist(), radii=radii,
                   command=" ".join(sys.argv), **results)
    os.makedirs(os.path.dirname(os.path.abspath(FLAGS.output)), exist_ok=True)
    with open(FLAGS.output, "w") as file:
        json.dump(payload, file, indent=1)
    print(f"wrote {FLAGS.output}")


if __name__ == "__main__":
    app.run(main)
