"""One-sided upper confidence bounds on a wrong-hit rate.

:func:`clopper_pearson_upper` is the exact binomial bound for ``errors`` in ``n``.
:func:`weighted_upper` extends it to weighted labels (an explored hit stands for the ``1/share``
would-be hits it was drawn from): the rate is the weighted one, and the sample size the
effective one, ``(sum w)^2 / sum w^2`` (Kish), so a few heavily weighted labels count as few.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularised incomplete beta function (Numerical Recipes)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c if abs(1.0 + aa / c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c if abs(1.0 + aa / c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-12:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def beta_quantile(q: float, a: float, b: float) -> float:
    """The ``q`` quantile of Beta(a, b), by bisection."""
    lo, hi = 0.0, 1.0
    for _ in range(80):
        mid = (lo + hi) / 2
        if betainc(a, b, mid) < q:
            lo = mid
        else:
            hi = mid
    return hi


def clopper_pearson_upper(errors: float, n: float, confidence: float = 0.95) -> float:
    """One-sided upper bound on a rate from ``errors`` in ``n`` (exact binomial; non-integer
    counts, from weighted labels, take the same Beta form)."""
    if n <= 0 or errors >= n:
        return 1.0
    return beta_quantile(confidence, errors + 1.0, n - errors)


def clopper_pearson_lower(errors: float, n: float, confidence: float = 0.95) -> float:
    """One-sided lower bound on a rate from ``errors`` in ``n`` (0 when there are none)."""
    if n <= 0 or errors <= 0:
        return 0.0
    return beta_quantile(1.0 - confidence, errors, n - errors + 1.0)


def weighted_upper(weights: Sequence[float], wrong: Sequence[bool], confidence: float = 0.95) -> tuple[float, float, float]:
    """``(rate, upper bound, effective n)`` of weighted labels (``wrong[i]`` with weight ``weights[i]``)."""
    total = sum(weights)
    if total <= 0:
        return 0.0, 1.0, 0.0
    rate = sum(w for w, x in zip(weights, wrong) if x) / total
    n_eff = total * total / sum(w * w for w in weights)
    return rate, clopper_pearson_upper(rate * n_eff, n_eff, confidence), n_eff


def binom_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p)."""
    if k < 0:
        return 0.0
    if k >= n or p <= 0.0:
        return 1.0
    if p >= 1.0:
        return 0.0
    logs = [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * math.log(p) + (n - i) * math.log1p(-p)
            for i in range(k + 1)]
    top = max(logs)
    return min(1.0, math.exp(top) * sum(math.exp(v - top) for v in logs))


@functools.lru_cache(maxsize=65536)
def max_errors_within(n: int, rate: float, confidence: float = 0.95) -> int:
    """The most errors in ``n`` whose one-sided Clopper-Pearson upper bound is still <= ``rate``
    (-1: none, not even 0). The bound is within ``rate`` exactly when P(X <= errors) <= 1 - confidence
    for X ~ Binomial(n, rate)."""
    alpha = 1.0 - confidence
    e, cdf = -1, 0.0
    log_q = math.log1p(-rate)
    term = math.exp(n * log_q)  # P(X = 0)
    while e < n:
        cdf += term
        if cdf > alpha:
            return e
        e += 1
        term *= (n - e) / (e + 1) * rate / (1 - rate) if e < n else 0.0
    return n


def too_many_errors(errors: int, n: int, rate: float, confidence: float = 0.95) -> bool:
    """Whether ``errors`` in ``n`` show, at this confidence, a wrong rate above ``rate`` (its
    one-sided lower bound is above it)."""
    return errors > 0 and 1.0 - binom_cdf(errors - 1, n, rate) <= 1.0 - confidence
