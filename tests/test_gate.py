"""The alert policy on hand-made summary rows (pure logic): families, direction, segments, power."""

from __future__ import annotations

import random
from typing import Any

from harness.gate import VERDICT_CODES, Policy, Threshold, Verdict, decide, metric_checks
from harness.signals.drift import drift_checks

P = Policy(thresholds={"json_valid": Threshold(absolute=0.05), "hedge": Threshold(absolute=0.05),
                       "chars": Threshold(relative=0.15)})
ROLES = {"stats": "degradation", "golden": "eval", "judge": "eval", "toy": "divergence"}
MARGINS = {"golden": 0.02, "judge": 0.25}  # the families' declared defaults


def row(metric: str, delta: float, *, family: str = "stats", base: float = 0.5, hib: bool | None = True,
        p: float = 1e-6, n: int = 500, segment: str | None = None, sd: float = 0.0,
        advisory: bool = False) -> dict[str, Any]:
    """A summary row whose paired test gives ``p`` in the direction of ``delta`` (1 the other way)."""
    lower, higher = (p, 1.0) if delta < 0 else (1.0, p) if delta > 0 else (1.0, 1.0)
    return {"metric": metric, "family": family, "segment": segment, "n": n, "baseline": base,
            "candidate": base + delta, "delta": delta, "ci_low": delta - 0.01, "ci_high": delta + 0.01,
            "rel_delta": delta / base, "higher_is_better": hib, "test": "mcnemar", "p_lower": lower,
            "p_higher": higher, "p_two": min(1.0, 2 * min(lower, higher)), "sd_diff": sd, "role": ROLES[family],
            "advisory": advisory, "margin_absolute": MARGINS.get(family), "margin_relative": None}


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
        v = gate([row("chars", delta, base=100.0, hib=None)], P)
        assert v.verdict == "INVESTIGATE", delta


def test_within_margin_or_not_significant_is_ok() -> None:
    assert gate([row("json_valid", -0.04)], P).verdict == "PASS"
    v = gate([row("json_valid", -0.2, p=0.2)], P)
    assert v.verdict == "PASS" and v.checks[0].status == "not_significant"


def test_one_broken_segment_is_caught() -> None:
    overall = row("json_valid", -0.02)  # within the margin overall
    segments = [row("json_valid", 0.0, segment=s) for s in ("a", "b", "c")]
    segments.append(row("json_valid", -0.3, segment="d", n=100, p=1e-5))
    v = gate([overall, *segments], P)
    assert v.verdict == "INVESTIGATE" and [(b.metric, b.segment) for b in v.breaches] == [("json_valid", "d")]
    assert "[d]" in v.reasons[0]


def test_a_hundred_noisy_segments_raise_no_alarm() -> None:
    rng = random.Random(0)  # p-values of a true null are uniform; each segment moved beyond the margin by chance
    rows = [row("json_valid", -0.1, segment=f"s{i}", p=rng.random(), n=40) for i in range(100)]
    v = gate([row("json_valid", 0.0), *rows], P)
    assert v.verdict == "PASS", v.reasons
    unadjusted = sum(r["p_lower"] < 0.05 for r in rows)
    assert unadjusted >= 1  # without Holm some would have fired


def test_underpowered_golden_metric_is_insufficient_data() -> None:
    # margin 0.02, sd 0 -> planning sd sqrt(0.02 * 0.98): 303 pairs needed
    small = gate([row("golden_exact_match", 0.0, family="golden", n=200)], P)
    assert small.verdict == "INSUFFICIENT_DATA" and small.underpowered[0].n_required == 303
    assert "only 200 pairs, 303 needed to detect it with 80% power" in small.reasons[0]
    assert gate([row("golden_exact_match", 0.0, family="golden", n=400)], P).verdict == "PASS"
    noisy = gate([row("golden_exact_match", 0.0, family="golden", n=400, sd=0.3)], P)
    assert noisy.verdict == "INSUFFICIENT_DATA"  # (2.486 * 0.3 / 0.02)^2 = 1391 pairs needed


def test_too_few_requests_is_insufficient_data() -> None:
    v = gate([row("json_valid", -0.5, n=10)], P)
    assert v.verdict == "INSUFFICIENT_DATA" and v.checks[0].status == "too_few"


def test_uncalibrated_judge_criterion_is_advisory() -> None:
    v = gate([row("judge_accuracy", -1.0, family="judge", base=4.0, advisory=True)], Policy())
    assert v.verdict == "PASS" and v.checks[0].status == "advisory"
    assert gate([row("judge_accuracy", -1.0, family="judge", base=4.0)], Policy()).verdict == "INVESTIGATE"


def test_ungated_metrics_are_ignored_and_reason_names_numbers() -> None:
    v = gate([row("output_tokens", -50.0, base=100.0, hib=None), row("json_valid", -0.2)], P)
    assert [c.metric for c in v.checks] == ["json_valid"]
    r = v.breaches[0].reason
    assert "stats/json_valid" in r and "0.5 -> 0.3" in r and "mcnemar" in r and "abs 0.05" in r


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
    v = gate([row("chars", -40.0, base=100.0, hib=None, family="toy")], P)
    assert (v.verdict, v.direction) == ("INVESTIGATE", "DIVERGENCE") and v.breaches[0].role == "divergence"
    assert "What would settle it" in v.reasons[-1] and "references" in v.reasons[-1]
    with_eval = gate([row("chars", -40.0, base=100.0, hib=None, family="toy"),
                      row("golden_regex", +0.1, family="golden")], P)
    assert (with_eval.verdict, with_eval.direction) == ("HOLD_FOR_SIGNOFF", "IMPROVEMENT")  # evals settle it


def test_a_direction_given_per_segment_makes_it_a_degradation_there() -> None:
    rows = [row("chars", -40.0, base=100.0, hib=None, family="toy", segment="code"),
            row("chars", -40.0, base=100.0, hib=None, family="toy", segment="chat")]
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
