"""The adversarial part: transferable perturbations by eq. 6 of the paper.

For each image x, two perturbations are computed independently from x with
the library's attack engine (`keras_robust.attacks.engine.run_attack`)
on the ensemble-mean logits of the surrogates (eq. 5): an L-inf one (eps
8/255, step 2/255) and an L2 one (eps 1.0, step 0.025), each with

- input diversity with probability p (eq. 3),
- the logit loss -z_y on the ensemble-mean logits (eq. 4; the configs' `loss`
  swaps in another objective of `keras_robust.attacks.objectives`; at 32x32
  cross-entropy transfers better, "logit" stays the default as the paper's),
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
config = Eq6Config().replace(steps=50)
delta_inf, delta_2 = perturbations([resnet, vgg], x, y, config, seed=0)
```
"""
from __future__ import annotations

import dataclasses
import warnings
import weakref
from typing import Any, Sequence

import keras
import numpy as np
import tensorflow as tf

from keras_robust._random import fold_seed
from keras_robust._validation import check_epsilon, check_positive_int
from keras_robust.attacks.common import Ensemble, as_logits_fn
from keras_robust.attacks.config import AttackConfig
from keras_robust.attacks.engine import run_attack

# The two attacks of eq. 6 with the paper's settings (Zhao et al.'s DI/TI/MI): the
# defaults of `Eq6Config`, and so of `enhance` and of the scoring functions.
LINF_ATTACK = AttackConfig(
    norm="linf", epsilon=8 / 255, step_size=2 / 255, steps=300, loss="logit",
    random_start=False, momentum=1.0, input_diversity=0.7, smoothing_kernel=5,
)
L2_ATTACK = LINF_ATTACK.replace(norm="l2", epsilon=1.0, step_size=0.025)


# The paper's attack keywords before they were `AttackConfig` fields: what old
# `plan.json` files, test-set files and the deprecated keywords of `enhance` hold.
LEGACY_FIELDS = ("iterations", "linf_epsilon", "linf_step", "l2_epsilon", "l2_step", "decay",
                 "diversity_prob", "smoothing_kernel", "random_start", "loss")
_LEGACY_SHARED = (("iterations", "steps"), ("decay", "momentum"),
                  ("diversity_prob", "input_diversity"), ("smoothing_kernel", "smoothing_kernel"),
                  ("random_start", "random_start"), ("loss", "loss"))


@dataclasses.dataclass(frozen=True)
class Eq6Config:
    """The two attacks of eq. 6: an L-inf and an L2 `AttackConfig` (defaults: the paper's).

    Each ball is an `keras_robust.attacks.AttackConfig` (norm, epsilon, step,
    steps, loss, momentum, input diversity, smoothing kernel, random start),
    or None to leave that perturbation out. The defaults are the paper's with
    Zhao et al.'s DI/TI/MI (`LINF_ATTACK`, `L2_ATTACK`). `replace` changes a
    setting of both balls at once.

    Args:
        linf: the L-inf attack (its `norm` must be "linf"), or None.
        l2: the L2 attack (its `norm` must be "l2"), or None.

    Raises:
        ValueError: both balls None, a ball of the wrong norm, or a setting
            eq. 6 does not use (no budget, a target, restarts, early stop).

    Example:

    >>> paper = Eq6Config()
    >>> paper.linf.epsilon == 8 / 255, paper.l2.step_size
    (True, 0.025)
    >>> fast = paper.replace(steps=50, loss="ce")           # both balls
    >>> fast.linf.steps, fast.l2.loss
    (50, 'ce')
    >>> paper.replace(l2=None).l2 is None                   # the L-inf perturbation only
    True
    >>> Eq6Config.from_config(fast.get_config()) == fast
    True
    """

    linf: AttackConfig | None = LINF_ATTACK
    l2: AttackConfig | None = L2_ATTACK

    def __post_init__(self) -> None:
        if self.linf is None and self.l2 is None:
            raise ValueError("Eq. 6 needs at least one perturbation: `linf` and `l2` are both None "
                             "(both 0; the paper uses epsilon 8/255 and 1.0).")
        for norm, config in self.balls():
            if not isinstance(config, AttackConfig):
                raise TypeError(f"`{norm}` must be an AttackConfig or None, got "
                                f"{type(config).__name__}.")
            if config.norm != norm:
                raise ValueError(f"`{norm}` must be an AttackConfig of norm {norm!r}, got "
                                 f"norm={config.norm!r}.")
            if config.epsilon is None or config.target is not None or config.restarts != 1 or (
                    config.early_stop):
                raise ValueError(
                    f"The `{norm}` attack of eq. 6 needs an epsilon and no target, restarts or "
                    f"early stop; got {config}.")

    def balls(self) -> list[tuple[str, AttackConfig]]:
        """The enabled balls as (norm, config) pairs, L-inf first.

        Returns:
            A list of one or two pairs.

        Example:

        >>> [norm for norm, _ in Eq6Config(l2=None).balls()]
        ['linf']
        """
        return [(norm, c) for norm, c in (("linf", self.linf), ("l2", self.l2)) if c is not None]

    def replace(self, **changes: Any) -> "Eq6Config":
        """A copy with `changes`: `linf` / `l2` replace a ball, other `AttackConfig` fields both.

        Args:
            **changes: `linf=` or `l2=` (an `AttackConfig` or None), and any
                `AttackConfig` field (e.g. `steps=50`), applied to every
                enabled ball.

        Returns:
            A new `Eq6Config`.

        Example:

        >>> Eq6Config().replace(steps=3, smoothing_kernel=0).l2.smoothing_kernel
        0
        """
        balls = {norm: changes.pop(norm, getattr(self, norm)) for norm in ("linf", "l2")}
        if changes:
            balls = {norm: None if c is None else c.replace(**changes) for norm, c in balls.items()}
        return Eq6Config(**balls)

    def get_config(self) -> dict:
        """`{"linf": ..., "l2": ...}`: each ball's `AttackConfig.get_config()`, or None.

        Returns:
            A JSON-safe dict (`from_config` rebuilds the config).

        Example:

        >>> sorted(Eq6Config().get_config())
        ['l2', 'linf']
        """
        return {norm: None if c is None else c.get_config()
                for norm, c in (("linf", self.linf), ("l2", self.l2))}

    @classmethod
    def from_config(cls, config: dict) -> "Eq6Config":
        """Rebuilds a config from `get_config()`, or from the settings of an older file.

        `plan.json` and test-set files written before eq. 6 used
        `AttackConfig` hold the keywords `iterations`, `linf_epsilon`,
        `linf_step`, `l2_epsilon`, `l2_step`, `decay`, `diversity_prob`,
        `smoothing_kernel`, `random_start` and `loss`; a missing one takes
        the paper's value (files from before `loss` existed used the logit
        loss, the default).

        Args:
            config: a dict of `get_config()`'s form, or of the older form.

        Returns:
            An `Eq6Config`.

        Raises:
            ValueError: a key of neither form.

        Example:

        >>> old = {"iterations": 50, "linf_epsilon": 8 / 255, "linf_step": 2 / 255,
        ...        "l2_epsilon": 0.0, "l2_step": 0.025, "decay": 1.0, "diversity_prob": 0.7,
        ...        "smoothing_kernel": 5, "random_start": False}      # an older plan.json
        >>> Eq6Config.from_config(old) == Eq6Config(l2=None).replace(steps=50)
        True
        """
        if set(config) == {"linf", "l2"}:
            return cls(**{norm: None if c is None else AttackConfig.from_config(c)
                          for norm, c in config.items()})
        unknown = sorted(set(config) - set(LEGACY_FIELDS))
        if unknown:
            raise ValueError(f"Unknown attack settings {unknown}; expected {{'linf', 'l2'}} or a "
                             f"subset of {list(LEGACY_FIELDS)}.")
        shared = {new: config[old] for old, new in _LEGACY_SHARED if old in config}
        if "momentum" in shared:
            shared["momentum"] = float(shared["momentum"]) if shared["momentum"] else None
        balls = {}
        for norm, paper in (("linf", LINF_ATTACK), ("l2", L2_ATTACK)):
            epsilon = config.get(f"{norm}_epsilon", paper.epsilon)
            check_epsilon(epsilon, f"{norm}_epsilon", allow_zero=True,
                          maximum=1.0 if norm == "linf" else None)
            step = float(config.get(f"{norm}_step", paper.step_size))
            balls[norm] = paper.replace(
                epsilon=float(epsilon), step_size=step, **shared) if epsilon else None
        return cls(**balls)

    def describe(self) -> str:
        """A one-line summary, e.g. for the per-example details.

        Returns:
            A str naming each ball's budget and step and the shared settings.

        Example:

        >>> Eq6Config().replace(steps=50, loss="ce", smoothing_kernel=0).describe()
        'eq6 linf 8/255 step 2/255 + l2 1 step 0.025, 50 it, mu 1, DI p 0.7, TI 0, loss ce'
        """
        parts = [f"linf {c.epsilon * 255:g}/255 step {c.step_size * 255:g}/255" if norm == "linf"
                 else f"l2 {c.epsilon:g} step {c.step_size:g}" for norm, c in self.balls()]
        first = self.balls()[0][1]
        return (f"eq6 {' + '.join(parts)}, {first.steps} it, mu {first.momentum or 0:g}, "
                f"DI p {first.input_diversity:g}, TI {first.smoothing_kernel}, loss {first.loss}")


def as_eq6_config(attack: Any) -> Eq6Config:
    """The eq. 6 config of `attack`: None (the paper's), an `Eq6Config` or one `AttackConfig`.

    A single `AttackConfig` is that ball alone (the other perturbation is
    left out).

    Args:
        attack: None, an `Eq6Config` or an `AttackConfig` of norm "linf" or "l2".

    Returns:
        An `Eq6Config`.

    Raises:
        TypeError: anything else.

    Example:

    >>> as_eq6_config(L2_ATTACK.replace(steps=3)).linf is None
    True
    """
    if attack is None:
        return Eq6Config()
    if isinstance(attack, Eq6Config):
        return attack
    if isinstance(attack, AttackConfig):
        return Eq6Config(**{"linf": None, "l2": None, attack.norm: attack})
    raise TypeError(f"`attack` must be an Eq6Config, an AttackConfig or None, got "
                    f"{type(attack).__name__}.")


class AttackSettings:
    """Deprecated: the eq. 6 settings by their former keywords; use `Eq6Config`.

    `AttackSettings(**settings)` returns the `Eq6Config` of those settings,
    and `AttackSettings.from_dict(values)` is `Eq6Config.from_config(values)`;
    both warn (`DeprecationWarning`). The former keywords are `iterations`,
    `linf_epsilon`, `linf_step`, `l2_epsilon`, `l2_step`, `decay`,
    `diversity_prob`, `smoothing_kernel`, `random_start` and `loss` (see
    `Eq6Config.from_config`).

    Example:

    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore", DeprecationWarning)
    ...     old = AttackSettings(iterations=3, l2_epsilon=0)
    >>> old == Eq6Config(l2=None).replace(steps=3)
    True
    """

    _MESSAGE = ("keras_robust.datacentric.AttackSettings is deprecated; use Eq6Config (two "
                "keras_robust.attacks.AttackConfig), e.g. Eq6Config().replace(steps=50).")

    def __new__(cls, **settings: Any) -> Eq6Config:  # type: ignore[misc]
        warnings.warn(cls._MESSAGE, DeprecationWarning, stacklevel=2)
        return Eq6Config.from_config(settings)

    @classmethod
    def from_dict(cls, values: dict) -> Eq6Config:
        """Deprecated: `Eq6Config.from_config(values)`.

        Args:
            values: settings of either form (see `Eq6Config.from_config`).

        Returns:
            An `Eq6Config`.

        Example:

        >>> import warnings
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore", DeprecationWarning)
        ...     AttackSettings.from_dict({"iterations": 3}) == Eq6Config().replace(steps=3)
        True
        """
        warnings.warn(cls._MESSAGE, DeprecationWarning, stacklevel=2)
        return Eq6Config.from_config(values)


def _one_ball(logits_fn, x, y, config: AttackConfig | None, seed: tf.Tensor) -> tf.Tensor:
    if config is None:
        return tf.zeros_like(x)
    return run_attack(logits_fn, x, y, config, seed=seed).x_adv - x


def perturbation_graph(
    logits_fn, x: tf.Tensor, y: tf.Tensor, config: Eq6Config, seed: tf.Tensor
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
        config: an `Eq6Config`.
        seed: an int64 [2] stateless seed (anything `tf.cast` turns into one).

    Returns:
        `(delta_linf, delta_l2)`: float32 tensors shaped like `x`, with
        `||delta_linf||_inf <= config.linf.epsilon` and `||delta_l2||_2 <=
        config.l2.epsilon` per image.

    Example:

    >>> from keras_robust.attacks.common import as_logits_fn
    >>> model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
    ...                           keras.layers.Dense(10)])
    >>> x = tf.random.stateless_uniform([2, 8, 8, 3], [0, 1])
    >>> d_inf, d_2 = perturbation_graph(as_logits_fn(model), x, tf.constant([0, 1]),
    ...                                 Eq6Config().replace(steps=2), tf.constant([0, 0], tf.int64))
    >>> d_inf.shape, bool(tf.reduce_max(tf.abs(d_inf)) <= 8 / 255 + 1e-6)
    (TensorShape([2, 8, 8, 3]), True)
    """
    delta_inf = _one_ball(logits_fn, x, y, config.linf, fold_seed(seed, 1))
    delta_2 = _one_ball(logits_fn, x, y, config.l2, fold_seed(seed, 2))
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
    >>> d_inf, d_2 = perturbations(model, x, [0, 1, 2, 3], Eq6Config().replace(steps=2))
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


class _CraftGraph:
    """Eq. 6 for one ensemble (held weakly) and one config: what one `tf.function` runs.

    A callable object rather than a bound method, so that the compiled
    function a cache keeps does not keep the surrogates alive (as
    `keras_robust.attacks.engine.compiled_attack`'s functions do not).
    """

    def __init__(self, models: Sequence[Any], config: Eq6Config, weak: bool):
        self.models = [weakref.ref(m) for m in models] if weak else list(models)
        self.weak = weak
        self.config = config

    def __call__(self, x, y, seed):
        models = [ref() for ref in self.models] if self.weak else self.models
        return perturbation_graph(as_logits_fn(Ensemble(models)), x, y, self.config, seed)


# Compiled single-replica eq. 6 functions, per first surrogate (weakly: freed with it), then
# per (the surrogates, weakly; the config; the image shape). `perturbations` and every
# `Crafter` of the same surrogates and config share one trace.
_COMPILED: "weakref.WeakKeyDictionary[Any, dict]" = weakref.WeakKeyDictionary()


def _compile(models: Sequence[Any], config: Eq6Config, image_shape: tuple[int, ...]) -> Any:
    """The `tf.function` of eq. 6 for these surrogates, config and image shape (cached)."""
    # Static H, W, C (input diversity and the smoothing kernel need them), any batch size.
    signature = [tf.TensorSpec([None, *image_shape], tf.float32),
                 tf.TensorSpec([None], tf.int32), tf.TensorSpec([2], tf.int64)]

    def make(weak):
        return tf.function(_CraftGraph(models, config, weak), input_signature=signature,
                           autograph=False)

    try:
        key = (tuple(weakref.ref(m) for m in models), config, tuple(image_shape))
        per_model = _COMPILED.setdefault(models[0], {})
        hash(key)
    except TypeError:  # a surrogate that cannot be weakly referenced, or an unhashable config
        return make(weak=False)
    function = per_model.get(key)
    if function is None:
        function = per_model[key] = make(weak=True)
    return function


def clear_compiled() -> None:
    """Forgets every compiled eq. 6 function (benchmarks time a fresh trace with it).

    Example:

    >>> clear_compiled()
    """
    _COMPILED.clear()


class Crafter:
    """Computes eq. 6 perturbations batch by batch, on every replica of a strategy.

    A batch is split over the replicas of `strategy` (`strategy.run`), each
    replica with its own seed; with one replica it is one `tf.function` call.
    The result of a batch depends on (seed, batch, replica count) only.
    Replica chunks are padded (with copies of their first image, dropped
    afterwards) to `ceil(batch_size / replicas)` images, so the distributed
    function is traced once. The single-replica function is compiled once per
    surrogates, config and image shape, and shared by every `Crafter` (and
    `perturbations` call) of the same surrogates and config. Mathematically
    padding changes nothing (every per-image computation is independent and
    the per-batch random draws do not depend on the batch size); in floating
    point, kernels may round
    differently for other batch shapes, which is why results are reproducible
    for a fixed (batch size, replica count), not across them.

    Args:
        surrogates: a model, a list of models or an `Ensemble`.
        config: an `Eq6Config` (or one `AttackConfig`, see `as_eq6_config`).
        strategy: a `tf.distribute.Strategy`; default the current one.
        batch_size: the largest batch the caller passes (sets the padding).

    Example:

    >>> m1, m2 = [keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
    ...                             keras.layers.Dense(10)]) for _ in range(2)]
    >>> x = np.random.default_rng(0).random((4, 8, 8, 3), "float32")
    >>> y = np.array([0, 1, 2, 3])
    >>> crafter = Crafter([m1, m2], Eq6Config().replace(steps=2), batch_size=4)
    >>> delta_inf, delta_2 = crafter(x, y, seed=0)
    >>> crafter.replicas, delta_inf.shape, delta_2.dtype
    (1, (4, 8, 8, 3), dtype('float32'))
    >>> bool(np.array_equal(crafter(x, y, seed=0)[0], delta_inf))    # same seed, same result
    True
    """

    def __init__(self, surrogates: Any, config: Eq6Config | AttackConfig | None = None,
                 strategy: tf.distribute.Strategy | None = None, batch_size: int = 128):
        self.surrogates = as_surrogate_list(surrogates)
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.config = as_eq6_config(config)
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
        return perturbation_graph(self._logits_fn, x, y, self.config, seed)

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
                function = self._single[x.shape[1:]] = _compile(self.surrogates, self.config,
                                                                x.shape[1:])
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
    config: Eq6Config | AttackConfig | None = None,
    *,
    seed: int = 0,
    batch_size: int = 128,
    strategy: tf.distribute.Strategy | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The two perturbations of eq. 6, separately: `(delta_linf, delta_l2)`.

    The enhanced image is `clip(x + delta_linf + delta_l2, 0, 1)` (`combine`).
    `||delta_linf||_inf <= config.linf.epsilon` and `||delta_l2||_2 <=
    config.l2.epsilon` per image; each keeps `x + delta` in [0, 1]. The
    attack is compiled once per surrogates, config and image shape: a second
    call on the same surrogates does not trace it again.

    Args:
        surrogates: a Keras model, a list of models or an `Ensemble` mapping
            [0, 1] images to logits.
        images: uint8 (0..255) or float [0, 1] NHWC images.
        labels: class indices [N].
        config: an `Eq6Config` (default: the paper's), or one `AttackConfig`
            for that ball alone (see `as_eq6_config`).
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
    >>> d_inf, d_2 = perturbations([m1, m2], x, y, Eq6Config().replace(steps=2), batch_size=2)
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
    crafter = Crafter(surrogates, config, strategy, batch_size)
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
    "AttackSettings", "Crafter", "Eq6Config", "L2_ATTACK", "LINF_ATTACK", "as_eq6_config",
    "as_surrogate_list", "clear_compiled", "combine", "model_fingerprint", "perturbation_graph",
    "perturbations", "surrogate_names",
]
