"""The L-inf Square Attack (Andriushchenko et al. 2020): score-based, no gradients.

"Square Attack: a query-efficient black-box adversarial attack via random
search" (ECCV 2020), the black-box member of AutoAttack. It only reads the
model's logits, so it sees through gradient masking:

1. start from vertical stripes: x + eps * s, s in {-1, +1} drawn per column
   and channel (constant along the height);
2. each iteration, per sample, pick a square window of side
   round(sqrt(p * H * W)), clipped to [1, min(H, W) - 1] as in the authors'
   code (`square_side`), at a uniformly random position (any of the
   H - side + 1 rows and W - side + 1 columns; the authors' `randint(0, h - s)`
   never reaches the last ones, so their squares never touch the bottom row or
   the right column) and set it to x +/- eps, one random sign per channel;
3. keep the change only if the loss (margin z_y - max_{j!=y} z_j, or -CE)
   decreases; a sample whose margin reaches <= 0 is adversarial and is no
   longer updated.

p starts at `p_init` and is halved at iterations 10, 50, 200, 500, 1000, 2000,
4000, 6000 and 8000 of a 10,000-iteration run, the schedule rescaled to
`queries` (as in the authors' code). The loop runs inside one `tf.while_loop`
over the batch; samples already broken are taken out of the forward pass with
`tf.gather` (with `jit_compile=True`, shapes must be static, so the whole
batch is evaluated and broken samples are masked). The loop stops early once
every sample is broken.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import tensorflow as tf

from keras_robust._validation import check_choice, check_fraction, check_positive_int
from keras_robust.attacks._common import (
    LogitsFn,
    as_logits_fn,
    as_seed,
    fold_seed,
    per_sample,
    random_uniform,
    run_compiled,
    sparse_labels,
    validate_common,
)
from keras_robust.attacks.targets import check_target, select_target

SQUARE_LOSSES = ("margin", "ce")
_COMPILED: dict = {}
_BIG = 1e9
# Iterations (of 10,000) after which p halves.
_P_HALVINGS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)


class SquareResult(NamedTuple):
    """The outcome of a Square Attack on a batch.

    Attributes:
        x_adv: the adversarial images.
        margin: the margin at `x_adv` (z_y - max_{j!=y} z_j, or, targeted,
            max_{j!=t} z_j - z_t); <= 0 means adversarial.
        loss: the minimised loss at `x_adv`.
        initial_loss: the loss at the starting point (the stripes, or the
            clean image for samples already adversarial there).
        queries: model queries spent per sample (int32).
    """

    x_adv: tf.Tensor
    margin: tf.Tensor
    loss: tf.Tensor
    initial_loss: tf.Tensor
    queries: tf.Tensor


def p_schedule(iteration: tf.Tensor, queries: int, p_init: float) -> tf.Tensor:
    """The fraction of pixels the square covers at `iteration` (0-based)."""
    rescaled = tf.floor(tf.cast(iteration, tf.float32) / float(queries) * 10000.0)
    halvings = tf.add_n([tf.cast(rescaled > t, tf.float32) for t in _P_HALVINGS])
    return p_init * tf.pow(0.5, halvings)


def square_side(p: tf.Tensor | float, height: int, width: int) -> tf.Tensor:
    """The side of the square that covers a fraction `p` of an H x W image.

    round(sqrt(p * H * W)) (p * n_features / channels in the authors' code),
    clipped to [1, min(H, W) - 1] as `square_attack_linf` of
    max-andr/square-attack does: a square never covers the whole image.

    Args:
        p: the fraction of pixels (a scalar, or a tensor of them).
        height: image height H.
        width: image width W.

    Returns:
        int32 side(s), the shape of `p`.

    Example:

    >>> int(square_side(0.8, 32, 32)), int(square_side(0.8 / 512, 32, 32))
    (29, 1)
    >>> int(square_side(1.0, 8, 8))                       # at most H - 1
    7
    """
    side = tf.cast(tf.round(tf.sqrt(tf.cast(p, tf.float32) * float(height * width))), tf.int32)
    return tf.clip_by_value(side, 1, max(min(height, width) - 1, 1))


def _margin_and_loss(logits, y, target, loss):
    """(margin, loss) to minimise; margin <= 0 means adversarial."""
    num_classes = tf.shape(logits)[-1]
    if target is None:
        hot = tf.one_hot(y, num_classes)
        z_y = tf.reduce_sum(logits * hot, axis=-1)
        margin = z_y - tf.reduce_max(logits - hot * _BIG, axis=-1)
        if loss == "margin":
            return margin, margin
        return margin, -tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
    hot = tf.one_hot(target, num_classes)
    z_t = tf.reduce_sum(logits * hot, axis=-1)
    margin = tf.reduce_max(logits - hot * _BIG, axis=-1) - z_t
    if loss == "margin":
        return margin, margin
    return margin, tf.nn.sparse_softmax_cross_entropy_with_logits(labels=target, logits=logits)


def square_attack(
    logits_fn: LogitsFn,
    x: tf.Tensor,
    y: tf.Tensor,
    epsilon: Any,
    queries: int,
    *,
    p_init: float = 0.8,
    loss: str = "margin",
    target: tf.Tensor | None = None,
    seed: tf.Tensor | None = None,
    compact: bool = True,
) -> SquareResult:
    """The L-inf Square Attack as a graph function (no validation).

    Args:
        logits_fn: images -> float32 logits (never differentiated).
        x: float32 [B, H, W, C] images in [0, 1] (static H, W, C).
        y: true classes, int32 [B].
        epsilon: the L-inf budget, scalar or [B].
        queries: iterations (one query per iteration per unbroken sample).
        p_init: initial fraction of pixels per square.
        loss: "margin" or "ce".
        target: target classes int32 [B], or None (untargeted).
        seed: optional [2] seed.
        compact: evaluate only unbroken samples (dynamic shapes; not for XLA).

    Returns:
        A `SquareResult`.
    """
    height, width, channels = int(x.shape[1]), int(x.shape[2]), int(x.shape[3])
    batch = tf.shape(x)[0]
    eps = per_sample(epsilon, x)

    def measure(images, labels, targets):
        return _margin_and_loss(logits_fn(images), labels, targets, loss)

    # Samples adversarial at x are returned as they are (one query).
    clean_margin, clean_loss = measure(x, y, target)
    stripes = tf.sign(random_uniform([batch, 1, width, channels], fold_seed(seed, 1), -1.0, 1.0))
    stripes = tf.where(tf.equal(stripes, 0.0), tf.ones_like(stripes), stripes)
    x_start = tf.clip_by_value(x + eps * stripes, 0.0, 1.0)
    start_margin, start_loss = measure(x_start, y, target)
    broken_clean = clean_margin <= 0.0
    x_best = tf.where(tf.reshape(broken_clean, [-1, 1, 1, 1]), x, x_start)
    margin = tf.where(broken_clean, clean_margin, start_margin)
    best_loss = tf.where(broken_clean, clean_loss, start_loss)
    used = tf.where(broken_clean, 1, 2)
    rows = tf.range(height)[None, :]
    cols = tf.range(width)[None, :]

    def propose(x_curr, x_best_curr, eps_curr, i):
        n = tf.shape(x_curr)[0]
        p = p_schedule(i, queries, p_init)
        side = square_side(p, height, width)
        step_seed = fold_seed(seed, 10 + i) if seed is not None else None
        top = random_uniform([n], fold_seed(step_seed, 1), 0, height - side + 1, dtype=tf.int32)
        left = random_uniform([n], fold_seed(step_seed, 2), 0, width - side + 1, dtype=tf.int32)
        in_rows = (rows >= top[:, None]) & (rows < top[:, None] + side)  # [n, H]
        in_cols = (cols >= left[:, None]) & (cols < left[:, None] + side)  # [n, W]
        window = in_rows[:, :, None, None] & in_cols[:, None, :, None]  # [n, H, W, 1]
        signs = tf.sign(random_uniform([n, 1, 1, channels], fold_seed(step_seed, 3), -1.0, 1.0))
        signs = tf.where(tf.equal(signs, 0.0), tf.ones_like(signs), signs)
        x_new = tf.where(window, x_best_curr + 2.0 * eps_curr * signs, x_best_curr)
        x_new = tf.clip_by_value(x_new, x_curr - eps_curr, x_curr + eps_curr)
        return tf.clip_by_value(x_new, 0.0, 1.0)

    def accept(x_new, x_best_curr, new_margin, new_loss, old_margin, old_loss):
        improved = new_loss < old_loss
        take = improved | (new_margin <= 0.0)
        return (
            tf.where(tf.reshape(take, [-1, 1, 1, 1]), x_new, x_best_curr),
            tf.where(take, new_margin, old_margin),
            tf.where(improved, new_loss, old_loss),
        )

    def body(i, x_best, margin, best_loss, used):
        active = margin > 0.0
        if compact:
            index = tf.where(active)[:, 0]
            sub = lambda t: tf.gather(t, index)  # noqa: E731
            x_curr, x_best_curr = sub(x), sub(x_best)
            x_new = propose(x_curr, x_best_curr, sub(eps), i)
            new_margin, new_loss = measure(x_new, sub(y), None if target is None else sub(target))
            x_upd, m_upd, l_upd = accept(
                x_new, x_best_curr, new_margin, new_loss, sub(margin), sub(best_loss)
            )
            at = index[:, None]
            return (
                i + 1,
                tf.tensor_scatter_nd_update(x_best, at, x_upd),
                tf.tensor_scatter_nd_update(margin, at, m_upd),
                tf.tensor_scatter_nd_update(best_loss, at, l_upd),
                used + tf.cast(active, tf.int32),
            )
        x_new = propose(x, x_best, eps, i)
        new_margin, new_loss = measure(x_new, y, target)
        x_upd, m_upd, l_upd = accept(x_new, x_best, new_margin, new_loss, margin, best_loss)
        mask = tf.reshape(active, [-1, 1, 1, 1])
        return (
            i + 1,
            tf.where(mask, x_upd, x_best),
            tf.where(active, m_upd, margin),
            tf.where(active, l_upd, best_loss),
            used + tf.cast(active, tf.int32),
        )

    _, x_best, margin, best_loss, used = tf.while_loop(
        lambda i, x_best, margin, *_: (i < queries) & tf.reduce_any(margin > 0.0),
        body,
        (tf.constant(0), x_best, margin, best_loss, used),
        parallel_iterations=1,
    )
    initial_loss = tf.where(broken_clean, clean_loss, start_loss)
    return SquareResult(tf.stop_gradient(x_best), margin, best_loss, initial_loss, used)


def _square_impl(model, x, y, epsilon, queries, p_init, loss, target, seed, compact):
    logits_fn = as_logits_fn(model)
    y = sparse_labels(y)
    targets = None
    if target is not None and not isinstance(target, str):
        targets = sparse_labels(target)
    elif target is not None:
        logits = logits_fn(x) if target in ("mc", "ll") else None
        num_classes = tf.shape(logits)[-1] if logits is not None else _num_classes(logits_fn, x)
        targets = select_target(target, y, num_classes, logits, fold_seed(seed, 2))
    return square_attack(
        logits_fn, x, y, epsilon, queries, p_init=p_init, loss=loss, target=targets, seed=seed,
        compact=compact,
    ).x_adv


def _num_classes(logits_fn, x):
    return tf.shape(logits_fn(x[:1]))[-1]


def square(
    model: Any,
    x: Any,
    y: Any,
    epsilon: float | Any,
    queries: int = 5000,
    *,
    p_init: float = 0.8,
    loss: str = "margin",
    target: Any = None,
    seed: int | Any | None = None,
    jit_compile: bool = False,
) -> tf.Tensor:
    """The L-inf Square Attack: random search over square patches, logits only.

    Needs no gradients, so it breaks defences that only mask them; in an
    honest evaluation its accuracy should agree with (not undercut) PGD's.
    Each iteration costs one forward pass of the samples not yet broken.

    Args:
        model: a Keras model, an `Ensemble`, a list of models, or any callable
            mapping [0, 1] images to logits (it is never differentiated).
        x: float images in [0, 1], [B, H, W, C].
        y: true labels: class indices, one-hot or soft rows.
        epsilon: the L-inf budget (scalar or one per sample).
        queries: the query budget: iterations of random search (AutoAttack
            uses 5000); the p schedule is rescaled to it. Two more queries
            per sample go to the clean image and the starting stripes.
        p_init: the initial fraction of the image a square covers (0.8 in
            the paper for L-inf).
        loss: "margin" (z_y - max_{j!=y} z_j; AutoAttack's choice) or "ce"
            (the change is kept when the cross-entropy rises).
        target: None (untargeted), "mc", "ll", "random" or target labels:
            then the target's margin is minimised.
        seed: an int (or [2] ints) for reproducible randomness.
        jit_compile: compile with XLA (broken samples are then masked, not
            removed, so every iteration evaluates the whole batch).

    Returns:
        float32 adversarial images inside the ball and [0, 1].

    Example:

    >>> x_adv = square(model, x_test, y_test, 8 / 255, queries=5000, seed=0)  # doctest: +SKIP
    >>> model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
    ...                           keras.layers.Dense(10)])
    >>> x = np.random.default_rng(0).random((4, 8, 8, 3), "float32")
    >>> x_adv = square(model, x, [0, 1, 2, 3], epsilon=8 / 255, queries=20, seed=0)
    >>> x_adv.shape, bool(np.abs(x_adv - x).max() <= 8 / 255 + 1e-6)
    (TensorShape([4, 8, 8, 3]), True)
    """
    x = validate_common(x, epsilon, "linf")
    queries = check_positive_int(queries, "queries")
    p_init = check_fraction(p_init, "p_init")
    if p_init <= 0.0:
        raise ValueError(f"`p_init` must be in (0, 1], got {p_init}.")
    check_choice(loss, SQUARE_LOSSES, "loss")
    check_target(target)
    if x.shape[1] is None or x.shape[2] is None or x.shape[3] is None:
        raise ValueError(
            f"square() needs images of static height, width and channels, got {x.shape}."
        )
    if target is not None and not isinstance(target, str):
        target = tf.convert_to_tensor(target)
    return run_compiled(
        _square_impl, _COMPILED, jit_compile, model, x, y, tf.cast(epsilon, tf.float32), queries,
        p_init, loss, target, as_seed(seed), not jit_compile,
    )
