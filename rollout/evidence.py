"""The statistics of the sequential judge (``rollout.judge``): log likelihood ratios of one
check's data against a null, a confidence sequence for old's error rate, the exact binomial tail
of the first look, and log-space sums. Pure functions of numbers, ``math`` only; docs/judge.md
derives each and gives the sources.
"""

from __future__ import annotations

import math

ERROR_FACTORS = (1.5, 2.0, 4.0, 10.0)       # alternatives, as multiples of the null error rate
SIGN_ALTERNATIVES = (0.8, 0.99)              # chance a minute's p99 exceeds its limit, if regressed
_NEG_INF = -math.inf


def error_log_ratios(requests: int, errors: int, null: float) -> tuple[float, ...]:
    """log LR of ``errors`` in ``requests`` under ``null * f`` against ``null``, for each factor f.

    Valid for the composite null ``p <= null``: the ratio's mean is at most 1 for any such p.
    A zero null fails on the first error; a null of 1 or more can never fail.
    """
    if null >= 1:
        return (0.0,) * len(ERROR_FACTORS)
    if null <= 0:
        return ((math.inf if errors else 0.0),) * len(ERROR_FACTORS)
    ratios = []
    for factor in ERROR_FACTORS:
        q = min(null * factor, (1 + null) / 2)
        ratios.append(errors * math.log(q / null) + (requests - errors) * math.log((1 - q) / (1 - null)))
    return tuple(ratios)


def sign_log_ratios(exceeded: bool | None) -> tuple[float, ...]:
    """log LR of one exceed / not-exceed observation; no observation adds no evidence."""
    if exceeded is None:
        return (0.0,) * len(SIGN_ALTERNATIVES)
    return tuple(math.log((r if exceeded else 1 - r) / 0.5) for r in SIGN_ALTERNATIVES)


def old_upper_bound(requests: int, errors: int, alpha: float) -> float:
    """Upper end of a (1 - alpha) confidence sequence for old's error rate, valid at every look.

    The beta-binomial mixture martingale (Jeffreys prior Beta(1/2, 1/2)) against ``p = theta``;
    the sequence is every theta where it stays under ``1 / alpha``. Bisection; 1 with no data or
    when every request failed.
    """
    if errors >= requests:      # no data (0 >= 0), or every request failed: 1 is in the sequence
        return 1.0
    a = b = 0.5
    mixture = _log_beta(a + errors, b + requests - errors) - _log_beta(a, b)
    limit = math.log(1 / alpha)

    def log_e(theta: float) -> float:
        return mixture - errors * math.log(theta) - (requests - errors) * math.log1p(-theta)

    lo, hi = errors / requests, 1 - 1e-12
    if log_e(max(lo, 1e-300)) >= limit:
        return lo
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if log_e(mid) >= limit else (mid, hi)
    return hi


def binomial_tail(requests: int, errors: int, rate: float) -> float:
    """P(X >= errors) for X ~ Binomial(requests, rate): the exact one-look p-value, at most 1."""
    if errors <= requests * rate:
        return 1.0
    log_pmf = (math.lgamma(requests + 1) - math.lgamma(errors + 1) - math.lgamma(requests - errors + 1)
               + errors * math.log(rate) + (requests - errors) * math.log1p(-rate))
    tail, term, k = 0.0, math.exp(log_pmf), errors
    while term > 0 and k <= requests:       # terms fall from here on (errors is above the mode)
        tail += term
        if term < tail * 1e-12:
            break
        term *= (requests - k) / (k + 1) * rate / (1 - rate)
        k += 1
    return min(1.0, tail)


# --- log-space arithmetic --------------------------------------------------------------------


def log_add(a: float, b: float) -> float:
    """log(e^a + e^b)."""
    if a == _NEG_INF:
        return b
    high, low = max(a, b), min(a, b)
    return high + math.log1p(math.exp(low - high))


def log_mean(values: tuple[float, ...]) -> float:
    """log of the equally weighted mean of e^v."""
    high = max(values)
    if high in (_NEG_INF, math.inf):
        return high
    return high + math.log(sum(math.exp(v - high) for v in values) / len(values))


def _log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
