"""The gate: pure policy from the signal families' checks to a verdict. No I/O. The policy is stated in docs/gate.md.

The breach rule is written once, ``breach_check``: the offline paired analysis (``metric_checks``), the drift family
and the canary's windows all hand it their ``Evidence`` and get the ``Check`` back.

**Three zones on confidence bounds against the margin.** Each check (a metric overall, or one segment of it) comes
with a one-sided lower and upper confidence bound on the change ``delta``, each with error ``level`` (alpha split
over the family's checks that can fire), and the metric's margin ``m`` (absolute points, or relative to the
baseline). Oriented so that positive is the metric's better way:

- **breach**: the upper bound is below ``-m``: worse by more than the margin, with confidence;
- **improved** (role ``eval`` only): the lower bound is above ``+m``;
- **ok** (non-inferior): the lower bound is above ``-m``;
- **inconclusive**: neither: the data can neither show the drop nor rule it out;
- **advisory**: would breach, but the metric is not trusted yet (an uncalibrated judge criterion);
- ``too_few``: fewer than ``min_requests`` pairs. A metric without a direction breaches when its interval lies
  wholly outside ``[-m, m]`` and is ok when it lies wholly inside.

The **minimum detectable effect** (``mde``) is the half-width of that interval; a check whose MDE exceeds its
margin is **underpowered**. Multiplicity (``family_levels``): one procedure per signal family, alpha split
(Bonferroni; half to the overall checks, half to the segment checks when both exist) over the checks that can
fire; a check that cannot fire (too few pairs, non-finite numbers, a binary metric whose changed pairs could not
cross the margin even if all went the worse way, a graded one with no spread) is left out of the count.

Every metric's direction, role (``harness.signals.base.ROLES``), default margin and advisory flag come from the
metric catalog: this module names no signal family.

**Verdict**: each signal family with a breach counts once; it is a degradation when a breached metric's role is
``degradation`` or ``eval``, else a divergence. Any degradation: 1 breached family -> INVESTIGATE, 2 or more ->
ROLLBACK (direction REGRESSION). No degradation but an eval improvement -> HOLD_FOR_SIGNOFF (IMPROVEMENT: a
person approves). Divergence alone -> INVESTIGATE (DIVERGENCE). Nothing breached or improved -> PASS only when no
overall check is inconclusive and at least one overall check is non-inferior and not underpowered; else
INSUFFICIENT_DATA, with the inconclusive and underpowered checks named.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from harness.analysis.margin import Paired
from harness.analysis.paired import required_n
from harness.errors import BadInput

VERDICT_CODES = {"PASS": 0, "INVESTIGATE": 10, "ROLLBACK": 11, "HOLD_FOR_SIGNOFF": 12, "INSUFFICIENT_DATA": 13}
"""Exit code of ``python -m harness replay`` per verdict. Errors: 1 (unexpected), 2 (bad input/config)."""
VERDICT_SCHEMA_VERSION = 4
COUNTED_AS_DEGRADATION = ("degradation", "eval")


@dataclass(frozen=True)
class Threshold:
    """A margin: ``absolute`` points (rates, scores) or ``relative`` change (means)."""

    absolute: float | None = None
    relative: float | None = None

    def describe(self) -> str:
        return f"abs {self.absolute:g}" if self.absolute is not None else f"rel {self.relative or 0:g}"


@dataclass(frozen=True)
class Policy:
    """The alert policy (``configs/gate/*.yaml``). Margins: ``thresholds`` per metric, else ``margins`` per
    family (absolute), else the metric's declared default (the catalog); none: reported, not gated."""

    thresholds: Mapping[str, Threshold] = field(default_factory=dict)
    margins: Mapping[str, float] = field(default_factory=dict)
    min_requests: int = 30
    alpha: float = 0.05
    correction: str = "split"  # alpha split over each family's checks that can fire (``family_levels``)
    power: float = 0.8
    # metric -> segment ("*" = every segment and overall) -> "higher_is_better" | "lower_is_better": gives a metric
    # without a direction of its own (length, the format profile) one, so its breach there is a degradation, or
    # turns a metric's own direction round on a route (refusal: more refusals is better on unsafe prompts)
    directions: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def direction(self, metric: str, segment: str | None) -> bool | None:
        """The direction ``gate.directions`` gives ``metric`` in ``segment`` (True: higher is better), or None."""
        given = self.directions.get(metric, {})
        name = given.get(segment, given.get("*")) if segment is not None else given.get("*")
        return None if name is None else name == "higher_is_better"

    def threshold(self, metric: Mapping[str, Any]) -> Threshold | None:
        """The margin of a catalog row (``name`` or ``metric``, ``family``, ``margin_absolute/relative``)."""
        name = metric.get("metric", metric.get("name"))
        if name in self.thresholds:
            return self.thresholds[name]
        if metric["family"] in self.margins:
            return Threshold(absolute=self.margins[metric["family"]])
        if metric.get("margin_absolute") is not None or metric.get("margin_relative") is not None:
            return Threshold(metric.get("margin_absolute"), metric.get("margin_relative"))
        return None


@dataclass(frozen=True)
class Check:
    """The gate's reading of one metric (overall: ``segment`` None) or one segment of it. ``ci_low``/``ci_high``:
    the one-sided confidence bounds the status was decided on, each with error ``level``."""

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
    test: str
    p_value: float | None  # adjusted p of the margin test the status speaks about (None: bounds only)
    n_required: int | None  # pairs for 80% power (``Policy.power``) at ``level``: no change shown non-inferior
    status: str  # breach | improved | advisory | ok | inconclusive | too_few
    reason: str
    role: str = "degradation"  # how a breach counts (harness.signals.base.ROLES), from the catalog or gate.directions
    margin: float | None = None  # the margin in the metric's units (a relative one times the baseline)
    mde: float | None = None  # minimum detectable effect: half-width of the interval at ``level``
    level: float | None = None  # one-sided error of each bound: alpha split over the family's checks that can fire
    underpowered: bool = False  # mde > margin
    advisory: bool = False
    n_nonfinite: int = 0  # pairs dropped because a value was NaN or infinite


@dataclass(frozen=True)
class Verdict:
    """The gate's decision and the evidence for it."""

    verdict: str
    direction: str  # REGRESSION | IMPROVEMENT | DIVERGENCE | NONE
    breaches: tuple[Check, ...]
    checks: tuple[Check, ...]  # overall checks, every family
    segment_checks: tuple[Check, ...] = ()
    improvements: tuple[Check, ...] = ()
    underpowered: tuple[Check, ...] = ()
    families: Mapping[str, str] = field(default_factory=dict)  # family -> breached | improved | ok
    notes: tuple[str, ...] = ()  # what the verdict means and what would settle it
    inconclusive: tuple[Check, ...] = ()  # overall checks neither shown non-inferior nor breached

    @property
    def exit_code(self) -> int:
        return VERDICT_CODES[self.verdict]

    @property
    def reasons(self) -> list[str]:
        """Every breached signal and segment, the improvements, what is inconclusive or underpowered, with numbers."""
        out = [c.reason for c in self.breaches] + [c.reason for c in self.improvements]
        out += [f"inconclusive: {c.reason}" for c in self.inconclusive]
        out += [f"underpowered: {c.reason}" for c in self.underpowered if c not in self.inconclusive]
        return out + list(self.notes)


@dataclass(frozen=True)
class Evidence:
    """What one statistic says about one metric in one segment: the offline paired analysis, the drift family's
    share below the A/A floor, or the canary's confidence sequence. The breach rule (``breach_check``) reads only
    this.

    ``lower``/``upper``: one-sided confidence bounds on ``delta``, each with error ``level`` (already adjusted for
    the family's multiplicity). ``p``: the raw one-sided p-value of ``H0: delta <= d0`` (``p(d0, True)``) or
    ``delta >= d0`` (``p(d0, False)``), for the reason (adjusted there by ``alpha / level``); None: bounds only.
    ``sd_diff``: sd of the paired differences, for the pairs needed (None: not computed). ``enough``: False below
    the minimum sample that is gated. ``describe(p, status)``: the caller's sentence for the numbers (None: the
    offline wording)."""

    n: int
    baseline: float
    candidate: float
    delta: float
    lower: float
    upper: float
    rel_delta: float | None
    test: str
    level: float
    p: Callable[[float, bool], float] | None = None
    sd_diff: float | None = None
    enough: bool = True
    n_nonfinite: int = 0
    describe: Callable[[float | None, str], str] | None = None


def margin_of(t: Threshold, baseline: float) -> float:
    """The margin in the metric's units: absolute, or relative times the baseline's magnitude."""
    if t.absolute is not None:
        return t.absolute
    return abs(baseline) * (t.relative or 0.0)


def zone(lower: float, upper: float, m: float, higher_is_better: bool | None) -> str:
    """``breach``, ``improved``, ``ok`` or ``inconclusive``: where the interval ``[lower, upper]`` lies against the
    margin ``m`` (module docstring); without a direction only ``breach``, ``ok`` or ``inconclusive``."""
    if higher_is_better is None:
        if lower > m or upper < -m:
            return "breach"
        return "ok" if -m < lower and upper < m else "inconclusive"
    lo, hi = (lower, upper) if higher_is_better else (-upper, -lower)
    if hi < -m:
        return "breach"
    if lo > m:
        return "improved"
    return "ok" if lo > -m else "inconclusive"


def _p_of(status: str, p: Callable[[float, bool], float], m: float, hib: bool | None) -> float:
    """The raw p-value of the margin test ``status`` speaks about (breach: "not worse beyond m" rejected; improved:
    "not better beyond m"; ok and inconclusive: "worse beyond m", the non-inferiority test)."""
    if hib is None:
        if status == "breach":
            return min(p(m, True), p(-m, False))
        return max(p(-m, True), p(m, False))
    sign = 1.0 if hib else -1.0  # the better way
    better = bool(hib)
    if status in ("breach", "advisory"):
        return p(-sign * m, not better)
    if status == "improved":
        return p(sign * m, better)
    return p(-sign * m, better)


def breach_check(metric: str, family: str, segment: str | None, role: str, higher_is_better: bool | None,
                 advisory: bool, evidence: Evidence, threshold: Threshold, policy: Policy) -> Check:
    """The one breach rule (module docstring): the check of ``metric`` in ``segment`` with its status and reason.

    Args:
        metric, family, role, higher_is_better, advisory: the metric's spec (from the catalog, or ``gate.directions``).
        segment: None for the overall check.
        evidence: the numbers and the bounds at the adjusted level.
        threshold: the metric's margin (``Policy.threshold``).
        policy: alpha and power.
    """
    e, t = evidence, threshold
    m = margin_of(t, e.baseline)
    finite = all(map(_finite, (e.delta, e.lower, e.upper)))
    mde = (e.upper - e.lower) / 2 if finite else None
    n_required = (required_n(m, e.sd_diff, e.level, policy.power) if e.sd_diff is not None and m > 0
                  and 0 < e.level < 1 else None)
    if not e.enough or not _finite(e.delta) or not finite:
        status = "too_few"
    else:
        status = zone(e.lower, e.upper, m, higher_is_better)
        if status == "improved" and (role != "eval" or advisory):
            status = "ok"
        if status == "breach" and advisory:
            status = "advisory"
    underpowered = status in ("ok", "inconclusive") and (mde is None or mde > m)  # a decided breach needs no power
    p = None
    if e.p is not None and status != "too_few":
        p = min(1.0, _p_of(status, e.p, m, higher_is_better) * policy.alpha / e.level)
    if e.describe is not None:
        reason = e.describe(p, status)
    else:
        where = f" [{segment}]" if segment is not None else ""
        power = (f"; MDE {mde:.3g} > margin: {n_required} pairs needed for {policy.power:.0%} power"
                 if underpowered and mde is not None and n_required is not None else "")
        dropped = f"; {e.n_nonfinite} non-finite pairs dropped" if e.n_nonfinite else ""
        shown = f"{e.test} p={p:.2g} adj." if p is not None else e.test
        reason = (f"{family}/{metric}{where}: {e.baseline:.3g} -> {e.candidate:.3g} (delta {e.delta:+.3g}, one-sided "
                  f"bounds [{e.lower:+.3g}, {e.upper:+.3g}] at {e.level:.2g} each, n={e.n}, {shown}); margin "
                  f"{t.describe()} (+/-{m:.3g}){power}{dropped}: {status}")
    return Check(metric, family, segment, int(e.n), e.baseline, e.candidate, e.delta, e.lower, e.upper,
                 e.rel_delta, t.describe(), e.test, p, n_required, status, reason, role, m, mde, e.level,
                 underpowered, advisory, e.n_nonfinite)


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def family_levels(can_fire: Sequence[bool], overall: Sequence[bool], alpha: float) -> list[float]:
    """The one-sided error of each bound of one family's checks: alpha split (Bonferroni) over the checks that can
    fire, half to the overall checks and half to the segment checks when both groups have one; a check that cannot
    fire gets the level of its group (its reading is reported; it does not count in the split)."""
    k_overall = sum(f and o for f, o in zip(can_fire, overall, strict=True))
    k_segment = sum(f and not o for f, o in zip(can_fire, overall, strict=True))
    share = 0.5 if k_overall and k_segment else 1.0
    return [alpha * share / max(k_overall if o else k_segment, 1) for o in overall]


def _row_paired(row: Mapping[str, Any]) -> Paired:
    return Paired(row["test"], row["n"], row["delta"], row["sd_diff"] or 0.0, row.get("down") or 0,
                  row.get("up") or 0)


def can_fire(row: Mapping[str, Any], t: Threshold, policy: Policy) -> bool:
    """Whether a summary row's check could breach (``family_levels``): enough finite pairs, and a change that could
    cross the margin (binary: the changed share exceeds it; graded: some spread, or a delta beyond it)."""
    if row["n"] < policy.min_requests or not _finite(row["delta"]):
        return False
    m = margin_of(t, row["baseline"])
    if row["test"] == "tango":
        return ((row.get("down") or 0) + (row.get("up") or 0)) / row["n"] > m
    return (row["sd_diff"] or 0.0) > 0 or abs(row["delta"]) > m


def _check(row: Mapping[str, Any], t: Threshold, level: float, policy: Policy) -> Check:
    paired = _row_paired(row)
    enough = row["n"] >= policy.min_requests and _finite(row["delta"])
    # too few pairs: not gated; the bootstrap interval is shown (the bounds would be meaningless)
    lower, upper = (float(x) for x in paired.bounds(level)) if enough else (row["ci_low"], row["ci_high"])
    evidence = Evidence(int(row["n"]), row["baseline"], row["candidate"], row["delta"], lower, upper,
                        row["rel_delta"], row["test"], level, lambda d0, g: float(paired.p(d0, g)),
                        row["sd_diff"] or 0.0, enough=enough, n_nonfinite=int(row.get("n_nonfinite") or 0))
    return breach_check(row["metric"], row["family"], row["segment"], row["role"], row["higher_is_better"],
                        bool(row["advisory"]), evidence, t, policy)


def metric_checks(summary: Sequence[Mapping[str, Any]], policy: Policy) -> list[Check]:
    """Checks of every gated metric of the paired analysis (``summary.sql`` rows, catalog columns joined),
    overall and per segment, each at its family's split level (``family_levels``)."""
    families: dict[str, list[tuple[Mapping[str, Any], Threshold]]] = {}
    for r in summary:
        given = policy.direction(r["metric"], r["segment"])
        if given is not None:  # a direction given in config for this route: its breach there is a degradation
            r = {**r, "higher_is_better": given, "role": "degradation" if r["role"] == "divergence" else r["role"]}
        t = policy.threshold(r)
        if t is not None and r.get("test") is not None:
            families.setdefault(r["family"], []).append((r, t))
    out = []
    for rows in families.values():  # one procedure per signal family: its overall and segment checks together
        levels = family_levels([can_fire(r, t, policy) for r, t in rows], [r["segment"] is None for r, _ in rows],
                               policy.alpha)
        out += [_check(r, t, level, policy) for (r, t), level in zip(rows, levels, strict=True)]
    return out


def decide(checks: Sequence[Check]) -> Verdict:
    """The verdict from every family's checks (module docstring); each check carries its metric's role."""
    breaches = tuple(c for c in checks if c.status == "breach")
    improvements = tuple(c for c in checks if c.status == "improved")
    degraded = {c.family for c in breaches if c.role in COUNTED_AS_DEGRADATION}
    diverged = {c.family for c in breaches} - degraded
    overall = tuple(c for c in checks if c.segment is None)
    counted = [c for c in overall if not c.advisory]  # an untrusted metric neither blocks nor supports a PASS
    inconclusive = tuple(c for c in counted if c.status == "inconclusive")
    underpowered = tuple(c for c in counted if c.underpowered and c.status in ("ok", "inconclusive"))
    decided = [c for c in counted if c.status in ("ok", "improved") and not c.underpowered]
    families = {c.family: "ok" for c in checks}
    families.update({c.family: "improved" for c in improvements})
    families.update({c.family: "breached" for c in breaches})
    notes: tuple[str, ...] = ()
    if degraded:
        count = len(degraded) + len(diverged)
        verdict, direction = ("ROLLBACK" if count >= 2 else "INVESTIGATE"), "REGRESSION"
    elif improvements:
        verdict, direction = "HOLD_FOR_SIGNOFF", "IMPROVEMENT"
    elif diverged:
        verdict, direction = "INVESTIGATE", "DIVERGENCE"
        notes = (f"divergence only ({', '.join(sorted(diverged))}): outputs changed in ways that have no direction of "
                 "their own, and no eval metric moved. What would settle it: references for these requests (a golden "
                 "set, or `expected`/`checks` columns in the traffic), a calibrated judge, or a direction for the "
                 "metric on this route (gate.directions).",)
    elif inconclusive or not decided:
        verdict, direction = "INSUFFICIENT_DATA", "NONE"
        notes = ("not PASS: " + ("some gated metric is inconclusive (its interval straddles the margin)"
                                 if inconclusive else "no gated metric is shown within its margin with the power "
                                 "to see it") + "; more pairs would settle it (n_required in verdict.json)",)
    else:
        verdict, direction = "PASS", "NONE"
    segment_inconclusive = [c for c in checks if c.segment is not None and c.status == "inconclusive"
                            and not c.advisory]
    if segment_inconclusive and verdict == "PASS":
        notes += (f"{len(segment_inconclusive)} segment check(s) inconclusive (too few pairs there to rule out a "
                  "drop beyond the margin): " + ", ".join(sorted({f"{c.metric} [{c.segment}]"
                                                                   for c in segment_inconclusive})[:10]),)
    return Verdict(verdict, direction, breaches, overall, tuple(c for c in checks if c.segment is not None),
                   improvements, underpowered, families, notes, inconclusive)


def policy_to_json(policy: Policy) -> dict[str, Any]:
    """The policy as recorded in the manifest (JSON)."""
    out = asdict(policy)
    out["thresholds"] = {k: asdict(v) for k, v in policy.thresholds.items()}
    out["margins"] = dict(policy.margins)
    out["directions"] = {k: dict(v) for k, v in policy.directions.items()}
    return out


def policy_from_json(obj: Mapping[str, Any]) -> Policy:
    """The policy written by ``policy_to_json`` (re-evaluating a run uses its own policy)."""
    fields = {k: v for k, v in obj.items() if k not in ("thresholds", "margins", "directions")}
    return Policy(thresholds={k: Threshold(**v) for k, v in obj["thresholds"].items()},
                  margins=dict(obj["margins"]), directions={k: dict(v) for k, v in obj["directions"].items()},
                  **fields)


FAILING = ("INVESTIGATE", "ROLLBACK", "HOLD_FOR_SIGNOFF", "INSUFFICIENT_DATA")
"""The verdicts that fail a CI job unless the exit policy (``ci.fail_on``, ``--fail-on``) says otherwise."""
SIGNABLE = ("HOLD_FOR_SIGNOFF", "INVESTIGATE")
"""The verdicts a person may accept (``python -m harness signoff``); a signed-off run fails no job."""


def check_fail_on(fail_on: Sequence[str], where: str = "ci.fail_on") -> tuple[str, ...]:
    """The exit policy as given, checked: each a verdict other than PASS.

    Raises:
        BadInput: an unknown verdict, naming the known ones.
    """
    bad = [v for v in fail_on if v not in FAILING]
    if bad:
        raise BadInput(f"{where}: unknown verdict(s) {bad}; expected some of {list(FAILING)}. Fix: e.g. "
                       f"{where}=[ROLLBACK,INVESTIGATE] (a verdict left out exits 0).")
    return tuple(fail_on)


def job_exit_code(verdict: str, fail_on: Sequence[str] = FAILING, signed_off: bool = False) -> int:
    """The process exit code under the exit policy: the verdict's code when it fails the job, else 0 (PASS, a verdict
    left out of ``fail_on``, or a signed-off HOLD_FOR_SIGNOFF/INVESTIGATE)."""
    if verdict not in fail_on or (signed_off and verdict in SIGNABLE):
        return 0
    return VERDICT_CODES[verdict]


def verdict_document(verdict: Verdict, manifest: Mapping[str, Any], sections: Mapping[str, Any]) -> dict[str, Any]:
    """The ``verdict.json`` object (schema in the README); ``sections``: what the families add (``divergence``)."""
    return {
        "schema_version": VERDICT_SCHEMA_VERSION, "verdict": verdict.verdict, "exit_code": verdict.exit_code,
        "direction": verdict.direction, "reasons": verdict.reasons, "families": dict(verdict.families),
        "breaches": [asdict(c) for c in verdict.breaches], "improvements": [asdict(c) for c in verdict.improvements],
        "underpowered": [asdict(c) for c in verdict.underpowered], "checks": [asdict(c) for c in verdict.checks],
        "segment_checks": [asdict(c) for c in verdict.segment_checks],
        "inconclusive": [asdict(c) for c in verdict.inconclusive], "divergence": None, **sections,
        "manifest": manifest,
    }
