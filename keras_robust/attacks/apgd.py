"""Auto-PGD (Croce & Hein 2020), the first attacks of AutoAttack.

"Reliable evaluation of adversarial robustness with an ensemble of diverse
parameter-free attacks" (ICML 2020). APGD is PGD without a step-size to tune:

- the step starts at 2 * epsilon and is halved, per sample, at checkpoints
  w_j = p_j * N (p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03,
  0.06)) when, since the last checkpoint, at most (the authors' code; fewer
  than, the paper) rho * (w_j - w_{j-1}) steps increased the objective, or
  when neither the step nor the best objective changed since the last
  checkpoint; a halving restarts that sample from its best point;
- each step is a momentum step, x_{k+1} = P(x_k + a (z_{k+1} - x_k) +
  (1 - a)(x_k - x_{k-1})), z_{k+1} = P(x_k + eta sign(grad)) (L-inf) or
  P(x_k + eta grad / ||grad||) (L2), with a = 0.75 (1 for the first step);
- per sample it returns an adversarial example if any iterate was one (the
  successful iterate of highest objective), else the point of highest
  objective.

Where the authors' code (fra31/auto-attack, `autopgd_base.py`,
`attack_single_run`) departs from the paper, this module follows the code by
default (`rule="reference"`), so that its AutoAttack figure is comparable
with published ones, and offers the paper's reading as `rule="paper"`:
(1) the code halves the step when the objective rose in *at most* rho *
(w_j - w_{j-1}) steps of the interval (`<=`), the paper when it rose in
*fewer* (`<`); (2) the code compares the first step's objective with 0 (its
`loss_steps[-1]`, a row of zeros), so a first step of negative DLR never
counts as a rise, the paper with the objective at the start point f(x^(0)).
Both differences matter only for the DLR losses and a rise count exactly at
the threshold; CE is never negative. (3) Under either rule the successful
iterate returned is the one of highest objective, where the code keeps the
last one: which image is returned changes, whether a sample is broken does
not, so robust accuracy is the same. Everything else (the checkpoints,
2 * eps, the momentum, condition 2, the restart from the best point with its
gradient, the L-inf start) is the code's; tests/attacks/test_apgd.py
compares the best objective after 1 to 23 steps with a NumPy port of
`attack_single_run` (tests/reference_autoattack.py, whose switches give
either rule) and finds them equal to 1e-5 under each rule, and different
across rules (the DLR losses).

APGD-CE is `apgd(..., loss="ce")`; APGD-DLR is `loss="dlr"`; AutoAttack's
APGD-T is `apgd_targeted` (the targeted DLR loss toward each of the k most
likely other classes in turn). Everything runs on whole batches inside one
`tf.function`; the checkpoints are fixed from `steps` before tracing, and the
per-sample decisions are tensor masks inside a `tf.while_loop` (its body ten
unrolled iterations, see `_common.unrolled_loop`).

Restarts (and APGD-T's targets) run only on the samples no earlier run has
broken, as AutoAttack does: the batch is compacted with `tf.gather`, so later
runs cost little on a weak model. With `jit_compile=True` shapes must stay
static, so every run then attacks the whole batch and the results are merged
with masks.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import tensorflow as tf

from keras_robust.attacks.common import (
    LogitsFn,
    as_logits_fn,
    as_seed,
    check_early_stop,
    fold_seed,
    normalize,
    per_sample,
    project,
    random_normal,
    random_uniform,
    label_indices,
    step_standing,
    top_other_classes,
    unrolled_loop,
    validate_common,
)
from keras_robust.attacks.config import APGDConfig, APGDTargetedConfig, build_config
from keras_robust.attacks.engine import compiled_attack
from keras_robust.attacks.objectives import objective
from keras_robust.attacks.targets import check_target, select_target



def checkpoints(steps: int) -> list[tuple[int, int]]:
    """APGD's checkpoints for `steps` iterations as (iteration index, interval length).

    The integer form of p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j - p_{j-1}
    - 0.03, 0.06): the first interval is max(int(0.22 N), 1) iterations, each
    next one max(int(0.03 N), 1) shorter, never shorter than max(int(0.06 N), 1)
    (this is how the authors' code rounds; for N = 100 the checkpoints are at
    22, 41, 57, 70, 80, 87, 93, 99). A checkpoint at iteration index i is
    evaluated after the i-th step (0-based), i.e. at w_j = i + 1.

    Example:

    >>> [i + 1 for i, _ in checkpoints(100)]
    [22, 41, 57, 70, 80, 87, 93, 99]
    """
    interval = max(int(0.22 * steps), 1)
    shrink = max(int(0.03 * steps), 1)
    shortest = max(int(0.06 * steps), 1)
    out, position = [], 0
    while position + interval <= steps:
        position += interval
        out.append((position - 1, interval))
        interval = max(interval - shrink, shortest)
    return out


class APGDResult(NamedTuple):
    """One APGD run on a batch.

    Attributes:
        x_found: per sample, the successful iterate of highest objective
            (meaningful where `found`).
        found: whether any iterate was adversarial.
        x_best: the iterate of highest objective.
        best_objective: its objective.
    """

    x_found: tf.Tensor
    found: tf.Tensor
    x_best: tf.Tensor
    best_objective: tf.Tensor


def apgd_start(x: tf.Tensor, epsilon: tf.Tensor, norm: str, seed: tf.Tensor | None) -> tf.Tensor:
    """APGD's random start: L-inf, eps * t / max|t| with t ~ U[-1, 1]^d; L2, a
    uniform point of the sphere of radius eps. Clipped to [0, 1]."""
    if norm == "linf":
        t = random_uniform(tf.shape(x), seed, -1.0, 1.0)
        t = t / (tf.reduce_max(tf.abs(t), axis=[1, 2, 3], keepdims=True) + 1e-12)
    else:
        t = normalize(random_normal(tf.shape(x), seed), "l2")
    return tf.clip_by_value(x + epsilon * t, 0.0, 1.0)


def apgd_run(
    logits_fn: LogitsFn,
    x: tf.Tensor,
    y: tf.Tensor,
    epsilon: tf.Tensor,
    steps: int,
    *,
    norm: str = "linf",
    loss: str = "ce",
    target: tf.Tensor | None = None,
    rho: float = 0.75,
    seed: tf.Tensor | None = None,
    success: str = "target",
    rule: str = "reference",
    eot_iter: int = 1,
    early_stop: bool = False,
) -> APGDResult:
    """One run of APGD from a random start (a graph function; no validation).

    Args:
        logits_fn: images -> float32 logits.
        x: float32 [B, H, W, C] images in [0, 1].
        y: true classes, int32 [B].
        epsilon: budget, scalar or [B].
        steps: iterations (a Python int).
        norm: "linf" or "l2".
        loss: an objective of `keras_robust.attacks.objectives`.
        target: target classes int32 [B] (targeted objective), or None.
        rho: the oscillation threshold of the checkpoint test.
        seed: optional [2] seed of the random start.
        success: what counts as adversarial when `target` is given:
            "target" (classified as the target) or "misclassified" (any class
            but `y`, AutoAttack's criterion for APGD-T).
        rule: "reference" (the authors' code: `<=` and a zero before the
            first step) or "paper" (`<` and f(x^(0))); see the module docstring.
        eot_iter: forward/backward passes whose gradients are averaged at each
            iterate (expectation over transformation, for randomised models;
            the objective and the success test are those of the last pass, as
            in fra31/auto-attack). 1: one pass, the deterministic attack.
        early_stop: step only the samples not yet adversarial (gathered into
            a smaller batch): a sample's path is the same until its first
            adversarial iterate, which it keeps. Whether a sample is broken
            is unchanged; which adversarial point is returned can differ
            (the first, not the one of highest objective). Dynamic shapes:
            not under XLA.

    Returns:
        An `APGDResult`.
    """
    eps = per_sample(epsilon, x)
    tables = _checkpoint_tables(steps)
    evaluate = _evaluator(logits_fn, loss, success, eot_iter)
    x_adv = apgd_start(x, eps, norm, seed)
    value, grad, adversarial = evaluate(x_adv, y, target)
    state = dict(
        x_adv=x_adv,
        x_prev=x_adv,
        grad=grad,
        step=2.0 * eps,
        x_best=x_adv,
        grad_best=grad,
        best=value,
        x_found=x_adv,
        found=adversarial,
        found_value=tf.where(adversarial, value, tf.fill(tf.shape(value), -float("inf"))),
        # The objective "before" the first step: the start's (paper) or 0 (code).
        last_value=value if rule == "paper" else tf.zeros_like(value),
        increases=tf.zeros_like(value),
        best_at_check=value,
        halved_at_check=tf.ones_like(adversarial),
    )
    inputs = (x, y, eps, target)

    def advance(i, s, inputs):
        """Iteration i on the samples of `s` (all, or those still standing)."""
        return _advance(i, s, inputs, evaluate, norm=norm, rho=rho, rule=rule, tables=tables)

    def body(i, s):
        return advance(i, s, inputs)

    def early_stop_body(i, s):
        return step_standing(~s["found"], lambda sub, rows: advance(i, sub, rows), s, inputs)

    state = unrolled_loop(early_stop_body if early_stop else body, 0, steps, state)
    return APGDResult(state["x_found"], state["found"], state["x_best"], state["best"])


def _checkpoint_tables(steps: int) -> tuple[tf.Tensor, tf.Tensor]:
    """Per iteration: whether it is a checkpoint (bool [steps]) and its interval's length."""
    is_checkpoint = [False] * steps
    interval = [0.0] * steps
    for index, length in checkpoints(steps):
        is_checkpoint[index] = True
        interval[index] = float(length)
    return tf.constant(is_checkpoint), tf.constant(interval, tf.float32)


def _evaluator(logits_fn: LogitsFn, loss: str, success: str, eot_iter: int):
    """`evaluate(x_adv, y, target) -> (objective, gradient, adversarial)`, the gradient
    averaged over `eot_iter` passes."""

    def evaluate_once(x_adv, y, target):
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(x_adv)
            logits = logits_fn(x_adv)
            value = objective(loss, logits, y, target)
            total = tf.reduce_sum(value)
        grad = tape.gradient(total, x_adv)
        if grad is None:
            raise ValueError(
                "APGD needs the gradient of the model's logits with respect to its input, and "
                "this model provides none; use keras_robust.attacks.square for gradient-free "
                "models."
            )
        predicted = tf.argmax(logits, axis=-1, output_type=tf.int32)
        if target is not None and success == "target":
            adversarial = tf.equal(predicted, target)
        else:
            adversarial = tf.not_equal(predicted, y)
        return tf.stop_gradient(value), tf.stop_gradient(grad), adversarial

    def evaluate(x_adv, y, target):
        value, grad, adversarial = evaluate_once(x_adv, y, target)
        if eot_iter == 1:
            return value, grad, adversarial

        # The other eot_iter - 1 passes, in a loop (one copy of the model in the graph).
        def another(i, grad_sum, value, adversarial):
            value, grad, adversarial = evaluate_once(x_adv, y, target)
            return i + 1, grad_sum + grad, value, adversarial

        _, grad_sum, value, adversarial = tf.while_loop(
            lambda i, *_: i < eot_iter, another, (tf.constant(1), grad, value, adversarial))
        return value, grad_sum / float(eot_iter), adversarial

    return evaluate


def _where(mask, a, b):
    return tf.where(tf.reshape(mask, [-1, 1, 1, 1]), a, b)


def _advance(i, s, inputs, evaluate, *, norm, rho, rule, tables) -> dict:
    """APGD's iteration i on the state `s` of the samples in `inputs` (x, y, eps, target)."""
    x, y, eps, target = inputs
    is_checkpoint, interval = tables
    momentum = tf.where(i > 0, 0.75, 1.0)
    x_adv = s["x_adv"]
    z = project(x_adv + s["step"] * normalize(s["grad"], norm), x, eps, norm)
    x_new = project(
        x_adv + momentum * (z - x_adv) + (1.0 - momentum) * (x_adv - s["x_prev"]), x, eps, norm
    )
    value, grad, adversarial = evaluate(x_new, y, target)

    # The successful iterate of highest objective.
    keep = adversarial & (~s["found"] | (value > s["found_value"]))
    x_found = _where(keep, x_new, s["x_found"])
    found_value = tf.where(keep, value, s["found_value"])
    found = s["found"] | adversarial

    # The iterate of highest objective and its gradient (a restart point).
    improved = value > s["best"]
    x_best = _where(improved, x_new, s["x_best"])
    grad_best = _where(improved, grad, s["grad_best"])
    best = tf.where(improved, value, s["best"])
    increases = s["increases"] + tf.cast(value > s["last_value"], tf.float32)

    # Checkpoint: halve the step (and restart from the best point) where the
    # objective rose in at most (code) / fewer than (paper) rho * interval
    # steps, or where neither the step nor the best objective changed since
    # the last checkpoint.
    checkpoint = is_checkpoint[i]
    if rule == "paper":
        oscillating = increases < rho * interval[i]
    else:
        oscillating = increases <= rho * interval[i]
    stalled = ~s["halved_at_check"] & (s["best_at_check"] >= best)
    halve = checkpoint & (oscillating | stalled)
    step = _where(halve, 0.5 * s["step"], s["step"])
    return dict(
        x_adv=_where(halve, x_best, x_new),
        x_prev=x_adv,
        grad=_where(halve, grad_best, grad),
        step=step,
        x_best=x_best,
        grad_best=grad_best,
        best=best,
        x_found=x_found,
        found=found,
        found_value=found_value,
        last_value=value,
        increases=tf.where(checkpoint, tf.zeros_like(increases), increases),
        best_at_check=tf.where(checkpoint, best, s["best_at_check"]),
        halved_at_check=tf.where(checkpoint, halve, s["halved_at_check"]),
    )


def worst_case_over_runs(
    logits_fn: LogitsFn,
    x: tf.Tensor,
    y: tf.Tensor,
    epsilon: tf.Tensor,
    runs: list[tuple[tf.Tensor | None, tf.Tensor | None]],
    clean_adversarial: tf.Tensor,
    compact: bool,
    **run_kwargs: Any,
) -> tf.Tensor:
    """Runs APGD once per (targets, seed) in `runs`, each on the samples not yet broken.

    Samples adversarial at `x` (`clean_adversarial`) are returned unchanged;
    every other sample gets the first adversarial example any run finds, or
    else the highest-objective point over the runs.
    """
    adv = x
    found = clean_adversarial
    fallback = tf.fill(tf.shape(y), -float("inf"))
    eps = tf.broadcast_to(tf.reshape(tf.cast(epsilon, tf.float32), [-1]), tf.shape(y))
    for targets, seed in runs:
        if compact:

            def attack(old, rows, seed=seed):
                old_adv, _, old_fallback = old
                sub_x, sub_y, sub_eps, sub_targets = rows
                result = apgd_run(logits_fn, sub_x, sub_y, sub_eps, target=sub_targets,
                                  seed=seed, **run_kwargs)
                replace = result.best_objective > old_fallback
                new_adv = tf.where(
                    tf.reshape(result.found, [-1, 1, 1, 1]), result.x_found,
                    tf.where(tf.reshape(replace, [-1, 1, 1, 1]), result.x_best, old_adv),
                )
                return new_adv, result.found, tf.where(replace, result.best_objective, old_fallback)

            adv, found, fallback = step_standing(~found, attack, (adv, found, fallback),
                                                 (x, y, eps, targets))
        else:
            result = apgd_run(logits_fn, x, y, eps, target=targets, seed=seed, **run_kwargs)
            new_found = ~found & result.found
            replace = ~found & ~result.found & (result.best_objective > fallback)
            adv = tf.where(tf.reshape(new_found, [-1, 1, 1, 1]), result.x_found, adv)
            adv = tf.where(tf.reshape(replace, [-1, 1, 1, 1]), result.x_best, adv)
            fallback = tf.where(replace, result.best_objective, fallback)
            found = found | result.found
    return adv


@compiled_attack
def _apgd_impl(model, x, y, config: APGDConfig, *, epsilon, seed, compact, target=None):
    """The compiled APGD: `config` (its graph key), target labels per call."""
    target = config.target if target is None else target
    logits_fn = as_logits_fn(model)
    y = label_indices(y)
    clean_logits = logits_fn(x)
    num_classes = tf.shape(clean_logits)[-1]
    targets = None
    if target is not None:
        targets = select_target(target, y, num_classes, clean_logits, fold_seed(seed, 2))
    predicted = tf.argmax(clean_logits, axis=-1, output_type=tf.int32)
    clean_adversarial = (
        tf.not_equal(predicted, y) if targets is None else tf.equal(predicted, targets)
    )
    runs = [(targets, fold_seed(seed, 1000 + r)) for r in range(config.restarts)]
    return worst_case_over_runs(
        logits_fn, x, y, epsilon, runs, clean_adversarial, compact, success="target",
        **_run_settings(config),
    )


def _run_settings(config: APGDConfig | APGDTargetedConfig) -> dict:
    """The keywords of `apgd_run` that a config holds."""
    return dict(steps=config.steps, norm=config.norm, loss=config.loss, rho=config.rho,
                rule=config.rule, eot_iter=config.eot_iter, early_stop=config.early_stop)


def apgd(
    model: Any,
    x: Any,
    y: Any,
    epsilon: float | Any = None,
    steps: int | None = None,
    *,
    norm: str | None = None,
    loss: str | None = None,
    target: Any = None,
    restarts: int | None = None,
    seed: int | Any | None = None,
    jit_compile: bool = False,
    early_stop: bool | None = None,
    config: APGDConfig | None = None,
) -> tf.Tensor:
    """Auto-PGD (Croce & Hein 2020): PGD with an adaptive step size and momentum.

    The step starts at 2 * epsilon and is halved per sample at fixed
    checkpoints when the objective stops rising (see the module docstring);
    a halving restarts the sample from its best point. Per sample the result
    is an adversarial example if any iterate of any restart was one, else the
    point of highest objective. Restarts after the first attack only the
    samples still correctly classified (as AutoAttack does).

    Args:
        model: a Keras model, an `Ensemble`, a list of models (logits
            averaged), or any callable mapping [0, 1] images to logits.
        x: float images in [0, 1], [B, H, W, C].
        y: true labels: class indices, one-hot or soft rows.
        epsilon: the budget (scalar or one per sample) on the [0, 1] scale.
        steps: iterations per restart (AutoAttack uses 100).
        norm: "linf" or "l2".
        loss: "ce" (APGD-CE) or "dlr" (APGD-DLR, the difference of logits
            ratio; needs 3 classes, 4 when targeted).
        target: None (untargeted), "mc", "ll", "random" or target labels; a
            targeted run ascends the targeted objective (with `loss="dlr"`, the
            targeted DLR of APGD-T) and counts a sample as broken when it is
            classified as its target. For AutoAttack's APGD-T over the top-k
            classes use `apgd_targeted`.
        restarts: random restarts.
        seed: an int (or [2] ints) for reproducible randomness.
        jit_compile: compile with XLA (every restart then attacks the whole
            batch, since XLA needs static shapes).
        early_stop: for evaluation: each sample stops at its first adversarial
            iterate, and later steps run on the samples still standing only
            (a smaller batch). Which samples are broken is the same as
            without it (a sample's path is unchanged until it is broken; the
            returned image is its first adversarial iterate rather than the
            one of highest objective); the report's AutoAttack cascade uses
            it. Not with `jit_compile` (dynamic shapes).
        config: an `APGDConfig` holding these settings (its defaults are
            AutoAttack's: 100 steps, rho 0.75); the keywords above that are
            given (not None) override its fields, `epsilon` its budget. The
            rarely changed settings are set here only:
            `APGDConfig(rho=...)`, the checkpoint threshold (the step is
            halved when at most, `rule="paper"`: fewer than, rho * (interval
            length) steps raised the objective); `APGDConfig(rule=...)`,
            "reference" (default: the authors' code, `attack_single_run` of
            fra31/auto-attack, so figures compare with published AutoAttack
            ones) or "paper" (the paper's condition 1: fewer than rho *
            interval rises, the first step compared with the start point;
            they differ only for DLR objectives and rise counts at the
            threshold, see the module docstring); and
            `APGDConfig(eot_iter=...)`, the forward/backward passes whose
            gradients are averaged per iterate (expectation over
            transformation; 20 in AutoAttack's `version="rand"` for
            randomised defences; 1, the default, is the deterministic attack).

    Returns:
        float32 adversarial images inside the ball and [0, 1].

    Example:

    >>> x_adv = apgd(model, x_test, y_test, epsilon=8 / 255, steps=100, seed=0)  # doctest: +SKIP
    >>> x_l2 = apgd(model, x_test, y_test, epsilon=0.5, norm="l2", loss="dlr",
    ...             restarts=3)  # doctest: +SKIP
    >>> x_eot = apgd(model, x_test, y_test, epsilon=8 / 255,
    ...              config=APGDConfig(rule="paper", eot_iter=20))  # doctest: +SKIP
    >>> model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
    ...                           keras.layers.Dense(10)])
    >>> x = np.random.default_rng(0).random((4, 8, 8, 3), "float32")
    >>> y = np.array([0, 1, 2, 3])
    >>> x_adv = apgd(model, x, y, epsilon=8 / 255, steps=2, loss="ce", seed=0)
    >>> x_adv.shape, bool(np.abs(x_adv - x).max() <= 8 / 255 + 1e-6)
    (TensorShape([4, 8, 8, 3]), True)
    """
    check_target(target)
    config = build_config(
        APGDConfig, config, norm=norm, steps=steps, loss=loss, restarts=restarts,
        early_stop=early_stop,
        target=target if isinstance(target, str) else None)
    epsilon, x = _budget_and_images(x, epsilon, config, jit_compile)
    labels = None if target is None or isinstance(target, str) else tf.convert_to_tensor(target)
    return _apgd_impl(
        model, x, y, config.graph_key(), jit_compile=jit_compile, compact=not jit_compile,
        epsilon=epsilon, seed=as_seed(seed), target=labels,
    )


def _budget_and_images(x: Any, epsilon: Any, config: Any, jit_compile: bool) -> tuple:
    """The call's budget (float32; the config's when None) and images, checked."""
    epsilon = config.epsilon if epsilon is None else epsilon
    if epsilon is None:
        raise ValueError("No budget: pass `epsilon` or a `config` with one.")
    x = validate_common(x, epsilon, config.norm)
    check_early_stop(config.early_stop, jit_compile)
    return tf.cast(epsilon, tf.float32), x


@compiled_attack
def _apgd_targeted_impl(model, x, y, config: APGDTargetedConfig, *, epsilon, seed, compact):
    """The compiled targeted APGD: `config` (its graph key)."""
    num_targets = config.num_targets
    logits_fn = as_logits_fn(model)
    y = label_indices(y)
    clean_logits = logits_fn(x)
    num_classes = clean_logits.shape[-1]
    if num_classes is not None and num_targets > num_classes - 1:
        raise ValueError(
            f"`num_targets` must be at most the number of classes minus one ({num_classes - 1}), "
            f"got {num_targets}."
        )
    ranked = top_other_classes(clean_logits, y, num_targets)
    predicted = tf.argmax(clean_logits, axis=-1, output_type=tf.int32)
    runs = [
        (ranked[:, k], fold_seed(seed, 1000 * (k + 1) + r))
        for k in range(num_targets)
        for r in range(config.restarts)
    ]
    return worst_case_over_runs(
        logits_fn, x, y, epsilon, runs, tf.not_equal(predicted, y), compact,
        success="misclassified", **_run_settings(config),
    )


def apgd_targeted(
    model: Any,
    x: Any,
    y: Any,
    epsilon: float | Any = None,
    steps: int | None = None,
    num_targets: int | None = None,
    *,
    norm: str | None = None,
    loss: str | None = None,
    restarts: int | None = None,
    seed: int | Any | None = None,
    jit_compile: bool = False,
    early_stop: bool | None = None,
    config: APGDTargetedConfig | None = None,
) -> tf.Tensor:
    """APGD-T of AutoAttack: targeted APGD toward each of the k most likely other classes.

    For k = 1..`num_targets`, APGD ascends the targeted DLR loss toward the
    k-th most likely non-true class (ranked at the clean image) on the samples
    no earlier target has misclassified; per sample the first misclassified
    point wins (else the highest-objective point). AutoAttack's standard
    version uses 9 targets (all other classes of CIFAR-10) and 100 steps.

    Args:
        model: see `apgd`.
        x: float images in [0, 1], [B, H, W, C].
        y: true labels.
        epsilon: the budget (scalar or one per sample).
        steps: iterations per target and restart.
        num_targets: how many target classes to try (at most classes - 1).
        norm: "linf" or "l2".
        loss: "dlr" (the targeted DLR of APGD-T; needs 4 classes) or "ce"
            (targeted cross-entropy).
        restarts: random restarts per target.
        seed: an int (or [2] ints) for reproducible randomness.
        jit_compile: compile with XLA.
        early_stop: stop each sample at its first misclassified iterate (see
            `apgd`); not with `jit_compile`.
        config: an `APGDTargetedConfig` holding these settings (defaults:
            100 steps, 9 targets, the DLR loss); the keywords above that are
            given (not None) override its fields, `epsilon` its budget. The
            checkpoint threshold `rho`, the halving `rule` and `eot_iter` are
            set here only, e.g. `APGDTargetedConfig(rule="paper",
            eot_iter=20)` (see `apgd`).

    Returns:
        float32 adversarial images inside the ball and [0, 1].

    Example:

    >>> x_adv = apgd_targeted(model, x_test, y_test, epsilon=8 / 255, steps=100,
    ...                       num_targets=9, seed=0)  # doctest: +SKIP
    >>> model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
    ...                           keras.layers.Dense(10)])
    >>> x = np.random.default_rng(0).random((4, 8, 8, 3), "float32")
    >>> x_adv = apgd_targeted(model, x, [0, 1, 2, 3], epsilon=8 / 255, steps=2, num_targets=2,
    ...                       seed=0)
    >>> x_adv.shape, bool(np.abs(x_adv - x).max() <= 8 / 255 + 1e-6)
    (TensorShape([4, 8, 8, 3]), True)
    """
    config = build_config(
        APGDTargetedConfig, config, norm=norm, steps=steps, num_targets=num_targets, loss=loss,
        restarts=restarts, early_stop=early_stop)
    epsilon, x = _budget_and_images(x, epsilon, config, jit_compile)
    return _apgd_targeted_impl(
        model, x, y, config.graph_key(), jit_compile=jit_compile, compact=not jit_compile,
        epsilon=epsilon, seed=as_seed(seed),
    )



