"""The alert policy on hand-made summary rows (pure logic): families, direction, segments, power."""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np

from harness.analysis.paired import Differences, paired_test, wilcoxon
from harness.gate import VERDICT_CODES, Policy, Threshold, Verdict, decide, metric_checks
from harness.signals.drift import drift_checks

P = Policy(thresholds={"json_valid": Threshold(absolute=0.05), "hedge": Threshold(absolute=0.05),
                       "chars": Threshold(relative=0.15)})
ROLES = {"stats": "degradation", "golden": "eval", "judge": "eval", "toy": "divergence"}
MARGINS = {"golden": 0.02, "judge": 0.25}  # the families' declared defaults


def row(metric: str, delta: float, *, family: str = "stats", base: float = 0.5, hib: bool | None = True,
        n: int = 500, segment: str | None = None, sd: float | None = None, changed: float | None = None,
        advisory: bool = False) -> dict[str, Any]:
    """A summary row. Binary (``sd`` None): a share ``changed`` of the pairs changed (default ``|delta|``), split
    into 0 -> 1 (up) and 1 -> 0 (down) pairs so that ``(up - down) / n = delta``; graded: differences with sd ``sd``."""
    up = down = 0
    binary = sd is None
    if sd is None:
        share = abs(delta) if changed is None else changed
        up, down = round(n * (share + delta) / 2), round(n * (share - delta) / 2)
        delta = (up - down) / n
        sd = math.sqrt(max((up + down) / n - delta ** 2, 0.0) * n / (n - 1))
    return {"metric": metric, "family": family, "segment": segment, "n": n, "baseline": base,
            "candidate": base + delta, "delta": delta, "ci_low": delta - 0.01, "ci_high": delta + 0.01,
            "rel_delta": delta / base, "higher_is_better": hib, "test": "tango" if binary else "paired_t",
            "p_lower": 1.0, "p_higher": 1.0, "p_two": 1.0,
            "sd_diff": sd, "down": down, "up": up, "role": ROLES[family], "advisory": advisory,
            "margin_absolute": MARGINS.get(family), "margin_relative": None}


def gate(rows: list[dict[str, Any]], policy: Policy, drift: list[dict[str, Any]] | None = None) -> Verdict:
    """The gate as ``evaluate`` runs it: paired checks, the drift family's checks, roles from the catalog."""
    return decide(metric_checks(rows, policy) + drift_checks(drift or [], 0.05, policy))


def test_no_change_passes() -> None:
    v = gate([row("json_valid", 0.0), row("hedge", 0.0, hib=False)], P)
    assert (v.verdict, v.direction, v.exit_code, v.breaches) == ("PASS", "NONE", 0, ())


def test_a_family_counts_once_two_families_roll_back() -> None:
    same_family = gate([row("json_valid", -0.2), row("hedge", 0.3, hib=False)], P)
    assert same_family.verdict == "INVESTIGATE" and len(same_family.breaches) == 2
    assert same_family.direction == "REGRESSION" and same_family.families["stats"] == "breached"
    two = gate([row("json_valid", -0.2), row("golden_exact_match", -0.1, family="golden")], P)
    assert two.verdict == "ROLLBACK" and two.exit_code == VERDICT_CODES["ROLLBACK"]


def test_degradation_plus_divergence_rolls_back() -> None:
    drift = [{"arm": "candidate", "segment": None, "n": 500, "n_below": 250, "share_below": 0.5,
              "below_ci_low": 0.45, "below_ci_high": 0.55}]
    v = gate([row("json_valid", -0.2)], P, drift)
    assert v.verdict == "ROLLBACK" and v.families == {"stats": "breached", "drift": "breached"}


def test_divergence_alone_investigates() -> None:
    drift = [{"arm": "candidate", "segment": None, "n": 500, "n_below": 250, "share_below": 0.5,
              "below_ci_low": 0.45, "below_ci_high": 0.55},
             {"arm": "aa", "segment": None, "n": 500, "n_below": 25, "share_below": 0.05,
              "below_ci_low": 0.03, "below_ci_high": 0.07}]
    v = gate([row("json_valid", 0.0)], P, drift)
    assert (v.verdict, v.direction) == ("INVESTIGATE", "DIVERGENCE")
    within = [{**drift[0], "n_below": 60, "share_below": 0.12}]  # 12% vs A/A 5% + margin 10%: not diverged
    assert gate([row("json_valid", 0.0)], P, within).verdict == "PASS"


def test_eval_improvement_holds_for_signoff_but_not_with_a_degradation() -> None:
    better = row("golden_regex", +0.1, family="golden")
    v = gate([row("json_valid", 0.0), better], P)
    assert (v.verdict, v.direction, v.exit_code) == ("HOLD_FOR_SIGNOFF", "IMPROVEMENT", 12)
    assert [c.metric for c in v.improvements] == ["golden_regex"]
    mixed = gate([row("json_valid", -0.2), better], P)
    assert mixed.verdict == "INVESTIGATE" and mixed.direction == "REGRESSION"
    stats_better = gate([row("json_valid", +0.3)], P)  # output statistics never count as an improvement
    assert stats_better.verdict == "PASS"


def test_two_sided_metric_breaches_both_ways() -> None:
    for delta in (-40.0, 40.0):
        v = gate([row("chars", delta, base=100.0, hib=None, sd=30.0)], P)
        assert v.verdict == "INVESTIGATE", delta


def test_within_margin_is_ok_and_a_straddling_interval_is_inconclusive_not_pass() -> None:
    assert gate([row("json_valid", -0.03, n=2000)], P).verdict == "PASS"  # lower bound -3.8 points > -5
    # a point estimate past the margin on 40 noisy pairs: the interval straddles -5 points either way
    v = gate([row("json_valid", -0.2, n=40, changed=0.6)], P)
    assert v.verdict == "INSUFFICIENT_DATA" and v.checks[0].status == "inconclusive"
    assert v.reasons[0].startswith("inconclusive: stats/json_valid")
    # 4 points down on 500 pairs: neither shown within 5 points nor beyond them
    assert gate([row("json_valid", -0.04)], P).checks[0].status == "inconclusive"


def test_one_broken_segment_is_caught() -> None:
    overall = row("json_valid", -0.02)  # within the margin overall
    segments = [row("json_valid", 0.0, segment=s) for s in ("a", "b", "c")]
    segments.append(row("json_valid", -0.3, segment="d", n=100))
    v = gate([overall, *segments], P)
    assert v.verdict == "INVESTIGATE" and [(b.metric, b.segment) for b in v.breaches] == [("json_valid", "d")]
    assert "[d]" in v.reasons[0]


def test_a_hundred_noisy_segments_raise_no_alarm() -> None:
    rng = random.Random(0)  # no change: 12 of 40 pairs changed per segment, each way with probability 1/2
    downs = [sum(rng.random() < 0.5 for _ in range(12)) for _ in range(100)]
    rows = [row("json_valid", (12 - 2 * k) / 40, segment=f"s{i}", n=40, changed=0.3) for i, k in enumerate(downs)]
    v = gate([row("json_valid", 0.0, n=4000), *rows], P)
    assert v.verdict == "PASS" and not v.breaches, v.reasons
    # alpha split over the 100 segments (the overall check cannot fire: no pair changed, so it is left out)
    assert {c.level for c in v.segment_checks} == {0.05 / 100}
    assert "segment check(s) inconclusive" in v.reasons[-1]  # not a silent PASS: named
    assert min(downs) <= 2 or max(downs) >= 10  # some segment moved beyond the margin by chance


def test_underpowered_golden_metric_is_insufficient_data() -> None:
    # 10% of 200 answers flip either way: MDE 1.645 sqrt(0.1 / 200) ~ 3.7 points > the 2-point margin;
    # (2.486 sd / 0.02)^2 = 1554 pairs needed at the level 0.05 (the only check that can fire), sd = 0.317 (ddof 1)
    small = gate([row("golden_exact_match", 0.0, family="golden", n=200, changed=0.1)], P)
    assert small.verdict == "INSUFFICIENT_DATA" and small.underpowered[0].n_required == 1554
    assert small.checks[0].mde > 0.02 and small.checks[0].status == "inconclusive"
    assert "MDE 0.0" in small.reasons[0] and "1554 pairs needed for 80% power" in small.reasons[0]
    assert gate([row("golden_exact_match", 0.0, family="golden", n=2000, changed=0.1)], P).verdict == "PASS"
    # identical answers (no pair changed): the change is exactly 0, non-inferior (identity); one changed pair of
    # 400 already gives the score bounds their width
    same = gate([row("golden_exact_match", 0.0, family="golden", n=400)], P)
    assert same.verdict == "PASS" and same.checks[0].mde == 0.0
    one = gate([row("golden_exact_match", 0.0025, family="golden", n=400)], P).checks[0]
    assert one.status == "ok" and 0.005 < one.mde < 0.02


def test_too_few_requests_is_insufficient_data() -> None:
    v = gate([row("json_valid", -0.5, n=10)], P)
    assert v.verdict == "INSUFFICIENT_DATA" and v.checks[0].status == "too_few"


def test_uncalibrated_judge_criterion_is_advisory() -> None:
    judged = row("judge_accuracy", -1.0, family="judge", base=4.0, sd=1.0, advisory=True)
    v = gate([row("json_valid", 0.0), judged], P)
    assert v.verdict == "PASS" and v.checks[1].status == "advisory"
    assert gate([judged], P).verdict == "INSUFFICIENT_DATA"  # an untrusted metric alone supports no PASS
    assert gate([{**judged, "advisory": False}], P).verdict == "INVESTIGATE"


def test_ungated_metrics_are_ignored_and_reason_names_numbers() -> None:
    v = gate([row("output_tokens", -50.0, base=100.0, hib=None, sd=30.0), row("json_valid", -0.2)], P)
    assert [c.metric for c in v.checks] == ["json_valid"]
    r = v.breaches[0].reason
    assert "stats/json_valid" in r and "0.5 -> 0.3" in r and "tango" in r and "abs 0.05" in r


def test_drift_segment_is_read_against_its_own_aa_level() -> None:
    def d(arm: str, seg: str | None, share: float, n: int = 200) -> dict[str, Any]:
        return {"arm": arm, "segment": seg, "n": n, "n_below": round(share * n), "share_below": share,
                "below_ci_low": share - 0.05, "below_ci_high": share + 0.05}

    noisy = [d("aa", None, 0.05), d("aa", "sum", 0.40), d("candidate", None, 0.06), d("candidate", "sum", 0.45)]
    assert gate([row("json_valid", 0.0)], P, noisy).verdict == "PASS"  # 45% vs the segment's own A/A 40%
    moved = [*noisy[:3], d("candidate", "sum", 0.80)]
    v = gate([row("json_valid", 0.0)], P, moved)
    assert v.verdict == "INVESTIGATE" and "A/A level 40.0%" in v.reasons[0]


def test_a_direction_less_breach_is_divergence_and_says_what_would_settle_it() -> None:
    v = gate([row("chars", -40.0, base=100.0, hib=None, family="toy", sd=30.0)], P)
    assert (v.verdict, v.direction) == ("INVESTIGATE", "DIVERGENCE") and v.breaches[0].role == "divergence"
    assert "What would settle it" in v.reasons[-1] and "references" in v.reasons[-1]
    with_eval = gate([row("chars", -40.0, base=100.0, hib=None, family="toy", sd=30.0),
                      row("golden_regex", +0.1, family="golden")], P)
    assert (with_eval.verdict, with_eval.direction) == ("HOLD_FOR_SIGNOFF", "IMPROVEMENT")  # evals settle it


def test_a_direction_given_per_segment_makes_it_a_degradation_there() -> None:
    rows = [row("chars", -40.0, base=100.0, hib=None, family="toy", segment="code", sd=30.0),
            row("chars", -40.0, base=100.0, hib=None, family="toy", segment="chat", sd=30.0)]
    policy = Policy(thresholds=P.thresholds, directions={"chars": {"code": "higher_is_better"}})
    v = gate([row("json_valid", 0.0), *rows], policy)
    by_segment = {c.segment: c for c in v.segment_checks if c.metric == "chars"}
    assert by_segment["code"].role == "degradation" and by_segment["chat"].role == "divergence"
    assert (v.verdict, v.direction) == ("INVESTIGATE", "REGRESSION")
    assert gate([row("json_valid", 0.0), *rows], Policy(thresholds=P.thresholds,
                directions={"chars": {"code": "lower_is_better"}})).direction == "DIVERGENCE"  # shorter is fine


def test_a_direction_per_segment_can_turn_a_metrics_own_direction_round() -> None:
    fewer_refusals = [row("refusal", -0.5, hib=False, segment=s) for s in ("unsafe", "safe")]
    assert gate([row("json_valid", 0.0), *fewer_refusals], P).verdict == "PASS"  # fewer refusals: better by default
    policy = Policy(thresholds={**P.thresholds, "refusal": Threshold(absolute=0.03)},
                    directions={"refusal": {"unsafe": "higher_is_better"}})
    v = gate([row("json_valid", 0.0), *fewer_refusals], policy)
    assert (v.verdict, v.direction) == ("INVESTIGATE", "REGRESSION")
    assert [(b.metric, b.segment) for b in v.breaches] == [("refusal", "unsafe")]


def measured(metric: str, base: np.ndarray, cand: np.ndarray, family: str = "golden",
             segment: str | None = None) -> dict[str, Any]:
    """A summary row computed by the paired analysis itself from per-request values."""
    t = paired_test(Differences.of(base, cand))
    delta = float(np.mean(cand - base))
    return {"metric": metric, "family": family, "segment": segment, "n": len(base), "baseline": float(base.mean()),
            "candidate": float(cand.mean()), "delta": delta, "rel_delta": delta / float(base.mean()),
            "higher_is_better": True, "role": ROLES[family], "advisory": False,
            "margin_absolute": MARGINS.get(family), "margin_relative": None, **t}


def few_items_break(n: int) -> tuple[np.ndarray, np.ndarray]:
    """90% of items gain 0.01, 10% collapse by 0.5: the mean drops 4.1 points, the pseudo-median rises."""
    base = np.full(n, 0.7)
    return base, base + np.where(np.arange(n) % 10 == 0, -0.5, 0.01)


def test_a_few_items_that_break_are_never_read_as_ok() -> None:
    for n in (40, 100, 200, 400, 1000):
        c = metric_checks([measured("golden_rouge_l", *few_items_break(n))], P)[0]
        assert c.test == "paired_t" and c.status in ("breach", "inconclusive"), (n, c.reason)
    assert metric_checks([measured("golden_rouge_l", *few_items_break(100))], P)[0].status == "inconclusive"
    assert metric_checks([measured("golden_rouge_l", *few_items_break(200))], P)[0].status == "breach"
    base, cand = few_items_break(400)
    assert wilcoxon(cand - base)[0] > 0.99  # the signed-rank test sees 90% of items going up: no "lower" at all


def test_identical_outputs_are_non_inferior_and_improved_needs_the_bound_past_the_margin() -> None:
    base = np.linspace(0.2, 0.9, 400)
    same = metric_checks([measured("golden_rouge_l", base, base.copy())], P)[0]
    assert (same.status, same.ci_low, same.ci_high, same.mde) == ("ok", 0.0, 0.0, 0.0)
    rng = np.random.default_rng(5)
    small_gain = base + 0.015 + rng.normal(0, 0.02, 400)  # +1.5 points: better, not beyond the 2-point margin
    assert metric_checks([measured("golden_rouge_l", base, small_gain)], P)[0].status == "ok"
    big_gain = base + 0.05 + rng.normal(0, 0.02, 400)
    assert metric_checks([measured("golden_rouge_l", base, big_gain)], P)[0].status == "improved"


def test_non_finite_numbers_never_reach_a_test_and_checks_that_cannot_fire_are_not_counted() -> None:
    nan_row = {**row("golden_regex", 0.0, family="golden"), "delta": math.nan, "n_nonfinite": 3}
    broken = row("golden_exact_match", -0.3, family="golden")
    quiet = [row("golden_rouge_l", 0.0, family="golden", segment=s, n=40) for s in "abcdefgh"]  # nothing changed
    checks = metric_checks([nan_row, broken, *quiet], P)
    by = {(c.metric, c.segment): c for c in checks}
    assert by[("golden_regex", None)].status == "too_few"
    # the only check that can fire gets all of alpha: the NaN one and the 8 unchanged segments are not counted
    assert by[("golden_exact_match", None)].level == 0.05
    nan_check = by[("golden_regex", None)]
    assert nan_check.n_nonfinite == 3 and "3 non-finite pairs dropped" in nan_check.reason
    assert decide(checks).verdict == "INVESTIGATE"


def _paired_drift(seg: str | None, n: int, aa_below: int, up: int, down: int) -> dict[str, Any]:
    k = aa_below + up - down
    return {"arm": "candidate", "segment": seg, "n": n, "n_below": k, "share_below": k / n, "n_pairs": n,
            "up": up, "down": down, "aa_below": aa_below}


def test_drift_is_the_candidates_share_against_the_aa_arms_with_its_error() -> None:
    """Paired with the A/A arm on the same requests (Tango bounds): the A/A level is an estimate, not a known number.
    A candidate 12 points above an A/A arm at 20% on 200 requests is not shown beyond the 10-point margin; 30 points
    above on 400 is; outputs that never cross the floor differently cannot fire and are left out of the split."""
    checks = drift_checks([_paired_drift(None, 200, 40, 30, 6)], 0.05, P)
    assert checks[0].status == "inconclusive" and "A/A arm's 20.0%" in checks[0].reason
    assert checks[0].baseline == 0.2 and checks[0].ci_low < 0.10 < checks[0].delta + 0.03
    assert drift_checks([_paired_drift(None, 400, 80, 130, 10)], 0.05, P)[0].status == "breach"
    same = drift_checks([_paired_drift(None, 400, 3, 0, 0), _paired_drift("a", 200, 2, 0, 0),
                         _paired_drift("b", 200, 1, 24, 0)], 0.05, P)
    assert [c.status for c in same] == ["ok", "ok", "inconclusive"]
    assert same[2].level == 0.05  # only segment b could fire: all of alpha is its
