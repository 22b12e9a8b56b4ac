"""The probe set: drawn once from traffic and/or a golden set, stratified by segment, frozen with its fingerprint.

The first run of a watch writes ``probe.parquet`` (one row per prompt: ``probe_id``, ``source`` (traffic or
golden), ``request_id``, ``segment``, ``messages``/``prompt`` as JSON text, ``checks`` (the reference checks as
JSON, or null)) and ``watch.json`` with its sha256 fingerprint. Every later run reads that file back and refuses to
go on when its fingerprint no longer matches (an edited probe set is not the reference's probe set).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import BadInput


@dataclass(frozen=True)
class Probe:
    """One frozen probe prompt."""

    probe_id: str
    source: str
    request_id: str
    segment: str
    messages: tuple[dict[str, str], ...] | None
    prompt: str | None
    checks: tuple[tuple[str, str], ...]  # (metric, target) from the reference, or () when it has none


def _from_requests(source: str, path: str, per_segment: int, rng: random.Random,
                   references: dict[str, Any]) -> list[Probe]:
    from harness.traffic.reader import load_traffic

    by_segment: dict[str, list[Any]] = defaultdict(list)
    for r in load_traffic(path):
        if r.tools is None:  # tool-calling requests are not replayed
            by_segment[r.segment].append(r)
    out = []
    for segment in sorted(by_segment):
        rows = by_segment[segment]
        for r in sorted(rng.sample(rows, min(per_segment, len(rows))), key=lambda r: r.request_id):
            item = references.get(r.request_id)
            msgs = None if r.messages is None else tuple({"role": m.role, "content": m.content} for m in r.messages)
            out.append(Probe("", source, r.request_id, segment, msgs, r.prompt, tuple(item.checks) if item else ()))
    return out


def draw(traffic: str | None, golden: str | None, per_segment: int, seed: int) -> list[Probe]:
    """Draw the probe set: ``per_segment`` prompts of each segment of each source (seeded), references attached.

    Raises:
        BadInput: no source given, or a source holds no usable request.
    """
    from harness.golden.schema import load_golden, load_references, traffic_has_references

    if not traffic and not golden:
        raise BadInput("watch.probe: no source to draw the probe set from. Fix: set probe.traffic=PATH (captured "
                       "traffic) and/or probe.golden=PATH (a golden set).")
    if per_segment < 1:
        raise BadInput(f"watch.probe.per_segment: expected >= 1, found {per_segment}. Fix: set it to 1 or more.")
    rng = random.Random(seed)
    probes: list[Probe] = []
    if traffic:
        refs = load_references(traffic) if traffic_has_references(traffic) else {}
        probes += _from_requests("traffic", traffic, per_segment, rng, refs)
    if golden:
        probes += _from_requests("golden", golden, per_segment, rng, load_golden(golden)[1])
    if not probes:
        raise BadInput(f"watch.probe: {traffic or golden} holds no request the watch can send. Fix: give traffic "
                       "with chat or prompt requests (tool-calling ones are not replayed).")
    return [Probe(f"p{i:04d}", p.source, p.request_id, p.segment, p.messages, p.prompt, p.checks)
            for i, p in enumerate(probes)]


def _row(p: Probe) -> dict[str, Any]:
    return {"probe_id": p.probe_id, "source": p.source, "request_id": p.request_id, "segment": p.segment,
            "messages": None if p.messages is None else json.dumps(list(p.messages), sort_keys=True),
            "prompt": p.prompt, "checks": json.dumps([list(c) for c in p.checks]) if p.checks else None}


def fingerprint(probes: list[Probe]) -> str:
    """sha256 of the probe set's canonical JSON (one line per prompt, in probe order)."""
    h = hashlib.sha256()
    for p in probes:
        h.update(json.dumps(_row(p), sort_keys=True).encode() + b"\n")
    return h.hexdigest()


def write(probes: list[Probe], path: Path) -> str:
    """Write ``probe.parquet`` atomically; returns the fingerprint."""
    import pyarrow as pa

    from harness.store import write_parquet_atomic

    write_parquet_atomic(path, pa.Table.from_pylist([_row(p) for p in probes]))
    return fingerprint(probes)


def read(path: Path, expected: str) -> list[Probe]:
    """The frozen probe set, checked against its fingerprint.

    Raises:
        BadInput: the file is missing or its fingerprint is not ``expected``.
    """
    import pyarrow.parquet as pq

    if not path.is_file():
        raise BadInput(f"{path}: the watch's probe set is missing. Fix: restore it, or start a new watch (another "
                       "name=, or delete the watch folder: the next run becomes the reference).")
    probes = []
    for row in pq.read_table(path).to_pylist():
        msgs = None if row["messages"] is None else tuple(json.loads(row["messages"]))
        checks = tuple(tuple(c) for c in json.loads(row["checks"])) if row["checks"] else ()
        probes.append(Probe(row["probe_id"], row["source"], row["request_id"], row["segment"], msgs, row["prompt"],
                            checks))  # type: ignore[arg-type]
    found = fingerprint(probes)
    if found != expected:
        raise BadInput(f"{path}: fingerprint {found[:12]} differs from the frozen {expected[:12]} (watch.json): the "
                       "probe set was edited. Fix: restore it; a new probe set needs a new watch (another name=).")
    return probes
