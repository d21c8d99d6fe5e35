"""Seeded random counts for synthetic metrics: Poisson arrivals, binomial errors, latency noise.

Inverse-transform samplers over ``random.Random`` (Python 3.11 has no ``binomialvariate``),
exact for the means the emulator sees (a few thousand at most); a normal approximation
takes over for larger means so a day-long window stays cheap.
"""

from __future__ import annotations

import math
import random

_EXACT_LIMIT = 500.0


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson(mean) draw."""
    if mean <= 0:
        return 0
    if mean > _EXACT_LIMIT:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    u, k, pmf = rng.random(), 0, math.exp(-mean)
    cdf = pmf
    while u > cdf and pmf > 0:
        k += 1
        pmf *= mean / k
        cdf += pmf
    return k


def binomial(rng: random.Random, trials: int, p: float) -> int:
    """A Binomial(trials, p) draw."""
    if trials <= 0 or p <= 0:
        return 0
    if p >= 1:
        return trials
    if p > 0.5:
        return trials - binomial(rng, trials, 1 - p)
    mean = trials * p
    if mean > _EXACT_LIMIT:
        return min(trials, max(0, round(rng.gauss(mean, math.sqrt(mean * (1 - p))))))
    u, k, pmf = rng.random(), 0, (1 - p) ** trials
    cdf, odds = pmf, p / (1 - p)
    while u > cdf and k < trials and pmf > 0:
        pmf *= (trials - k) / (k + 1) * odds
        k += 1
        cdf += pmf
    return k


def latency(rng: random.Random, p99_ms: float, spread: float = 0.1) -> float:
    """A minute's measured p99 around the true ``p99_ms``: log-normal, median ``p99_ms``
    (so it exceeds the true value half the time), ``spread`` the log standard deviation."""
    return p99_ms * math.exp(rng.gauss(0.0, spread))
