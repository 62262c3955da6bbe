"""Transfer (black-box) evaluation: craft on a surrogate, measure on the target.

The attacker has no access to the target model's gradients or logits: it
attacks a surrogate it owns (often an `Ensemble`) and sends the result to the
target. A defence whose accuracy under transfer is *lower* than under
white-box attacks is masking gradients (Carlini et al., "On Evaluating
Adversarial Robustness"); the robustness report runs this check.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import tensorflow as tf

from keras_robust._validation import check_images, check_positive_int
from keras_robust.attacks.common import as_logits_fn, check_batch, label_indices

Attack = Callable[..., Any]


def _registry() -> dict[str, Attack]:
    from keras_robust.attacks.apgd import apgd, apgd_targeted
    from keras_robust.attacks.cw import cw_l2
    from keras_robust.attacks.momentum import mi_fgsm
    from keras_robust.attacks.pgd import fgsm, pgd
    from keras_robust.attacks.square import square

    return {
        "fgsm": fgsm, "pgd": pgd, "mi_fgsm": mi_fgsm, "apgd": apgd,
        "apgd_targeted": apgd_targeted, "square": square, "cw_l2": cw_l2,
    }


TRANSFER_ATTACKS = ("fgsm", "pgd", "mi_fgsm", "apgd", "apgd_targeted", "square", "cw_l2")


def transfer_attack(
    attack: Attack | str,
    surrogate: Any,
    target_model: Any,
    x: Any,
    y: Any,
    *,
    batch_size: int | None = None,
    **attack_kwargs: Any,
) -> dict[str, Any]:
    """Crafts adversarial images on `surrogate` and measures `target_model` on them.

    This is the library's transfer / black-box evaluation helper: the attack
    only ever sees the surrogate; the target model is only asked for its
    predictions on the clean and the crafted images.

    Args:
        attack: an attack of `keras_robust.attacks` (any callable
            `(model, x, y, **kwargs) -> x_adv`, e.g.
            `functools.partial(mi_fgsm, epsilon=0.04)`), or its name, one of
            `TRANSFER_ATTACKS`.
        surrogate: the model the attack is run on: a Keras model, an
            `Ensemble`, a list of models (logits averaged) or a callable.
        target_model: the model evaluated (anything `as_logits_fn` accepts).
        x: float images in [0, 1], [N, H, W, C] (array or tensor).
        y: true labels: class indices, one-hot or soft rows.
        batch_size: images per attack call; None attacks all of `x` at once.
        **attack_kwargs: passed to `attack` (epsilon, steps, seed, ...).

    Returns:
        A dict with
        - "x_adv": float32 NumPy [N, H, W, C], the images crafted on the surrogate;
        - "accuracy": the target model's accuracy on them;
        - "clean_accuracy": the target model's accuracy on `x`;
        - "surrogate_accuracy": the surrogate's accuracy on them (white-box);
        - "transfer_rate": among the images the target classifies correctly
            when clean, the fraction it misclassifies after the attack.

    Example:

    >>> import functools
    >>> attack = functools.partial(kr.attacks.mi_fgsm, epsilon=0.04, steps=10)
    >>> result = kr.attacks.transfer_attack(attack, vgg_surrogate, model, x_test,
    ...                                     y_test)  # doctest: +SKIP
    >>> surrogate, model = [keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
    ...                                       keras.layers.Dense(10)]) for _ in range(2)]
    >>> x = np.random.default_rng(0).random((4, 8, 8, 3), "float32")
    >>> result = kr.attacks.transfer_attack(attack, surrogate, model, x, [0, 1, 2, 3])
    >>> sorted(result)
    ['accuracy', 'clean_accuracy', 'surrogate_accuracy', 'transfer_rate', 'x_adv']
    >>> result["x_adv"].shape, 0 <= result["accuracy"] <= 1
    ((4, 8, 8, 3), True)
    >>> by_name = kr.attacks.transfer_attack("fgsm", surrogate, model, x, [0, 1, 2, 3],
    ...                                      batch_size=2, epsilon=0.04)
    >>> bool(np.abs(by_name["x_adv"] - x).max() <= 0.04 + 1e-6)
    True
    """
    if isinstance(attack, str):
        attacks = _registry()
        if attack not in attacks:
            raise ValueError(
                f"Unknown attack {attack!r}. Expected one of: "
                f"{', '.join(map(repr, TRANSFER_ATTACKS))}, or a callable "
                "(model, x, y, **kwargs) -> x_adv."
            )
        attack = attacks[attack]
    if not callable(attack):
        raise TypeError(
            f"`attack` must be a callable (model, x, y, **kwargs) -> x_adv or an attack name, "
            f"got {type(attack).__name__}."
        )
    target_fn = as_logits_fn(target_model)
    surrogate_fn = as_logits_fn(surrogate)
    images = np.asarray(x)
    check_images(images, "x")
    images = images.astype(np.float32)
    for model in (surrogate, target_model):
        check_batch(model, images, y)
    labels = label_indices(tf.convert_to_tensor(y)).numpy()
    size = len(images) if batch_size is None else check_positive_int(batch_size, "batch_size")
    size = max(size, 1)

    crafted, clean_ok, adv_ok, surrogate_ok = [], [], [], []
    for start in range(0, len(images), size):
        xb = tf.constant(images[start:start + size])
        yb = tf.constant(labels[start:start + size])
        x_adv = tf.convert_to_tensor(attack(surrogate, xb, yb, **attack_kwargs), tf.float32)
        crafted.append(x_adv.numpy())
        clean_ok.append(_correct(target_fn, xb, yb))
        adv_ok.append(_correct(target_fn, x_adv, yb))
        surrogate_ok.append(_correct(surrogate_fn, x_adv, yb))
    clean_ok = np.concatenate(clean_ok)
    adv_ok = np.concatenate(adv_ok)
    fooled = clean_ok & ~adv_ok
    return {
        "x_adv": np.concatenate(crafted),
        "accuracy": float(adv_ok.mean()),
        "clean_accuracy": float(clean_ok.mean()),
        "surrogate_accuracy": float(np.concatenate(surrogate_ok).mean()),
        "transfer_rate": float(fooled.sum() / max(clean_ok.sum(), 1)),
    }


def _correct(logits_fn, x, y) -> np.ndarray:
    logits = logits_fn(x)
    return (tf.argmax(logits, axis=-1, output_type=tf.int32) == tf.cast(y, tf.int32)).numpy()

