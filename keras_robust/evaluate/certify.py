"""Certified L2 robustness by randomized smoothing (Cohen, Rosenfeld & Kolter, ICML 2019).

The smoothed classifier of a base classifier f (a model mapping [0, 1] images
to logits) is g(x) = argmax_c P(f(x + sigma * z) = c), z ~ N(0, I). If the top
class has probability p_A >= p_lower > 1/2, g is constant on the L2 ball of
radius sigma * Phi^-1(p_lower) around x. `SmoothedClassifier` estimates it by
Monte Carlo (reference: locuslab/smoothing `code/core.py`):

- CERTIFY: n0 noisy samples pick the top class c_A; n fresh samples (another
  seed stream) count it, k times; p_lower = Beta.ppf(alpha, k, n - k + 1)
  (one-sided Clopper-Pearson, `stats.clopper_pearson`); abstain (-1) if
  p_lower < 1/2, else the radius sigma * Phi^-1(p_lower). With probability
  >= 1 - alpha the answer is g(x) and g is robust at that radius.
- PREDICT: n samples, the two top counts n_A, n_B; abstain (-1) if the
  two-sided binomial test of n_A out of n_A + n_B at 1/2 has p-value > alpha,
  else the top class (wrong with probability <= alpha).

The noise is not clipped to [0, 1] (as the reference); counting is one
compiled function per model, `batch_size` noisy copies of one image per call,
drawn from stateless seeds so the same seed gives the same counts.
The certificate is for the smoothed classifier in L2, not for the base model,
and not in L-inf.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from typing import Any, Callable, ClassVar, NamedTuple, Sequence

import keras
import numpy as np
import tensorflow as tf

from keras_robust import progress as _progress
from keras_robust._random import as_seed, fold_seed
from keras_robust._validation import (check_choice, check_fraction, check_images, check_labels,
                                      check_positive, check_positive_int)
from keras_robust.attacks.config import ConfigBase
from keras_robust.evaluate.stats import clopper_pearson

__all__ = ["ABSTAIN", "Certificate", "CertifiedReport", "SmoothedClassifier", "SmoothingConfig",
           "certified_accuracy", "certified_report", "certify_dataset", "predict_from_counts",
           "radius_from_counts"]

# The answer of a smoothed classifier that abstains: never a class (class 0 is a class).
ABSTAIN = -1

# Salts of the two seed streams of CERTIFY (selection: n0 samples; estimation: n samples)
# and of PREDICT, folded into the per-image seed.
_STREAMS = {"selection": 0, "estimation": 1, "prediction": 2}

DEFAULT_RADII = (0.0, 0.125, 0.25, 0.5, 0.75, 1.0)


@tf.function
def _fold_twice(seed: tf.Tensor, first: tf.Tensor, second: tf.Tensor) -> tf.Tensor:
    """fold(fold(seed, first), second) (philox), compiled: eager folds cost ~10 ms each."""
    return fold_seed(fold_seed(seed, first, alg="philox"), second, alg="philox")


@keras.saving.register_keras_serializable(package="keras_robust")
@dataclasses.dataclass(frozen=True)
class SmoothingConfig(ConfigBase):
    """The settings of randomized-smoothing certification (Cohen et al. 2019).

    A frozen, validated config (`replace`, `get_config`, `from_config`).

    Args:
        sigma: the noise's standard deviation on the [0, 1] scale, > 0; the
            one the base model was trained with (`GaussianNoiseModel`).
        n0: noisy samples that select the top class (CERTIFY), >= 1.
        n: noisy samples that estimate its probability (CERTIFY) or the
            counts (PREDICT), >= 1. The largest radius is
            sigma * Phi^-1(alpha^(1/n)): it grows with n and sigma.
        alpha: the failure probability of each answer, in (0, 1).
        batch_size: noisy copies per compiled call, >= 1.
        seed: the noise's seed (an int); each image folds in its index.

    Example:

    >>> config = SmoothingConfig(sigma=0.25, n=10_000)
    >>> round(config.max_radius(), 4)
    0.7996
    >>> SmoothingConfig.from_config(config.get_config()) == config
    True
    >>> try:
    ...     SmoothingConfig(sigma=0.25, alpha=0.0)
    ... except ValueError as error:
    ...     print(str(error)[:30])
    `alpha` must be in (0, 1), e.g
    """

    sigma: float
    n0: int = 100
    n: int = 100_000
    alpha: float = 0.001
    batch_size: int = 1000
    seed: int = 0

    per_call_fields: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "sigma", check_positive(self.sigma, "sigma"))
        for name in ("n0", "n", "batch_size"):
            object.__setattr__(self, name, check_positive_int(getattr(self, name), name))
        object.__setattr__(self, "seed", check_positive_int(self.seed, "seed", minimum=0))
        alpha = check_fraction(self.alpha, "alpha")
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"`alpha` must be in (0, 1), e.g. 0.001; got {alpha}.")
        object.__setattr__(self, "alpha", alpha)

    def max_radius(self) -> float:
        """The largest radius CERTIFY can give: sigma * Phi^-1(alpha^(1/n)) (all n samples agree).

        Returns:
            The radius, a float.

        Example:

        >>> round(SmoothingConfig(sigma=1.0, n=10_000).max_radius(), 4)
        3.1986
        """
        return radius_from_counts(self.n, self.n, self.sigma, self.alpha)


class Certificate(NamedTuple):
    """CERTIFY's answer for one image.

    Attributes:
        predicted: the smoothed classifier's class, or `ABSTAIN` (-1).
        radius: the certified L2 radius (0.0 when it abstains).
        p_lower: the lower confidence bound on the top class's probability.
        count: k, the top class's count among the n estimation samples.

    Example:

    >>> Certificate(3, 0.5, 0.98, 990).predicted
    3
    """

    predicted: int
    radius: float
    p_lower: float
    count: int


def radius_from_counts(count: int, n: int, sigma: float, alpha: float) -> float:
    """The certified radius from k of n samples: sigma * Phi^-1(p_lower), or 0 below 1/2.

    Args:
        count: k, the top class's count among the n estimation samples.
        n: the number of estimation samples.
        sigma: the noise's standard deviation.
        alpha: the bound's failure probability.

    Returns:
        The radius (0.0 when p_lower < 1/2: the classifier abstains).

    Example:

    >>> round(radius_from_counts(100, 100, 0.5, 0.001), 4)
    0.7502
    >>> radius_from_counts(50, 100, 0.5, 0.001)
    0.0
    """
    return _radius(clopper_pearson(count, n, alpha)[0], sigma)


def _radius(p_lower: float, sigma: float) -> float:
    """sigma * Phi^-1(p_lower), or 0.0 below 1/2 (where CERTIFY abstains)."""
    from scipy.stats import norm

    return 0.0 if p_lower < 0.5 else float(sigma * norm.ppf(p_lower))


def predict_from_counts(counts: Any, alpha: float) -> int:
    """PREDICT's decision from per-class counts: the top class, or `ABSTAIN` (-1).

    The two top counts n_A >= n_B; abstain when the two-sided binomial test
    of n_A out of n_A + n_B at 1/2 has p-value > alpha (a tie always does).

    Args:
        counts: per-class counts [num_classes] (ints >= 0).
        alpha: the probability of a wrong (non-abstaining) answer, in (0, 1).

    Returns:
        The class index, or -1 to abstain.

    Example:

    >>> predict_from_counts([0, 95, 5], alpha=0.001), predict_from_counts([50, 50, 0], 0.001)
    (1, -1)
    """
    from scipy.stats import binomtest

    counts = np.asarray(counts)
    if counts.ndim != 1 or counts.size < 2 or (counts < 0).any():
        raise ValueError(f"`counts` must be per-class counts >= 0 [num_classes >= 2], got {counts}.")
    order = np.argsort(-counts, kind="stable")
    top, second = int(counts[order[0]]), int(counts[order[1]])
    if top + second == 0 or binomtest(top, top + second, 0.5).pvalue > alpha:
        return ABSTAIN
    return int(order[0])


class SmoothedClassifier:
    """The smoothed classifier of a base model: CERTIFY and PREDICT by Monte Carlo.

    Args:
        model: the base classifier, a Keras model (or any callable taking
            `training=False`) mapping float32 [0, 1] images [B, H, W, C] to
            logits [B, num_classes]. It is called in inference mode.
        num_classes: the number of classes (the logits' width).
        config: a `SmoothingConfig` (sigma, n0, n, alpha, batch_size, seed).

    Example:

    >>> base = keras_robust.backbones.small_cnn(input_shape=(8, 8, 3), num_classes=10)
    >>> smoothed = SmoothedClassifier(base, 10, SmoothingConfig(sigma=0.25, n0=10, n=100,
    ...                                                         batch_size=50))
    >>> int(smoothed.counts(np.full((8, 8, 3), 0.5, "float32"), 100, seed=0).sum())
    100
    >>> certificate = smoothed.certify(np.full((8, 8, 3), 0.5, "float32"))
    >>> certificate.predicted == -1 or certificate.radius > 0
    True
    """

    def __init__(self, model: Callable, num_classes: int, config: SmoothingConfig):
        if not callable(model):
            raise TypeError(f"`model` must be a Keras model mapping [0, 1] images to logits, "
                            f"got {type(model).__name__}.")
        if not isinstance(config, SmoothingConfig):
            raise TypeError(f"`config` must be a SmoothingConfig, e.g. SmoothingConfig(sigma=0.25), "
                            f"got {type(config).__name__}.")
        self.model = model
        self.num_classes = check_positive_int(num_classes, "num_classes", minimum=2)
        self.config = config
        self._count = tf.function(self._count_eager, reduce_retracing=True)

    def _count_eager(self, image: tf.Tensor, seed: tf.Tensor, num: tf.Tensor) -> tf.Tensor:
        """Per-class counts of `num` noisy copies of `image` (compiled as `_count`).

        A loop over batches of `batch_size` copies; batch b draws its noise
        from the stateless seed fold(seed, b).
        """
        batch = tf.constant(self.config.batch_size, tf.int64)
        batches = (num + batch - 1) // batch

        def body(b: tf.Tensor, total: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            size = tf.minimum(batch, num - b * batch)
            shape = tf.concat([tf.reshape(size, [1]), tf.shape(image, out_type=tf.int64)], 0)
            noise = tf.random.stateless_normal(shape, fold_seed(seed, b, alg="philox"),
                                               alg="philox")
            logits = self.model(image[None] + self.config.sigma * noise, training=False)
            votes = tf.one_hot(tf.argmax(logits, axis=-1), self.num_classes, dtype=tf.int64)
            return b + 1, total + tf.reduce_sum(votes, axis=0)

        start = (tf.constant(0, tf.int64), tf.zeros([self.num_classes], tf.int64))
        return tf.while_loop(lambda b, _: b < batches, body, start)[1]

    def counts(self, image: Any, num: int, seed: Any) -> np.ndarray:
        """Per-class counts of f(image + sigma * z) over `num` noisy samples.

        The samples are drawn `batch_size` at a time in one compiled loop;
        batch b uses the stateless seed fold(seed, b), so the same seed gives
        the same counts.

        Args:
            image: one float image [H, W, C] in [0, 1] (NumPy or tf).
            num: the number of noisy samples, >= 1.
            seed: an int or a [2] int seed (e.g. `stream_seed(...)`).

        Returns:
            int64 counts [num_classes] summing to `num`.

        Example:

        >>> base = keras_robust.backbones.small_cnn(input_shape=(8, 8, 3), num_classes=10)
        >>> smoothed = SmoothedClassifier(base, 10, SmoothingConfig(sigma=0.5, batch_size=8))
        >>> image = np.zeros((8, 8, 3), "float32")
        >>> bool((smoothed.counts(image, 20, 1) == smoothed.counts(image, 20, 1)).all())
        True
        """
        num = check_positive_int(num, "num")
        image = tf.convert_to_tensor(image, tf.float32)
        if image.shape.rank != 3:
            raise ValueError(f"`image` must be one image [H, W, C], got shape {image.shape}; "
                             "pass images[i], not a batch.")
        return self._count(image, as_seed(seed), tf.constant(num, tf.int64)).numpy()

    def stream_seed(self, index: int, stream: str) -> tf.Tensor:
        """The seed of one image's noise stream: fold(fold([seed, 0], index), stream).

        Args:
            index: the image's index in its data set.
            stream: "selection" (CERTIFY's n0 samples), "estimation" (its n
                fresh samples) or "prediction" (PREDICT's n samples).

        Returns:
            An int64 [2] seed.

        Example:

        >>> smoothed = SmoothedClassifier(lambda x, training=False: x[:, 0, 0, :2], 2,
        ...                               SmoothingConfig(sigma=0.5))
        >>> bool((smoothed.stream_seed(0, "selection") != smoothed.stream_seed(0, "estimation")).numpy().any())
        True
        """
        salt = _STREAMS[check_choice(stream, _STREAMS, "stream")]
        index = check_positive_int(index, "index", minimum=0)
        return _fold_twice(as_seed(self.config.seed), tf.constant(index, tf.int64),
                           tf.constant(salt, tf.int64))

    def certify(self, image: Any, index: int = 0) -> Certificate:
        """CERTIFY: the smoothed class and its certified L2 radius, or an abstention.

        Args:
            image: one float image [H, W, C] in [0, 1].
            index: the image's index in its data set: it keys the image's
                seed streams (so each image draws its own noise).

        Returns:
            A `Certificate` (predicted -1 and radius 0.0 when it abstains).

        Example:

        >>> base = keras_robust.backbones.small_cnn(input_shape=(8, 8, 3), num_classes=10)
        >>> smoothed = SmoothedClassifier(base, 10, SmoothingConfig(sigma=0.25, n0=10, n=50))
        >>> smoothed.certify(np.zeros((8, 8, 3), "float32")).radius >= 0.0
        True
        """
        config = self.config
        selection = self.counts(image, config.n0, self.stream_seed(index, "selection"))
        top = int(np.argmax(selection))
        count = int(self.counts(image, config.n, self.stream_seed(index, "estimation"))[top])
        p_lower = clopper_pearson(count, config.n, config.alpha)[0]
        if p_lower < 0.5:
            return Certificate(ABSTAIN, 0.0, p_lower, count)
        return Certificate(top, _radius(p_lower, config.sigma), p_lower, count)

    def predict(self, image: Any, index: int = 0) -> int:
        """PREDICT: the smoothed classifier's class, or -1 to abstain (`predict_from_counts`).

        Args:
            image: one float image [H, W, C] in [0, 1].
            index: the image's index in its data set (keys its seed stream).

        Returns:
            The class, or -1.

        Example:

        >>> base = keras_robust.backbones.small_cnn(input_shape=(8, 8, 3), num_classes=10)
        >>> smoothed = SmoothedClassifier(base, 10, SmoothingConfig(sigma=0.25, n=50))
        >>> smoothed.predict(np.zeros((8, 8, 3), "float32")) in range(-1, 10)
        True
        """
        counts = self.counts(image, self.config.n, self.stream_seed(index, "prediction"))
        return predict_from_counts(counts, self.config.alpha)


def _num_classes(model: Callable, image_shape: Sequence[int]) -> int:
    """The logits' width: the model's output shape, else one call on a blank image."""
    shape = getattr(model, "output_shape", None)
    if isinstance(shape, tuple) and len(shape) == 2 and shape[-1]:
        return int(shape[-1])
    return int(model(tf.zeros([1, *image_shape]), training=False).shape[-1])


def _check_dataset(images: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    """Images float [N, H, W, C] in [0, 1] and sparse labels [N], or a clear error."""
    check_images(images, "images")
    images = np.asarray(images, np.float32)
    labels = np.asarray(labels)
    if labels.ndim == 2:
        labels = labels.argmax(-1)
    if labels.shape != (len(images),):
        raise ValueError(f"`labels` must be one class index per image ({len(images)}), got shape "
                         f"{labels.shape}.")
    if len(images) == 0:
        raise ValueError("No images to certify; pass a non-empty batch [N, H, W, C].")
    return images, labels.astype(np.int64)


def certify_dataset(model: Callable, images: Any, labels: Any, config: SmoothingConfig,
                    progress: bool = True) -> list[dict]:
    """CERTIFY on every image: one record per image, as the reference's `certify.py` log.

    Args:
        model: the base classifier, mapping [0, 1] images to logits.
        images: float images [N, H, W, C] in [0, 1] (NumPy or tf).
        labels: their classes [N] (or one-hot rows).
        config: a `SmoothingConfig`.
        progress: a bar and a result line on stderr (`keras_robust.progress`).

    Returns:
        A list of dicts: index, label, predicted (-1: abstain), radius,
        correct (predicted == label), seconds.

    Example:

    >>> base = keras_robust.backbones.small_cnn(input_shape=(8, 8, 3), num_classes=10)
    >>> records = certify_dataset(base, np.zeros((2, 8, 8, 3), "float32"), [0, 1],
    ...                           SmoothingConfig(sigma=0.25, n0=10, n=50), progress=False)
    >>> sorted(records[0])
    ['correct', 'index', 'label', 'predicted', 'radius', 'seconds']
    """
    images, labels = _check_dataset(images, labels)
    num_classes = _num_classes(model, images.shape[1:])
    check_labels(labels, num_classes, "labels")
    smoothed = SmoothedClassifier(model, num_classes, config)
    records = []
    with _progress.bar("certify", total=len(images), enabled=progress, unit="image") as bar:
        for index, (image, label) in enumerate(zip(images, labels)):
            start = time.perf_counter()
            certificate = smoothed.certify(image, index)
            records.append(dict(index=index, label=int(label), predicted=certificate.predicted,
                                radius=certificate.radius,
                                correct=bool(certificate.predicted == label),
                                seconds=time.perf_counter() - start))
            bar.update()
    accuracy = certified_accuracy(records, [0.0])[0]
    _progress.line(f"certified (smoothed, L2) accuracy at radius 0: {100 * accuracy:.1f}%",
                   enabled=progress)
    return records


def certified_accuracy(records: Sequence[dict], radii: Sequence[float]) -> np.ndarray:
    """The certified accuracy at each radius r: the fraction correct with radius >= r.

    Abstentions count as wrong (the reference's `analyze.py`).

    Args:
        records: `certify_dataset`'s records (each with "correct" and "radius").
        radii: the L2 radii.

    Returns:
        float64 accuracies [len(radii)] in [0, 1].

    Example:

    >>> records = [dict(correct=True, radius=0.3), dict(correct=False, radius=0.9),
    ...            dict(correct=True, radius=0.6), dict(correct=False, radius=0.0)]
    >>> certified_accuracy(records, [0.0, 0.5, 1.0]).tolist()
    [0.5, 0.25, 0.0]
    """
    if not records:
        raise ValueError("`records` is empty; pass certify_dataset's records.")
    correct = np.array([bool(r["correct"]) for r in records])
    radius = np.array([float(r["radius"]) for r in records])
    return np.array([float(np.mean(correct & (radius >= r))) for r in radii])


@dataclasses.dataclass
class CertifiedReport:
    """What `certified_report` measured: the records, the curve and where it wrote them.

    Attributes:
        config: the `SmoothingConfig`.
        records: `certify_dataset`'s per-image records.
        radii: the L2 radii of the curve.
        accuracy: the certified accuracy at each radius.
        seconds: the wall time of the certification.
        paths: file name -> path of what was written ({} without `output_dir`).

    Example:

    >>> report = CertifiedReport(SmoothingConfig(sigma=0.25), [], [0.0], [0.5], 1.0, {})
    >>> report.summary()
    'certified L2 accuracy of the smoothed classifier (sigma 0.25): r=0: 50.0%'
    """

    config: SmoothingConfig
    records: list
    radii: list
    accuracy: list
    seconds: float
    paths: dict

    NOTE: ClassVar[str] = (
        "Certified accuracy of the SMOOTHED classifier g(x) = argmax_c P(f(x + sigma z) = c) "
        "in L2 (Cohen et al. 2019): at radius r, the fraction of images g classifies correctly "
        "with a certified radius >= r, each answer wrong with probability <= alpha. It says "
        "nothing of the base model f, nor of L-inf budgets beyond the L2 ball they lie in.")

    def summary(self) -> str:
        """One line: the certified accuracy at each radius.

        Returns:
            The line.

        Example:

        >>> CertifiedReport(SmoothingConfig(sigma=0.5), [], [0.0, 0.5], [0.6, 0.4], 1.0,
        ...                 {}).summary()[-24:]
        'r=0: 60.0%, r=0.5: 40.0%'
        """
        cells = ", ".join(f"r={r:g}: {100 * a:.1f}%" for r, a in zip(self.radii, self.accuracy))
        return f"certified L2 accuracy of the smoothed classifier (sigma {self.config.sigma:g}): " \
               f"{cells}"

    def to_json(self) -> dict:
        """The report as a JSON-safe dict (what `certified.json` holds).

        Returns:
            A dict: note, config, radii, certified_accuracy, seconds, records.

        Example:

        >>> sorted(CertifiedReport(SmoothingConfig(sigma=0.5), [], [0.0], [0.6], 1.0, {}).to_json())
        ['certified_accuracy', 'config', 'note', 'radii', 'records', 'seconds']
        """
        return dict(note=self.NOTE, config=self.config.get_config(), radii=list(self.radii),
                    certified_accuracy=[float(a) for a in self.accuracy], seconds=self.seconds,
                    records=self.records)


def certified_report(model: Callable, dataset: Any, config: SmoothingConfig,
                     radii: Sequence[float] = DEFAULT_RADII, output_dir: str | None = None,
                     progress: bool = True) -> CertifiedReport:
    """Certifies a data set and writes the certified-accuracy curve (JSON and a plot).

    Args:
        model: the base classifier, mapping [0, 1] images to logits.
        dataset: (images, labels) arrays or a `tf.data.Dataset` of such pairs
            (uint8 images are divided by 255).
        config: a `SmoothingConfig`.
        radii: the L2 radii of the curve.
        output_dir: where to write `certified.json` and `certified_accuracy.png`
            (None: write nothing).
        progress: a bar and result lines on stderr.

    Returns:
        A `CertifiedReport`.

    Example:

    >>> base = keras_robust.backbones.small_cnn(input_shape=(8, 8, 3), num_classes=10)
    >>> data = (np.zeros((2, 8, 8, 3), "float32"), np.array([0, 1]))
    >>> report = certified_report(base, data, SmoothingConfig(sigma=0.25, n0=10, n=50),
    ...                           radii=(0.0, 0.25), progress=False)
    >>> len(report.records), report.radii
    (2, [0.0, 0.25])
    """
    from keras_robust.evaluate.plots import line_plot
    from keras_robust.evaluate.report import _as_arrays

    radii = [float(check_fraction(r, "radii", 0.0, math.inf)) for r in radii]
    if not radii:
        raise ValueError("`radii` is empty; pass L2 radii, e.g. (0, 0.25, 0.5).")
    images, labels = _as_arrays(dataset, None)
    start = time.perf_counter()
    records = certify_dataset(model, images, labels, config, progress=progress)
    seconds = time.perf_counter() - start
    report = CertifiedReport(config, records, radii, certified_accuracy(records, radii).tolist(),
                             seconds, {})
    if output_dir is not None:
        os.makedirs(output_dir, exist_ok=True)
        path = os.path.join(output_dir, "certified.json")
        with open(path, "w") as file:
            json.dump(report.to_json(), file, indent=1)
        report.paths["certified.json"] = path
        report.paths["certified_accuracy.png"] = line_plot(
            os.path.join(output_dir, "certified_accuracy.png"), radii, report.accuracy,
            "L2 radius", f"certified accuracy (smoothed, sigma {config.sigma:g}, n {config.n})")
    _progress.line(report.summary(), enabled=progress)
    return report
