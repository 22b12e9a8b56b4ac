"""The gate: pure policy from the analysis summary and thresholds to a verdict. No I/O.

Gate v1 rule, per gated metric (one with a threshold), over all requests:

- the change is in the metric's worse direction (``higher_is_better``; None = either direction),
- its size exceeds the threshold: absolute points for rates, relative to the baseline for means,
- and it is significant: the 95% CI of the paired mean difference excludes zero.

0 breaches -> PASS, 1 -> INVESTIGATE, 2 or more -> ROLLBACK. A metric with fewer than
``min_requests`` paired requests is not gated; when no gated metric has enough, INSUFFICIENT_DATA.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

VERDICT_CODES = {"PASS": 0, "INVESTIGATE": 10, "ROLLBACK": 11, "HOLD_FOR_SIGNOFF": 12, "INSUFFICIENT_DATA": 13}
"""Exit code of ``python -m harness replay`` per verdict. Errors: 1 (unexpected), 2 (bad input/config)."""


@dataclass(frozen=True)
class Threshold:
    """A margin: ``absolute`` points (rates) or ``relative`` change (means)."""

    absolute: float | None = None
    relative: float | None = None


@dataclass(frozen=True)
class Check:
    """The gate's reading of one metric."""

    metric: str
    family: str
    segment: str | None
    n: int
    baseline: float
    candidate: float
    delta: float
    ci_low: float
    ci_high: float
    rel_delta: float | None
    threshold: str
    status: str  # breach | ok | not_significant | too_few
    reason: str


@dataclass(frozen=True)
class Verdict:
    """The gate's decision and the evidence for it."""

    verdict: str
    breaches: tuple[Check, ...]
    checks: tuple[Check, ...]

    @property
    def exit_code(self) -> int:
        return VERDICT_CODES[self.verdict]


def _worse(delta: float, higher_is_better: bool | None) -> bool:
    if higher_is_better is None:
        return delta != 0
    return delta < 0 if higher_is_better else delta > 0


def check_metric(row: Mapping[str, Any], t: Threshold, min_requests: int) -> Check:
    """Apply the v1 rule to one summary row (see the module docstring)."""
    if t.absolute is not None:
        size, limit, shown = abs(row["delta"]), t.absolute, f"abs {t.absolute:g}"
    else:
        size, limit, shown = abs(row["rel_delta"] or 0.0), t.relative or 0.0, f"rel {t.relative:g}"
    significant = row["ci_low"] > 0 or row["ci_high"] < 0
    if row["n"] < min_requests:
        status = "too_few"
    elif not (_worse(row["delta"], row["higher_is_better"]) and size > limit):
        status = "ok"
    elif not significant:
        status = "not_significant"
    else:
        status = "breach"
    change = (f"{row['baseline']:.3g} -> {row['candidate']:.3g} (delta {row['delta']:+.3g}, "
              f"95% CI [{row['ci_low']:+.3g}, {row['ci_high']:+.3g}], n={row['n']})")
    reason = f"{row['metric']}: {change}; threshold {shown}: {status}"
    return Check(row["metric"], row["family"], row["segment"], int(row["n"]), row["baseline"], row["candidate"],
                 row["delta"], row["ci_low"], row["ci_high"], row["rel_delta"], shown, status, reason)


def decide(summary: Sequence[Mapping[str, Any]], thresholds: Mapping[str, Threshold], min_requests: int) -> Verdict:
    """The verdict from the overall rows of the analysis summary (``segment`` None)."""
    checks = tuple(check_metric(row, thresholds[row["metric"]], min_requests)
                   for row in summary if row["segment"] is None and row["metric"] in thresholds)
    breaches = tuple(c for c in checks if c.status == "breach")
    if not any(c.status != "too_few" for c in checks):
        verdict = "INSUFFICIENT_DATA"
    elif not breaches:
        verdict = "PASS"
    else:
        verdict = "INVESTIGATE" if len(breaches) == 1 else "ROLLBACK"
    return Verdict(verdict, breaches, checks)
