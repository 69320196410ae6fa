"""Uncertainty of rates measured from a few probes: the Wilson score interval.

A loss of 1 in 20 probes is a point estimate of 5 %, but a link that loses 0.5 % shows it one run
in ten: a rate-based cause is strong only when the interval's lower bound clears the threshold.
"""

from __future__ import annotations

import math

# Two-sided 95 % interval (the lower bound is exceeded by chance 2.5 % of the time).
Z95 = 1.96


def wilson(lost: float, n: int, z: float = Z95) -> tuple[float, float]:
    """(low, high) of the Wilson score interval for ``lost`` of ``n`` (rates 0..1)."""
    if n <= 0:
        return 0.0, 1.0
    p = min(1.0, max(0.0, lost / n))
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def rate_interval_pct(pct: float, n: int) -> tuple[float, float]:
    """The 95 % interval, in %, of a rate reported as ``pct`` % of ``n`` probes."""
    low, high = wilson(round(pct / 100.0 * n), n)
    return round(low * 100, 2), round(high * 100, 2)


# Queueing and scheduling delays come in bursts: the absolute differences of consecutive RTTs
# have a standard deviation about twice their mean (coefficient of variation).
SPREAD_CV = 2.0


def spread_low(value: float, n: int, z: float = Z95) -> float:
    """A lower bound for a spread (jitter: the mean of ``n - 1`` absolute RTT differences).

    The mean of ``m`` bursty differences is known to about ``SPREAD_CV * value / sqrt(m)``: 20
    probes bound a 60 ms jitter only from 6 ms up (no verdict), 100 probes from 36 ms.
    """
    m = max(1, n - 1)
    return max(0.0, value * (1 - z * SPREAD_CV / math.sqrt(m)))


# The median of n samples is known to about 1.25 sigma / sqrt(n); the mean absolute difference of
# consecutive independent samples (jitter) is 2 / sqrt(pi) = 1.13 sigma.
MEDIAN_SE = 1.25
JITTER_PER_SIGMA = 2 / math.sqrt(math.pi)


def median_low(value: float, jitter: float, n: int, z: float = Z95) -> float:
    """A lower bound for a median RTT of ``n`` probes whose jitter was ``jitter``.

    A loaded laptop's scheduling delays spread its RTTs: 20 probes with a 150 ms median and 146 ms
    jitter bound the median only from 79 ms up; a 300 ms median with 2 ms jitter from 299 ms.
    """
    sigma = max(0.0, jitter) / JITTER_PER_SIGMA
    return max(0.0, value - z * MEDIAN_SE * sigma / math.sqrt(max(1, n)))
