"""Golden candidates proposed from a small hand-made run (real DuckDB, real Parquet)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import SAMPLE

from harness.config import ArmConfig
from harness.gate import Policy
from harness.golden.candidates import propose
from harness.golden.schema import load_golden
from harness.signals.base import SIGNAL_SCHEMA
from harness.spec import RunSpec, handmade_manifest, write_manifest
from harness.store import BATCH_SCHEMA, GENERATION_SCHEMA, RunDir
from harness.traffic import TrafficError, load_traffic


def test_candidates_are_the_diverged_and_failed_requests_ready_for_annotation(tmp_path: Path) -> None:
    ids = [r.request_id for r in load_traffic(SAMPLE, limit=4)]
    run = RunDir(tmp_path, "exp", "r1")
    for arm in ("baseline", "candidate"):
        run.write_part("generations", arm, 0, pa.Table.from_pylist([
            {"request_id": i, "segment": "s", "batch": 0, "output_text": f"{arm} {i}", "prompt_tokens": 1,
             "output_tokens": 1, "finish_reason": "stop", "error": None} for i in ids], schema=GENERATION_SCHEMA))
        run.write_part("batches", arm, 0, pa.Table.from_pylist(
            [{"batch": 0, "requests": 4, "prompt_tokens": 4, "output_tokens": 4, "seconds": 1.0}], schema=BATCH_SCHEMA))
    run.write_table("signals", pa.Table.from_pylist(  # ids[3] failed its JSON on the candidate
        [{"request_id": ids[3], "arm": "candidate", "segment": "s", "metric": "json_valid", "value": 0.0}],
        schema=SIGNAL_SCHEMA))
    run.write_table("drift", pa.Table.from_pylist([  # ids[1] moved furthest
        {"request_id": i, "segment": "s", "arm": "candidate", "cosine": c}
        for i, c in zip(ids, (0.99, 0.2, 0.9, 0.95), strict=True)]))
    spec = RunSpec(name="exp", traffic_path=str(SAMPLE), limit=4,
                   arms={"baseline": ArmConfig(), "candidate": ArmConfig()}, signals=("stats",), policy=Policy(),)
    write_manifest(run, handmade_manifest(spec, "r1", 4))
    out = propose(run.path, n=1)
    rows = pq.read_table(out).to_pylist()
    assert [(r["request_id"], r["reasons"]) for r in rows] == [(ids[3], "failed:json_valid"), (ids[1], "diverged")]
    assert rows[1]["baseline_output"] == f"baseline {ids[1]}" and rows[1]["source"] == "run:exp/r1"
    assert json.loads(rows[0]["metadata"])["source"] == "zoo-synthetic"  # the traffic row travels with it
    with pytest.raises(TrafficError, match="column expected: expected the reference answer"):
        load_golden(out)  # what is left to annotate is named row by row
