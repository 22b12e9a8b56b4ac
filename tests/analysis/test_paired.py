"""Paired statistics against hand-computed and reference values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from harness.analysis.paired import (
    benjamini_hochberg,
    bootstrap_ci,
    holm,
    mcnemar,
    paired_test,
    required_n,
    wilcoxon,
)


def test_mcnemar_exact_on_a_known_table() -> None:
    # b = 10 pairs went 1 -> 0, c = 2 went 0 -> 1: P(X >= 10 | Bin(12, 1/2)) = (66 + 12 + 1) / 4096
    p_lower, p_higher, p_two = mcnemar(10, 2)
    assert p_lower == pytest.approx(79 / 4096)
    assert p_higher == pytest.approx(1 - (1 + 12) / 4096)  # P(X >= 2) = 1 - P(X <= 1)
    assert p_two == pytest.approx(2 * 79 / 4096)
    assert mcnemar(0, 0) == (1.0, 1.0, 1.0)
    assert mcnemar(5, 0)[0] == pytest.approx(1 / 32)


def test_wilcoxon_on_known_differences() -> None:
    # five positive differences: of the 2^5 sign patterns only "all positive" reaches W+ = 15
    p_lower, p_higher, p_two = wilcoxon(np.array([1.0, 2.0, 3.0, 4.0, 5.0]))
    assert p_higher == pytest.approx(1 / 32) and p_two == pytest.approx(2 / 32) and p_lower == pytest.approx(1.0)
    # zeros are dropped (the "wilcox" method): same answer with zeros added
    assert wilcoxon(np.array([0, 0, 1.0, 2, 3, 4, 5]))[1] == pytest.approx(1 / 32)
    assert wilcoxon(np.zeros(10)) == (1.0, 1.0, 1.0)


def test_holm_and_bh_on_known_p_values() -> None:
    p = [0.01, 0.04, 0.03, 0.005]
    # Holm: sorted .005 .01 .03 .04 -> x4, x3, x2, x1 = .02 .03 .06 .04, made monotone: .02 .03 .06 .06
    assert holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # BH: p * 4 / rank = .02 .02 .04 .04 (ranks 1-4 of .005 .01 .03 .04), monotone from the top
    assert benjamini_hochberg(p) == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert benjamini_hochberg(p) == pytest.approx(list(stats.false_discovery_control(p, method="bh")))
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])


def test_required_n_matches_the_formula() -> None:
    z = stats.norm.ppf(0.95) + stats.norm.ppf(0.8)
    assert required_n(0.02, 0.0) == math.ceil((z * math.sqrt(0.02 * 0.98) / 0.02) ** 2) == 303
    assert required_n(0.05, 0.3) == math.ceil((z * 0.3 / 0.05) ** 2)


def test_bootstrap_ci_covers_the_true_delta() -> None:
    """Coverage of the 95% paired bootstrap CI on synthetic paired binary data with a known delta."""
    rng = np.random.default_rng(1)
    n, reps, true_delta, covered = 200, 300, -0.05, 0
    for r in range(reps):
        base = (rng.random(n) < 0.8).astype(float)
        flip_down = (base == 1) & (rng.random(n) < 0.1)  # P(1 -> 0) = 0.8 * 0.1 = 0.08
        flip_up = (base == 0) & (rng.random(n) < 0.15)  # P(0 -> 1) = 0.2 * 0.15 = 0.03
        cand = np.where(flip_down, 0.0, np.where(flip_up, 1.0, base))
        lo, hi = bootstrap_ci(cand - base, n_boot=1000, seed=r)
        covered += lo <= true_delta <= hi
    # measured 2026-11-26: 289 of 300 (0.963); the bounds are the binomial 99% band around 0.95 for 300 reps
    assert 0.91 <= covered / reps <= 0.98, covered / reps


def test_paired_test_picks_mcnemar_for_binary_and_wilcoxon_for_graded() -> None:
    base = np.array([1.0] * 20 + [0.0] * 20)
    cand = np.array([0.0] * 12 + [1.0] * 8 + [0.0] * 20)
    t = paired_test(base, cand)
    assert t["test"] == "mcnemar" and t["p_lower"] == pytest.approx(mcnemar(12, 0)[0])
    g = paired_test(np.linspace(0, 1, 30), np.linspace(0, 1, 30) - 0.1)
    assert g["test"] == "wilcoxon" and g["p_lower"] < 1e-5 and g["ci_high"] == pytest.approx(-0.1)
