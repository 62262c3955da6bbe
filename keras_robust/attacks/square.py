"""The Square Attack (Andriushchenko et al. 2020) in L-inf and L2: score-based, no gradients.

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

The L2 variant (`norm="l2"`, the paper's appendix and AutoAttack's
`attack_single_run` with norm 'L2') keeps the loop, the acceptance rule and
the p schedule, and changes the start and the proposal:

- start: a grid of windows of side max(min(H, W) // 5, 1), centred in the
  image, each holding the pseudo-Gaussian window (below) with one random
  sign per channel and a random transposition; the whole perturbation is
  scaled to L2 norm eps (then clipped to [0, 1]). AutoAttack draws the
  transposition per window for the whole batch; here it is per sample.
- proposal: a window W1 of odd side max(`square_side`, 3) (+1 when even)
  and a second window W2 of the same side; W1's content becomes the
  pseudo-Gaussian window (one random sign per channel) plus the old W1
  content normalised per channel, rescaled per channel to
  sqrt(max(eps^2 - ||delta||^2, 0) / C + ||delta on W1 u W2||^2); W2 is
  emptied (W1 wins where they overlap) -- the mass of W2 moves to W1; the
  whole perturbation is then scaled to norm eps and x clipped to [0, 1].
- the pseudo-Gaussian window of side s (`pseudo_gaussian_window`): the top
  s // 2 rows and the bottom s - s // 2 rows each hold
  sum_{m=d+1}^{K} 1 / m^2, d the Chebyshev distance to the half's centre
  pixel (rows // 2, s // 2), K = s // 2 + 1 (AutoAttack's `eta_rectangles`
  in closed form), each half scaled to unit norm, the bottom negated, the
  whole scaled to unit norm and transposed with probability 1/2.

Windows are placed anywhere in the image, as in the L-inf variant.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import tensorflow as tf

from keras_robust.attacks.common import (
    LogitsFn,
    best_other_logit,
    as_logits_fn,
    as_seed,
    fold_seed,
    l2_norm,
    normalize,
    per_sample,
    random_uniform,
    label_indices,
    step_standing,
    validate_common,
)
from keras_robust.attacks.config import SQUARE_LOSSES, SquareConfig, build_config
from keras_robust.attacks.engine import compiled_attack
from keras_robust.attacks.targets import check_target, select_target

# Iterations (of 10,000) after which p halves.
_P_HALVINGS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)


class SquareResult(NamedTuple):
    """The outcome of a Square Attack on a batch.

    Attributes:
        x_adv: the adversarial images.
        margin: the margin at `x_adv` (z_y - max_{j!=y} z_j, or, targeted,
            max_{j!=t} z_j - z_t); <= 0 means adversarial.
        loss: the minimised loss at `x_adv`.
        initial_loss: the loss at the starting point (the stripes, in L2 the
            grid of windows, or the clean image for samples already
            adversarial there).
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


def _l2_side(p: tf.Tensor, height: int, width: int) -> tf.Tensor:
    """The L2 window side: `square_side`, at least 3, made odd (at most min(H, W))."""
    side = tf.maximum(square_side(p, height, width), 3)
    return tf.minimum(side + 1 - side % 2, min(height, width))


def pseudo_gaussian_window(
    top: tf.Tensor, left: tf.Tensor, side: tf.Tensor, transpose: tf.Tensor, height: int, width: int
) -> tf.Tensor:
    """Square's L2 proposal shape: a unit-norm pseudo-Gaussian window, one per sample.

    In the window of side `side` at (`top`, `left`), the top side // 2 rows
    and the bottom side - side // 2 rows each hold sum_{m=d+1}^{K} 1 / m^2,
    d the Chebyshev distance to the half's centre pixel (rows // 2, side // 2)
    and K = side // 2 + 1; each half is scaled to unit L2 norm, the bottom one
    negated, and the whole scaled to unit norm (the paper's appendix;
    AutoAttack's `eta` / `eta_rectangles`), then transposed where `transpose`.

    Args:
        top: int32 [n], the window's first row per sample.
        left: int32 [n], its first column.
        side: int32 scalar, the window side (the window must fit the image).
        transpose: bool [n], transpose the pattern.
        height: image height H.
        width: image width W.

    Returns:
        float32 [n, H, W], zero outside the window, unit L2 norm.

    Example:

    >>> w = pseudo_gaussian_window(tf.constant([0]), tf.constant([0]), tf.constant(2),
    ...                            tf.constant([False]), 2, 2)
    >>> np.round(w.numpy()[0].astype(float), 4).tolist()
    [[0.1387, 0.6934], [-0.1387, -0.6934]]
    """
    side = tf.cast(side, tf.int32)
    top, left = tf.cast(top, tf.int32)[:, None, None], tf.cast(left, tf.int32)[:, None, None]
    r = tf.range(height)[None, :, None] - top  # [n, H, 1]
    c = tf.range(width)[None, None, :] - left  # [n, 1, W]
    inside = (r >= 0) & (r < side) & (c >= 0) & (c < side)  # [n, H, W]
    flip = tf.reshape(tf.cast(transpose, tf.bool), [-1, 1, 1])
    r, c = tf.broadcast_to(r, tf.shape(inside)), tf.broadcast_to(c, tf.shape(inside))
    u, v = tf.where(flip, c, r), tf.where(flip, r, c)  # row / column inside the pattern
    upper = side // 2
    in_top = u < upper
    rows = tf.where(in_top, upper, side - upper)
    u_half = tf.where(in_top, u, u - upper)
    distance = tf.maximum(tf.abs(u_half - rows // 2), tf.abs(v - side // 2))
    terms = tf.maximum(rows // 2, side // 2) + 1
    # sum_{m=1}^{n} 1 / m^2 for n = 0 .. max(H, W) + 1, in float64 for the differences.
    m = tf.range(1, max(height, width) + 2, dtype=tf.float64)
    partial = tf.concat([tf.zeros([1], tf.float64), tf.cumsum(1.0 / tf.square(m))], 0)
    distance = tf.clip_by_value(distance, 0, max(height, width) + 1)
    terms = tf.clip_by_value(terms, 0, max(height, width) + 1)
    value = tf.gather(partial, terms) - tf.gather(partial, distance)
    value = tf.where(inside, value, tf.zeros_like(value))

    def unit(mask):
        part = tf.where(mask, value, tf.zeros_like(value))
        norm = tf.sqrt(tf.reduce_sum(tf.square(part), axis=[1, 2], keepdims=True))
        return part / tf.maximum(norm, 1e-12)

    pattern = unit(in_top) - unit(~in_top)
    norm = tf.sqrt(tf.reduce_sum(tf.square(pattern), axis=[1, 2], keepdims=True))
    return tf.cast(pattern / tf.maximum(norm, 1e-12), tf.float32)


def _random_signs(shape, seed):
    signs = tf.sign(random_uniform(shape, seed, -1.0, 1.0))
    return tf.where(tf.equal(signs, 0.0), tf.ones_like(signs), signs)


def _l2_start(x: tf.Tensor, eps: tf.Tensor, seed: tf.Tensor | None) -> tf.Tensor:
    """The L2 starting point: pseudo-Gaussian windows on a centred grid, norm eps."""
    batch = tf.shape(x)[0]
    height, width, channels = int(x.shape[1]), int(x.shape[2]), int(x.shape[3])
    size = max(min(height, width) // 5, 1)
    grid_h, grid_w = height // size, width // size
    zero = tf.zeros([2], tf.int32)
    both = pseudo_gaussian_window(zero, zero, size, tf.constant([False, True]), size, size)

    def axis(length, count):  # window index and position inside it, per pixel (static)
        offset = (length - count * size) // 2
        local = [i - offset for i in range(length)]
        valid = [0 <= i < count * size for i in local]
        return ([min(max(i // size, 0), count - 1) for i in local],
                [i % size for i in local], valid)

    row_window, row_local, row_valid = axis(height, grid_h)
    col_window, col_local, col_valid = axis(width, grid_w)
    tiles = tf.gather(tf.gather(both, row_local, axis=1), col_local, axis=2)  # [2, H, W]
    valid = tf.constant([[a and b for b in col_valid] for a in row_valid])
    flips = random_uniform([batch, grid_h, grid_w], fold_seed(seed, 4)) < 0.5
    flips = tf.gather(tf.gather(flips, row_window, axis=1), col_window, axis=2)  # [B, H, W]
    signs = _random_signs([batch, grid_h, grid_w, channels], fold_seed(seed, 3))
    signs = tf.gather(tf.gather(signs, row_window, axis=1), col_window, axis=2)
    pattern = tf.where(flips & valid, tiles[1], tf.where(valid, tiles[0], 0.0))
    delta = pattern[..., None] * signs
    return tf.clip_by_value(x + normalize(delta, "l2") * eps, 0.0, 1.0)


def _margin_and_loss(logits, y, target, loss):
    """(margin, loss) to minimise; margin <= 0 means adversarial."""
    num_classes = tf.shape(logits)[-1]
    if target is None:
        hot = tf.one_hot(y, num_classes)
        z_y = tf.reduce_sum(logits * hot, axis=-1)
        margin = z_y - best_other_logit(logits, hot)
        if loss == "margin":
            return margin, margin
        return margin, -tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
    hot = tf.one_hot(target, num_classes)
    z_t = tf.reduce_sum(logits * hot, axis=-1)
    margin = best_other_logit(logits, hot) - z_t
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
    norm: str = "linf",
) -> SquareResult:
    """The Square Attack (L-inf or L2) as a graph function (no validation).

    Args:
        logits_fn: images -> float32 logits (never differentiated).
        x: float32 [B, H, W, C] images in [0, 1] (static H, W, C).
        y: true classes, int32 [B].
        epsilon: the budget, scalar or [B].
        queries: iterations (one query per iteration per unbroken sample).
        p_init: initial fraction of pixels per square.
        loss: "margin" or "ce".
        target: target classes int32 [B], or None (untargeted).
        seed: optional [2] seed.
        compact: evaluate only unbroken samples (dynamic shapes; not for XLA).
        norm: "linf" or "l2".

    Returns:
        A `SquareResult`.

    Example:

    >>> logits_fn = lambda images: tf.reshape(images, [-1, 16])[:, :3]
    >>> result = square_attack(logits_fn, tf.fill([2, 4, 4, 1], 0.5), tf.constant([0, 1]),
    ...                        1.0, 5, norm="l2", seed=tf.constant([0, 1], tf.int64))
    >>> result.x_adv.shape, result.queries.shape
    (TensorShape([2, 4, 4, 1]), TensorShape([2]))
    """
    batch = tf.shape(x)[0]
    eps = per_sample(epsilon, x)

    def measure(images, labels, targets):
        return _margin_and_loss(logits_fn(images), labels, targets, loss)

    # Samples adversarial at x are returned as they are (one query).
    clean_margin, clean_loss = measure(x, y, target)
    if norm == "l2":
        x_start = _l2_start(x, eps, seed)
    else:
        stripes = _random_signs([batch, 1, int(x.shape[2]), int(x.shape[3])], fold_seed(seed, 1))
        x_start = tf.clip_by_value(x + eps * stripes, 0.0, 1.0)
    start_margin, start_loss = measure(x_start, y, target)
    broken_clean = clean_margin <= 0.0
    x_best = tf.where(tf.reshape(broken_clean, [-1, 1, 1, 1]), x, x_start)
    margin = tf.where(broken_clean, clean_margin, start_margin)
    best_loss = tf.where(broken_clean, clean_loss, start_loss)
    used = tf.where(broken_clean, 1, 2)

    def search(i, best, inputs):
        """One iteration on the samples of `best` (all, or those still standing)."""
        x_best, margin, best_loss = best
        x_curr, eps_curr, labels, targets = inputs
        step_seed = fold_seed(seed, 10 + i) if seed is not None else None
        x_new = _propose(x_curr, x_best, eps_curr, p_schedule(i, queries, p_init), step_seed, norm)
        new_margin, new_loss = measure(x_new, labels, targets)
        return _accept(x_new, x_best, new_margin, new_loss, margin, best_loss)

    def body(i, x_best, margin, best_loss, used):
        active = margin > 0.0
        inputs = (x, eps, y, target)
        if compact:
            best = step_standing(active, lambda sub, rows: search(i, sub, rows),
                                 (x_best, margin, best_loss), inputs)
        else:
            x_upd, m_upd, l_upd = search(i, (x_best, margin, best_loss), inputs)
            best = (tf.where(tf.reshape(active, [-1, 1, 1, 1]), x_upd, x_best),
                    tf.where(active, m_upd, margin), tf.where(active, l_upd, best_loss))
        return (i + 1, *best, used + tf.cast(active, tf.int32))

    _, x_best, margin, best_loss, used = tf.while_loop(
        lambda i, x_best, margin, *_: (i < queries) & tf.reduce_any(margin > 0.0),
        body,
        (tf.constant(0), x_best, margin, best_loss, used),
        parallel_iterations=1,
    )
    initial_loss = tf.where(broken_clean, clean_loss, start_loss)
    return SquareResult(tf.stop_gradient(x_best), margin, best_loss, initial_loss, used)


def _place(n, side, step_seed, salt, height, width):
    """A random window of `side` per sample: (top, left, mask [n, H, W, 1])."""
    rows = tf.range(height)[None, :]
    cols = tf.range(width)[None, :]
    top = random_uniform([n], fold_seed(step_seed, salt), 0, height - side + 1, dtype=tf.int32)
    left = random_uniform([n], fold_seed(step_seed, salt + 1), 0, width - side + 1, dtype=tf.int32)
    in_rows = (rows >= top[:, None]) & (rows < top[:, None] + side)  # [n, H]
    in_cols = (cols >= left[:, None]) & (cols < left[:, None] + side)  # [n, W]
    return top, left, in_rows[:, :, None, None] & in_cols[:, None, :, None]


def _propose_l2(x_curr, x_best_curr, eps_curr, p, step_seed):
    """The L2 proposal: a pseudo-Gaussian window takes the mass of two squares."""
    height, width, channels = int(x_curr.shape[1]), int(x_curr.shape[2]), int(x_curr.shape[3])
    n = tf.shape(x_curr)[0]
    side = _l2_side(p, height, width)
    top, left, first = _place(n, side, step_seed, 1, height, width)
    _, _, second = _place(n, side, step_seed, 4, height, width)
    flip = random_uniform([n], fold_seed(step_seed, 6)) < 0.5
    signs = _random_signs([n, 1, 1, channels], fold_seed(step_seed, 3))
    first, either = tf.cast(first, tf.float32), tf.cast(first | second, tf.float32)
    delta = x_best_curr - x_curr

    def spatial(t):  # per-channel norm over the image, [n, 1, 1, C]
        return tf.sqrt(tf.reduce_sum(tf.square(t), axis=[1, 2], keepdims=True))

    old = delta * first
    new = pseudo_gaussian_window(top, left, side, flip, height, width)[..., None] * signs
    new = new + old / (spatial(old) + 1e-12)  # [n, H, W, C], zero outside W1
    room = tf.maximum(tf.square(eps_curr) - tf.square(l2_norm(delta)), 0.0) / channels
    size = tf.sqrt(room + tf.square(l2_norm(delta * either)))
    delta = delta * (1.0 - either) + new / (spatial(new) + 1e-12) * size
    return tf.clip_by_value(x_curr + normalize(delta, "l2") * eps_curr, 0.0, 1.0)


def _propose(x_curr, x_best_curr, eps_curr, p, step_seed, norm):
    """A proposal around the best point: a square of +/- 2 eps (L-inf) or an L2 window."""
    if norm == "l2":
        return _propose_l2(x_curr, x_best_curr, eps_curr, p, step_seed)
    height, width, channels = int(x_curr.shape[1]), int(x_curr.shape[2]), int(x_curr.shape[3])
    n = tf.shape(x_curr)[0]
    side = square_side(p, height, width)
    _, _, window = _place(n, side, step_seed, 1, height, width)
    signs = _random_signs([n, 1, 1, channels], fold_seed(step_seed, 3))
    x_new = tf.where(window, x_best_curr + 2.0 * eps_curr * signs, x_best_curr)
    x_new = tf.clip_by_value(x_new, x_curr - eps_curr, x_curr + eps_curr)
    return tf.clip_by_value(x_new, 0.0, 1.0)


def _accept(x_new, x_best_curr, new_margin, new_loss, old_margin, old_loss):
    """Keeps a proposal that lowers the loss or is adversarial."""
    improved = new_loss < old_loss
    take = improved | (new_margin <= 0.0)
    return (
        tf.where(tf.reshape(take, [-1, 1, 1, 1]), x_new, x_best_curr),
        tf.where(take, new_margin, old_margin),
        tf.where(improved, new_loss, old_loss),
    )


@compiled_attack
def _square_impl(model, x, y, config: SquareConfig, *, epsilon, seed, compact, target=None):
    """The compiled Square attack: `config` (its graph key), target labels per call."""
    target = config.target if target is None else target
    logits_fn = as_logits_fn(model)
    y = label_indices(y)
    targets = None
    if target is not None and not isinstance(target, str):
        targets = label_indices(target)
    elif target is not None:
        logits = logits_fn(x) if target in ("mc", "ll") else None
        num_classes = tf.shape(logits)[-1] if logits is not None else _num_classes(logits_fn, x)
        targets = select_target(target, y, num_classes, logits, fold_seed(seed, 2))
    return square_attack(
        logits_fn, x, y, epsilon, config.queries, p_init=config.p_init, loss=config.loss,
        target=targets, seed=seed, compact=compact, norm=config.norm,
    ).x_adv


def _num_classes(logits_fn, x):
    return tf.shape(logits_fn(x[:1]))[-1]


def square(
    model: Any,
    x: Any,
    y: Any,
    epsilon: float | Any = None,
    queries: int | None = None,
    *,
    p_init: float | None = None,
    loss: str | None = None,
    target: Any = None,
    seed: int | Any | None = None,
    jit_compile: bool = False,
    norm: str | None = None,
    config: SquareConfig | None = None,
) -> tf.Tensor:
    """The Square Attack (L-inf or L2): random search over square patches, logits only.

    Needs no gradients, so it breaks defences that only mask them; in an
    honest evaluation its accuracy should agree with (not undercut) PGD's.
    Each iteration costs one forward pass of the samples not yet broken.

    Args:
        model: a Keras model, an `Ensemble`, a list of models, or any callable
            mapping [0, 1] images to logits (it is never differentiated).
        x: float images in [0, 1], [B, H, W, C].
        y: true labels: class indices, one-hot or soft rows.
        epsilon: the budget in `norm` (scalar or one per sample); an L-inf
            budget is at most 1, an L2 one is not bounded (e.g. 0.5 on
            CIFAR-10). None: the config's.
        queries: the query budget: iterations of random search (AutoAttack
            uses 5000, `SquareConfig`'s default); the p schedule is rescaled
            to it. Two more queries per sample go to the clean image and the
            starting point.
        p_init: the initial fraction of the image a square covers (0.8 in
            the paper for L-inf, and AutoAttack's value for both norms).
        loss: "margin" (z_y - max_{j!=y} z_j; AutoAttack's choice) or "ce"
            (the change is kept when the cross-entropy rises).
        target: None (untargeted), "mc", "ll", "random" or target labels:
            then the target's margin is minimised.
        seed: an int (or [2] ints) for reproducible randomness.
        jit_compile: compile with XLA (broken samples are then masked, not
            removed, so every iteration evaluates the whole batch).
        norm: "linf" (squares of +/- eps) or "l2" (pseudo-Gaussian windows
            whose mass moves between two squares; the images must be at
            least 3 x 3).
        config: a `SquareConfig` holding these settings; the keywords above
            that are given (not None) override its fields.

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
    >>> x_adv = square(model, x, [0, 1, 2, 3], epsilon=0.5, queries=20, seed=0, norm="l2")
    >>> bool(np.linalg.norm((x_adv - x).numpy().reshape(4, -1), axis=1).max() <= 0.5 + 1e-5)
    True
    """
    check_target(target)
    config = build_config(SquareConfig, config, norm=norm, queries=queries, p_init=p_init,
                          loss=loss, target=target if isinstance(target, str) else None)
    epsilon = config.epsilon if epsilon is None else epsilon
    if epsilon is None:
        raise ValueError("No budget: pass `epsilon` or a `config` with one.")
    x = validate_common(x, epsilon, config.norm)
    if x.shape[1] is None or x.shape[2] is None or x.shape[3] is None:
        raise ValueError(
            f"square() needs images of static height, width and channels, got {x.shape}."
        )
    if config.norm == "l2" and min(int(x.shape[1]), int(x.shape[2])) < 3:
        raise ValueError(
            f"square(norm='l2') needs images of at least 3 x 3 pixels (its windows have odd "
            f"sides >= 3), got {x.shape[1]} x {x.shape[2]}; use norm='linf' or larger images."
        )
    labels = None
    if target is not None and not isinstance(target, str):
        labels = tf.convert_to_tensor(target)
    return _square_impl(
        model, x, y, config.graph_key(), jit_compile=jit_compile, compact=not jit_compile,
        epsilon=tf.cast(epsilon, tf.float32), seed=as_seed(seed), target=labels,
    )
