"""Adversarial feature stacking (Liu & Zhao, 2022): the pipeline around `AFSModel`.

1. `train_extractors`: one PGD-AT model per budget (the paper: 0/255 to 9/255),
   saved and resumable.
2. `delta_z` / `delta_z_curve`: eq. 8, the largest logit change an L-inf attack
   of size epsilon can cause, against the training budget; the paper keeps the
   budgets where this curve is concave (`concave_budgets`).
3. `AFSModel`: the linear merger over the chosen, frozen extractors.
4. `importance`: the per-extractor importance ratio of the merger's weights
   (Fig. 5b).

Example:

```python
import keras_robust as kr
extractors = kr.afs.train_extractors(lambda: kr.backbones.small_cnn(), [2/255, 5/255, 8/255],
                                     train_ds, epochs=5, output_dir="runs/afs/extractors")
curve = kr.afs.delta_z_curve(extractors, x_test[:500], epsilon=8 / 255, plot="dz.png")
model = kr.AFSModel(extractors, alpha=0.5, steps=3)
ratios = kr.afs.importance(model, plot="importance.png")
```
"""
from __future__ import annotations

import os
import sys
import time
from typing import Any, Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from keras_robust._validation import check_epsilon, check_images, check_positive_int
from keras_robust.afs.model import AFSModel, build_stack, feature_extractor
from keras_robust.attacks.common import as_logits_fn
from keras_robust.attacks.config import AttackConfig
from keras_robust.attacks.engine import run_attack
from keras_robust.defenses.base import RobustModel
from keras_robust.defenses.pgd_at import PGDATModel


def extractor_path(output_dir: str, budget: float) -> str:
    """Where `train_extractors` keeps the extractor of `budget` ("eps_8.keras" for 8/255).

    The file name is the budget in pixel levels (`budget * 255`, formatted
    with `:g`), so 0 gives "eps_0.keras" and 2.5/255 "eps_2.5.keras".

    Args:
        output_dir: the folder of the extractors.
        budget: the L-inf training budget on the [0, 1] scale.

    Returns:
        The path `output_dir/eps_<budget * 255>.keras` (not checked to exist).

    Example:

    >>> extractor_path("runs/afs", 8 / 255)
    'runs/afs/eps_8.keras'
    """
    return os.path.join(output_dir, f"eps_{budget * 255:g}.keras")


def train_extractors(
    backbone_fn: Callable[[], keras.Model],
    budgets: Sequence[float],
    dataset: tf.data.Dataset,
    *,
    epochs: int,
    output_dir: str,
    steps: int = 10,
    step_size: Callable[[float], float] | float | None = None,
    optimizer_fn: Callable[[], keras.optimizers.Optimizer] | None = None,
    seed: int = 0,
    verbose: int = 2,
) -> list[keras.Model]:
    """Trains one PGD-AT model per budget (plain training for budget 0), resumably.

    Each finished extractor is saved to `output_dir/eps_<budget*255>.keras`
    (the whole defence, so its budget is recorded) and skipped by a later call.

    Args:
        backbone_fn: builds a fresh backbone (same architecture each time).
        budgets: L-inf training budgets on the [0, 1] scale.
        dataset: the training pipeline of (images, labels) batches.
        epochs: epochs per extractor.
        output_dir: where extractors are saved and looked for.
        steps: PGD steps per training step.
        step_size: the PGD step, or a function budget -> step; default
            2.5 * budget / steps (Madry's ratio).
        optimizer_fn: builds a fresh optimizer per extractor; default SGD 0.1
            with momentum 0.9 and cosine decay over the run.
        seed: seed of each defence's randomness.
        verbose: `fit` verbosity.

    Returns:
        The trained defences (`RobustModel`/`PGDATModel`), in budget order.

    Example:

    >>> models = train_extractors(kr.backbones.small_cnn, [0, 4/255, 8/255], train_ds,
    ...                           epochs=5, output_dir="runs/extractors")  # doctest: +SKIP
    >>> import tempfile
    >>> x = np.random.default_rng(0).random((8, 8, 8, 3), "float32")
    >>> train = kr.data.from_arrays(x, np.arange(8) % 10, batch_size=4)
    >>> def build():
    ...     return keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
    ...                              keras.layers.Dense(10)])
    >>> folder = tempfile.mkdtemp()
    >>> models = train_extractors(build, [0, 8 / 255], train, epochs=1, output_dir=folder,
    ...                           steps=1, verbose=0)
    >>> [type(m).__name__ for m in models], sorted(os.listdir(folder))
    (['RobustModel', 'PGDATModel'], ['eps_0.keras', 'eps_8.keras'])
    >>> again = train_extractors(build, [0, 8 / 255], train, epochs=1, output_dir=folder,
    ...                          steps=1, verbose=0)          # found on disk: loaded, not trained
    >>> round(again[1].attack.epsilon * 255)
    8
    """
    epochs = check_positive_int(epochs, "epochs")
    steps = check_positive_int(steps, "steps")
    os.makedirs(output_dir, exist_ok=True)
    models = []
    for budget in budgets:
        check_epsilon(budget, "budget", allow_zero=True)
        path = extractor_path(output_dir, budget)
        if os.path.exists(path):
            print(f"[afs] extractor eps {budget * 255:g}/255: found {path}, not trained again",
                  file=sys.stderr)
            models.append(keras.saving.load_model(path, safe_mode=True))
            continue
        backbone = backbone_fn()
        if budget == 0:
            model: RobustModel = RobustModel(backbone, seed=seed)
        else:
            if step_size is None:
                step = 2.5 * budget / steps
            else:
                step = step_size(budget) if callable(step_size) else float(step_size)
            model = PGDATModel(backbone, epsilon=budget, step_size=step, steps=steps, seed=seed)
        if optimizer_fn is None:
            total = epochs * max(1, int(dataset.cardinality()))
            optimizer = keras.optimizers.SGD(
                keras.optimizers.schedules.CosineDecay(0.1, total), momentum=0.9)
        else:
            optimizer = optimizer_fn()
        model.compile(optimizer=optimizer, metrics=["accuracy"])
        start = time.time()
        print(f"[afs] training extractor eps {budget * 255:g}/255 for {epochs} epochs",
              file=sys.stderr)
        model.fit(dataset, epochs=epochs, verbose=verbose)
        temporary = path + ".partial.keras"
        model.save(temporary)
        os.replace(temporary, path)  # a crash never leaves a half-written extractor
        print(f"[afs] extractor eps {budget * 255:g}/255 done in {time.time() - start:.0f} s",
              file=sys.stderr)
        models.append(model)
    return models


def _delta_z_batch(model, x, epsilon, steps, step_size, seed):
    logits_fn = as_logits_fn(model)
    clean = tf.stop_gradient(logits_fn(x))

    def logit_change(logits, y, target):
        del y, target
        return tf.sqrt(tf.reduce_sum(tf.square(logits - clean), axis=-1) + 1e-12)

    config = AttackConfig(epsilon=None, steps=steps, loss=logit_change, random_start=True)
    x_adv = run_attack(
        logits_fn, x, tf.zeros(tf.shape(x)[:1], tf.int32), config, epsilon=epsilon,
        step_size=step_size, seed=seed,
    ).x_adv
    return tf.norm(logits_fn(x_adv) - clean, axis=-1)


_DELTA_Z = tf.function(_delta_z_batch, reduce_retracing=True)


def delta_z(
    model: Any, images: Any, epsilon: float = 8 / 255, steps: int = 20,
    step_size: float | None = None, batch_size: int = 250, seed: int = 0,
) -> float:
    """Eq. 8: the largest logit change an L-inf attack of size `epsilon` can cause.

    Found per image by PGD that maximises ||z(x') - z(x)||_2 from a random start
    (L2 norm of the logit change; the paper leaves the norm open), then
    averaged over the images.

    Args:
        model: a classifier (Keras model, defence, or callable -> logits).
        images: float [N, H, W, C] in [0, 1] (uint8 is converted).
        epsilon: the evaluation budget (8/255 in the paper's Fig. 3).
        steps: PGD steps.
        step_size: PGD step; default epsilon / 4.
        batch_size: images per batch.
        seed: attack seed.

    Returns:
        The mean of the per-image Delta-z.

    Example:

    >>> delta_z(extractor, x_test[:500], epsilon=8 / 255)  # doctest: +SKIP
    >>> model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
    ...                           keras.layers.Dense(10)])
    >>> x = np.random.default_rng(0).random((4, 8, 8, 3), "float32")
    >>> dz = delta_z(model, x, epsilon=8 / 255, steps=2, batch_size=2)
    >>> isinstance(dz, float), dz > 0
    (True, True)
    >>> delta_z(model, x, epsilon=8 / 255, steps=2, batch_size=2) == dz    # seeded
    True
    """
    images = np.asarray(images)
    if images.dtype == np.uint8:
        images = images.astype(np.float32) / 255.0
    check_images(images, "images")
    epsilon = float(check_epsilon(epsilon))
    steps = check_positive_int(steps, "steps")
    step = step_size if step_size is not None else epsilon / 4
    values = []
    for start in range(0, len(images), batch_size):
        batch = tf.constant(images[start:start + batch_size], tf.float32)
        values.append(_DELTA_Z(getattr(model, "backbone", model), batch, tf.constant(epsilon),
                               steps, tf.constant(float(step)), tf.constant([seed, start], tf.int64)).numpy())
    return float(np.mean(np.concatenate(values)))


def delta_z_curve(
    models: Sequence[Any], images: Any, budgets: Sequence[float] | None = None,
    epsilon: float = 8 / 255, plot: str | None = None, **kwargs: Any,
) -> list[dict]:
    """Delta-z (eq. 8) of each extractor against its training budget (Fig. 3).

    Args:
        models: the extractors.
        images: evaluation images, float [N, H, W, C] in [0, 1] (uint8 is
            converted).
        budgets: their training budgets (default: each model's `attack.epsilon`
            attribute, 0 for models without one, e.g. plain training).
        epsilon: the evaluation budget.
        plot: a PNG path for the curve.
        **kwargs: passed to `delta_z`.

    Returns:
        `[{"budget": b, "delta_z": dz}, ...]` in the given order, budgets on
        the [0, 1] scale (the plot's axis is in /255).

    Raises:
        ValueError: `budgets` and `models` differ in length.

    Example:

    >>> x = np.random.default_rng(0).random((2, 8, 8, 3)).astype(np.float32)
    >>> models = [keras_robust.backbones.small_cnn(input_shape=(8, 8, 3)) for _ in range(2)]
    >>> curve = delta_z_curve(models, x, budgets=[0, 8 / 255], steps=2)
    >>> [round(p["budget"] * 255) for p in curve], sorted(curve[0])
    ([0, 8], ['budget', 'delta_z'])
    """
    if budgets is None:
        budgets = [float(m.attack.epsilon) if hasattr(m, "attack") else 0.0 for m in models]
    if len(budgets) != len(models):
        raise ValueError(f"{len(models)} models but {len(budgets)} budgets.")
    curve = [{"budget": float(b), "delta_z": delta_z(m, images, epsilon, **kwargs)}
             for m, b in zip(models, budgets)]
    if plot:
        from keras_robust.evaluate import plots

        plt = plots.pyplot()
        fig, ax = plt.subplots(figsize=(5, 3.5), dpi=120)
        ax.plot([255 * p["budget"] for p in curve], [p["delta_z"] for p in curve], marker="o")
        ax.set_xlabel("training budget (/255)")
        ax.set_ylabel(f"Delta z at eps {255 * epsilon:g}/255")
        ax.set_title("Delta z against training budget (eq. 8)")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        os.makedirs(os.path.dirname(os.path.abspath(plot)), exist_ok=True)
        fig.savefig(plot)
        plt.close(fig)
    return curve


def concave_budgets(curve: Sequence[dict]) -> list[float]:
    """The budgets at which the Delta-z curve is locally concave (the paper's rule).

    An interior budget is locally concave when its Delta-z lies on or above
    the chord of its two neighbours (second difference <= 0, up to 1e-9);
    each such budget is kept together with both of its neighbours. So a
    budget qualifies when it or one of its neighbours is locally concave
    (the two ends qualify when their neighbour is). The paper keeps the
    budgets where the curve is concave (3/255 to 8/255 in its Fig. 3).

    Args:
        curve: `[{"budget": b, "delta_z": dz}, ...]` as `delta_z_curve`
            returns, in any order.

    Returns:
        The qualifying budgets, sorted; every budget when the curve has
        fewer than three points.

    Example:

    >>> dz = [1.0, 3.0, 4.0, 4.5, 6.0]           # concave at 1 and 2, convex at 3
    >>> curve = [{"budget": b / 255, "delta_z": v} for b, v in enumerate(dz)]
    >>> [round(b * 255) for b in concave_budgets(curve)]
    [0, 1, 2, 3]
    """
    points = sorted(curve, key=lambda p: p["budget"])
    if len(points) < 3:
        return [p["budget"] for p in points]
    concave = set()
    for i in range(1, len(points) - 1):
        a, b, c = points[i - 1], points[i], points[i + 1]
        t = (b["budget"] - a["budget"]) / (c["budget"] - a["budget"])
        chord = a["delta_z"] + t * (c["delta_z"] - a["delta_z"])
        if b["delta_z"] >= chord - 1e-9:
            concave.update({a["budget"], b["budget"], c["budget"]})
    return sorted(concave)


def importance(model: AFSModel, plot: str | None = None, labels: Sequence[str] | None = None
               ) -> list[float]:
    """The per-extractor importance ratio of the merger (Fig. 5b of the paper).

    The merger's weight matrix splits into one block of rows per extractor;
    a block's importance is the sum of its absolute weights, normalised to sum
    to 1 over the extractors.

    Args:
        model: a (trained) `AFSModel`.
        plot: a PNG path for a bar chart.
        labels: names of the extractors for the plot (default "extractor i").

    Returns:
        One ratio per extractor, in concatenation order.

    Example:

    >>> extractors = [keras_robust.backbones.small_cnn(input_shape=(8, 8, 3)) for _ in range(2)]
    >>> model = AFSModel(extractors, alpha=0.5, steps=1)
    >>> ratios = importance(model)              # a fresh merger: about equal shares
    >>> len(ratios), round(sum(ratios), 6)
    (2, 1.0)
    >>> kernel = np.concatenate([np.full((128, 10), 1.0), np.full((128, 10), 3.0)])
    >>> model.merger.set_weights([kernel, np.zeros(10)])    # extractor 1 weighs three times more
    >>> importance(model)
    [0.25, 0.75]
    """
    if not isinstance(model, AFSModel):
        raise TypeError(f"importance() takes an AFSModel, got {type(model).__name__}.")
    kernel = np.abs(model.merger.get_weights()[0])
    sizes = [int(e.output_shape[-1]) for e in model.extractors]
    bounds = np.cumsum([0] + sizes)
    sums = np.array([kernel[bounds[i]:bounds[i + 1]].sum() for i in range(len(sizes))])
    ratios = (sums / sums.sum()).tolist()
    if plot:
        from keras_robust.evaluate import plots

        plt = plots.pyplot()
        fig, ax = plt.subplots(figsize=(5, 3.5), dpi=120)
        names = list(labels) if labels else [f"extractor {i}" for i in range(len(ratios))]
        ax.bar(names, ratios)
        ax.set_ylabel("importance ratio")
        ax.set_title(f"AFS merger importance (alpha = {model.alpha:g})")
        fig.tight_layout()
        os.makedirs(os.path.dirname(os.path.abspath(plot)), exist_ok=True)
        fig.savefig(plot)
        plt.close(fig)
    return ratios


__all__ = [
    "AFSModel", "build_stack", "concave_budgets", "delta_z", "delta_z_curve", "extractor_path",
    "feature_extractor", "importance", "train_extractors",
]
