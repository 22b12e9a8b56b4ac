"""One window of the canary: per-request values on cumulative data -> mSPRT checks per family -> a decision.

Pure logic, no I/O (the loop, persistence and hooks are ``harness.canary.evaluate``). A **sample** is one value of
one metric for one live request (or golden item) of one arm, with the time it counts from. At window ``w`` (end
``t``) every metric is compared between the arms on all samples before ``t``, overall and per segment, with the
mSPRT (``harness.canary.sequential``); its always-valid p-value is the running minimum over this and the earlier
windows (``state``), adjusted with Holm (or BH, ``gate.correction``) within each family, overall and per-segment
checks apart, as the offline gate does. A check is a **breach** when the change is the metric's worse way, beyond
its margin (the gate's: ``gate.thresholds``, ``gate.margins``, the catalog) and the adjusted p is below ``alpha``;
``improved`` the same the better way for eval metrics; ``too_few`` below the minimum sample per arm.

The decision (``decide_window``) uses the gate's own counting (``harness.gate.decide``): one breached family ->
INVESTIGATE, two or more -> ROLLBACK; else CONTINUE, or PROMOTE when the observation period has passed, no window
had a breach and some metric had its minimum sample.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from harness.analysis.paired import adjust
from harness.canary.sequential import Sequential, moments, two_sample
from harness.gate import Check, Evidence, Policy, Threshold, Verdict, breach_check, decide
from harness.signals.base import MetricSpec

DECISIONS = ("CONTINUE", "INVESTIGATE", "ROLLBACK", "PROMOTE")
TERMINAL = ("ROLLBACK", "PROMOTE")
KEEP_OLD = "keep the old (control) endpoint deployed for one more window before removing it"


@dataclass(frozen=True)
class Sample:
    """One value of one metric for one request of one arm; ``at`` is when it counts (request time, or the time a
    golden replay ran)."""

    request_id: str
    arm: str
    segment: str
    metric: str
    value: float
    at: dt.datetime


@dataclass(frozen=True)
class WindowCheck:
    """A gate check plus the sequential numbers the timeline plots."""

    check: Check
    n_control: int
    n_canary: int
    half_width: float  # of the confidence sequence around the delta (the "sequential bound")
    p_look: float  # 1 / Lambda at this window alone
    p_running: float  # always-valid p-value (running minimum), before adjustment
    margin: float  # absolute margin in the metric's units (relative margins times the control mean)


@dataclass(frozen=True)
class WindowResult:
    """The decision of one window and its evidence."""

    window: int
    start: dt.datetime
    end: dt.datetime
    decision: str
    verdict: Verdict
    checks: tuple[WindowCheck, ...]
    n_control: int
    n_canary: int
    reasons: tuple[str, ...] = field(default_factory=tuple)


def _margin(t: Threshold, control: float) -> tuple[float, str]:
    if t.absolute is not None:
        return t.absolute, t.describe()
    return abs(control) * (t.relative or 0.0), t.describe()


def _raw_check(spec: MetricSpec, segment: str | None, control: np.ndarray, canary: np.ndarray,
               params: Sequential, previous: float) -> dict[str, Any]:
    c, k = moments(control), moments(canary)
    look = two_sample(c, k, params)
    n_ok = int(c.n) >= params.min_per_arm and int(k.n) >= params.min_per_arm
    p_look = float(look.p) if n_ok else 1.0
    return {"spec": spec, "segment": segment, "c": c, "k": k, "look": look, "n_ok": n_ok, "p_look": p_look,
            "p_running": min(previous, p_look)}


def _finish(raw: dict[str, Any], p_adj: float, policy: Policy, params: Sequential) -> WindowCheck | None:
    spec: MetricSpec = raw["spec"]
    segment = raw["segment"]
    t = policy.threshold(asdict(spec))
    if t is None:
        return None
    hib, role = spec.higher_is_better, spec.role
    given = policy.direction(spec.name, segment)
    if given is not None:
        hib, role = given, ("degradation" if role == "divergence" else role)
    c, k, look = raw["c"], raw["k"], raw["look"]
    control, canary = float(np.nan_to_num(c.mean)), float(np.nan_to_num(k.mean))
    delta, hw = canary - control, float(look.half_width)
    margin, described = _margin(t, control)
    where = f" [{segment}]" if segment is not None else ""

    def describe(p: float, status: str) -> str:
        return (f"{spec.family}/{spec.name}{where}: control {control:.3g} -> canary {canary:.3g} (delta {delta:+.3g}, "
                f"always-valid 95% CS [{delta - hw:+.3g}, {delta + hw:+.3g}], n={int(c.n)}/{int(k.n)}, mSPRT "
                f"p={p:.2g} adj.); margin {described}: {status}")

    evidence = Evidence(int(min(c.n, k.n)), control, canary, delta, delta - hw, delta + hw,
                        delta / control if control else None, f"mSPRT tau_sd={params.tau_sd:g}", p_adj, p_adj,
                        enough=raw["n_ok"], describe=describe)
    check = breach_check(spec.name, spec.family, segment, role, hib, spec.advisory, evidence,
                         t, replace(policy, alpha=params.alpha))
    return WindowCheck(check, int(c.n), int(k.n), hw, raw["p_look"], raw["p_running"], margin)


def window_checks(samples: Sequence[Sample], end: dt.datetime, catalog: Sequence[MetricSpec], policy: Policy,
                  params: Sequential, state: Mapping[tuple[str, str | None], float]) -> list[WindowCheck]:
    """Every gated check at a window ending at ``end`` on the samples before it.

    Args:
        samples: every sample so far (later ones are ignored).
        end: the window's end.
        catalog: the metrics (direction, role, margin); a metric without a margin is not gated.
        policy: the gate's policy (margins, directions, alpha is ``params.alpha``, correction).
        params: the mSPRT's parameters.
        state: ``(metric, segment) -> always-valid p`` of the previous window (running minimum so far).
    """
    by_name = {m.name: m for m in catalog}
    values: dict[tuple[str, str | None, str], list[float]] = {}
    for s in samples:
        if s.at < end and s.metric in by_name and np.isfinite(s.value):
            for seg in (None, s.segment):
                values.setdefault((s.metric, seg, s.arm), []).append(s.value)
    keys = sorted({(m, seg) for m, seg, _ in values}, key=lambda x: (x[0], x[1] or ""))
    groups: dict[tuple[str, bool], list[dict[str, Any]]] = {}
    for metric, seg in keys:
        spec = by_name[metric]
        control = np.asarray(values.get((metric, seg, "control"), []), float)
        canary = np.asarray(values.get((metric, seg, "canary"), []), float)
        raw = _raw_check(spec, seg, control, canary, params, state.get((metric, seg), 1.0))
        if policy.threshold(asdict(spec)) is not None:
            groups.setdefault((spec.family, seg is None), []).append(raw)
    out = []
    for rows in groups.values():
        adjusted = adjust([r["p_running"] for r in rows], policy.correction)
        for r, p in zip(rows, adjusted, strict=True):
            wc = _finish(r, p, policy, params)
            if wc is not None:
                out.append(wc)
    return out


def decide_window(window: int, start: dt.datetime, end: dt.datetime, checks: Sequence[WindowCheck],
                  observation_windows: int, breached_before: bool, n_control: int, n_canary: int) -> WindowResult:
    """The decision of window ``window`` (0-based) from its checks (module docstring)."""
    verdict = decide([c.check for c in checks])
    reasons = tuple(verdict.reasons)
    if verdict.verdict in ("ROLLBACK", "INVESTIGATE"):
        decision = verdict.verdict
    elif window + 1 < observation_windows:
        decision = "CONTINUE"
    elif breached_before:
        decision = "CONTINUE"
        reasons += ("observation period passed, but an earlier window breached: PROMOTE needs a person",)
    elif verdict.verdict == "INSUFFICIENT_DATA":
        decision = "CONTINUE"
        reasons += ("observation period passed, but no gated metric has its minimum sample per arm yet",)
    else:
        decision = "PROMOTE"
        reasons += (f"no breach in {window + 1} windows (observation period {observation_windows}); {KEEP_OLD}",)
    return WindowResult(window, start, end, decision, verdict, tuple(checks), n_control, n_canary, reasons)
