"""Gate v1 policy on hand-made summary rows (pure logic)."""

from __future__ import annotations

from typing import Any

from harness.gate import VERDICT_CODES, Threshold, decide


def row(metric: str, delta: float, *, base: float = 0.5, hib: bool | None = True, half_ci: float = 0.01,
        n: int = 500, segment: str | None = None) -> dict[str, Any]:
    return {"metric": metric, "family": "stats", "segment": segment, "n": n, "baseline": base,
            "candidate": base + delta, "delta": delta, "ci_low": delta - half_ci, "ci_high": delta + half_ci,
            "rel_delta": delta / base, "higher_is_better": hib}


T = {"json_valid": Threshold(absolute=0.05), "hedge": Threshold(absolute=0.05), "chars": Threshold(relative=0.15)}


def test_no_change_passes() -> None:
    v = decide([row("json_valid", 0.0), row("hedge", 0.0, hib=False)], T, 30)
    assert v.verdict == "PASS" and v.exit_code == 0 and not v.breaches


def test_one_breach_investigates_two_roll_back() -> None:
    one = decide([row("json_valid", -0.2), row("hedge", 0.0, hib=False)], T, 30)
    assert one.verdict == "INVESTIGATE" and [b.metric for b in one.breaches] == ["json_valid"]
    two = decide([row("json_valid", -0.2), row("hedge", 0.3, hib=False)], T, 30)
    assert two.verdict == "ROLLBACK" and two.exit_code == VERDICT_CODES["ROLLBACK"]


def test_improvement_is_not_a_breach() -> None:
    v = decide([row("json_valid", +0.3), row("hedge", -0.3, hib=False)], T, 30)
    assert v.verdict == "PASS"


def test_two_sided_metric_breaches_both_ways() -> None:
    for delta in (-40.0, 40.0):
        v = decide([row("chars", delta, base=100.0, hib=None, half_ci=5.0)], T, 30)
        assert v.verdict == "INVESTIGATE", delta


def test_within_threshold_or_not_significant_is_ok() -> None:
    small = decide([row("json_valid", -0.04)], T, 30)
    noisy = decide([row("json_valid", -0.2, half_ci=0.3)], T, 30)
    assert small.verdict == "PASS" and small.checks[0].status == "ok"
    assert noisy.verdict == "PASS" and noisy.checks[0].status == "not_significant"


def test_too_few_requests_is_insufficient_data() -> None:
    v = decide([row("json_valid", -0.5, n=10)], T, 30)
    assert v.verdict == "INSUFFICIENT_DATA" and v.checks[0].status == "too_few"


def test_segment_rows_and_ungated_metrics_are_ignored() -> None:
    v = decide([row("json_valid", 0.0), row("json_valid", -0.9, segment="extract"), row("other", -0.9)], T, 30)
    assert v.verdict == "PASS" and len(v.checks) == 1


def test_reason_names_metric_and_numbers() -> None:
    v = decide([row("json_valid", -0.2)], T, 30)
    reason = v.breaches[0].reason
    assert "json_valid" in reason and "-0.2" in reason and "abs 0.05" in reason
