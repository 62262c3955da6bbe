"""Statistics behind the report's figures: Wilson intervals, exact binomial bounds and
paired exact tests.

An accuracy measured on n images is a binomial proportion: `wilson_interval`
gives its 95% interval. Two attacks run on the same images are paired:
`mcnemar_p_value` tests whether one breaks more of them than the other.
`clopper_pearson` gives the exact (conservative) one-sided bounds that a
certificate needs (randomized smoothing's lower bound on p_A).
"""
from __future__ import annotations

import math
import numbers
from statistics import NormalDist

import numpy as np

from keras_robust._validation import check_fraction, check_positive_int


def _successes_of(successes: object, n: object) -> tuple[int, int]:
    """(k, n) checked: whole counts, n >= 1, k <= n."""
    k = _count(successes, "successes")
    n = check_positive_int(n, "n")
    if k > n:
        raise ValueError(f"`successes` ({k}) must be <= `n` ({n}): count successes out of n.")
    return k, n


def _count(value, name: str) -> int:
    whole = (isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
             and float(value).is_integer())
    if not whole:
        raise TypeError(f"`{name}` must be a whole count of images (an int >= 0), got {value!r}.")
    if value < 0:
        raise ValueError(f"`{name}` must be a count >= 0, got {value}.")
    return int(value)


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of a proportion (e.g. an accuracy k of n images).

    Unlike the normal approximation it stays inside [0, 1] and is not empty
    at k = 0 or k = n (Wilson 1927; `scipy.stats.binomtest(k, n)
    .proportion_ci(method="wilson")` gives the same).

    Args:
        successes: k, the images counted (correct, or robust), 0 <= k <= n.
        n: the number of images, >= 1.
        confidence: the coverage, in (0, 1).

    Returns:
        (low, high), fractions in [0, 1].

    Raises:
        TypeError, ValueError: k or n not whole counts, k > n, or a
            confidence outside (0, 1) (pass 0.95, not 95).

    Example:

    >>> low, high = wilson_interval(31, 100)
    >>> round(low, 4), round(high, 4)
    (0.2278, 0.4063)
    """
    k, n = _successes_of(successes, n)
    confidence = check_fraction(confidence, "confidence")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"`confidence` must be in (0, 1), e.g. 0.95; got {confidence}.")
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = k / n
    denominator = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, center - half), min(1.0, center + half)


def mcnemar_p_value(b: int, c: int) -> float:
    """Two-sided exact McNemar test of paired outcomes (a binomial test on b + c trials).

    For two attacks run on the same images, b counts the images robust to
    the first and broken by the second, c the reverse; the images both break
    or both leave do not tell them apart. Under "the attacks are equally
    strong" b ~ Binomial(b + c, 1/2).

    Args:
        b: images robust to attack A but broken by attack B.
        c: images robust to attack B but broken by attack A.

    Returns:
        The p-value in [0, 1] (1.0 when b + c = 0).

    Raises:
        TypeError, ValueError: b or c not whole counts >= 0.

    Example:

    >>> mcnemar_p_value(10, 0), mcnemar_p_value(3, 3)
    (0.001953125, 1.0)
    """
    b, c = _count(b, "b"), _count(c, "c")
    trials = b + c
    if trials == 0:
        return 1.0
    tail = sum(math.comb(trials, i) for i in range(min(b, c) + 1)) / 2 ** trials
    return min(1.0, 2 * tail)


def clopper_pearson(successes: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """The exact Clopper-Pearson bounds of a binomial proportion, each one-sided at level alpha.

    low = Beta.ppf(alpha, k, n - k + 1) (0 at k = 0) and high = Beta.ppf(1 - alpha,
    k + 1, n - k) (1 at k = n): P(p < low) <= alpha and P(p > high) <= alpha, so
    (low, high) is a two-sided interval of coverage 1 - 2 alpha
    (`statsmodels.stats.proportion.proportion_confint(k, n, 2 * alpha, "beta")`).
    Randomized smoothing certifies with `low` (Cohen et al. 2019).

    Args:
        successes: k, the successes counted, 0 <= k <= n.
        n: the number of trials, >= 1.
        alpha: each bound's error probability, in (0, 1).

    Returns:
        (low, high), fractions in [0, 1].

    Raises:
        TypeError, ValueError: k or n not whole counts, k > n, or alpha outside (0, 1).

    Example:

    >>> low, high = clopper_pearson(100, 100, alpha=0.001)
    >>> round(low, 4), high
    (0.9333, 1.0)
    >>> clopper_pearson(0, 10)[0]
    0.0
    """
    from scipy.stats import beta

    k, n = _successes_of(successes, n)
    alpha = check_fraction(alpha, "alpha")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"`alpha` must be in (0, 1), e.g. 0.001; got {alpha}.")
    low = 0.0 if k == 0 else float(beta.ppf(alpha, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(1 - alpha, k + 1, n - k))
    return low, high
