"""The drift statistics on known arrays and synthetic embeddings (pure logic)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import brentq

from harness.signals.drift_stats import (
    aa_floor,
    mmd_permutation_test,
    paired_permutation_test,
    share_below,
    wilson_interval,
)

SEEDS = range(40)
N, N_PERM, DIM = 100, 200, 16


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def blob(seed: int, n: int = N, shift: float = 0.0) -> np.ndarray:
    """A normalized Gaussian blob around e0 (plus ``shift`` along e1)."""
    mu = np.zeros(DIM)
    mu[0], mu[1] = 3.0, shift
    return _unit(mu + np.random.default_rng(seed).standard_normal((n, DIM)))


def pairs(seed: int, n: int = N, shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Paired old/new embeddings sharing a per-request component; exchangeable within pairs when shift is 0."""
    rng = np.random.default_rng(seed)
    mu = np.zeros(DIM)
    mu[0] = 3.0
    common = mu + rng.standard_normal((n, DIM))
    shifted = np.zeros(DIM)
    shifted[1] = shift
    return (_unit(common + 0.5 * rng.standard_normal((n, DIM))),
            _unit(common + shifted + 0.5 * rng.standard_normal((n, DIM))))


def test_aa_floor_is_the_quantile() -> None:
    assert aa_floor(np.arange(101) / 100) == pytest.approx(0.05)
    assert aa_floor(np.array([0.2, np.nan, 0.4, 0.6]), q=0.5) == pytest.approx(0.4)
    with pytest.raises(ValueError, match="q must be"):
        aa_floor(np.ones(3), q=1.0)
    with pytest.raises(ValueError, match="no values"):
        aa_floor(np.array([np.nan]))


def _wilson_by_root_finding(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """The Wilson interval by its definition: the p with |k/n - p| = z sqrt(p (1 - p) / n)."""
    f = lambda p: (k / n - p) ** 2 - z * z * p * (1 - p) / n  # noqa: E731
    inner = min(max(k / n, 1e-12), 1 - 1e-12)  # f <= 0 here, f > 0 near 0 (if k > 0) and near 1 (if k < n)
    lo = 0.0 if k == 0 else brentq(f, 1e-12, inner)
    hi = 1.0 if k == n else brentq(f, inner, 1 - 1e-12)
    return lo, hi


@pytest.mark.parametrize(("k", "n"), [(10, 100), (0, 20), (20, 20), (3, 7), (512, 805)])
def test_wilson_interval_matches_its_definition(k: int, n: int) -> None:
    assert wilson_interval(k, n) == pytest.approx(_wilson_by_root_finding(k, n), abs=1e-9)


def test_share_below_with_wilson_ci() -> None:
    cos = np.r_[np.full(10, 0.5), np.full(90, 0.95), np.nan]
    share, lo, hi = share_below(cos, floor=0.9)
    assert share == pytest.approx(0.10)
    assert (round(lo, 4), round(hi, 4)) == (0.0552, 0.1744)  # hand-computed 95% Wilson for 10 of 100


def false_alarm_rate(p_values: list[float], alpha: float = 0.05) -> float:
    return sum(p < alpha for p in p_values) / len(p_values)


def test_mmd_false_alarm_rate_is_near_alpha() -> None:
    # ~5% expected; <= 0.15 over 40 seeds is a loose check (P(>= 7 of 40 | 5%) = 0.34%).
    p = [mmd_permutation_test(blob(1000 + s), blob(2000 + s), n_perm=N_PERM, seed=s)["p_value"] for s in SEEDS]
    assert false_alarm_rate(p) <= 0.15


def test_mmd_detects_a_shift() -> None:
    res = mmd_permutation_test(blob(1), blob(2, shift=1.0), n_perm=N_PERM, seed=0)
    assert res["p_value"] < 0.01
    assert res["statistic"] > 0 and res["n_x"] == res["n_y"] == N and res["n_perm"] == N_PERM
    assert 0 < res["bandwidth"] < 2


def test_paired_false_alarm_rate_is_near_alpha() -> None:
    # Same loose bound as the unpaired test: the swap null is exact, so the expected rate is <= 5%.
    p = [paired_permutation_test(*pairs(s), n_perm=N_PERM, seed=s)["p_value"] for s in SEEDS]
    assert false_alarm_rate(p) <= 0.15


def test_paired_detects_a_shift() -> None:
    assert paired_permutation_test(*pairs(3, shift=1.0), n_perm=N_PERM, seed=0)["p_value"] < 0.01


def test_statistics_match_the_textbook_sums() -> None:
    x, y = pairs(8, n=12, shift=0.5)
    paired, unpaired = paired_permutation_test(x, y, n_perm=10), mmd_permutation_test(x, y, n_perm=10)

    def k(a: np.ndarray, b: np.ndarray, s: float) -> float:
        return math.exp(-float(np.sum((a - b) ** 2)) / (2 * s * s))

    n, s = len(x), paired["bandwidth"]
    off = [(i, j) for i in range(n) for j in range(n) if i != j]
    u_paired = sum(k(x[i], x[j], s) + k(y[i], y[j], s) - k(x[i], y[j], s) - k(x[j], y[i], s) for i, j in off)
    assert paired["statistic"] == pytest.approx(u_paired / (n * (n - 1)), rel=1e-9)
    within = sum(k(x[i], x[j], s) + k(y[i], y[j], s) for i, j in off) / (n * (n - 1))
    cross = sum(k(x[i], y[j], s) for i in range(n) for j in range(n)) / n**2
    assert unpaired["statistic"] == pytest.approx(within - 2 * cross, rel=1e-9)


def test_identical_arms_never_fire() -> None:
    x = blob(5, n=50)
    same = paired_permutation_test(x, x, n_perm=N_PERM)
    assert same["p_value"] == 1.0 and abs(same["statistic"]) < 1e-12
    assert mmd_permutation_test(x, x, n_perm=N_PERM)["p_value"] > 0.5


def test_seeded_subsampling_is_reproducible() -> None:
    x, y = blob(6, n=300), blob(7, n=250)
    a = mmd_permutation_test(x, y, n_perm=50, seed=4, max_n=120)
    assert a == mmd_permutation_test(x, y, n_perm=50, seed=4, max_n=120)
    assert (a["n_x"], a["n_y"]) == (120, 120)
    assert paired_permutation_test(x[:250], y, n_perm=50, max_n=80)["n_x"] == 80


def test_p_value_is_never_zero() -> None:
    p = mmd_permutation_test(blob(1), blob(2, shift=3.0), n_perm=N_PERM)["p_value"]
    assert math.isclose(p, 1 / (1 + N_PERM))


def test_bad_input_is_rejected() -> None:
    with pytest.raises(ValueError, match="same shape"):
        paired_permutation_test(blob(1, n=10), blob(2, n=11))
    with pytest.raises(ValueError, match="different widths"):
        mmd_permutation_test(blob(1, n=10), np.ones((10, 3)))
    with pytest.raises(ValueError, match="non-zero"):
        mmd_permutation_test(np.zeros((5, DIM)), blob(2, n=5))
    with pytest.raises(ValueError, match="n_perm"):
        mmd_permutation_test(blob(1, n=5), blob(2, n=5), n_perm=0)
