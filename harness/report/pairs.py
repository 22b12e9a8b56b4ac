"""The most changed pairs as the report shows them: one entry per request and per distinct (prompt, outputs),
labelled with the signals that flag it, picked so that each kind of label is shown once, grouped by segment.

The candidates are ``changed_pairs`` (the largest changes in length, round-robin over segments). Each gets labels
from its own numbers: its change in length, the 0/1 signals that flipped between the arms (refusal, invalid JSON,
lost list, truncation, ...), a cosine to the baseline's output below the A/A floor, and the judge's preference or
a score that moved a point or more. ``load_pair_signals`` reads those per-request values from the run directory.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.store import RunDir

Values = Mapping[str, Mapping[str, tuple[float | None, float | None]]]  # request_id -> metric -> (baseline, cand.)
# 0/1 signals: metric -> (value that is worse, label when it became worse, label when it became better)
FLIPS = {
    "refusal": (1, "refusal", "no longer refuses"),
    "json_valid": (0, "invalid JSON", "JSON fixed"),
    "schema_valid": (0, "schema invalid", "schema fixed"),
    "structure_ok": (0, "list lost", "list added"),
    "truncated": (1, "truncated", "no longer truncated"),
    "empty": (1, "empty output", "no longer empty"),
    "error": (1, "error", "error fixed"),
    "hedge": (1, "hedges", "no longer hedges"),
    "golden_exact_match": (0, "golden miss", "golden match"),
    "judge_preferred": (0, "judge prefers baseline", "judge prefers candidate"),
}


@dataclass(frozen=True)
class Label:
    """Why a pair is shown: ``kind`` groups labels for picking, ``tone`` is worse, better or info."""

    kind: str
    text: str
    tone: str = "info"


@dataclass(frozen=True)
class Pair:
    """One shown pair; ``same``: other request ids with the very same prompt and outputs (not shown again)."""

    request_id: str
    segment: str | None
    baseline_output: str
    candidate_output: str
    chars_delta: int | None
    labels: tuple[Label, ...]
    same: tuple[str, ...] = field(default=())


def labels(row: Mapping[str, Any], values: Mapping[str, tuple[float | None, float | None]],
           floor: float | None) -> tuple[Label, ...]:
    """The labels of one ``changed_pairs`` row from its per-request signal values (``values``: metric ->
    (baseline, candidate); ``cosine``: (None, candidate vs baseline)) and the A/A floor."""
    out = []
    delta, base = row.get("chars_delta"), row.get("baseline_output") or ""
    if delta is not None:
        delta = int(delta)
        rel = f" ({delta / len(base):+.0%})" if base else ""
        out.append(Label("length", f"length {delta:+,d} chars{rel}", "info"))
    for metric, (worse, worse_text, better_text) in FLIPS.items():
        b, c = values.get(metric, (None, None))
        if b is None or c is None or b == c:
            continue
        out.append(Label(metric, worse_text, "worse") if c == worse else Label(metric, better_text, "better"))
    for metric, (b, c) in sorted(values.items()):
        if metric.startswith("judge_") and metric not in FLIPS and metric != "judge_unscored" \
                and b is not None and c is not None and abs(c - b) >= 1:
            out.append(Label("judge", f"{metric} {b:g} -> {c:g}", "worse" if c < b else "better"))
    cosine = values.get("cosine", (None, None))[1]
    if cosine is not None and floor is not None and cosine < floor:
        out.append(Label("cosine", f"low cosine {cosine:.2f}", "worse"))
    elif cosine is not None:
        out.append(Label("cosine-info", f"cosine {cosine:.2f}", "info"))
    return tuple(out)


def select(rows: Sequence[Mapping[str, Any]], top: int, values: Values, floor: float | None,
           prompt: Callable[[str], str]) -> list[Pair]:
    """Up to ``top`` pairs: deduplicated, one per kind of label first (in the candidates' order), then the
    largest changes; returned grouped by segment (segments in the order they first appear)."""
    kept: list[Pair] = []
    by_content: dict[tuple[str, str, str], int] = {}
    seen: set[str] = set()
    for r in rows:
        rid = str(r["request_id"])
        if rid in seen:
            continue
        seen.add(rid)
        key = (prompt(rid), r.get("baseline_output") or "", r.get("candidate_output") or "")
        if key in by_content:
            i = by_content[key]
            kept[i] = replace(kept[i], same=(*kept[i].same, rid))
            continue
        by_content[key] = len(kept)
        kept.append(Pair(rid, r.get("segment"), key[1], key[2], r.get("chars_delta"),
                         labels(r, values.get(rid, {}), floor)))
    picked: list[int] = []
    for kind in dict.fromkeys(lb.kind for p in kept for lb in p.labels if lb.tone != "info"):
        i = next(i for i, p in enumerate(kept) if any(lb.kind == kind for lb in p.labels))
        if i not in picked and len(picked) < top:
            picked.append(i)
    picked += [i for i in range(len(kept)) if i not in picked][: max(top - len(picked), 0)]
    chosen = [kept[i] for i in sorted(picked)]
    segments = list(dict.fromkeys(p.segment for p in chosen))
    return [p for s in segments for p in chosen if p.segment == s]


def load_pair_signals(run: RunDir, request_ids: Collection[str]) -> dict[str, dict[str, tuple[float | None,
                                                                                             float | None]]]:
    """Per request of ``request_ids``: each signal's (baseline, candidate) value from ``signals.parquet`` and the
    candidate's cosine to the baseline from ``drift.parquet`` (``cosine``), where the run has them."""
    import pyarrow as pa
    import pyarrow.compute as pc

    ids = pa.array(sorted(request_ids), pa.string())
    out: dict[str, dict[str, tuple[float | None, float | None]]] = {}
    if run.table_path("signals").exists() and len(ids):
        table = run.read_table("signals")
        table = table.filter(pc.is_in(table["request_id"], value_set=ids))
        both: dict[tuple[str, str], dict[str, float | None]] = {}
        for r in table.select(["request_id", "arm", "metric", "value"]).to_pylist():
            both.setdefault((r["request_id"], r["metric"]), {})[r["arm"]] = r["value"]
        for (rid, metric), v in both.items():
            out.setdefault(rid, {})[metric] = (v.get("baseline"), v.get("candidate"))
    if run.table_path("drift").exists() and len(ids):
        drift = run.read_table("drift")
        drift = drift.filter(pc.and_(pc.is_in(drift["request_id"], value_set=ids), pc.equal(drift["arm"],
                                                                                            "candidate")))
        for r in drift.select(["request_id", "cosine"]).to_pylist():
            out.setdefault(r["request_id"], {})["cosine"] = (None, r["cosine"])
    return out
