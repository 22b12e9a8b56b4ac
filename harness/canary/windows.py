"""One window of the canary: per-request values on cumulative data -> confidence sequences per family -> a decision.

Pure logic, no I/O (the loop, persistence and hooks are ``harness.canary.evaluate``). A **sample** is one value of
one metric for one live request (or golden item) of one arm, with the time it counts from. At window ``w`` (end
``t``) every metric is compared between the arms on all samples before ``t``, overall and per segment, with the
mSPRT's always-valid confidence sequence (``harness.canary.sequential``) at the family's split level
(``harness.gate.family_levels``: alpha split over the family's checks that can fire). The gate's one rule reads it
against the margin (``harness.gate.breach_check``): a **breach** only when the sequence lies wholly beyond the margin
the worse way (the one-sided mSPRT of ``H0: delta = margin`` rejects), ``ok`` when it lies within, else
``inconclusive``. Each side has its own one-sided mixture (``harness.canary.sequential``): the worse side's bound is
the running intersection over every gated look so far (``History``: the looks' estimate, variance and mixture
variance; its running minimum p is ``p_breach``), so only evidence that the canary was worse can make a breach; the
better side (non-inferior, improved, hence PROMOTE) reads the present look only. A metric without a direction has
two worse sides. A check is ``too_few`` below the minimum sample per arm, or, for a rate, below ``min_events``
expected events in the smaller arm (the normal mixture is not valid for rare events). Golden items both versions
answered (``Sample.paired``) are compared **paired**: the mSPRT on the mean of the per-item differences
(``harness.canary.sequential.paired``), from ``min(Policy.min_requests, min_per_arm)`` pairs on. The running minimum
of the two-sided mSPRT p-value against no change is reported beside it (``p_running``).

The decision (``decide_window``) uses the gate's own counting (``harness.gate.decide``): one breached family ->
INVESTIGATE, two or more -> ROLLBACK; else CONTINUE, or PROMOTE when the observation period has passed, no window
had a breach and the gate reads PASS (no overall check inconclusive).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from harness.canary.sequential import (
    Look,
    Moments,
    Sequential,
    one_sided_half_width,
    one_sided_p,
    paired,
    running_bounds,
    two_sample,
)
from harness.gate import Check, Evidence, Policy, Threshold, Verdict, breach_check, decide, family_levels
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
    paired: bool = False  # both arms answered this request (a golden item): compared per item


@dataclass(frozen=True)
class WindowCheck:
    """A gate check plus the sequential numbers the timeline plots."""

    check: Check
    n_control: int
    n_canary: int
    half_width: float  # of the confidence sequence around the delta (the "sequential bound")
    p_look: float  # 1 / Lambda at this window alone
    p_running: float  # always-valid p-value against no change (two-sided; running minimum), before adjustment
    margin: float  # absolute margin in the metric's units (relative margins times the control mean)
    var: float = float("nan")  # the look's variance V and mixture variance (kept: the running bounds need them)
    tau2: float = float("nan")
    p_breach: float = 1.0  # running minimum of the one-sided mSPRT p of "not worse than the margin"
    paired: bool = False


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


@dataclass
class Stat:
    """Sufficient statistics of one metric's values in one arm (and segment): count, sum, sum of squares, and
    whether every value was 0 or 1 (a rate)."""

    n: int = 0
    total: float = 0.0
    total_sq: float = 0.0
    binary: bool = True

    def add(self, value: float) -> None:
        self.n += 1
        self.total += value
        self.total_sq += value * value
        self.binary = self.binary and value in (0.0, 1.0)

    def merge(self, other: Stat) -> None:
        self.n += other.n
        self.total += other.total
        self.total_sq += other.total_sq
        self.binary = self.binary and other.binary

    def moments(self) -> Moments:
        if self.n == 0:
            return Moments(np.asarray(0), np.asarray(np.nan), np.asarray(np.nan))
        mean = self.total / self.n
        return Moments(np.asarray(self.n), np.asarray(mean), np.asarray(max(self.total_sq / self.n - mean * mean, 0.0)))


Key = tuple[str, "str | None", str]  # (metric, segment or None for overall, arm; "paired": canary - control per item)
PAIRED = "paired"
LookRecord = tuple[float, float, float, float]
"""One gated look of a check: (delta, variance, mixture variance, level it was read at)."""
History = Mapping[tuple[str, "str | None"], Sequence[LookRecord]]
"""(metric, segment) -> the earlier gated looks, oldest first."""


class Tally:
    """What the windows need, and nothing more: per window bucket (``[t0 + b w, t0 + (b + 1) w)``), the ``Stat`` of
    every (metric, segment, arm) and the records per arm. A window reads the buckets up to its own (cumulative data);
    no sample or record is kept, so memory does not grow with the traffic (``harness.bench.canary_memory``). A value
    that arrives late (its time in a window already decided) counts from the next window on."""

    def __init__(self, t0: dt.datetime, window_s: float, windows: int) -> None:
        self.t0, self.width, self.windows = t0, dt.timedelta(seconds=window_s), windows
        self.stats: dict[int, dict[Key, Stat]] = {}
        self.arms: dict[tuple[int, str], int] = {}

    def bucket(self, at: dt.datetime) -> int | None:
        b = max(0, int((at - self.t0) / self.width))
        return b if b < self.windows else None

    def add_samples(self, samples: Iterable[Sample]) -> None:
        """Each finite value into its arm's statistics; a ``paired`` sample whose other arm is in the same call and
        bucket also adds the difference (canary - control) to the ``paired`` statistics."""
        pairs: dict[tuple[str, str, int], dict[str, Sample]] = {}
        for s in samples:
            b = self.bucket(s.at)
            if b is None or not np.isfinite(s.value):
                continue
            self._add(b, s.metric, s.segment, s.arm, float(s.value))
            if s.paired:
                pairs.setdefault((s.request_id, s.metric, b), {})[s.arm] = s
        for (_, metric, b), arms in pairs.items():
            if "control" in arms and "canary" in arms:
                self._add(b, metric, arms["canary"].segment, PAIRED, arms["canary"].value - arms["control"].value)

    def _add(self, b: int, metric: str, segment: str, arm: str, value: float) -> None:
        stats = self.stats.setdefault(b, {})
        for seg in (None, segment):
            stats.setdefault((metric, seg, arm), Stat()).add(value)

    def add_record(self, arm: str, at: dt.datetime) -> None:
        b = self.bucket(at)
        if b is not None:
            self.arms[(b, arm)] = self.arms.get((b, arm), 0) + 1

    def upto(self, window: int) -> dict[Key, Stat]:
        """The cumulative statistics of buckets ``0 .. window``."""
        out: dict[Key, Stat] = {}
        for b, stats in self.stats.items():
            if b <= window:
                for key, st in stats.items():
                    out.setdefault(key, Stat()).merge(st)
        return out

    def records(self, window: int, arm: str) -> int:
        return sum(n for (b, a), n in self.arms.items() if b <= window and a == arm)


def _raw_check(spec: MetricSpec, segment: str | None, control: Stat, canary: Stat, diff: Stat | None,
               params: Sequential, min_pairs: int, previous: float) -> dict[str, Any]:
    c, k = control.moments(), canary.moments()
    look: Look
    if diff is not None and diff.n > 0:  # items both versions answered: per-item differences
        look, n_ok = paired(diff.moments(), params), diff.n >= min_pairs
    else:
        look = two_sample(c, k, params)
        n_ok = int(c.n) >= params.min_per_arm and int(k.n) >= params.min_per_arm
        if n_ok and control.binary and canary.binary:  # rare events: the normal mixture needs expected events
            n_ok = expected_events(float(c.mean), float(k.mean), min(control.n, canary.n)) >= params.min_events
    p_look = float(look.p) if n_ok else 1.0
    return {"spec": spec, "segment": segment, "c": c, "k": k, "look": look, "n_ok": n_ok, "p_look": p_look,
            "p_running": min(previous, p_look), "paired": diff is not None and diff.n > 0,
            "n_pairs": diff.n if diff is not None else 0}


def expected_events(rate_a: float, rate_b: float, n_small: int) -> float:
    """Events (or non-events, whichever is rarer) the smaller arm holds at the larger of the two rates: a rare event
    in both arms stays ungated (the plug-in normal mixture misstates its variance), while a new failure mode that
    only the canary shows (0% -> 5%) counts at once."""
    high = max(rate_a, rate_b)
    low = min(rate_a, rate_b)
    return min(high, 1 - low) * n_small


def read_bounds(looks: Sequence[LookRecord], higher_is_better: bool | None) -> tuple[float, float]:
    """The lower and upper bounds the rule reads from the gated looks (oldest first, the present one last), each
    one-sided: the worse side's is the running intersection of its one-sided confidence sequence over every look
    (each look's bound at the level it was read at), the better side's the present look's (module docstring);
    without a direction both sides are worse sides."""
    d, v, t, a = (np.asarray(x, float) for x in zip(*looks, strict=True))
    run_lo, run_hi = (float(x[-1]) for x in running_bounds(d, v, t, a))
    w = float(one_sided_half_width(v[-1], t[-1], a[-1])) if np.isfinite(v[-1]) else float("inf")
    now_lo, now_hi = float(d[-1]) - w, float(d[-1]) + w
    if higher_is_better is None:
        return run_lo, run_hi
    return (now_lo, run_hi) if higher_is_better else (run_lo, now_hi)


def running_p(looks: Sequence[LookRecord], d0: float, greater: bool, running: bool) -> float:
    """The one-sided mSPRT p of ``H0: delta <= d0`` (``greater``) or ``delta >= d0``: its running minimum over the
    looks (``running``), else the present look's."""
    d, v, t, _ = (np.asarray(x, float) for x in zip(*(looks if running else looks[-1:]), strict=True))
    x = d - d0 if greater else d0 - d
    return float(np.min(one_sided_p(x, v, t)))


def _finish(raw: dict[str, Any], level: float, policy: Policy, params: Sequential,
            history: Sequence[LookRecord] = ()) -> WindowCheck | None:
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
    delta = float(np.nan_to_num(look.delta)) if raw["paired"] else canary - control
    var, tau2 = float(np.nan_to_num(look.var, nan=np.inf)), float(np.nan_to_num(look.tau2))
    now = (delta, var, tau2, level)
    looks = [*history, now] if raw["n_ok"] else [now]
    # one-sided sequences at the family's split level: the worse side's bound over every look
    lower, upper = read_bounds(looks, hib)
    hw = (upper - lower) / 2
    margin, described = _margin(t, control)
    where = f" [{segment}]" if segment is not None else ""
    worse_greater = [True, False] if hib is None else [not hib]
    p_breach = min(running_p(looks, (margin if g else -margin), g, True) for g in worse_greater)
    n = f"{raw['n_pairs']} pairs" if raw["paired"] else f"n={int(c.n)}/{int(k.n)}"

    def describe(p: float | None, status: str) -> str:
        return (f"{spec.family}/{spec.name}{where}: control {control:.3g} -> canary {canary:.3g} (delta {delta:+.3g}, "
                f"always-valid one-sided bounds [{lower:+.3g}, {upper:+.3g}] at {level:.2g} each, {n}); margin "
                f"{described}: {status}")

    def p(d0: float, greater: bool) -> float:  # the worse side's running minimum, the better side's present look
        return running_p(looks, d0, greater, hib is None or greater != hib)

    evidence = Evidence(int(raw["n_pairs"] if raw["paired"] else min(c.n, k.n)), control, canary, delta, lower,
                        upper, delta / control if control else None,
                        f"mSPRT{' paired' if raw['paired'] else ''} tau_sd={params.tau_sd:g}", level, p,
                        enough=raw["n_ok"], describe=describe)
    check = breach_check(spec.name, spec.family, segment, role, hib, spec.advisory, evidence,
                         t, replace(policy, alpha=params.alpha))
    return WindowCheck(check, int(c.n), int(k.n), hw, raw["p_look"], raw["p_running"], margin, var, tau2,
                       p_breach if raw["n_ok"] else 1.0, raw["paired"])


def window_checks(samples: Sequence[Sample], end: dt.datetime, catalog: Sequence[MetricSpec], policy: Policy,
                  params: Sequential, state: Mapping[tuple[str, str | None], float],
                  history: History | None = None) -> list[WindowCheck]:
    """Every gated check at a window ending at ``end`` on the samples before it.

    Args:
        samples: every sample so far (later ones are ignored).
        end: the window's end.
        catalog: the metrics (direction, role, margin); a metric without a margin is not gated.
        policy: the gate's policy (margins, directions; alpha is ``params.alpha``).
        params: the mSPRT's parameters.
        state: ``(metric, segment) -> always-valid p`` against no change of the previous window (running minimum
            so far; reported beside the decision).
        history: ``(metric, segment) ->`` the earlier gated looks (``History``; the worse side's running bound).
    """
    tally = Tally(end - dt.timedelta(days=36500), 36500 * 86400.0, 1)  # one bucket: everything before ``end``
    tally.add_samples(x for x in samples if x.at < end)
    return checks_from_stats(tally.upto(0), catalog, policy, params, state, history)


def checks_from_stats(stats: Mapping[Key, Stat], catalog: Sequence[MetricSpec], policy: Policy,
                      params: Sequential, state: Mapping[tuple[str, str | None], float],
                      history: History | None = None) -> list[WindowCheck]:
    """Every gated check from cumulative statistics (``Tally.upto``); the rest as ``window_checks``."""
    by_name = {m.name: m for m in catalog}
    keys = sorted({(m, seg) for m, seg, _ in stats if m in by_name}, key=lambda x: (x[0], x[1] or ""))
    groups: dict[str, list[dict[str, Any]]] = {}
    for metric, seg in keys:
        spec = by_name[metric]
        raw = _raw_check(spec, seg, stats.get((metric, seg, "control"), Stat()),
                         stats.get((metric, seg, "canary"), Stat()), stats.get((metric, seg, PAIRED)), params,
                         min(policy.min_requests, params.min_per_arm), state.get((metric, seg), 1.0))
        if policy.threshold(asdict(spec)) is not None:
            groups.setdefault(spec.family, []).append(raw)
    out = []
    for rows in groups.values():  # one procedure per family: alpha split over its checks that can fire
        levels = family_levels([r["n_ok"] for r in rows], [r["segment"] is None for r in rows], params.alpha)
        for r, level in zip(rows, levels, strict=True):
            wc = _finish(r, level, policy, params, (history or {}).get((r["spec"].name, r["segment"]), ()))
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
        reasons += ("observation period passed, but the gate cannot yet read PASS (a check inconclusive, or no "
                    "gated metric with its minimum sample)",)
    else:
        decision = "PROMOTE"
        reasons += (f"no breach in {window + 1} windows (observation period {observation_windows}); {KEEP_OLD}",)
    return WindowResult(window, start, end, decision, verdict, tuple(checks), n_control, n_canary, reasons)
