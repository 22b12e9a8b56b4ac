"""Promote labelled requests to golden references ("annotate new edge cases as they appear in production").

A ``golden`` row of a label file (docs/annotate.md) carries a request id and the reference answer the annotator
accepted (the preferred output, possibly edited). ``promote`` writes those requests, with their traffic columns
from the run's traffic file, as golden items in the format ``harness.golden.schema`` reads: ``expected`` = the
reference, ``checks`` = ROUGE-L against it (plus JSON field accuracy when the request has a ``response_schema``
and the reference is a JSON object), ``dimension`` ``task_accuracy``, ``added_at`` now, ``source``
``annotate:<experiment>/<run_id>/<sample>``. An existing golden file is extended (a request already in it is an
error, not a silent overwrite), and the result is validated with ``load_golden`` before it replaces the file.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from harness.annotate.labels import Labels
from harness.errors import BadInput
from harness.golden.schema import GoldenItem, load_golden, write_golden
from harness.spec import read_manifest
from harness.store import RunDir, write_parquet_atomic
from harness.traffic import load_traffic


def _checks(expected: str, has_schema: bool) -> tuple[tuple[str, str], ...]:
    checks: list[tuple[str, str]] = [("rouge_l", expected)]
    if has_schema:
        try:
            if isinstance(json.loads(expected), dict):
                checks.append(("json_field_accuracy", expected))
        except ValueError:
            pass
    return tuple(checks)


def promote(run_path: Path, labels: Labels, out: Path) -> tuple[Path, int]:
    """Write (or extend) the golden set ``out`` with the requests ``labels`` promoted; returns (path, items added).

    Raises:
        BadInput: no golden row in the labels, a promoted request missing from the run's traffic, or already in
            ``out``.
    """
    if not labels.golden:
        raise BadInput(f"{labels.path}: no golden row. Fix: press g on a pair in the labelling page (the reference "
                       "answer is the preferred output, editable), then download the labels again.")
    manifest = read_manifest(RunDir.at(run_path))
    requests = {r.request_id: r for r in load_traffic(manifest.traffic.path, limit=manifest.traffic.limit)
                if r.request_id in labels.golden}
    missing = sorted(set(labels.golden) - set(requests))
    if missing:
        raise BadInput(f"{labels.path}: golden rows for request(s) {missing[:5]} that are not in the run's traffic "
                       f"{manifest.traffic.path}. Fix: promote from the run the page was made from.")
    existing = pq.read_table(out) if out.exists() else None
    if existing is not None:
        again = sorted(set(labels.golden) & set(existing["request_id"].to_pylist()))
        if again:
            raise BadInput(f"{out}: request(s) {again[:5]} are already golden items. Fix: drop their golden rows "
                           "from the label file, or write to another --golden file.")
    now = dt.datetime.now(dt.UTC)
    source = f"annotate:{manifest.experiment}/{manifest.run_id}/{','.join(labels.samples)}"
    ids = sorted(labels.golden)
    items = [GoldenItem(rid, requests[rid].segment, labels.golden[rid],
                        _checks(labels.golden[rid], requests[rid].response_schema is not None), "task_accuracy", now,
                        source) for rid in ids]
    with tempfile.TemporaryDirectory() as tmp:
        new = pq.read_table(write_golden([requests[r] for r in ids], items, Path(tmp) / "new.parquet"))
        table = new if existing is None else pa.concat_tables([existing, new.cast(existing.schema)])
        staged = Path(tmp) / "golden.parquet"
        pq.write_table(table, staged)
        load_golden(staged)  # the golden set's own checks, before anything is replaced
        out.parent.mkdir(parents=True, exist_ok=True)
        write_parquet_atomic(out, table)
    return out, len(ids)
