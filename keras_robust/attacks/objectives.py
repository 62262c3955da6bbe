"""Per-sample objectives that attacks ascend.

Untargeted objectives grow as the true class loses; targeted ones grow as the
target class wins. All take float32 logits [B, C] and class indices [B].

| name  | untargeted                          | targeted (toward t)                              |
| ----- | ----------------------------------- | ------------------------------------------------ |
| ce    | CE(z, y)                            | -CE(z, t)                                        |
| cw    | max_{j!=y} z_j - z_y                | z_t - max_{j!=t} z_j                             |
| dlr   | -(z_y - max_{j!=y} z_j) / (z_pi1 - z_pi3) | -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2) |
| logit | -z_y                                | z_t                                              |
| kl    | KL(p_ref || softmax(z))             | (untargeted only)                                |

DLR is Croce & Hein's difference-of-logits ratio (AutoAttack), sorted logits
z_pi1 >= z_pi2 >= ...; "logit" is the loss of the data-centric paper (eq. 4);
"kl" is TRADES' inner maximisation (Zhang et al. 2019), the divergence of the
attacked prediction from a reference distribution p_ref, the model's clean
prediction, which the engine computes once per batch (`reference=`).
"""
from __future__ import annotations

import tensorflow as tf

from keras_robust._validation import check_choice
from keras_robust.attacks.common import best_other_logit

OBJECTIVES = ("ce", "cw", "dlr", "logit", "kl")


def objective(
    name: str, logits: tf.Tensor, y: tf.Tensor, target: tf.Tensor | None = None,
    reference: tf.Tensor | None = None,
) -> tf.Tensor:
    """The per-sample objective `name` to maximise.

    Args:
        name: one of `OBJECTIVES`.
        logits: float32 [B, C].
        y: true classes, int32 [B].
        target: target classes, int32 [B], or None for untargeted.
        reference: for "kl" only: the reference distributions p_ref, float32
            [B, C] rows on the simplex (the clean prediction).

    Returns:
        float32 [B].

    Example:

    >>> objective("cw", tf.constant([[2.0, 1.0, 0.0]]), tf.constant([0]))
    <tf.Tensor: ... numpy=array([-1.], dtype=float32)>
    >>> objective("kl", tf.constant([[0.0, 0.0]]), tf.constant([0]),
    ...           reference=tf.constant([[0.5, 0.5]]))
    <tf.Tensor: ... numpy=array([0.], dtype=float32)>
    """
    check_choice(name, OBJECTIVES, "loss")
    logits = tf.cast(logits, tf.float32)
    if name == "kl":
        if reference is None or target is not None:
            raise ValueError(
                "The KL objective is untargeted and needs the reference distributions "
                "(`reference=`, the clean prediction); got "
                f"reference={'None' if reference is None else 'given'}, target="
                f"{'None' if target is None else 'given'}.")
        return kl_divergence(reference, logits)
    needed = 3 if target is None else 4
    if name == "dlr" and logits.shape[-1] is not None and logits.shape[-1] < needed:
        raise ValueError(
            f"The {'targeted ' if target is not None else ''}DLR loss needs at least {needed} "
            f"classes (it divides by z_pi1 - z_pi{needed - 1}), the model has {logits.shape[-1]}; "
            "use loss='cw' instead."
        )
    if name == "ce":
        if target is None:
            return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
        return -tf.nn.sparse_softmax_cross_entropy_with_logits(labels=target, logits=logits)
    num_classes = tf.shape(logits)[-1]
    y_hot = tf.one_hot(y, num_classes)
    z_y = tf.reduce_sum(logits * y_hot, axis=-1)
    if target is None:
        if name == "logit":
            return -z_y
        best_other = best_other_logit(logits, y_hot)
        if name == "cw":
            return best_other - z_y
        top = tf.math.top_k(logits, k=3).values
        return -(z_y - best_other) / (top[:, 0] - top[:, 2] + 1e-12)
    t_hot = tf.one_hot(target, num_classes)
    z_t = tf.reduce_sum(logits * t_hot, axis=-1)
    if name == "logit":
        return z_t
    if name == "cw":
        return z_t - best_other_logit(logits, t_hot)
    top = tf.math.top_k(logits, k=4).values
    return -(z_y - z_t) / (top[:, 0] - 0.5 * (top[:, 2] + top[:, 3]) + 1e-12)


def kl_divergence(reference: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """KL(p || softmax(logits)) per row, summed over the classes (0 log 0 = 0).

    The divergence TRADES maximises in its attack and penalises in its loss
    (PyTorch's `KLDivLoss` on `log_softmax(logits)` and `p`).

    Args:
        reference: p, float [B, C] rows on the simplex.
        logits: float [B, C] logits of the second distribution.

    Returns:
        float32 [B], >= 0.

    Example:

    >>> p = tf.constant([[1.0, 0.0]])
    >>> round(float(kl_divergence(p, tf.math.log([[0.5, 0.5]]))[0]), 4)  # log 2
    0.6931
    """
    reference = tf.cast(reference, tf.float32)
    log_q = tf.nn.log_softmax(tf.cast(logits, tf.float32), axis=-1)
    return tf.reduce_sum(tf.math.xlogy(reference, reference) - reference * log_q, axis=-1)


def succeeded(logits: tf.Tensor, y: tf.Tensor, target: tf.Tensor | None = None) -> tf.Tensor:
    """Whether each sample is adversarial: misclassified, or classified as its target."""
    predicted = tf.argmax(logits, axis=-1, output_type=tf.int32)
    if target is None:
        return tf.not_equal(predicted, y)
    return tf.equal(predicted, target)
