"""Soft labels and the losses built on them.

- `adversarial_labels`: BAT's closed-form adversarial label (eq. 14 of Wang &
  Zhang 2019) with the largest budget that keeps the true class `beta` times
  the most likely other class (eq. 18).
- `smoothed_labels`: label smoothing as BAT writes it (eq. 15): 1 - eps on the
  true class, eps / (n - 1) on each other class; the special case of the
  adversarial label when every other class is equally likely.
- `AdversarialLabelCrossentropy`, `SmoothedLabelCrossentropy`: Keras losses
  that train toward those labels.

Example:

```python
y_adv = keras_robust.losses.adversarial_labels(logits, y, beta=9.0)
model.compile(loss=keras_robust.losses.AdversarialLabelCrossentropy(beta=9.0))
```
"""
from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from keras_robust._labels import class_indices
from keras_robust._validation import check_choice, check_fraction, check_positive

# How v_k = -log p_k (eq. 13) is computed: "log_softmax" is the paper's equation
# (exact for any logits); "saturated" is the authors' code, -log(p_k + 1e-8),
# which caps v_k at -log(1e-8) ~ 18.42 for classes the model all but rules out.
LABEL_LOGS = ("log_softmax", "saturated")
_SATURATION = 1e-8


def _true_class(y: Any, num_classes: int | tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """The true class and its one-hot row, from sparse, one-hot or soft labels."""
    classes = class_indices(y)
    return classes, tf.one_hot(classes, num_classes, dtype=tf.float32)


def adversarial_label_budget(
    logits: tf.Tensor, y: Any, beta: float = 9.0, gamma: float = 0.01,
    label_log: str = "log_softmax",
) -> tf.Tensor:
    """epsilon_y of eq. 18: the largest label budget with y'_c >= beta * max_{k!=c} y'_k.

    With v_k = -log p_k (the gradient of the loss w.r.t. label k, eq. 13),
    v_MC = min_{k!=c} v_k and v_LL = max_{k!=c} v_k:

        eps_y = 1 / (1 + beta / (n-1) * (v_LL - v_MC + gamma)
                                       / (sum_{k!=c} v_k / (n-1) - v_MC + gamma)).

    Args:
        logits: [B, n] logits.
        y: the true labels (sparse, one-hot or soft; the argmax is the class).
        beta: the multiplier of eq. 16 (9 in the paper for CIFAR-10).
        gamma: the small constant of eq. 14 (0.01).
        label_log: how v_k is computed, "log_softmax" or "saturated" (see
            `adversarial_labels`).

    Returns:
        float32 [B], in (1 / (1 + beta), 1 / (1 + beta / (n - 1))] (eq. 21).

    Example:

    >>> adversarial_label_budget(tf.zeros([1, 10]), [0], beta=9.0)   # eq. 19: label smoothing
    <tf.Tensor: shape=(1,), dtype=float32, numpy=array([0.5], dtype=float32)>
    """
    check_choice(label_log, LABEL_LOGS, "label_log")
    _, _, _, v_mc, v_ll, mean_other = _label_gradients(logits, y, label_log)
    return _budget(v_mc, v_ll, mean_other, tf.shape(logits)[-1], beta, gamma)


def _budget(v_mc, v_ll, mean_other, num_classes, beta, gamma) -> tf.Tensor:
    """Eq. 18 from the label gradients."""
    n = tf.cast(num_classes, tf.float32)
    ratio = (v_ll - v_mc + gamma) / (mean_other - v_mc + gamma)
    return 1.0 / (1.0 + beta / (n - 1.0) * ratio)


def _label_gradients(logits: tf.Tensor, y: Any, label_log: str = "log_softmax"):
    logits = tf.cast(logits, tf.float32)
    n = tf.shape(logits)[-1]
    _, true_hot = _true_class(y, n)
    others = 1.0 - true_hot
    if label_log == "saturated":  # the authors' code: -log(p + 1e-8)
        v = -tf.math.log(tf.nn.softmax(logits, axis=-1) + _SATURATION)
    else:
        v = -tf.nn.log_softmax(logits, axis=-1)  # v_k = -log p_k (eq. 13)
    big = tf.reduce_max(v, axis=-1, keepdims=True) + 1.0
    v_mc = tf.reduce_min(v + true_hot * big, axis=-1)  # min over k != c
    v_ll = tf.reduce_max(v * others, axis=-1)           # max over k != c (v >= 0)
    mean_other = tf.reduce_sum(v * others, axis=-1) / (tf.cast(n, tf.float32) - 1.0)
    return v, true_hot, others, v_mc, v_ll, mean_other


def adversarial_labels(
    logits: tf.Tensor,
    y: Any,
    beta: float = 9.0,
    gamma: float = 0.01,
    epsilon_y: Any = None,
    label_log: str = "log_softmax",
) -> tf.Tensor:
    """BAT's adversarial labels (eq. 14), with the budget of eq. 18 by default.

    The true class c keeps 1 - eps_y; the other classes share eps_y in
    proportion to v_k - v_MC + gamma, so the most confusing class gets the
    smallest share (gamma / sum) and the least likely the largest:

        y'_k = eps_y / (n-1) * (v_k - v_MC + gamma)
                             / (sum_{k!=c} v_k / (n-1) - v_MC + gamma),   k != c.

    When every other class is equally likely this is label smoothing with
    y'_k = eps_y / (n - 1) (eq. 15) and eps_y = 1 / (1 + beta / (n - 1)) (eq. 19).

    Args:
        logits: [B, n] logits of the model at the clean (or start) image;
            gradients do not flow through them.
        y: the true labels (sparse, one-hot or soft; the argmax is the class).
        beta: eq. 16's multiplier; larger is closer to one-hot (inf = one-hot).
        gamma: eq. 14's constant.
        epsilon_y: a fixed budget (scalar or [B]) instead of eq. 18's.
        label_log: how v_k = -log p_k is computed. "log_softmax" (default) is
            eq. 13 exactly. "saturated" is the authors' code (`adv_labels` in
            wjyouch/bilateral-adversarial-training's train.py), v_k =
            -log(p_k + 1e-8): every class with p_k << 1e-8 gets v_k ~ 18.42,
            so on a confident model the rare classes look equally likely and
            the label drifts toward label smoothing (eps_y -> 0.5 for beta 9,
            n 10). The two differ by up to 0.4 in a label entry (0.5 - 0.1,
            eq. 19's budget against eq. 21's lower bound, e.g. logits
            (0, -40 x 8, -1000)); they agree while every p_k >> 1e-8.

    Example:

    >>> adversarial_labels(tf.constant([[2.0, 1.0, 1.0]]), [0], beta=9.0)
    <tf.Tensor: ... [[0.8182, 0.0909, 0.0909]]>
    """
    beta = check_positive(beta, "beta")
    gamma = check_positive(gamma, "gamma")
    check_choice(label_log, LABEL_LOGS, "label_log")
    logits = tf.stop_gradient(tf.cast(logits, tf.float32))
    v, true_hot, others, v_mc, v_ll, mean_other = _label_gradients(logits, y, label_log)
    n = tf.cast(tf.shape(logits)[-1], tf.float32)
    denominator = mean_other - v_mc + gamma
    if epsilon_y is None:
        eps = _budget(v_mc, v_ll, mean_other, tf.shape(logits)[-1], beta, gamma)
    else:
        eps = tf.broadcast_to(tf.cast(epsilon_y, tf.float32), tf.shape(v_mc))
    share = (v - v_mc[:, None] + gamma) / denominator[:, None]
    labels = others * (eps / (n - 1.0))[:, None] * share + true_hot * (1.0 - eps)[:, None]
    return tf.stop_gradient(labels)


def smoothed_labels(y: Any, num_classes: int, epsilon: float = 0.5) -> tf.Tensor:
    """Label smoothing as in BAT (eq. 15): 1 - eps on the true class, eps / (n - 1) elsewhere.

    Args:
        y: the true labels (sparse, one-hot or soft; the argmax is the class).
        num_classes: n.
        epsilon: the smoothing budget (0.5 in the BAT paper's R-MC-LS).

    Returns:
        float32 [B, n] rows on the simplex.

    Example:

    >>> smoothed_labels([1], 3, 0.5)
    <tf.Tensor: ... [[0.25, 0.5, 0.25]]>
    """
    epsilon = check_fraction(epsilon, "epsilon")
    _, true_hot = _true_class(y, num_classes)
    return true_hot * (1.0 - epsilon) + (1.0 - true_hot) * (epsilon / (num_classes - 1))


@keras.saving.register_keras_serializable(package="keras_robust")
class AdversarialLabelCrossentropy(keras.losses.Loss):
    """Cross-entropy toward the adversarial label of the model's own prediction.

    `y_pred` are logits; the target is `adversarial_labels(stop_gradient(y_pred),
    y_true, beta, gamma)`. `BATModel` computes the label from the logits of
    the clean (or random-start) image instead and trains with plain
    cross-entropy; this loss is the stand-alone form for any Keras model.

    Args:
        beta: eq. 16's multiplier.
        gamma: eq. 14's constant.
        label_log: "log_softmax" (eq. 13) or "saturated" (the authors' code);
            see `adversarial_labels`.
        name: the loss's name.
        **kwargs: passed to `keras.losses.Loss` (e.g. `reduction`).

    Example:

    >>> model.compile(optimizer="sgd", loss=AdversarialLabelCrossentropy(beta=9.0))
    """

    def __init__(self, beta: float = 9.0, gamma: float = 0.01, label_log: str = "log_softmax",
                 name: str = "adversarial_label_crossentropy", **kwargs: Any):
        super().__init__(name=name, **kwargs)
        self.beta = check_positive(beta, "beta")
        self.gamma = check_positive(gamma, "gamma")
        self.label_log = check_choice(label_log, LABEL_LOGS, "label_log")

    def call(self, y_true, y_pred):
        labels = adversarial_labels(y_pred, y_true, self.beta, self.gamma,
                                    label_log=self.label_log)
        return keras.losses.categorical_crossentropy(labels, y_pred, from_logits=True)

    def get_config(self) -> dict:
        return {**super().get_config(), "beta": self.beta, "gamma": self.gamma,
                "label_log": self.label_log}


@keras.saving.register_keras_serializable(package="keras_robust")
class SmoothedLabelCrossentropy(keras.losses.Loss):
    """Cross-entropy toward BAT-style smoothed labels (eq. 15).

    Args:
        epsilon: the smoothing budget.
        name: the loss's name.
        **kwargs: passed to `keras.losses.Loss`.

    Example:

    >>> model.compile(optimizer="sgd", loss=SmoothedLabelCrossentropy(0.5))
    """

    def __init__(self, epsilon: float = 0.5, name: str = "smoothed_label_crossentropy",
                 **kwargs: Any):
        super().__init__(name=name, **kwargs)
        self.epsilon = check_fraction(epsilon, "epsilon")

    def call(self, y_true, y_pred):
        labels = smoothed_labels(y_true, y_pred.shape[-1], self.epsilon)
        return keras.losses.categorical_crossentropy(labels, y_pred, from_logits=True)

    def get_config(self) -> dict:
        return {**super().get_config(), "epsilon": self.epsilon}
