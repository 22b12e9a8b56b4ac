"""Paired statistics: both arms answered the SAME requests, so every test here works on per-request pairs.

For each metric, overall and per segment, over the requests where both arms have a value
(``d_i = candidate_i - baseline_i``):

- ``delta`` = mean(d); its 95% CI is the **paired percentile bootstrap** (resample requests with
  replacement, ``N_BOOT`` times, seeded);
- the paired test of H0 "no change" (the candidate's and the baseline's values are exchangeable within
  each request): **McNemar's exact test** for binary metrics (only the discordant pairs count:
  ``b`` = baseline 1 / candidate 0, ``c`` = baseline 0 / candidate 1; under H0 ``b ~ Binomial(b + c, 1/2)``)
  and the **Wilcoxon signed-rank test** for graded ones (zero differences dropped, the ``wilcox`` method;
  exact distribution for small n, normal approximation otherwise, as scipy chooses). Both one-sided
  p-values are kept (``p_lower``: the candidate is lower; ``p_higher``) and the two-sided one;
- the **power calculation** for the metric's margin ``m``: the pairs needed to detect a drop of ``m`` with a
  one-sided test at ``ALPHA`` and power ``POWER`` (normal approximation of the paired mean difference),
  ``n_required = ((z_{1-alpha} + z_{power}) * s / m)^2``, with ``s = max(sd(d), sqrt(m (1 - m)))``: the
  observed spread, floored at the smallest spread a drop of ``m`` can have in a metric bounded to
  [0, 1] (every changed request changes by the full unit). For a binary metric this is Connor's (1987)
  McNemar sample size with the discordant share at its smallest possible value, ``m``.

Multiple comparisons: ``holm`` and ``benjamini_hochberg`` adjust a family of p-values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

N_BOOT = 2000
ALPHA = 0.05
POWER = 0.8
CI_LEVEL = 0.95


def bootstrap_ci(d: np.ndarray, n_boot: int = N_BOOT, level: float = CI_LEVEL, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI of mean(d), resampling the pairs (rows of ``d``) with replacement."""
    n = len(d)
    if n == 0:
        return (math.nan, math.nan)
    if n == 1 or np.all(d == d[0]):
        return (float(d[0]), float(d[0]))
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    step = max(1, 4_000_000 // n)  # bounded memory: at most ~4M indices at a time
    for start in range(0, n_boot, step):
        k = min(step, n_boot - start)
        means[start:start + k] = d[rng.integers(0, n, size=(k, n))].mean(axis=1)
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
    """``holm`` or ``bh`` (Benjamini-Hochberg)."""
    if method == "holm":
        return holm(p)
    if method == "bh":
        return benjamini_hochberg(p)
    raise ValueError(f"unknown multiple-comparison method {method!r}; expected 'holm' or 'bh'")


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


def paired_test(base: np.ndarray, cand: np.ndarray, seed: int = 0) -> dict[str, Any]:
    """Delta, bootstrap CI and the paired test of one metric over aligned per-request values."""
    d = cand - base
    if len(d) and is_binary(base) and is_binary(cand):
        test = "mcnemar"
        p = mcnemar(int(((base == 1) & (cand == 0)).sum()), int(((base == 0) & (cand == 1)).sum()))
    else:
        test = "wilcoxon"
        p = wilcoxon(d) if len(d) else (1.0, 1.0, 1.0)
    lo, hi = bootstrap_ci(d, seed=seed)
    return {"test": test, "ci_low": lo, "ci_high": hi, "p_lower": p[0], "p_higher": p[1], "p_two": p[2],
            "sd_diff": float(d.std(ddof=1)) if len(d) > 1 else 0.0}


TESTS_SCHEMA = pa.schema([
    ("metric", pa.string()), ("segment", pa.string()), ("test", pa.string()),
    ("ci_low", pa.float64()), ("ci_high", pa.float64()),
    ("p_lower", pa.float64()), ("p_higher", pa.float64()), ("p_two", pa.float64()), ("sd_diff", pa.float64()),
])


def tests_table(pairs: pa.Table) -> pa.Table:
    """One row per metric, overall (segment null) and per segment, from the per-request ``pairs`` table
    (columns ``metric``, ``segment``, ``base``, ``cand``; see ``harness/analysis/pairs.sql``)."""
    metric = np.asarray(pairs["metric"].to_pylist(), dtype=object)
    segment = np.asarray(pairs["segment"].to_pylist(), dtype=object)
    base = pairs["base"].to_numpy(zero_copy_only=False).astype(float)
    cand = pairs["cand"].to_numpy(zero_copy_only=False).astype(float)
    rows = []
    for name in sorted(set(metric.tolist())):
        in_metric = metric == name
        groups: list[tuple[str | None, np.ndarray]] = [(None, in_metric)]
        groups += [(s, in_metric & (segment == s)) for s in sorted(set(segment[in_metric].tolist()))]
        for seg, mask in groups:
            rows.append({"metric": name, "segment": seg, **paired_test(base[mask], cand[mask])})
    return pa.Table.from_pylist(rows, schema=TESTS_SCHEMA)
