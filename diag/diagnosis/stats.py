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
