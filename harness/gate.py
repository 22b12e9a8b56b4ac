"""The gate: pure policy from the signal families' checks to a verdict. No I/O. The policy is stated in docs/gate.md.

The breach rule is written once, ``breach_check``: the offline paired analysis (``metric_checks``), the drift family
and the canary's windows all hand it their ``Evidence`` and get the ``Check`` back.

Per metric and per segment (a **check**), on the paired analysis (``summary``: delta, bootstrap CI, paired
test p-values; ``harness.analysis.paired``):

- **breach**: the change is in the metric's worse direction (``higher_is_better``; None = either way), larger
  than its margin (absolute points, or relative to the baseline), and significant: the paired test's one-sided
  p-value for "worse", adjusted for multiple comparisons, is below ``alpha``;
- **improved**: the same in the better direction (metrics whose role is ``eval``);
- **advisory**: would breach, but the metric is not trusted yet (an uncalibrated judge criterion);
- ``not_significant``, ``ok``, ``too_few`` (fewer than ``min_requests`` pairs).

Multiple comparisons: within each signal family, the overall checks form one family of tests and the
per-segment checks another, each adjusted with Holm (or Benjamini-Hochberg, ``correction``). A family whose
statistic is not a paired delta (embedding drift) makes its own checks (``Signal.checks``) with the same policy.

Every metric's direction, role (``harness.signals.base.ROLES``), default margin and advisory flag come from the
metric catalog: this module names no signal family.

**Verdict**: each signal family with a breach counts once; it is a degradation when a breached metric's role is
``degradation`` or ``eval``, else a divergence. Any degradation: 1 breached family -> INVESTIGATE, 2 or more ->
ROLLBACK (direction REGRESSION). No degradation but an eval improvement -> HOLD_FOR_SIGNOFF (IMPROVEMENT: a
person approves). Divergence alone -> INVESTIGATE (DIVERGENCE: outputs changed, evals did not move). Nothing ->
PASS, unless an eval metric is underpowered for its margin (power calculation, ``harness.analysis.paired.required_n``)
or no gated metric has enough pairs: then INSUFFICIENT_DATA.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from harness.analysis.paired import adjust, required_n
from harness.errors import BadInput

VERDICT_CODES = {"PASS": 0, "INVESTIGATE": 10, "ROLLBACK": 11, "HOLD_FOR_SIGNOFF": 12, "INSUFFICIENT_DATA": 13}
"""Exit code of ``python -m harness replay`` per verdict. Errors: 1 (unexpected), 2 (bad input/config)."""
VERDICT_SCHEMA_VERSION = 3
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
    correction: str = "holm"  # or "bh"
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
    """The gate's reading of one metric (overall: ``segment`` None) or one segment of it."""

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
    p_value: float  # adjusted, for the direction the status speaks about (worse unless improved)
    n_required: int | None  # power calculation: pairs needed to detect the margin (eval metrics)
    status: str  # breach | improved | advisory | not_significant | ok | too_few
    reason: str
    role: str = "degradation"  # how a breach counts (harness.signals.base.ROLES), from the catalog or gate.directions


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
    notes: tuple[str, ...] = ()  # what the verdict means and what would settle it (divergence only)

    @property
    def exit_code(self) -> int:
        return VERDICT_CODES[self.verdict]

    @property
    def reasons(self) -> list[str]:
        """Every breached signal and segment, the improvements and what is underpowered, with numbers."""
        out = [c.reason for c in self.breaches] + [c.reason for c in self.improvements]
        out += [f"underpowered: {c.reason}" for c in self.underpowered]
        return out + list(self.notes)


@dataclass(frozen=True)
class Evidence:
    """What one statistic says about one metric in one segment: the offline paired analysis, the drift family's
    share below the A/A floor, or the canary's mSPRT. The breach rule (``breach_check``) reads only this.

    ``p_worse``/``p_better``: one-sided p-values, already adjusted for multiple comparisons (``p_worse`` is the
    two-sided one for a metric with no direction); ``p_better`` None: the better way is not tested. ``sd_diff``: sd of
    the paired differences, for the power calculation of eval metrics (None: no power check). ``enough``: False when
    the sample is below the minimum that is gated. ``describe(p, status)``: the caller's sentence for the numbers
    (None: the offline wording, with the margin and the power calculation)."""

    n: int
    baseline: float
    candidate: float
    delta: float
    ci_low: float
    ci_high: float
    rel_delta: float | None
    test: str
    p_worse: float
    p_better: float | None = None
    sd_diff: float | None = None
    enough: bool = True
    describe: Callable[[float, str], str] | None = None


def _size(e: Evidence, t: Threshold) -> tuple[float, float]:
    if t.absolute is not None:
        return abs(e.delta), t.absolute
    return abs(e.rel_delta or 0.0), t.relative or 0.0


def _worse(delta: float, higher_is_better: bool | None) -> bool:
    if higher_is_better is None:
        return delta != 0
    return delta < 0 if higher_is_better else delta > 0


def breach_check(metric: str, family: str, segment: str | None, role: str, higher_is_better: bool | None,
                 advisory: bool, evidence: Evidence, threshold: Threshold, policy: Policy) -> Check:
    """The one breach rule (module docstring): the check of ``metric`` in ``segment`` with its status and reason.

    Args:
        metric, family, role, higher_is_better, advisory: the metric's spec (from the catalog, or ``gate.directions``).
        segment: None for the overall check.
        evidence: the numbers and the adjusted p-values.
        threshold: the metric's margin (``Policy.threshold``).
        policy: alpha and power.
    """
    e, t = evidence, threshold
    size, limit = _size(e, t)
    beyond = size > limit
    worse = _worse(e.delta, higher_is_better)
    is_eval = role == "eval"
    n_required = (required_n(t.absolute, e.sd_diff, policy.alpha, policy.power)
                  if is_eval and t.absolute is not None and e.sd_diff is not None else None)
    p = e.p_worse
    if not e.enough:
        status = "too_few"
    elif worse and beyond and e.p_worse < policy.alpha:
        status = "advisory" if advisory else "breach"
    elif not worse and beyond and is_eval and e.p_better is not None and e.p_better < policy.alpha and not advisory:
        status, p = "improved", e.p_better
    elif worse and beyond:
        status = "not_significant"
    else:
        status = "ok"
    if e.describe is not None:
        reason = e.describe(p, status)
    else:
        where = f" [{segment}]" if segment is not None else ""
        power = (f"; only {e.n} pairs, {n_required} needed to detect it with {policy.power:.0%} power"
                 if n_required is not None and e.n < n_required else "")
        reason = (f"{family}/{metric}{where}: {e.baseline:.3g} -> {e.candidate:.3g} (delta {e.delta:+.3g}, 95% CI "
                  f"[{e.ci_low:+.3g}, {e.ci_high:+.3g}], n={e.n}, {e.test} p={p:.2g} adj.); margin "
                  f"{t.describe()}{power}: {status}")
    return Check(metric, family, segment, int(e.n), e.baseline, e.candidate, e.delta, e.ci_low, e.ci_high,
                 e.rel_delta, t.describe(), e.test, p, n_required, status, reason, role)


def _sides(row: Mapping[str, Any]) -> tuple[float, float | None]:
    """Raw one-sided p-values (worse, better) for the metric's direction."""
    hib = row["higher_is_better"]
    if hib is None:
        return row["p_two"], None
    return (row["p_lower"], row["p_higher"]) if hib else (row["p_higher"], row["p_lower"])


def _check(row: Mapping[str, Any], t: Threshold, p_worse: float, p_better: float | None, policy: Policy) -> Check:
    evidence = Evidence(int(row["n"]), row["baseline"], row["candidate"], row["delta"], row["ci_low"],
                        row["ci_high"], row["rel_delta"], row["test"], p_worse, p_better, row["sd_diff"] or 0.0,
                        enough=row["n"] >= policy.min_requests)
    return breach_check(row["metric"], row["family"], row["segment"], row["role"], row["higher_is_better"],
                        bool(row["advisory"]), evidence, t, policy)


def metric_checks(summary: Sequence[Mapping[str, Any]], policy: Policy) -> list[Check]:
    """Checks of every gated metric of the paired analysis (``summary.sql`` rows, catalog columns joined),
    overall and per segment, with adjusted p-values."""
    groups: dict[tuple[str, bool], list[tuple[Mapping[str, Any], Threshold]]] = {}
    for r in summary:
        given = policy.direction(r["metric"], r["segment"])
        if given is not None:  # a direction given in config for this route: its breach there is a degradation
            r = {**r, "higher_is_better": given, "role": "degradation" if r["role"] == "divergence" else r["role"]}
        t = policy.threshold(r)
        if t is not None and r["p_two"] is not None:
            groups.setdefault((r["family"], r["segment"] is None), []).append((r, t))
    out = []
    for rows in groups.values():  # one family of tests: a signal family's overall checks, or its segment checks
        sides = [_sides(r) for r, _ in rows]
        worse = adjust([s[0] for s in sides], policy.correction)
        better = adjust([s[1] if s[1] is not None else 1.0 for s in sides], policy.correction)
        for (r, t), pw, pb, s in zip(rows, worse, better, sides, strict=True):
            out.append(_check(r, t, pw, pb if s[1] is not None else None, policy))
    return out


def decide(checks: Sequence[Check]) -> Verdict:
    """The verdict from every family's checks (module docstring); each check carries its metric's role."""
    breaches = tuple(c for c in checks if c.status == "breach")
    improvements = tuple(c for c in checks if c.status == "improved")
    degraded = {c.family for c in breaches if c.role in COUNTED_AS_DEGRADATION}
    diverged = {c.family for c in breaches} - degraded
    underpowered = tuple(c for c in checks if c.segment is None and c.n_required is not None
                         and c.status in ("ok", "not_significant") and c.n < c.n_required)
    families = {c.family: "ok" for c in checks}
    families.update({c.family: "improved" for c in improvements})
    families.update({c.family: "breached" for c in breaches})
    overall = tuple(c for c in checks if c.segment is None)
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
    elif not any(c.status != "too_few" for c in overall) or underpowered:
        verdict, direction = "INSUFFICIENT_DATA", "NONE"
    else:
        verdict, direction = "PASS", "NONE"
    return Verdict(verdict, direction, breaches, overall, tuple(c for c in checks if c.segment is not None),
                   improvements, underpowered, families, notes)


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
        "segment_checks": [asdict(c) for c in verdict.segment_checks], "divergence": None, **sections,
        "manifest": manifest,
    }
