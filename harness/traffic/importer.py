"""``python -m harness import FORMAT IN... OUT.parquet``: client logs (``harness.traffic.formats``) to traffic Parquet.

Several files or directories at once; the segment from any field path of a record (``metadata.route``,
``parent.app.route``, ``attributes.gen_ai.request.model``: keys with dots are matched whole); ``--skip-invalid`` writes
the valid requests and puts every invalid record, with its reasons, in a quarantine file (JSONL) with counts;
``--sample N`` keeps a seeded random sample (``--stratify``: proportional per segment, at least one each) instead of
the first N. Without ``--skip-invalid`` every problem is listed and nothing is written (exit 2).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.traffic.formats import FORMATS
from harness.traffic.schema import Issue, Request, TrafficError, validate_row, write_traffic

SUFFIXES = (".jsonl", ".json", ".ndjson")


@dataclass
class ImportResult:
    """What an import did: requests written, invalid records (quarantined or listed), why, the sample."""

    written: int
    valid: int
    invalid: int
    reasons: dict[str, int] = field(default_factory=dict)  # field -> invalid records
    quarantine: Path | None = None
    segments: dict[str, int] = field(default_factory=dict)  # written requests per segment


def expand(sources: Sequence[str | Path]) -> list[Path]:
    """Files as given, and the log files (``*.jsonl``, ``*.json``, ``*.ndjson``) under each directory, sorted.

    Raises:
        TrafficError: a source that does not exist, or no file at all.
    """
    out: list[Path] = []
    for s in map(Path, sources):
        if s.is_dir():
            out += sorted(p for p in s.rglob("*") if p.is_file() and p.suffix in SUFFIXES)
        elif s.is_file():
            out.append(s)
        else:
            raise TrafficError([f"{s}: no such file or directory. Fix: give log files or folders holding them."])
    if not out:
        raise TrafficError([f"{', '.join(map(str, sources))}: no log files ({', '.join(SUFFIXES)}). Fix: give the "
                            "files the client wrote."])
    return out


def field_path(obj: Any, path: str) -> Any:
    """The value at a dotted ``path`` in nested dicts; a key that itself holds dots (``app.route``) matches whole."""
    if not path:
        return obj
    if not isinstance(obj, dict):
        return None
    if path in obj:
        return obj[path]
    parts = path.split(".")
    for i in range(len(parts) - 1, 0, -1):
        key = ".".join(parts[:i])
        if key in obj:
            found = field_path(obj[key], ".".join(parts[i:]))
            if found is not None:
                return found
    return None


def _segment(record: dict[str, Any], row: dict[str, Any], path: str | None, default: str) -> Any:
    if not path:
        return default
    found = field_path(record, path)
    if found is None:  # `--segment-field F` of import-openai: a key of the metadata
        found = field_path(row.get("metadata") or {}, path)
    return default if found is None else str(found) if isinstance(found, int | float) else found


def records(files: Sequence[Path], fmt: str, segment_field: str | None, default_segment: str
            ) -> Iterator[tuple[Path, str, dict[str, Any] | None, Request | None, list[Issue]]]:
    """Every record of every file: (file, where, raw record, request or None, issues)."""
    read, to_row = FORMATS[fmt]
    for f in files:
        for n, (where, record, issues) in enumerate(read(f), start=1):
            request = None
            if record is not None and not issues:
                row, issues = to_row(record)
                row["request_id"] = row.get("request_id") or f"{f.stem}-{n}"
                row["segment"] = _segment(record, row, segment_field, default_segment)
                if not issues:
                    request, issues = validate_row(row)
            yield f, where, record, request, issues


def sample_requests(requests: list[Request], n: int, seed: int, stratify: bool) -> list[Request]:
    """A seeded random sample of ``n`` (all when fewer); ``stratify``: per segment in proportion to its size (largest
    remainder), at least one per segment while ``n`` allows. Returned in capture order."""
    rng = random.Random(seed)
    if n >= len(requests):
        return list(requests)
    if not stratify:
        picked = rng.sample(range(len(requests)), n)
    else:
        by_segment: dict[str, list[int]] = collections.defaultdict(list)
        for i, r in enumerate(requests):
            by_segment[r.segment].append(i)
        quota = {s: n * len(ix) / len(requests) for s, ix in by_segment.items()}
        take = {s: max(1 if n >= len(by_segment) else 0, int(q)) for s, q in quota.items()}
        for s in sorted(quota, key=lambda s: quota[s] - int(quota[s]), reverse=True):
            if sum(take.values()) >= n:
                break
            take[s] = min(len(by_segment[s]), take[s] + 1)
        while sum(take.values()) > n:  # the at-least-one floor overshot: trim the largest
            largest = max(take, key=lambda s: take[s])
            take[largest] -= 1
        picked = [i for s in sorted(by_segment) for i in rng.sample(by_segment[s], min(take[s], len(by_segment[s])))]
    return [requests[i] for i in sorted(picked)]


def import_traffic(sources: Sequence[str | Path], dst: str | Path, fmt: str = "openai", *,
                   segment_field: str | None = None, default_segment: str = "default", skip_invalid: bool = False,
                   quarantine: str | Path | None = None, sample: int | None = None, stratify: bool = False,
                   seed: int = 0) -> ImportResult:
    """Convert client logs to traffic Parquet (module docstring).

    Raises:
        TrafficError: without ``skip_invalid``, every problem (file, line or span, field, fix); nothing is written.
            With it, only when no record is valid.
    """
    if fmt not in FORMATS:
        raise TrafficError([f"format {fmt!r}: expected one of {sorted(FORMATS)}."])
    files, dst = expand(sources), Path(dst)
    qpath = Path(quarantine) if quarantine else dst.with_suffix(".quarantine.jsonl")
    problems: list[str] = []
    reasons: collections.Counter[str] = collections.Counter()
    seen: dict[str, str] = {}
    valid: list[Request] = []
    invalid = 0
    tmp_q = qpath.with_name(f".{qpath.name}.{os.getpid()}.tmp")
    with tmp_q.open("w", encoding="utf-8") as q:
        for f, where, record, request, issues in records(files, fmt, segment_field, default_segment):
            if request is not None and request.request_id in seen:
                issues = [Issue("request_id", "a unique request id", f"the same id as {seen[request.request_id]}",
                                "make the ids unique or drop the repeated record")]
                request = None
            if request is not None:
                seen[request.request_id] = f"{f.name} {where}"
                valid.append(request)
                continue
            invalid += 1
            described = [i.describe(str(f), where, kind="field") for i in issues]
            reasons.update(i.column or "record" for i in issues)
            if skip_invalid:
                q.write(json.dumps({"file": str(f), "at": where, "reasons": described, "record": record},
                                   default=str) + "\n")
            elif len(problems) < TrafficError.MAX_KEPT:
                problems.extend(described[: TrafficError.MAX_KEPT - len(problems)])
    if problems or (not valid and not invalid):
        tmp_q.unlink(missing_ok=True)
        raise TrafficError(problems or [f"{files[0]}: no records found. Fix: check the format ({fmt})."],
                           total=sum(reasons.values()) or None)
    if not valid:
        os.replace(tmp_q, qpath)
        raise TrafficError([f"none of the {invalid} records is valid; the reasons are in {qpath}."])
    kept = sample_requests(valid, sample, seed, stratify) if sample is not None else valid
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    try:
        write_traffic(kept, tmp, optional=True)
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)
    if invalid:
        os.replace(tmp_q, qpath)
    else:
        tmp_q.unlink(missing_ok=True)
    return ImportResult(len(kept), len(valid), invalid, dict(reasons), qpath if invalid else None,
                        dict(collections.Counter(r.segment for r in kept)))


def main(argv: Sequence[str]) -> int:
    """``python -m harness import FORMAT IN... OUT.parquet [options]``; exit 2 on bad input."""
    p = argparse.ArgumentParser(prog="python -m harness import", description="Client logs to traffic Parquet.")
    p.add_argument("format", choices=sorted(FORMATS), help="openai (chat JSONL, wrapped or plain), litellm "
                   "(standard logging payload JSONL), otel (OTLP JSON GenAI spans)")
    p.add_argument("paths", nargs="+", help="log files or directories, then the traffic Parquet to write")
    p.add_argument("--segment-field", default=None, help="field path of the segment, e.g. metadata.route")
    p.add_argument("--default-segment", default="default")
    p.add_argument("--skip-invalid", action="store_true", help="write the valid requests; quarantine the rest")
    p.add_argument("--quarantine", default=None, help="the quarantine file (default OUT.quarantine.jsonl)")
    p.add_argument("--sample", type=int, default=None, help="keep a seeded random sample of N requests")
    p.add_argument("--stratify", action="store_true", help="sample per segment, in proportion")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    if len(a.paths) < 2:
        p.error("give at least one log and the output Parquet")
    *sources, dst = a.paths
    result = import_traffic(sources, dst, a.format, segment_field=a.segment_field, default_segment=a.default_segment,
                            skip_invalid=a.skip_invalid, quarantine=a.quarantine, sample=a.sample,
                            stratify=a.stratify, seed=a.seed)
    print(f"wrote {result.written} requests to {dst} ({result.valid} valid"
          + (f", sampled {result.written}" if a.sample is not None else "") + f"; segments {result.segments})")
    if result.invalid:
        why = ", ".join(f"{k}: {v}" for k, v in sorted(result.reasons.items()))
        print(f"skipped {result.invalid} invalid records ({why}); quarantined in {result.quarantine}")
    return 0
