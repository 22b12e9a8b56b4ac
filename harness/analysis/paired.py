"""Paired statistics: both arms answered the SAME requests, so every test here works on per-request pairs.

For each metric, overall and per segment, over the requests where both arms have a value
(``d_i = candidate_i - baseline_i``):

- ``delta`` = mean(d); its 95% CI is the **paired percentile bootstrap** (resample requests with
  replacement, ``N_BOOT`` times, seeded). The differences arrive compressed (each distinct ``d`` with its count,
  aggregated in SQL: ``paired_counts.sql``), and a resample's mean depends only on how many times each distinct
  value is drawn, so where there are few distinct values (``k``) the counts are drawn directly, one multinomial
  draw of ``n`` over the ``k`` values per resample: the same bootstrap distribution as drawing ``n`` request
  indices, at a cost of ``N_BOOT * k`` instead of ``N_BOOT * n``. With many distinct values (``k > n / 10``)
  request indices are drawn as usual. Either way the CI does not depend on the order of the rows;
- the **test of the gated quantity**, the mean difference, against any value ``d0`` (the margin, not only zero):
  Tango's score test for binary metrics (``tango_z``: the paired-proportion difference ``(up - down) / n`` with
  the variance at the restricted maximum-likelihood estimate under ``delta = d0``; at ``d0 = 0`` it is McNemar's
  statistic) and the paired t-test for graded ones (``paired_t_p``); inverted, each gives one-sided confidence
  bounds at any level (``bounds``), which the gate reads against the margin (docs/gate.md). The exact McNemar
  test (binary) and the paired t (graded) against zero are kept in the ``tests`` table (``p_lower``, ``p_higher``,
  ``p_two``), and the Wilcoxon signed-rank test of graded metrics only as a secondary reading (``p_wilcoxon``): it
  tests the pseudo-median, not the mean, and misses "a few items break" (docs/gate.md);
- the **power calculation** for the metric's margin ``m`` at the one-sided level ``alpha`` the gate uses (alpha
  split over the family's checks): ``n_required = ((z_{1-alpha} + z_{power}) * s / m)^2``, with
  ``s = max(sd(d), sqrt(m (1 - m)))`` (the observed spread, floored at the smallest spread a change of ``m`` can
  have in a metric bounded to [0, 1]): the pairs at which a candidate with no change is shown non-inferior, and one
  ``2 m`` worse is shown to breach, each with probability ``power``. The minimum detectable effect at ``n`` is the
  half-width of the bounds (``half_width``).

Multiple comparisons: ``holm`` and ``benjamini_hochberg`` adjust a family of p-values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

N_BOOT = 2000
ALPHA = 0.05
POWER = 0.8
CI_LEVEL = 0.95
MULTINOMIAL_MAX_SHARE = 10
"""Draw value counts (multinomial) when the pairs outnumber the distinct differences this many times: one
multinomial category costs about 10x one drawn index (measured with numpy 2 on the dev machine)."""


def bootstrap_ci(d: np.ndarray, counts: np.ndarray | None = None, n_boot: int = N_BOOT, level: float = CI_LEVEL,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean of the paired differences, resampling pairs with replacement.

    Args:
        d: the differences; with ``counts``, the distinct differences.
        counts: how many pairs have each value of ``d``; None when ``d`` lists every pair.
    """
    if counts is None:
        d, counts = np.unique(d, return_counts=True)
    n = int(counts.sum())
    if n == 0:
        return (math.nan, math.nan)
    if len(d) == 1:
        return (float(d[0]), float(d[0]))
    rng = np.random.default_rng(seed)
    if len(d) * MULTINOMIAL_MAX_SHARE <= n:  # few distinct values: draw how many times each is resampled
        means = rng.multinomial(n, counts / n, size=n_boot) @ d / n
    else:  # many distinct values: draw request indices, at most ~4M at a time
        every = np.repeat(d, counts)
        means = np.empty(n_boot)
        step = max(1, 4_000_000 // n)
        for start in range(0, n_boot, step):
            k = min(step, n_boot - start)
            means[start:start + k] = every[rng.integers(0, n, size=(k, n))].mean(axis=1)
    tail = (1 - level) / 2
    lo, hi = np.quantile(means, [tail, 1 - tail])
    return (float(lo), float(hi))


def mcnemar(b: int, c: int) -> tuple[float, float, float]:
    """Exact McNemar test. ``b``: pairs baseline 1 / candidate 0; ``c``: baseline 0 / candidate 1.

    Returns:
        (p_lower, p_higher, p_two): one-sided p-values that the candidate's rate is lower / higher, and the
        two-sided p-value (twice the smaller tail, capped at 1). All 1.0 without discordant pairs.
    """
    from scipy.stats import binom

    n = b + c
    if n == 0:
        return (1.0, 1.0, 1.0)
    p_lower = float(binom.sf(b - 1, n, 0.5))  # P(X >= b)
    p_higher = float(binom.sf(c - 1, n, 0.5))  # P(X >= c)
    return (p_lower, p_higher, min(1.0, 2 * min(p_lower, p_higher)))


def wilcoxon(d: np.ndarray) -> tuple[float, float, float]:
    """Wilcoxon signed-rank test of the paired differences ``d`` (zeros dropped).

    Returns:
        (p_lower, p_higher, p_two) as in ``mcnemar``; all 1.0 when every difference is zero.
    """
    from scipy.stats import wilcoxon as scipy_wilcoxon

    nz = d[d != 0]
    if nz.size == 0:
        return (1.0, 1.0, 1.0)
    p_lower = float(scipy_wilcoxon(nz, alternative="less").pvalue)
    p_higher = float(scipy_wilcoxon(nz, alternative="greater").pvalue)
    p_two = float(scipy_wilcoxon(nz, alternative="two-sided").pvalue)
    return (p_lower, p_higher, p_two)


def holm(p: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (controls the family-wise error rate)."""
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    out = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def benjamini_hochberg(p: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (q-values; control the false discovery rate)."""
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i], reverse=True)
    out = [1.0] * m
    running = 1.0
    for k, i in enumerate(order):
        rank = m - k
        running = min(running, p[i] * m / rank)
        out[i] = min(1.0, running)
    return out


def adjust(p: Sequence[float], method: str) -> list[float]:
    """``holm`` or ``bh`` (Benjamini-Hochberg). A p-value that is not a finite number in [0, 1] (NaN from a plug-in
    metric) is left out of the family and comes back as 1.0: it cannot reorder or hide the others."""
    keep = [i for i, x in enumerate(p) if x is not None and math.isfinite(x) and 0.0 <= x <= 1.0]
    out = [1.0] * len(p)
    if method not in ("holm", "bh"):
        raise ValueError(f"unknown multiple-comparison method {method!r}; expected 'holm' or 'bh'")
    done = (holm if method == "holm" else benjamini_hochberg)([p[i] for i in keep])
    for i, x in zip(keep, done, strict=True):
        out[i] = x
    return out


def required_n(margin: float, sd: float, alpha: float = ALPHA, power: float = POWER) -> int:
    """Pairs needed to detect a mean drop of ``margin`` (module docstring: the planning spread is floored)."""
    from scipy.stats import norm

    if margin <= 0:
        return 0
    s = max(sd, math.sqrt(margin * (1 - margin))) if margin < 1 else sd
    z = norm.ppf(1 - alpha) + norm.ppf(power)
    return math.ceil((z * s / margin) ** 2)


def is_binary(values: np.ndarray) -> bool:
    """True when every value is 0 or 1."""
    return bool(np.all((values == 0) | (values == 1)))


@dataclass(frozen=True)
class Differences:
    """The paired differences of one metric over one group of requests, compressed."""

    values: np.ndarray  # the distinct differences cand - base, ascending
    counts: np.ndarray  # how many pairs have each
    down: int  # pairs with baseline 1 and candidate 0 (McNemar's b)
    up: int  # pairs with baseline 0 and candidate 1 (McNemar's c)
    binary: bool  # every value of both arms is 0 or 1

    @classmethod
    def of(cls, base: np.ndarray, cand: np.ndarray) -> Differences:
        """From aligned per-request values (pair i = base[i], cand[i])."""
        values, counts = np.unique(cand - base, return_counts=True)
        return cls(values, counts, int(((base == 1) & (cand == 0)).sum()), int(((base == 0) & (cand == 1)).sum()),
                   is_binary(base) and is_binary(cand))

    @property
    def n(self) -> int:
        return int(self.counts.sum())

    @property
    def mean(self) -> float:
        return float(self.counts @ self.values) / self.n if self.n else 0.0

    @property
    def sd(self) -> float:
        """Sample standard deviation (ddof 1) of the differences; 0 below two pairs."""
        if self.n < 2:
            return 0.0
        return math.sqrt(float(self.counts @ (self.values - self.mean) ** 2) / (self.n - 1))


def paired_t(diffs: Differences) -> tuple[float, float, float]:
    """Paired t-test of the mean difference against zero: (p_lower, p_higher, p_two) as in ``mcnemar``."""
    from harness.analysis.margin import t_p

    n, mean, sd = diffs.n, diffs.mean, diffs.sd
    lower, higher = float(t_p(n, mean, sd, 0.0, greater=False)), float(t_p(n, mean, sd, 0.0, greater=True))
    return (lower, higher, min(1.0, 2 * min(lower, higher)))


def paired_test(diffs: Differences, seed: int = 0) -> dict[str, Any]:
    """Bootstrap CI and the tests of one metric and group: for 0/1 metrics Tango's score test (the gate's) and exact
    McNemar against zero; for graded ones the paired t (the gate's and against zero) and Wilcoxon (a secondary
    reading, ``p_wilcoxon``: two-sided)."""
    n = diffs.n
    p_wilcoxon = None
    if n and diffs.binary:
        test = "tango"
        p = mcnemar(diffs.down, diffs.up)
    else:
        test = "paired_t"
        p = paired_t(diffs) if n else (1.0, 1.0, 1.0)
        p_wilcoxon = wilcoxon(np.repeat(diffs.values, diffs.counts))[2] if n else 1.0
    lo, hi = bootstrap_ci(diffs.values, diffs.counts, seed=seed)
    return {"test": test, "ci_low": lo, "ci_high": hi, "p_lower": p[0], "p_higher": p[1], "p_two": p[2],
            "sd_diff": diffs.sd, "down": diffs.down, "up": diffs.up, "p_wilcoxon": p_wilcoxon}


TESTS_SCHEMA = pa.schema([
    ("metric", pa.string()), ("segment", pa.string()), ("test", pa.string()),
    ("ci_low", pa.float64()), ("ci_high", pa.float64()),
    ("p_lower", pa.float64()), ("p_higher", pa.float64()), ("p_two", pa.float64()), ("sd_diff", pa.float64()),
    ("down", pa.int64()), ("up", pa.int64()), ("p_wilcoxon", pa.float64()),
])


def tests_table(counts: pa.Table) -> pa.Table:
    """One row per metric, overall (segment null) and per segment, from the compressed differences (columns
    ``metric``, ``segment``, ``overall``, ``d``, ``n``, ``down``, ``up``, ``binary``: ``paired_counts.sql``)."""
    keys = ["metric", "overall", "segment", "d"]
    counts = counts.sort_by([(k, "ascending") for k in keys])
    metric, segment = counts["metric"].to_pylist(), counts["segment"].to_pylist()
    overall = counts["overall"].to_pylist()
    d = counts["d"].to_numpy().astype(float)
    n, down, up = (counts[c].to_numpy().astype(np.int64) for c in ("n", "down", "up"))
    binary = counts["binary"].to_numpy(zero_copy_only=False)
    key = [(m, o, s) for m, o, s in zip(metric, overall, segment, strict=True)]
    bounds = [0] + [i for i in range(1, len(key)) if key[i] != key[i - 1]] + [len(key)]
    rows = []
    for a, b in zip(bounds, bounds[1:], strict=False):
        diffs = Differences(d[a:b], n[a:b], int(down[a:b].sum()), int(up[a:b].sum()), bool(binary[a:b].all()))
        rows.append({"metric": metric[a], "segment": None if overall[a] else segment[a], **paired_test(diffs)})
    rows.sort(key=lambda r: (r["metric"], r["segment"] is not None, r["segment"] or ""))
    return pa.Table.from_pylist(rows, schema=TESTS_SCHEMA)
