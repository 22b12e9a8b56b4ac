"""The top of the report, shared by HTML and Markdown: one tile per signal family and the reasons, grouped.

A **tile** says a family's status (breached, improved, advisory, ok, or not gated), its headline check (the breached
check that is furthest past its margin, else the improved or advisory one, else the largest move) with its delta
and CI, and how many segments breached. The **grouped reasons** fold the checks of one metric and status into one
line (``stats/chars fell overall by 50% and in 3 of 4 segments, by 36-92%: breach``), most severe first; the
verdict's full list of reasons stays available below them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.report.units import RELATIVE, Units, margin_of, severity

FLAGGED = ("breach", "advisory", "improved")
STATUS_OF_FAMILY = {"breached": "breach", "improved": "improved", "advisory": "advisory"}
VERDICT_MEANING = {
    "PASS": "No gated signal moved beyond its margin: safe to promote.",
    "INVESTIGATE": "One signal family degraded: look at it before promoting.",
    "ROLLBACK": "Two or more signal families breached, one of them a degradation: do not promote.",
    "HOLD_FOR_SIGNOFF": "An eval improved and nothing degraded: a person signs the promotion off.",
    "INSUFFICIENT_DATA": "Too few pairs to decide (or an eval is underpowered for its margin): replay more traffic.",
}
DIVERGENCE_MEANING = "The outputs changed but no eval moved: look before promoting (what would settle it: below)."


def meaning(verdict: Any) -> str:
    """What the verdict asks of the reader, in one sentence."""
    if verdict.verdict == "INVESTIGATE" and verdict.direction == "DIVERGENCE":
        return DIVERGENCE_MEANING
    return VERDICT_MEANING.get(verdict.verdict, "")


@dataclass(frozen=True)
class Tile:
    """One signal family on the scorecard; ``headline`` None: the family has no check (not gated)."""

    family: str
    status: str  # breached | improved | advisory | ok | not gated
    headline: Any  # a harness.gate.Check
    segments_flagged: int
    segments: int
    note: str = ""


def family_notes(divergence: Mapping[str, Any] | None) -> dict[str, str]:
    """Why a family made no check, per family: drift without an A/A floor."""
    if divergence is not None and divergence.get("aa_floor") is None:
        return {"drift": "no A/A floor, so drift is reported only"}
    return {}


def _family_status(verdict: Any, family: str, checks: Sequence[Any]) -> str:
    status = verdict.families.get(family, "ok" if checks else "not gated")
    if status == "ok" and any(c.status == "advisory" for c in checks):
        return "advisory"
    return status


def tiles(verdict: Any, signals: Sequence[str] = (), notes: dict[str, str] | None = None) -> list[Tile]:
    """One tile per family that made checks (the verdict's), then per named signal family that made none.

    Args:
        verdict: the gate's ``Verdict``.
        signals: the run's signal families (``spec.signals``): one that made no check gets a tile when ``notes``
            says why.
        notes: per family, why it is not gated (e.g. drift without an A/A floor).
    """
    checks = [*verdict.checks, *verdict.segment_checks]
    notes = notes or {}
    names = list(dict.fromkeys([*(c.family for c in checks), *(s for s in signals if s in notes)]))
    out = []
    for family in names:
        own = [c for c in checks if c.family == family]
        status = _family_status(verdict, family, own)
        wanted = STATUS_OF_FAMILY.get(status)
        pool = [c for c in own if c.status == wanted] if wanted else []
        overall = [c for c in pool if c.segment is None] or pool
        if not overall:  # ok: the largest move among the overall checks that had enough pairs
            overall = [c for c in own if c.segment is None and c.status != "too_few"] or own
        headline = max(overall, key=severity, default=None)
        segs = {c.segment for c in own if c.segment is not None}
        flagged = {c.segment for c in own if c.segment is not None and c.status == (wanted or "breach")}
        out.append(Tile(family, status, headline, len(flagged), len(segs), notes.get(family, "")))
    return out


def tile_segments(tile: Tile) -> str:
    """``3 of 4 segments breached`` (or ``no segment breached``)."""
    if not tile.segments:
        return "no per-segment checks"
    what = {"improved": "improved", "advisory": "advisory"}.get(tile.status, "breached")
    if not tile.segments_flagged:
        return f"no segment {what} (of {tile.segments})"
    noun = "segment" if tile.segments == 1 else "segments"
    return f"{tile.segments_flagged} of {tile.segments} {noun} {what}"


def _verb(checks: Sequence[Any]) -> str:
    if all(c.delta < 0 for c in checks):
        return "fell"
    if all(c.delta > 0 for c in checks):
        return "rose"
    return "moved"


def _size(units: Units, c: Any) -> tuple[float, str]:
    """The size of a check's change as the margin reads it (relative for relative margins), and its text."""
    if margin_of(c)[0] == "rel" and c.rel_delta is not None:
        return abs(c.rel_delta), RELATIVE.magnitude(c.rel_delta)
    return abs(c.delta), units.of(c).magnitude(c.delta)


def _range(units: Units, checks: Sequence[Any]) -> str:
    sizes = sorted((_size(units, c) for c in checks), key=lambda s: s[0])
    low, high = sizes[0][1], sizes[-1][1]
    if low == high:
        return f"by {high}"
    unit = units.of(checks[0])
    rel = margin_of(checks[0])[0] == "rel"
    suffix = "%" if rel else unit.delta_suffix
    return f"by {low.removesuffix(suffix)}-{high}" if suffix and low.endswith(suffix) else f"by {low} to {high}"


def _group_line(units: Units, metric: str, family: str, status: str, checks: Sequence[Any],
                segment_total: int) -> str:
    overall = [c for c in checks if c.segment is None]
    segs = [c for c in checks if c.segment is not None]
    parts = []
    if overall:
        parts.append(f"{_range(units, overall)} overall ({units.levels(overall[0])})")
    if segs:
        names = f" ({', '.join(str(c.segment) for c in segs)})" if len(segs) <= 3 else ""
        noun = "segment" if segment_total == 1 else "segments"
        parts.append(f"in {len(segs)} of {segment_total} {noun}{names}, {_range(units, segs)}")
    return f"{family}/{metric} {_verb(checks)} " + " and ".join(parts) + f": {status}"


def grouped_reasons(verdict: Any, units: Units) -> list[str]:
    """The verdict's reasons, one line per metric and status, most severe first: breaches, advisories,
    improvements, then what is underpowered and the verdict's notes."""
    checks = [c for c in (*verdict.checks, *verdict.segment_checks) if c.status in FLAGGED]
    groups: dict[tuple[str, str, str], list[Any]] = {}
    for c in checks:
        groups.setdefault((c.status, c.family, c.metric), []).append(c)
    segment_total: dict[tuple[str, str], set[str | None]] = {}
    for c in verdict.segment_checks:
        segment_total.setdefault((c.family, c.metric), set()).add(c.segment)
    # the widest first (most segments), then the furthest past its margin; each breached family's first group
    # leads, so that the first lines name every breached family
    order = sorted(groups.items(), key=lambda kv: (FLAGGED.index(kv[0][0]), -len(kv[1]),
                                                   -max(severity(c) for c in kv[1])))
    first: dict[str, int] = {}
    for i, ((status, family, _), _) in enumerate(order):
        if status == "breach":
            first.setdefault(family, i)
    leads = sorted(first.values())
    order = [order[i] for i in leads] + [g for i, g in enumerate(order) if i not in leads]
    lines = [_group_line(units, metric, family, status, cs, len(segment_total.get((family, metric), ())))
             for (status, family, metric), cs in order]
    lines += [f"inconclusive: {c.family}/{c.metric}: the interval straddles its margin ({units.margin(c)})"
              for c in verdict.inconclusive]
    lines += [f"underpowered: {c.family}/{c.metric}: {c.n:,} pairs, minimum detectable effect {c.mde:.3g} > margin "
              f"({units.margin(c)})" + (f"; {c.n_required:,} pairs needed" if c.n_required else "")
              for c in verdict.underpowered]
    return lines + list(verdict.notes)
