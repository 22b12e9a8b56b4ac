"""Tests of the gated quantity against a margin, and the confidence bounds they invert to (pure numpy).

The gate asks where the mean paired difference ``delta = mean(candidate - baseline)`` lies relative to the margin
``m``, not whether it is zero (docs/gate.md). Two tests of ``H0: delta = d0`` for any ``d0``:

- **binary metrics** (every value 0 or 1): Tango's score test for the difference of paired proportions (Tango 1998,
  Statistics in Medicine 17:891). With ``up`` pairs 0 -> 1, ``down`` pairs 1 -> 0 and ``n`` pairs,
  ``z = (up - down - n d0) / sqrt(n (2 q + d0 (1 - d0)))``, ``q`` the restricted maximum-likelihood estimate of the
  1 -> 0 share under ``delta = d0`` (a root of a quadratic). At ``d0 = 0`` it is McNemar's statistic. When no pair
  changed at all the arms agree on every request and ``Paired.bounds`` reads the change as exactly 0 (identity, as
  the paired t reads zero spread); as soon as one pair changed the score bounds apply (1 changed of 400 bounds
  ``delta`` to [-1.5, +2.2] points at the 0.0038 level, where a Wald interval would claim +/-0.7);
- **graded metrics**: the paired t-test of the mean (its bounds are ``mean +/- t_{1-alpha, n-1} sd / sqrt(n)``;
  zero spread gives a zero-width interval: identical outputs are non-inferior at any margin).

``Paired`` holds the sufficient statistics of one check (test, n, mean, sd, down, up); its ``bounds(alpha)`` are the
one-sided lower and upper confidence bounds, each with error ``alpha`` (the test inverted), ``half_width(alpha)``
the minimum detectable effect at ``alpha`` and ``p(d0, greater)`` the one-sided p-value of ``H0: delta <= d0``
(``greater``) or ``H0: delta >= d0``. Everything broadcasts over arrays (the simulations call it on thousands of
replicates at once).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import norm
from scipy.stats import t as student_t

Num = np.ndarray | float
"""A number or an array of them (everything here broadcasts)."""
BISECT_STEPS = 45
"""Bisection steps of the score test's inversion: 2^-44 of the interval [-1, 1], far below any margin."""


def tango_z(down: Num, up: Num, n: Num, d0: Num) -> np.ndarray:
    """Tango's score statistic of ``H0: delta = d0`` (module docstring); 0 without pairs."""
    down, up, n, d0 = (np.asarray(x, float) for x in np.broadcast_arrays(down, up, n, d0))
    n_safe = np.where(n > 0, n, 1.0)
    a = 2.0 * n_safe
    b = -up - down + (2.0 * n_safe - up + down) * d0
    c = -down * d0 * (1.0 - d0)
    q = (np.sqrt(np.maximum(b * b - 4.0 * a * c, 0.0)) - b) / (2.0 * a)
    var = n_safe * (2.0 * q + d0 * (1.0 - d0))
    num = up - down - n_safe * d0
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(var > 0, num / np.sqrt(np.where(var > 0, var, 1.0)), np.sign(num) * np.inf)
    return np.where(n > 0, np.nan_to_num(z, nan=0.0), 0.0)


def tango_bounds(down: Num, up: Num, n: Num, alpha: Num) -> tuple[np.ndarray, np.ndarray]:
    """One-sided ``1 - alpha`` lower and upper confidence bounds of ``delta`` (the score test inverted by
    bisection, both bounds at once; ``z`` decreases in ``d0``); (-1, 1) without pairs."""
    down, up, n, alpha = (np.asarray(x, float) for x in np.broadcast_arrays(down, up, n, alpha))
    crit = norm.isf(alpha)
    target = np.stack([crit, -crit])  # lower bound: z(L) = crit; upper: z(U) = -crit
    lo, hi = np.full(target.shape, -1.0), np.full(target.shape, 1.0)
    for _ in range(BISECT_STEPS):
        mid = (lo + hi) / 2
        above = tango_z(down, up, n, mid) > target
        lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
    mid = (lo + hi) / 2
    return np.where(n > 0, mid[0], -1.0), np.where(n > 0, mid[1], 1.0)


def t_bounds(n: Num, mean: Num, sd: Num, alpha: Num) -> tuple[np.ndarray, np.ndarray]:
    """One-sided ``1 - alpha`` lower and upper bounds of the mean from the paired t; (-inf, inf) below 2 pairs."""
    n, mean, sd, alpha = (np.asarray(x, float) for x in np.broadcast_arrays(n, mean, sd, alpha))
    ok = n >= 2
    w = student_t.isf(alpha, np.where(ok, n - 1, 1.0)) * sd / np.sqrt(np.where(ok, n, 1.0))
    return np.where(ok, mean - w, -np.inf), np.where(ok, mean + w, np.inf)


def t_p(n: Num, mean: Num, sd: Num, d0: Num, greater: bool) -> np.ndarray:
    """One-sided paired-t p-value of ``H0: delta <= d0`` (``greater``) or ``delta >= d0``; zero spread decides
    exactly (0 or 1)."""
    n, mean, sd, d0 = (np.asarray(x, float) for x in np.broadcast_arrays(n, mean, sd, d0))
    sign = 1.0 if greater else -1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        t = sign * (mean - d0) / (sd / np.sqrt(np.maximum(n, 1.0)))
    p = student_t.sf(np.nan_to_num(t, nan=0.0), np.maximum(n - 1, 1.0))
    exact = np.where(sign * (mean - d0) > 0, 0.0, 1.0)
    return np.where(n < 2, 1.0, np.where(sd > 0, p, exact))


@dataclass(frozen=True)
class Paired:
    """Sufficient statistics of one check's paired differences: ``test`` (``tango`` for binary metrics, else
    ``paired_t``), pairs ``n``, mean difference, its sd (ddof 1), and for binary metrics the pairs 1 -> 0
    (``down``) and 0 -> 1 (``up``). Fields may be arrays (one entry per replicate)."""

    test: str
    n: Num
    mean: Num
    sd: Num
    down: Num = 0.0
    up: Num = 0.0

    def bounds(self, alpha: Num) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper one-sided bounds, each with error ``alpha``."""
        if self.test == "tango":  # the bisection's last step never leaves the estimate outside its own interval
            lo, hi = tango_bounds(self.down, self.up, self.n, alpha)
            up, down = np.asarray(self.up, float), np.asarray(self.down, float)
            est = (up - down) / np.maximum(np.asarray(self.n, float), 1)
            same = (up + down == 0) & (np.asarray(self.n, float) > 0)  # identity: no pair changed
            return np.where(same, 0.0, np.minimum(lo, est)), np.where(same, 0.0, np.maximum(hi, est))
        return t_bounds(self.n, self.mean, self.sd, alpha)

    def half_width(self, alpha: Num) -> np.ndarray:
        """The minimum detectable effect at ``alpha``: half the distance between the two bounds."""
        lo, hi = self.bounds(alpha)
        return (hi - lo) / 2

    def p(self, d0: Num, greater: bool) -> np.ndarray:
        """One-sided p-value of ``H0: delta <= d0`` (``greater``: evidence that delta > d0) or ``delta >= d0``."""
        if self.test == "tango":
            z = tango_z(self.down, self.up, self.n, d0)
            return norm.sf(z) if greater else norm.cdf(z)
        return t_p(self.n, self.mean, self.sd, d0, greater)
