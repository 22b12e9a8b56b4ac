"""Statistics of embedding drift: the A/A floor, the share of requests below it, and MMD two-sample tests.

Pure numpy/scipy; the definitions, null hypotheses and measured false-alarm rate are in ``docs/embedding_drift.md``.

- ``aa_floor``: the q-quantile of the A/A self-similarity (baseline replayed twice under a serving perturbation).
- ``share_below``: the share of requests whose old/new cosine is below the floor, with a 95% Wilson interval.
- ``mmd_permutation_test`` / ``paired_permutation_test``: unbiased MMD^2 between the old and new output embeddings
  with a Gaussian RBF kernel, p-value by permutation (unpaired: relabel the pooled sample; paired: swap within pairs).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.stats import norm

Z95 = float(norm.ppf(0.975))
"""Two-sided 95% normal quantile (1.959964...)."""


def aa_floor(aa_cos: np.ndarray, q: float = 0.05) -> float:
    """The ``q``-quantile of the A/A self-similarity: a cosine below it is rarer than ``q`` under no change.

    Args:
        aa_cos: per-request cosine between two replays of the baseline; NaN entries are ignored.
        q: the quantile, in (0, 1); numpy's default (linear) interpolation.
    """
    if not 0.0 < q < 1.0:
        raise ValueError(f"q must be in (0, 1); got {q}")
    values = _finite(aa_cos, "aa_cos")
    return float(np.quantile(values, q))


def share_below(cos: np.ndarray, floor: float) -> tuple[float, float, float]:
    """Share of requests with ``cos < floor`` and its 95% Wilson score interval.

    Args:
        cos: per-request old/new cosine; NaN entries (requests without both outputs) are ignored.
        floor: the A/A floor (``aa_floor``).

    Returns:
        ``(share, lo, hi)``.
    """
    values = _finite(cos, "cos")
    k = int(np.count_nonzero(values < floor))
    lo, hi = wilson_interval(k, len(values))
    return k / len(values), lo, hi


def wilson_interval(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for ``k`` successes out of ``n`` trials (default 95%)."""
    if n <= 0 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n and n > 0; got k={k}, n={n}")
    p, z2 = k / n, z * z
    denom = 1.0 + z2 / n
    center = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    return max(0.0, center - half), min(1.0, center + half)


def mmd_permutation_test(x: np.ndarray, y: np.ndarray, n_perm: int = 500, seed: int = 0,
                         max_n: int = 1000) -> dict[str, Any]:
    """Unpaired two-sample test: do the old (``x``) and new (``y``) output embeddings come from one distribution?

    H0: the pooled rows are exchangeable (same distribution). The statistic is the unbiased MMD^2 with a Gaussian
    RBF kernel on the unit sphere, ``k(a, b) = exp(-|a - b|^2 / (2 s^2)) = exp(-(1 - cos(a, b)) / s^2)``, the
    bandwidth ``s`` being the median pairwise Euclidean distance of the pooled sample. The p-value is
    ``(1 + #{perm >= observed}) / (1 + n_perm)`` over random relabelings of the pooled sample.

    Args:
        x: ``(n, dim)`` embeddings of one arm (rows are normalized here).
        y: ``(m, dim)`` embeddings of the other arm.
        n_perm: number of permutations.
        seed: seeds the subsampling and the permutations.
        max_n: at most this many rows per side are used (a seeded random subsample).

    Returns:
        ``{"statistic", "p_value", "n_x", "n_y", "n_perm", "bandwidth"}``.
    """
    _check_n_perm(n_perm)
    rng = np.random.default_rng(seed)
    x, y = _prepare(x, "x", rng, max_n), _prepare(y, "y", rng, max_n)
    _same_width(x, y)
    n, m = len(x), len(y)
    labels = np.zeros((n + m, n_perm + 1))
    labels[:n, 0] = 1.0
    picks = rng.permuted(np.tile(np.arange(n + m), (n_perm, 1)), axis=1)[:, :n]
    labels[picks, np.arange(1, n_perm + 1)[:, None]] = 1.0
    return _test(np.vstack([x, y]), labels, n, m, n_perm)


def paired_permutation_test(x: np.ndarray, y: np.ndarray, n_perm: int = 500, seed: int = 0,
                            max_n: int = 1000) -> dict[str, Any]:
    """Paired two-sample test: row ``i`` of ``x`` and of ``y`` are the old and new outputs for the same request.

    H0: within each pair, old and new are exchangeable. Each permutation swaps ``x[i]`` and ``y[i]`` with probability
    1/2, independently per pair; kernel, bandwidth and p-value are those of ``mmd_permutation_test``. The statistic is
    the paired unbiased MMD^2, ``1/(n(n-1)) sum_{i != j} k(x_i,x_j) + k(y_i,y_j) - k(x_i,y_j) - k(x_j,y_i)``: it leaves
    out the within-pair terms ``k(x_i, y_i)``, which are large for paired outputs and would bias the level downwards.
    Those terms do not change under swaps, so the p-value equals the one with the unpaired formula. Pairs are
    subsampled jointly to ``max_n``.

    Returns:
        ``{"statistic", "p_value", "n_x", "n_y", "n_perm", "bandwidth"}``.
    """
    if np.shape(x) != np.shape(y):
        raise ValueError(f"paired test needs x and y of the same shape (row i = one request); got "
                         f"{np.shape(x)} and {np.shape(y)}")
    _check_n_perm(n_perm)
    rng = np.random.default_rng(seed)
    keep = _subsample_index(len(x), rng, max_n)
    x, y = _prepare(np.asarray(x)[keep], "x", rng, None), _prepare(np.asarray(y)[keep], "y", rng, None)
    n = len(x)
    swap = np.hstack([np.zeros((n, 1)), rng.random((n, n_perm)) < 0.5])  # column 0: the observed labelling
    labels = np.vstack([1.0 - swap, swap])  # pooled row i is x[i], row n + i is y[i]
    return _test(np.vstack([x, y]), labels, n, n, n_perm, paired=True)


def _test(z: np.ndarray, labels: np.ndarray, n: int, m: int, n_perm: int, paired: bool = False) -> dict[str, Any]:
    """MMD^2 of every labelling (column 0 observed, the rest permutations) on the pooled kernel matrix."""
    kernel, bandwidth = _kernel(z)
    within = float(np.trace(kernel[:n, n:])) if paired else None  # sum_i k(x_i, y_i), the same for every swap
    stats = _mmd2_unbiased(kernel, labels, n, m, within)
    observed = stats[0]
    tol = 1e-12 * max(1.0, abs(observed))  # ties up to float round-off count as "as extreme"
    exceed = int(np.count_nonzero(stats[1:] >= observed - tol))
    return {"statistic": float(observed), "p_value": (1 + exceed) / (1 + n_perm), "n_x": n, "n_y": m,
            "n_perm": n_perm, "bandwidth": bandwidth}


def _kernel(z: np.ndarray) -> tuple[np.ndarray, float]:
    """Gaussian RBF Gram matrix of unit rows (diagonal zeroed) and its median-heuristic bandwidth."""
    sq = np.clip(2.0 - 2.0 * (z @ z.T), 0.0, 4.0)  # |a - b|^2 = 2 (1 - cos) for unit vectors
    bandwidth = float(np.sqrt(np.median(sq[np.triu_indices(len(z), 1)])))
    if bandwidth <= 0.0:  # more than half the pairs identical: any positive width gives a valid test
        bandwidth = 1.0
    kernel = np.exp(-sq / (2.0 * bandwidth**2))
    np.fill_diagonal(kernel, 0.0)
    return kernel, bandwidth


def _mmd2_unbiased(kernel: np.ndarray, labels: np.ndarray, n: int, m: int, within: float | None) -> np.ndarray:
    """Unbiased MMD^2 for each column of ``labels`` (1 = first sample, 0 = second), one matrix product for all.

    ``within`` (paired samples, n == m): the within-pair kernel sum, left out of the cross term (paired U-statistic).
    """
    k_labels = kernel @ labels
    row_sums = kernel.sum(axis=1)
    s_xx = np.einsum("ip,ip->p", labels, k_labels)
    s_x_all = labels.T @ row_sums
    s_xy = s_x_all - s_xx
    s_yy = row_sums.sum() - 2.0 * s_x_all + s_xx
    if within is not None:
        return (s_xx + s_yy - 2.0 * (s_xy - within)) / (n * (n - 1))
    return s_xx / (n * (n - 1)) + s_yy / (m * (m - 1)) - 2.0 * s_xy / (n * m)


def _prepare(v: np.ndarray, name: str, rng: np.random.Generator, max_n: int | None) -> np.ndarray:
    """Check a (rows, dim) matrix of finite non-zero rows, subsample it, and L2-normalize its rows."""
    v = np.asarray(v, dtype=np.float64)
    if v.ndim != 2 or len(v) < 2:
        raise ValueError(f"{name}: expected an (n, dim) matrix with n >= 2; got shape {v.shape}")
    if max_n is not None:
        v = v[_subsample_index(len(v), rng, max_n)]
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    if not np.all(np.isfinite(norms)) or np.any(norms == 0):
        raise ValueError(f"{name}: rows must be finite and non-zero (embeddings of real outputs)")
    return v / norms


def _subsample_index(n: int, rng: np.random.Generator, max_n: int) -> np.ndarray:
    if max_n < 2:
        raise ValueError(f"max_n must be at least 2; got {max_n}")
    return np.sort(rng.choice(n, max_n, replace=False)) if n > max_n else np.arange(n)


def _check_n_perm(n_perm: int) -> None:
    if n_perm < 1:
        raise ValueError(f"n_perm must be at least 1; got {n_perm}")


def _same_width(x: np.ndarray, y: np.ndarray) -> None:
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y embed into different widths: {x.shape[1]} vs {y.shape[1]}")


def _finite(values: np.ndarray, name: str) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[~np.isnan(v)]
    if len(v) == 0:
        raise ValueError(f"{name}: no values (empty or all NaN)")
    return v
