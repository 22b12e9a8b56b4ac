"""The gate: pure policy from the analysis tables to a verdict. No I/O. The policy is stated in docs/gate.md.

Per metric and per segment (a **check**), on the paired analysis (``summary``: delta, bootstrap CI, paired
test p-values; ``harness.analysis.paired``):

- **breach**: the change is in the metric's worse direction (``higher_is_better``; None = either way), larger
  than its margin (absolute points, or relative to the baseline), and significant: the paired test's one-sided
  p-value for "worse", adjusted for multiple comparisons, is below ``alpha``;
- **improved**: the same in the better direction (eval families only: golden, judge);
- **advisory**: would breach, but the metric is not trusted yet (an uncalibrated judge criterion);
- ``not_significant``, ``ok``, ``too_few`` (fewer than ``min_requests`` pairs).

Multiple comparisons: within each signal family, the overall checks form one family of tests and the
per-segment checks another, each adjusted with Holm (or Benjamini-Hochberg, ``correction``).

**Divergence** (embedding drift, when the run has an A/A floor): the share of requests whose old-vs-new
similarity falls below the A/A floor, overall and per segment, breaches when it exceeds the A/A reference
level by more than ``drift_margin`` with a one-sided exact binomial p-value (H0: share <= level +
drift_margin), Holm-adjusted over the segments, below ``alpha``. The level of a segment is the A/A arm's own
share below the floor in that segment, at least ``aa_quantile``.

**Verdict**: each signal family with a breach counts once (stats, golden, judge as degradations; drift as
divergence). Any degradation: 1 breached family -> INVESTIGATE, 2 or more -> ROLLBACK (direction
REGRESSION). No degradation but an eval improvement -> HOLD_FOR_SIGNOFF (IMPROVEMENT: a person approves).
Divergence alone -> INVESTIGATE (DIVERGENCE: outputs changed, evals did not move). Nothing -> PASS, unless
an eval metric is underpowered for its margin (power calculation, ``harness.analysis.paired.required_n``) or
no gated metric has enough pairs: then INSUFFICIENT_DATA.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.analysis.paired import adjust, required_n

VERDICT_CODES = {"PASS": 0, "INVESTIGATE": 10, "ROLLBACK": 11, "HOLD_FOR_SIGNOFF": 12, "INSUFFICIENT_DATA": 13}
"""Exit code of ``python -m harness replay`` per verdict. Errors: 1 (unexpected), 2 (bad input/config)."""
EVAL_FAMILIES = ("golden", "judge")
DEGRADATION_FAMILIES = ("stats", "golden", "judge")


@dataclass(frozen=True)
class Threshold:
    """A margin: ``absolute`` points (rates, scores) or ``relative`` change (means)."""

    absolute: float | None = None
    relative: float | None = None

    def describe(self) -> str:
        return f"abs {self.absolute:g}" if self.absolute is not None else f"rel {self.relative or 0:g}"


@dataclass(frozen=True)
class Policy:
    """The alert policy (``configs/gate/*.yaml``)."""

    thresholds: Mapping[str, Threshold] = field(default_factory=dict)
    golden_margin: float = 0.02  # default margin of golden metrics without their own threshold
    judge_margin: float = 0.25  # default margin of judge scores (scale points) without their own threshold
    min_requests: int = 30
    alpha: float = 0.05
    correction: str = "holm"  # or "bh"
    power: float = 0.8
    drift_margin: float = 0.10
    aa_quantile: float = 0.05
    advisory: frozenset[str] = frozenset()  # metrics reported but never counted (uncalibrated judge criteria)

    def threshold(self, metric: str, family: str) -> Threshold | None:
        if metric in self.thresholds:
            return self.thresholds[metric]
        if family == "golden":
            return Threshold(absolute=self.golden_margin)
        if family == "judge":
            return Threshold(absolute=self.judge_margin)
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
    n_required: int | None  # power calculation: pairs needed to detect the margin (eval families)
    status: str  # breach | improved | advisory | not_significant | ok | too_few
    reason: str


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

    @property
    def exit_code(self) -> int:
        return VERDICT_CODES[self.verdict]

    @property
    def reasons(self) -> list[str]:
        """Every breached signal and segment, the improvements and what is underpowered, with numbers."""
        out = [c.reason for c in self.breaches] + [c.reason for c in self.improvements]
        out += [f"underpowered: {c.reason}" for c in self.underpowered]
        return out


def _sides(row: Mapping[str, Any]) -> tuple[float, float | None]:
    """Raw one-sided p-values (worse, better) for the metric's direction."""
    hib = row["higher_is_better"]
    if hib is None:
        return row["p_two"], None
    return (row["p_lower"], row["p_higher"]) if hib else (row["p_higher"], row["p_lower"])


def _size(row: Mapping[str, Any], t: Threshold) -> tuple[float, float]:
    if t.absolute is not None:
        return abs(row["delta"]), t.absolute
    return abs(row["rel_delta"] or 0.0), t.relative or 0.0


def _worse(delta: float, higher_is_better: bool | None) -> bool:
    if higher_is_better is None:
        return delta != 0
    return delta < 0 if higher_is_better else delta > 0


def _check(row: Mapping[str, Any], t: Threshold, p_worse: float, p_better: float | None, policy: Policy) -> Check:
    size, limit = _size(row, t)
    beyond = size > limit
    worse = _worse(row["delta"], row["higher_is_better"])
    family = row["family"]
    n_required = (required_n(t.absolute, row["sd_diff"] or 0.0, policy.alpha, policy.power)
                  if family in EVAL_FAMILIES and t.absolute is not None else None)
    p = p_worse
    if row["n"] < policy.min_requests:
        status = "too_few"
    elif worse and beyond and p_worse < policy.alpha:
        status = "advisory" if row["metric"] in policy.advisory else "breach"
    elif (not worse and beyond and family in EVAL_FAMILIES and p_better is not None and p_better < policy.alpha
          and row["metric"] not in policy.advisory):
        status, p = "improved", p_better
    elif worse and beyond:
        status = "not_significant"
    else:
        status = "ok"
    where = f" [{row['segment']}]" if row["segment"] is not None else ""
    power = (f"; only {row['n']} pairs, {n_required} needed to detect it with {policy.power:.0%} power"
             if n_required is not None and row["n"] < n_required else "")
    reason = (f"{family}/{row['metric']}{where}: {row['baseline']:.3g} -> {row['candidate']:.3g} "
              f"(delta {row['delta']:+.3g}, 95% CI [{row['ci_low']:+.3g}, {row['ci_high']:+.3g}], n={row['n']}, "
              f"{row['test']} p={p:.2g} adj.); margin {t.describe()}{power}: {status}")
    return Check(row["metric"], family, row["segment"], int(row["n"]), row["baseline"], row["candidate"],
                 row["delta"], row["ci_low"], row["ci_high"], row["rel_delta"], t.describe(), row["test"], p,
                 n_required, status, reason)


def metric_checks(summary: Sequence[Mapping[str, Any]], policy: Policy) -> list[Check]:
    """Checks of every gated metric, overall and per segment, with adjusted p-values."""
    groups: dict[tuple[str, bool], list[tuple[Mapping[str, Any], Threshold]]] = {}
    for r in summary:
        t = policy.threshold(r["metric"], r["family"])
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


def drift_checks(rows: Sequence[Mapping[str, Any]], policy: Policy) -> list[Check]:
    """Divergence checks from the drift summary (candidate arm, overall and per segment)."""
    from scipy.stats import binom

    cand = [r for r in rows if r["arm"] == "candidate" and r.get("n_below") is not None]
    # The reference level of a segment is the A/A arm's own share below the floor there (at least aa_quantile):
    # the floor is one quantile over all requests, and segments whose outputs vary more under the serving
    # perturbation or sampling sit below it more often even when nothing changed.
    aa_share = {r["segment"]: r["share_below"] for r in rows
                if r["arm"] == "aa" and r.get("share_below") is not None}
    ref = [max(policy.aa_quantile, aa_share.get(r["segment"], 0.0)) for r in cand]
    raw = [float(binom.sf(r["n_below"] - 1, r["n"], min(lv + policy.drift_margin, 1.0))) if r["n"] else 1.0
           for r, lv in zip(cand, ref, strict=True)]
    out = []
    for overall in (True, False):
        idx = [i for i, r in enumerate(cand) if (r["segment"] is None) == overall]
        adj = adjust([raw[i] for i in idx], policy.correction)
        for i, p in zip(idx, adj, strict=True):
            r, level = cand[i], ref[i]
            share = r["share_below"]
            if r["n"] < policy.min_requests:
                status = "too_few"
            elif share - level > policy.drift_margin and p < policy.alpha:
                status = "breach"
            else:
                status = "ok"
            where = f" [{r['segment']}]" if r["segment"] is not None else ""
            reason = (f"drift/share_below_aa_floor{where}: {share:.1%} of {r['n']} requests below the A/A floor "
                      f"(95% CI [{r['below_ci_low']:.1%}, {r['below_ci_high']:.1%}]; A/A level {level:.1%}, "
                      f"margin {policy.drift_margin:.0%}, binomial p={p:.2g} adj.): {status}")
            out.append(Check("share_below_aa_floor", "drift", r["segment"], int(r["n"]), level, share,
                             share - level, r["below_ci_low"] - level, r["below_ci_high"] - level, None,
                             f"abs {policy.drift_margin:g}", "binomial", p, None, status, reason))
    return out


def decide(summary: Sequence[Mapping[str, Any]], policy: Policy,
           drift: Sequence[Mapping[str, Any]] | None = None) -> Verdict:
    """The verdict from the analysis summary (all families) and the drift summary (module docstring)."""
    checks = metric_checks(summary, policy) + drift_checks(drift or [], policy)
    breaches = tuple(c for c in checks if c.status == "breach")
    improvements = tuple(c for c in checks if c.status == "improved")
    degraded = {c.family for c in breaches if c.family in DEGRADATION_FAMILIES}
    diverged = any(c.family == "drift" for c in breaches)
    underpowered = tuple(c for c in checks if c.segment is None and c.n_required is not None
                         and c.status in ("ok", "not_significant") and c.n < c.n_required)
    families = {c.family: "ok" for c in checks}
    families.update({c.family: "improved" for c in improvements})
    families.update({c.family: "breached" for c in breaches})
    overall = tuple(c for c in checks if c.segment is None)
    if degraded:
        count = len(degraded) + diverged
        verdict, direction = ("ROLLBACK" if count >= 2 else "INVESTIGATE"), "REGRESSION"
    elif improvements:
        verdict, direction = "HOLD_FOR_SIGNOFF", "IMPROVEMENT"
    elif diverged:
        verdict, direction = "INVESTIGATE", "DIVERGENCE"
    elif not any(c.status != "too_few" for c in overall) or underpowered:
        verdict, direction = "INSUFFICIENT_DATA", "NONE"
    else:
        verdict, direction = "PASS", "NONE"
    return Verdict(verdict, direction, breaches, overall, tuple(c for c in checks if c.segment is not None),
                   improvements, underpowered, families)

