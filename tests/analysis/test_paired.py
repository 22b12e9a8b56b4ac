"""Paired statistics against hand-computed and reference values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from harness.analysis.paired import (
    Differences,
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


def test_a_nan_p_value_is_left_out_and_cannot_hide_the_others() -> None:
    from harness.analysis.paired import adjust

    assert adjust([math.nan, 0.001, 0.002], "holm") == pytest.approx([1.0, 0.002, 0.002])
    assert adjust([0.001, math.inf, 0.002], "bh") == pytest.approx([0.002, 1.0, 0.002])


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
        lo, hi = bootstrap_ci(cand - base, n_boot=1000, seed=r)  # 3 distinct values: the multinomial draw
        covered += lo <= true_delta <= hi
    # measured 2026-11-26: 290 of 300 (0.967; 289 with index resampling); the bounds are the binomial 99% band
    # around 0.95 for 300 reps
    assert 0.91 <= covered / reps <= 0.98, covered / reps


def test_paired_test_picks_tango_for_binary_and_the_paired_t_for_graded() -> None:
    base = np.array([1.0] * 20 + [0.0] * 20)
    cand = np.array([0.0] * 12 + [1.0] * 8 + [0.0] * 20)
    t = paired_test(Differences.of(base, cand))
    assert t["test"] == "tango" and t["p_lower"] == pytest.approx(mcnemar(12, 0)[0])  # exact McNemar against 0
    assert (t["down"], t["up"]) == (12, 0)
    rng = np.random.default_rng(0)
    d = rng.normal(-0.1, 0.05, 30)
    g = paired_test(Differences.of(np.full(30, 0.5), 0.5 + d))
    assert g["test"] == "paired_t" and g["p_lower"] == pytest.approx(stats.ttest_1samp(d, 0.0,
                                                                                       alternative="less").pvalue)
    assert g["p_wilcoxon"] == pytest.approx(stats.wilcoxon(d).pvalue)


@pytest.mark.parametrize("distinct", [3, 40])
def test_count_draws_give_the_index_bootstrap(distinct: int) -> None:
    """Drawing how many times each distinct difference is resampled (multinomial) is the same bootstrap as drawing
    request indices: both CIs from 20,000 resamples agree to within Monte Carlo error (checked against the spread
    of the index bootstrap's own bounds over seeds)."""
    rng = np.random.default_rng(7)
    d = rng.integers(-distinct // 2, distinct - distinct // 2, size=1500).astype(float)
    values, counts = np.unique(d, return_counts=True)
    assert len(values) * 10 <= len(d)  # the multinomial path
    counted = bootstrap_ci(values, counts, n_boot=20_000, seed=1)
    indexed = [np.quantile(d[np.random.default_rng(s).integers(0, len(d), size=(20_000, len(d)))].mean(axis=1),
                           [0.025, 0.975]) for s in range(2)]
    width = indexed[0][1] - indexed[0][0]
    for lo, hi in indexed:
        assert abs(counted[0] - lo) < 0.03 * width and abs(counted[1] - hi) < 0.03 * width


def test_many_distinct_values_draw_indices_and_order_does_not_matter() -> None:
    rng = np.random.default_rng(3)
    d = rng.normal(0.2, 1.0, size=500)  # 500 distinct values: index resampling
    ci = bootstrap_ci(d, seed=4)
    assert ci == bootstrap_ci(rng.permutation(d), seed=4)
    assert ci[0] < 0.2 < ci[1] and ci[1] - ci[0] == pytest.approx(2 * 1.96 / math.sqrt(500), rel=0.15)


def test_tests_table_from_sql_counts_matches_the_direct_computation() -> None:
    """``pairs`` -> ``paired_counts.sql`` in DuckDB -> ``tests_table`` gives, per metric and segment, the test of the
    per-request values of that group."""
    import duckdb
    import pyarrow as pa

    from harness.analysis.paired import tests_table
    from harness.analysis.tables import SQL_DIR

    rng = np.random.default_rng(11)
    n = 400
    segment = rng.choice(["a", "b"], size=n)
    base_rate = (rng.random(n) < 0.8).astype(float)
    cand_rate = np.where(rng.random(n) < 0.1, 1 - base_rate, base_rate)
    base_len = rng.integers(10, 200, size=n).astype(float)
    cand_len = base_len + rng.integers(-30, 10, size=n)
    pairs = pa.table({"metric": ["rate"] * n + ["len"] * n, "segment": np.concatenate([segment, segment]),
                      "request_id": [f"r{i}" for i in range(n)] * 2, "base": np.concatenate([base_rate, base_len]),
                      "cand": np.concatenate([cand_rate, cand_len])})
    con = duckdb.connect()
    con.register("pairs", pairs)
    got = {(r["metric"], r["segment"]): r
           for r in tests_table(con.sql((SQL_DIR / "paired_counts.sql").read_text()).to_arrow_table()).to_pylist()}
    assert set(got) == {(m, s) for m in ("rate", "len") for s in (None, "a", "b")}
    for (metric, seg), row in got.items():
        base, cand = (base_rate, cand_rate) if metric == "rate" else (base_len, cand_len)
        mask = np.ones(n, bool) if seg is None else segment == seg
        want = paired_test(Differences.of(base[mask], cand[mask]))
        assert row["test"] == ("tango" if metric == "rate" else "paired_t")
        for key in ("ci_low", "ci_high", "p_lower", "p_higher", "p_two", "sd_diff", "down", "up"):
            assert row[key] == pytest.approx(want[key]), (metric, seg, key)
        assert row["sd_diff"] == pytest.approx(float(np.std(cand[mask] - base[mask], ddof=1)))
