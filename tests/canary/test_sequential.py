"""The mSPRT's formulas against their definitions, and its false-alarm rate under repeated looks."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, stats

from harness.bench.canary_sim import Metric, family_breach
from harness.bench.canary_traffic import Traffic
from harness.canary import sequential as sq


def test_log_lambda_is_the_normal_mixture_likelihood_ratio() -> None:
    d, v, tau2 = 0.7, 0.09, 0.25
    ratio = integrate.quad(lambda t: stats.norm.pdf(d, t, np.sqrt(v)) * stats.norm.pdf(t, 0, np.sqrt(tau2)),
                           -10, 10)[0] / stats.norm.pdf(d, 0, np.sqrt(v))
    assert sq.log_lambda(np.array(d), np.array(v), np.array(tau2)) == pytest.approx(np.log(ratio), rel=1e-6)


def test_confidence_sequence_inverts_the_test() -> None:
    v, tau2, alpha = np.array(0.04), np.array(0.01), 0.05
    w = sq.half_width(v, tau2, alpha)
    assert sq.p_value(w, v, tau2) == pytest.approx(alpha, rel=1e-9)
    assert sq.p_value(w * 0.99, v, tau2) > alpha


def test_always_valid_is_the_running_minimum() -> None:
    p = np.array([[0.9, 0.3, 0.5, 0.01, 0.2]])
    assert sq.always_valid(p).tolist() == [[0.9, 0.3, 0.3, 0.01, 0.01]]


def test_two_sample_no_difference_and_clear_difference() -> None:
    params = sq.Sequential()
    same = sq.two_sample(sq.moments(np.zeros(200)), sq.moments(np.zeros(50)), params)
    assert float(same.p) == 1.0
    rng = np.random.default_rng(0)
    control, canary = sq.moments(rng.normal(85, 40, 2000)), sq.moments(rng.normal(43, 20, 100))
    look = sq.two_sample(control, canary, params)
    assert float(look.delta) < -30 and float(look.p) < 1e-6 and 0 < float(look.half_width) < 30


def test_empty_arm_is_no_evidence() -> None:
    look = sq.two_sample(sq.moments(np.array([np.nan])), sq.moments(np.ones(10)), sq.Sequential())
    assert float(look.p) == 1.0


def test_repeated_looks_keep_the_false_alarm_rate_below_alpha() -> None:
    """200 A/A canaries of 72 looks at a 5% rate: the mSPRT stays under alpha, the naive z-test does not."""
    sc, params = Traffic(), sq.Sequential()
    n_control, n_canary, _ = sc.counts()
    rate = [Metric("refusal", "rate", 0.05, 0.05, +1)]
    rng = np.random.default_rng(3)
    msprt = family_breach(rate, n_control, n_canary, (200, 72), params, rng, naive=False).any(1).mean()
    naive = family_breach(rate, n_control, n_canary, (200, 72), params, rng, naive=True).any(1).mean()
    assert msprt <= params.alpha and naive > 0.1


def test_a_shift_within_the_margin_never_breaches_and_one_beyond_it_does() -> None:
    """The rule: a breach only when the worse side's always-valid one-sided sequence lies beyond the margin. 5% -> 7%
    refusal against the 3-point margin (200 canaries, 72 looks) does not breach; 5% -> 12% does, every time."""
    sc, params = Traffic(), sq.Sequential()
    n_control, n_canary, _ = sc.counts()
    rng = np.random.default_rng(4)
    within = [Metric("refusal", "rate", 0.05, 0.07, +1, margin=0.03)]
    beyond = [Metric("refusal", "rate", 0.05, 0.12, +1, margin=0.03)]
    hits = [family_breach(m, n_control, n_canary, (200, 72), params, rng, naive=False, checks=7).any(1).mean()
            for m in (within, beyond)]  # at the stats family's level (alpha over its 7 simulated metrics)
    assert hits[0] <= 0.01 and hits[1] == 1.0


def test_the_event_guard_opens_for_a_new_failure_mode_but_not_for_a_rare_event() -> None:
    from harness.canary.windows import expected_events

    assert expected_events(0.001, 0.001, 1000) == 1.0  # 0.1% in both arms: 1 expected event, not gated at 10
    assert expected_events(0.0, 0.05, 1000) == 50.0  # 0% -> 5%: gated at once


def test_one_sided_mixture_is_the_half_normal_integral_and_inverts() -> None:
    d, v, tau2 = 0.3, 0.04, 0.01
    ratio = integrate.quad(lambda t: stats.norm.pdf(d, t, np.sqrt(v)) * 2 * stats.norm.pdf(t, 0, np.sqrt(tau2)),
                           0, 10)[0] / stats.norm.pdf(d, 0, np.sqrt(v))
    assert sq.one_sided_log_lambda(np.array(d), np.array(v), np.array(tau2)) == pytest.approx(np.log(ratio), rel=1e-6)
    w = sq.one_sided_half_width(np.array(v), np.array(tau2), 0.01)
    assert sq.one_sided_p(w, np.array(v), np.array(tau2)) == pytest.approx(0.01, rel=1e-6)
    assert sq.half_width(v, tau2, 0.02) < w < sq.half_width(v, tau2, 0.01)


def test_evidence_from_a_better_period_cannot_certify_a_later_worse_breach() -> None:
    """Refusal (lower is better), margin 3 points. Early looks: the canary clearly better; the present look: 4
    points worse but noisy. The old reading (two-sided running-minimum p against no change, margin on the point
    estimate) called it a breach; the worse side's running bound does not move for the better period."""
    from harness.canary.windows import read_bounds

    better = [(-0.04, 1e-5, 2e-6, 0.05)] * 5
    now = (0.04, 4e-4, 2e-6 * 40, 0.05)
    old_p = float(np.min(sq.p_value(np.array([-0.04] * 5 + [0.04]), np.array([1e-5] * 5 + [4e-4]),
                                    np.array([2e-6] * 5 + [8e-5]))))
    assert old_p < 0.05 and now[0] > 0.03  # the earlier rule: p small, estimate past the margin -> "breach"
    lower, upper = read_bounds([*better, now], higher_is_better=False)
    assert lower < 0 < 0.03  # a better period's lower bounds lie below its own estimates: no breach
    worse = [(0.08, 1e-5, 2e-6, 0.05), now]  # a worse period does count for the worse side
    assert read_bounds(worse, higher_is_better=False)[0] > 0.03


def test_golden_items_both_versions_answered_are_compared_paired() -> None:
    import datetime as dt

    from harness.canary.windows import PAIRED, Sample, Tally, window_checks
    from harness.gate import Policy
    from harness.signals.base import MetricSpec

    t = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    items = [(f"golden:0:{i}", 1.0, 0.0 if i < 6 else 1.0) for i in range(60)]  # 6 of 60 items broke
    samples = [Sample(rid, arm, "faq", "golden_regex", v, t, paired=True)
               for rid, c, k in items for arm, v in (("control", c), ("canary", k))]
    live = [Sample(f"r{i}", "control" if i % 2 else "canary", "faq", "golden_regex", 1.0, t) for i in range(4)]
    tally = Tally(t, 3600.0, 2)
    tally.add_samples(samples + live)
    diff = tally.upto(0)[("golden_regex", None, PAIRED)]
    assert (diff.n, diff.total, diff.total_sq) == (60, -6.0, 6.0)  # the live samples are not paired
    spec = MetricSpec("golden_regex", "golden", "rate", True, "", role="eval", margin_absolute=0.02)
    checks = window_checks(samples, t + dt.timedelta(seconds=1), [spec], Policy(), sq.Sequential(), {})
    assert len(checks) == 2 and all(c.paired and "paired" in c.check.test and c.check.n == 60 for c in checks)
    assert checks[0].check.delta == pytest.approx(-0.1)


def test_the_simulations_zone_is_the_gates() -> None:
    from harness.bench.canary_traffic import zone_agrees

    grid = np.linspace(-0.1, 0.1, 9)
    assert all(zone_agrees(lo, lo + w, 0.03, hib) for lo in grid for w in (0.0, 0.02, 0.1)
               for hib in (True, False, None))


def test_catalogue_simulation_rolls_back_a_terse_canary_and_not_an_aa_one() -> None:
    """Ten canaries of 12 windows on the real catalogue, margins and segments: the zoo-terse shift rolls back in
    every one (stats at once, golden at the first slice, window 6), A/A raises nothing."""
    from harness.bench.canary_sim import CATALOG_SHIFTS
    from harness.bench.canary_traffic import Traffic, simulate

    rng, tr, params = np.random.default_rng(5), Traffic(windows=12), sq.Sequential()
    terse = next(s for name, s in CATALOG_SHIFTS.items() if name.startswith("zoo terse"))
    assert (simulate(terse, 10, tr, params, rng)["rollback"] >= 0).all()
    assert (simulate(CATALOG_SHIFTS["A/A"], 10, tr, params, rng)["investigate"] < 0).all()
