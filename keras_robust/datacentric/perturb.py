"""The adversarial part: transferable perturbations by eq. 6 of the paper.

For each image x, two perturbations are computed independently from x with
the library's attack engine (`keras_robust.attacks.engine.run_attack`)
on the ensemble-mean logits of the surrogates (eq. 5): an L-inf one (eps
8/255, step 2/255) and an L2 one (eps 1.0, step 0.025), each with

- input diversity with probability p (eq. 3),
- the logit loss -z_y on the ensemble-mean logits (eq. 4; `AttackSettings.loss`
  swaps in another objective of `keras_robust.attacks.objectives`),
- momentum mu on L1-normalised gradients (eq. 1; see below for how this and
  the reference code differ),
- Gaussian smoothing of the gradient (eq. 2),

then `x_adv = clip(x + delta_inf + delta_2, 0, 1)`.

Defaults follow Zhao, Liu & Larson (2021), whose settings the paper adopts
("Other hyper-parameters are consistent with those in (Zhao, Liu, and Larson
2021)"): their ensemble code (`ZhengyuZhao/Targeted-Transfer`,
`eval_ensemble.py`) uses input diversity with probability 0.7, a 5x5
Gaussian kernel over +-3 sigma, momentum 1 and no random start. The DI paper
(Xie et al. 2019) reports p = 0.5 as its balance between white-box and
black-box success; 0.7 is the value of the method the paper copies, and
the one measured in the notes.

What this library computes, per step i and sample (the engine's MI-FGSM
with TI): g_i = mu g_{i-1} + (W * grad) / ||W * grad||_1, then a step along
sign(g_i) (L-inf) or g_i / ||g_i||_2 (L2). It smooths each raw gradient
before the momentum accumulation and L1-normalises the smoothed gradient.

Eq. 6 of the paper L1-normalises the raw gradient, accumulates, and smooths
the accumulated momentum: sign(W * g_i) with g_i = mu g_{i-1} + grad / ||grad||_1.
Smoothing is linear, so the two differ only in the per-step scale of each
contribution (||W * grad||_1 instead of ||grad||_1).

Zhao et al.'s code (`ZhengyuZhao/Targeted-Transfer`) does neither for the
logit loss: `eval_ensemble.py` and the logit (and Po+Trip) attacks of
`eval_single.py` smooth the raw gradient and accumulate it unnormalised,
g_i = W * grad + 1 * g_{i-1}, step sign(g_i); only their cross-entropy attack
divides the smoothed gradient by its per-sample mean absolute value
(||W * grad||_1 / (H W C), the L1 normalisation up to a constant, which
the sign ignores). Without normalisation, steps with large gradients weigh
more in the momentum sum, so the library (and eq. 6) and that code give
different perturbations. Their ensemble code also draws input diversity
separately for each surrogate's forward pass, where the engine draws one
transform per step and feeds it to the whole ensemble.

Example:

```python
settings = AttackSettings(iterations=50)
delta_inf, delta_2 = perturbations([resnet, vgg], x, y, settings, seed=0)
```
"""
from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import keras
import numpy as np
import tensorflow as tf

from keras_robust._validation import (
    check_choice,
    check_epsilon,
    check_fraction,
    check_positive,
    check_positive_int,
)
from keras_robust.attacks.common import Ensemble, as_logits_fn
from keras_robust.attacks.config import AttackConfig
from keras_robust.attacks.engine import run_attack
from keras_robust.attacks.objectives import OBJECTIVES

# The two attacks of eq. 6 with the paper's settings (Zhao et al.'s DI/TI/MI): the
# defaults of `AttackSettings`, of `enhance` and of the scoring functions.
LINF_ATTACK = AttackConfig(
    norm="linf", epsilon=8 / 255, step_size=2 / 255, steps=300, loss="logit",
    random_start=False, momentum=1.0, input_diversity=0.7, smoothing_kernel=5,
)
L2_ATTACK = LINF_ATTACK.replace(norm="l2", epsilon=1.0, step_size=0.025)


@dataclasses.dataclass(frozen=True)
class AttackSettings:
    """The settings of eq. 6 (defaults: the paper's, with Zhao et al.'s DI/TI/MI).

    Attributes:
        iterations: steps of each attack (the paper: 300).
        linf_epsilon: L-inf budget on [0, 1] pixels (0 disables the L-inf part).
        linf_step: L-inf step.
        l2_epsilon: L2 budget (0 disables the L2 part).
        l2_step: L2 step.
        decay: momentum mu.
        diversity_prob: probability of the input-diversity transform per step.
        smoothing_kernel: odd size of the Gaussian kernel (0 disables smoothing).
        random_start: start each attack from a random point of its ball
            (Zhao et al. start from x).
        loss: the objective ascended on the ensemble-mean logits: "logit"
            (-z_y, eq. 4 of the paper) or another untargeted objective of
            `keras_robust.attacks.objectives` ("ce", "cw", "dlr"). At 32x32
            cross-entropy transfers better than the logit loss (BUILD_NOTES,
            Issue 9); "logit" stays the default because it is the paper's.

    Example:

    >>> settings = AttackSettings(iterations=50)            # the paper's, 50 steps
    >>> linf_only = AttackSettings(iterations=50, l2_epsilon=0)
    >>> AttackSettings(iterations=50, loss="ce", smoothing_kernel=0).describe()
    'eq6 linf 8/255 step 2/255 + l2 1 step 0.025, 50 it, mu 1, DI p 0.7, TI 0, loss ce'
    """

    iterations: int = LINF_ATTACK.steps
    linf_epsilon: float = LINF_ATTACK.epsilon
    linf_step: float = LINF_ATTACK.step_size
    l2_epsilon: float = L2_ATTACK.epsilon
    l2_step: float = L2_ATTACK.step_size
    decay: float = LINF_ATTACK.momentum
    diversity_prob: float = LINF_ATTACK.input_diversity
    smoothing_kernel: int = LINF_ATTACK.smoothing_kernel
    random_start: bool = LINF_ATTACK.random_start
    loss: str = LINF_ATTACK.loss

    def __post_init__(self):
        check_positive_int(self.iterations, "iterations")
        check_choice(self.loss, OBJECTIVES, "loss")
        check_epsilon(self.linf_epsilon, "linf_epsilon", allow_zero=True, maximum=1.0)
        check_epsilon(self.l2_epsilon, "l2_epsilon", allow_zero=True, maximum=None)
        if self.linf_epsilon == 0 and self.l2_epsilon == 0:
            raise ValueError(
                "`linf_epsilon` and `l2_epsilon` are both 0: at least one perturbation is needed "
                "(the paper uses 8/255 and 1.0)."
            )
        if self.linf_epsilon:
            check_positive(self.linf_step, "linf_step")
        if self.l2_epsilon:
            check_positive(self.l2_step, "l2_step")
        if self.decay:
            check_positive(self.decay, "decay")
        check_fraction(self.diversity_prob, "diversity_prob")
        kernel = self.smoothing_kernel
        if isinstance(kernel, bool) or not isinstance(kernel, (int, np.integer)) or kernel < 0 or (
                kernel and kernel % 2 == 0):
            raise ValueError(
                f"`smoothing_kernel` must be 0 (off) or a positive odd size, got {kernel!r}."
            )

    def attack(self, norm: str) -> AttackConfig | None:
        """The `AttackConfig` of the `norm` ball ("linf" or "l2"), None when it is disabled.

        Args:
            norm: "linf" or "l2".

        Returns:
            An `AttackConfig`, or None when that ball's budget is 0.

        Example:

        >>> AttackSettings(iterations=3).attack("l2").epsilon
        1.0
        >>> AttackSettings(l2_epsilon=0).attack("l2") is None
        True
        """
        check_choice(norm, ("linf", "l2"), "norm")
        epsilon = self.linf_epsilon if norm == "linf" else self.l2_epsilon
        if not epsilon:
            return None
        return AttackConfig(
            norm=norm, epsilon=float(epsilon),
            step_size=float(self.linf_step if norm == "linf" else self.l2_step),
            steps=int(self.iterations), loss=self.loss, random_start=bool(self.random_start),
            momentum=float(self.decay) if self.decay else None,
            input_diversity=float(self.diversity_prob),
            smoothing_kernel=int(self.smoothing_kernel),
        )

    @property
    def linf_attack(self) -> AttackConfig | None:
        """The L-inf attack's `AttackConfig` (None when `linf_epsilon` is 0)."""
        return self.attack("linf")

    @property
    def l2_attack(self) -> AttackConfig | None:
        """The L2 attack's `AttackConfig` (None when `l2_epsilon` is 0)."""
        return self.attack("l2")

    def as_dict(self) -> dict[str, Any]:
        """The settings as plain JSON values."""
        return {k: (float(v) if isinstance(v, float) else v)
                for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "AttackSettings":
        """The settings that `as_dict` wrote, also from a file of an older version.

        Fields that the dict lacks take their defaults: a `plan.json` or a
        test-set file written before `loss` existed was crafted with the
        logit loss, the default, so it still matches `AttackSettings()`.

        Args:
            values: a dict of field names to values (`as_dict()`'s output).

        Returns:
            An `AttackSettings`.

        Raises:
            ValueError: a key that is not a field (a newer or foreign file).

        Example:

        >>> old = AttackSettings(iterations=50).as_dict()
        >>> del old["loss"]                                   # written by an older version
        >>> AttackSettings.from_dict(old) == AttackSettings(iterations=50)
        True
        """
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - fields)
        if unknown:
            raise ValueError(
                f"Unknown attack settings {unknown}; expected a subset of {sorted(fields)}.")
        return cls(**values)

    def describe(self) -> str:
        """A one-line summary, e.g. for the per-example details."""
        return (f"eq6 linf {self.linf_epsilon * 255:g}/255 step {self.linf_step * 255:g}/255 + "
                f"l2 {self.l2_epsilon:g} step {self.l2_step:g}, {self.iterations} it, "
                f"mu {self.decay:g}, DI p {self.diversity_prob:g}, TI {self.smoothing_kernel}, "
                f"loss {self.loss}")


def _one_ball(logits_fn, x, y, settings: AttackSettings, norm: str, seed: tf.Tensor) -> tf.Tensor:
    config = settings.attack(norm)
    if config is None:
        return tf.zeros_like(x)
    return run_attack(logits_fn, x, y, config, seed=seed).x_adv - x


def perturbation_graph(
    logits_fn, x: tf.Tensor, y: tf.Tensor, settings: AttackSettings, seed: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor]:
    """Eq. 6 inside a graph: `(delta_linf, delta_l2)` for float32 x in [0, 1].

    `seed` is an int64 [2] tensor; the two balls use independent streams
    folded from it. Each delta keeps `x + delta` in [0, 1]; a disabled ball
    gives zeros. Both perturbations start from `x` itself (not from each
    other); sum them with `combine`. This is the body `Crafter` traces into a
    `tf.function`; it also runs eagerly.

    Args:
        logits_fn: float32 images -> float32 logits, e.g.
            `as_logits_fn(Ensemble(models))` (the ensemble mean of eq. 5).
        x: float32 images [B, H, W, C] in [0, 1], with static H, W and C
            (input diversity and the smoothing kernel need them).
        y: int32 class indices [B] (the logit loss -z_y uses them).
        settings: an `AttackSettings`.
        seed: an int64 [2] stateless seed (anything `tf.cast` turns into one).

    Returns:
        `(delta_linf, delta_l2)`: float32 tensors shaped like `x`, with
        `||delta_linf||_inf <= settings.linf_epsilon` and `||delta_l2||_2 <=
        settings.l2_epsilon` per image.

    Example:

    >>> from keras_robust.attacks.common import as_logits_fn
    >>> model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
    ...                           keras.layers.Dense(10)])
    >>> x = tf.random.stateless_uniform([2, 8, 8, 3], [0, 1])
    >>> d_inf, d_2 = perturbation_graph(as_logits_fn(model), x, tf.constant([0, 1]),
    ...                                 AttackSettings(iterations=2), tf.constant([0, 0], tf.int64))
    >>> d_inf.shape, bool(tf.reduce_max(tf.abs(d_inf)) <= 8 / 255 + 1e-6)
    (TensorShape([2, 8, 8, 3]), True)
    """
    seed = tf.cast(seed, tf.int64)
    delta_inf = _one_ball(logits_fn, x, y, settings, "linf",
                          tf.random.experimental.stateless_fold_in(seed, 1))
    delta_2 = _one_ball(logits_fn, x, y, settings, "l2",
                        tf.random.experimental.stateless_fold_in(seed, 2))
    return delta_inf, delta_2


def combine(x: Any, delta_inf: Any, delta_2: Any) -> Any:
    """`clip(x + delta_inf + delta_2, 0, 1)`: the paper's summed perturbation.

    Args:
        x: float images in [0, 1] (array or tensor).
        delta_inf: the L-inf perturbation.
        delta_2: the L2 perturbation.

    Returns:
        The adversarial images (float32 array, or a tensor for tensor input).

    Example:

    >>> model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
    ...                           keras.layers.Dense(10)])
    >>> x = np.random.default_rng(0).random((4, 8, 8, 3), "float32")
    >>> d_inf, d_2 = perturbations(model, x, [0, 1, 2, 3], AttackSettings(iterations=2))
    >>> x_adv = combine(x, d_inf, d_2)
    >>> x_adv.dtype, bool(x_adv.min() >= 0 and x_adv.max() <= 1)
    (dtype('float32'), True)
    >>> tf.is_tensor(combine(tf.constant(x), d_inf, d_2))         # tensors in, a tensor out
    True
    """
    if tf.is_tensor(x):
        return tf.clip_by_value(x + delta_inf + delta_2, 0.0, 1.0)
    return np.clip(np.asarray(x) + delta_inf + delta_2, 0.0, 1.0).astype(np.float32)


def as_surrogate_list(surrogates: Any) -> list[Any]:
    """Surrogates as a non-empty list of callables (a model, a list, or an `Ensemble`).

    A list or tuple is copied into a list, a single callable becomes a list
    of one, and an `Ensemble` gives its `models`. Eq. 6 averages the
    members' logits with equal weights, so a weighted `Ensemble` is refused
    rather than attacked unweighted.

    Args:
        surrogates: a Keras model (or any callable mapping [0, 1] images to
            logits), a list or tuple of them, or an `Ensemble`.

    Returns:
        A new list of the callables.

    Raises:
        TypeError: `surrogates` (or one of its items) is not callable.
        ValueError: the list is empty, or an `Ensemble` with unequal weights.

    Example:

    >>> model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
    ...                           keras.layers.Dense(10)])
    >>> len(as_surrogate_list(model)), len(as_surrogate_list(Ensemble([model, model])))
    (1, 2)
    """
    if isinstance(surrogates, Ensemble):
        if max(surrogates.weights) - min(surrogates.weights) > 1e-9:
            raise ValueError(
                "Eq. 6 averages the surrogates' logits with equal weights; got an Ensemble "
                f"weighted {surrogates.weights}. Pass the models (or an unweighted Ensemble).")
        return list(surrogates.models)
    if isinstance(surrogates, (list, tuple)):
        models = list(surrogates)
    elif callable(surrogates):
        models = [surrogates]
    else:
        raise TypeError(
            "`surrogates` must be a Keras model, a list of models or an Ensemble mapping [0, 1] "
            f"images to logits, got {type(surrogates).__name__}."
        )
    if not models:
        raise ValueError("`surrogates` is empty; the adversarial part needs at least one model.")
    for model in models:
        if not callable(model):
            raise TypeError(f"Every surrogate must be a callable model, got {type(model).__name__}.")
    return models


def surrogate_names(surrogates: Sequence[Any]) -> list[str]:
    """The surrogates' names (Keras model names, else the type name).

    Each name is the object's `name` attribute, else the name of its type
    (so a plain Python function is called "function", not its `__name__`).

    Args:
        surrogates: a list of surrogate models (see `as_surrogate_list`).

    Returns:
        A list of str, one per surrogate, in order.

    Example:

    >>> model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
    ...                           keras.layers.Dense(10)], name="linear")
    >>> surrogate_names([model, lambda images: images])
    ['linear', 'function']
    """
    return [str(getattr(m, "name", type(m).__name__)) for m in surrogates]


class Crafter:
    """Computes eq. 6 perturbations batch by batch, on every replica of a strategy.

    A batch is split over the replicas of `strategy` (`strategy.run`), each
    replica with its own seed; with one replica it is one `tf.function` call.
    The result of a batch depends on (seed, batch, replica count) only.
    Replica chunks are padded (with copies of their first image, dropped
    afterwards) to `ceil(batch_size / replicas)` images, so the distributed
    function is traced once. Mathematically padding changes nothing (every
    per-image computation is independent and the per-batch random draws do
    not depend on the batch size); in floating point, kernels may round
    differently for other batch shapes, which is why results are reproducible
    for a fixed (batch size, replica count), not across them.

    Args:
        surrogates: a model, a list of models or an `Ensemble`.
        settings: an `AttackSettings`.
        strategy: a `tf.distribute.Strategy`; default the current one.
        batch_size: the largest batch the caller passes (sets the padding).

    Example:

    >>> m1, m2 = [keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
    ...                             keras.layers.Dense(10)]) for _ in range(2)]
    >>> x = np.random.default_rng(0).random((4, 8, 8, 3), "float32")
    >>> y = np.array([0, 1, 2, 3])
    >>> crafter = Crafter([m1, m2], AttackSettings(iterations=2), batch_size=4)
    >>> delta_inf, delta_2 = crafter(x, y, seed=0)
    >>> crafter.replicas, delta_inf.shape, delta_2.dtype
    (1, (4, 8, 8, 3), dtype('float32'))
    >>> bool(np.array_equal(crafter(x, y, seed=0)[0], delta_inf))    # same seed, same result
    True
    """

    def __init__(self, surrogates: Any, settings: AttackSettings,
                 strategy: tf.distribute.Strategy | None = None, batch_size: int = 128):
        self.surrogates = as_surrogate_list(surrogates)
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.settings = settings
        self.strategy = strategy or tf.distribute.get_strategy()
        self._logits_fn = as_logits_fn(Ensemble(self.surrogates))
        self._single: dict[tuple[int, ...], Any] = {}
        self._distributed: dict[tuple[int, ...], Any] = {}

    @property
    def replicas(self) -> int:
        """Replicas a batch is split over."""
        if isinstance(self.strategy, tf.distribute.MultiWorkerMirroredStrategy):
            return 1  # workers split shards, not batches; see `enhance`.
        return int(self.strategy.num_replicas_in_sync)

    def _craft(self, x, y, seed):
        return perturbation_graph(self._logits_fn, x, y, self.settings, seed)

    def __call__(self, x: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Perturbations for float32 images x in [0, 1] and int labels y.

        Returns:
            `(delta_linf, delta_l2)` as float32 NumPy arrays shaped like x.
        """
        x = np.ascontiguousarray(x, np.float32)
        y = np.asarray(y, np.int32)
        seed_pair = np.asarray([seed % (2**63), 0], np.int64)
        if x.ndim != 4:
            raise ValueError(f"Expected images [batch, H, W, C], got shape {x.shape}.")
        replicas = self.replicas
        if replicas == 1 or len(x) < replicas:
            function = self._single.get(x.shape[1:])
            if function is None:
                # Static H, W, C (input diversity and the smoothing kernel need them),
                # any batch size: one trace per image shape.
                signature = [tf.TensorSpec([None, *x.shape[1:]], tf.float32),
                             tf.TensorSpec([None], tf.int32), tf.TensorSpec([2], tf.int64)]
                function = self._single[x.shape[1:]] = tf.function(
                    self._craft, input_signature=signature, autograph=False)
            delta_inf, delta_2 = function(tf.constant(x), tf.constant(y), tf.constant(seed_pair))
            return delta_inf.numpy(), delta_2.numpy()
        return self._run_distributed(x, y, seed_pair, replicas)

    def _run_distributed(self, x, y, seed_pair, replicas):
        strategy = self.strategy
        bounds = np.linspace(0, len(x), replicas + 1).astype(int)
        sizes = np.diff(bounds)
        padded = max(-(-max(self.batch_size, len(x)) // replicas), int(sizes.max()))
        chunks = []
        for a, b in zip(bounds[:-1], bounds[1:]):
            pad = [a] * (padded - (b - a))
            chunks.append((np.concatenate([x[a:b], x[pad]]), np.concatenate([y[a:b], y[pad]])))

        def distribute(make):
            return strategy.experimental_distribute_values_from_function(
                lambda context: make(context.replica_id_in_sync_group))

        xs = distribute(lambda r: tf.constant(chunks[r][0]))
        ys = distribute(lambda r: tf.constant(chunks[r][1]))
        seeds = distribute(lambda r: tf.constant([seed_pair[0], r], tf.int64))
        function = self._distributed.get(x.shape[1:])
        if function is None:
            function = self._distributed[x.shape[1:]] = tf.function(
                lambda a, b, c: strategy.run(self._craft, args=(a, b, c)), autograph=False,
                reduce_retracing=True)
        delta_inf, delta_2 = function(xs, ys, seeds)
        gather = strategy.experimental_local_results
        return (np.concatenate([t.numpy()[:n] for t, n in zip(gather(delta_inf), sizes)]),
                np.concatenate([t.numpy()[:n] for t, n in zip(gather(delta_2), sizes)]))


def perturbations(
    surrogates: Any,
    images: Any,
    labels: Any,
    settings: AttackSettings | None = None,
    *,
    seed: int = 0,
    batch_size: int = 128,
    strategy: tf.distribute.Strategy | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The two perturbations of eq. 6, separately: `(delta_linf, delta_l2)`.

    The enhanced image is `clip(x + delta_linf + delta_l2, 0, 1)` (`combine`).
    `||delta_linf||_inf <= settings.linf_epsilon` and `||delta_l2||_2 <=
    settings.l2_epsilon` per image; each keeps `x + delta` in [0, 1].

    Args:
        surrogates: a Keras model, a list of models or an `Ensemble` mapping
            [0, 1] images to logits.
        images: uint8 (0..255) or float [0, 1] NHWC images.
        labels: class indices [N].
        settings: an `AttackSettings` (default: the paper's).
        seed: batch `b` uses the seed `attack_seed(seed, 0, b)`.
        batch_size: images per attack batch.
        strategy: split each batch over this strategy's replicas.

    Returns:
        Two float32 arrays shaped like `images`.

    Example:

    >>> m1, m2 = [keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
    ...                             keras.layers.Dense(10)]) for _ in range(2)]
    >>> x = np.random.default_rng(0).integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
    >>> y = np.array([0, 1, 2, 3])
    >>> d_inf, d_2 = perturbations([m1, m2], x, y, AttackSettings(iterations=2), batch_size=2)
    >>> d_inf.shape, d_inf.dtype
    ((4, 8, 8, 3), dtype('float32'))
    >>> float(abs(d_inf).max()) <= 8 / 255 + 1e-6
    True
    >>> bool(np.sqrt(np.square(d_2).reshape(4, -1).sum(axis=1)).max() <= 1.0 + 1e-5)
    True
    """
    from keras_robust.datacentric import _inputs
    from keras_robust.datacentric.plan import attack_seed

    x, _ = _inputs.float_images(images)
    y = _inputs.sparse_labels(labels, len(x))
    batch_size = check_positive_int(batch_size, "batch_size")
    crafter = Crafter(surrogates, settings or AttackSettings(), strategy, batch_size)
    _inputs.check_surrogates(crafter.surrogates, x.shape[1:], y)
    outputs_inf, outputs_2 = [], []
    for batch, start in enumerate(range(0, len(x), batch_size)):
        d_inf, d_2 = crafter(x[start:start + batch_size], y[start:start + batch_size],
                             attack_seed(int(seed), 0, batch))
        outputs_inf.append(d_inf)
        outputs_2.append(d_2)
    return np.concatenate(outputs_inf), np.concatenate(outputs_2)


def model_fingerprint(model: Any) -> str | None:
    """A SHA-256 of a Keras model's weights (None for other callables).

    Two different model objects with the same weights (a model loaded twice)
    have the same fingerprint; used to keep training and test ensembles apart.

    Args:
        model: a Keras model or layer (anything else gives None).

    Returns:
        The hex digest, or None.

    Example:

    >>> import os, tempfile
    >>> model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
    ...                           keras.layers.Dense(10)])
    >>> path = os.path.join(tempfile.mkdtemp(), "model.keras")
    >>> model.save(path)
    >>> model_fingerprint(model) == model_fingerprint(keras.saving.load_model(path))
    True
    >>> other = keras.models.clone_model(model)                   # new weights
    >>> model_fingerprint(other) == model_fingerprint(model), model_fingerprint(len)
    (False, None)
    """
    import hashlib

    if not isinstance(model, (keras.Model, keras.layers.Layer)):
        return None
    digest = hashlib.sha256()
    for weight in model.weights:
        digest.update(np.ascontiguousarray(np.asarray(weight.numpy())).tobytes())
    return digest.hexdigest()


__all__ = [
    "AttackSettings", "Crafter", "as_surrogate_list", "combine", "model_fingerprint",
    "perturbation_graph", "perturbations", "surrogate_names",
]
