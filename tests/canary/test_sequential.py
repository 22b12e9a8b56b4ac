"""The mSPRT's formulas against their definitions, and its false-alarm rate under repeated looks."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, stats

from harness.bench.canary_sim import Metric, Scenario, family_breach
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
    sc, params = Scenario(), sq.Sequential()
    n_control, n_canary, _ = sc.counts()
    rate = [Metric("refusal", "rate", 0.05, 0.05, +1)]
    rng = np.random.default_rng(3)
    msprt = family_breach(rate, n_control, n_canary, (200, 72), params, rng, naive=False).any(1).mean()
    naive = family_breach(rate, n_control, n_canary, (200, 72), params, rng, naive=True).any(1).mean()
    assert msprt <= params.alpha and naive > 0.1


def test_a_shift_within_the_margin_never_breaches_and_one_beyond_it_does() -> None:
    """The rule: a breach only when the always-valid confidence sequence lies wholly beyond the margin. 5% -> 7%
    refusal against the 3-point margin (200 canaries, 72 looks) does not breach; 5% -> 12% does, every time."""
    sc, params = Scenario(), sq.Sequential()
    n_control, n_canary, _ = sc.counts()
    rng = np.random.default_rng(4)
    within = [Metric("refusal", "rate", 0.05, 0.07, +1, margin=0.03)]
    beyond = [Metric("refusal", "rate", 0.05, 0.12, +1, margin=0.03)]
    assert family_breach(within, n_control, n_canary, (200, 72), params, rng, naive=False).any(1).mean() <= 0.01
    assert family_breach(beyond, n_control, n_canary, (200, 72), params, rng, naive=False).any(1).mean() == 1.0


def test_the_event_guard_opens_for_a_new_failure_mode_but_not_for_a_rare_event() -> None:
    from harness.canary.windows import expected_events

    assert expected_events(0.001, 0.001, 1000) == 1.0  # 0.1% in both arms: 1 expected event, not gated at 10
    assert expected_events(0.0, 0.05, 1000) == 50.0  # 0% -> 5%: gated at once
