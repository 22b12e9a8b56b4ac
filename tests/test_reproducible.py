"""The same command twice (two run ids) gives identical generation tables under greedy decoding and an identical
verdict.json apart from the run id, timestamps and timings; the manifest records what decides determinism."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pytest
from helpers import SAMPLE, run_harness

from harness.traffic import load_traffic, write_traffic

pytestmark = pytest.mark.vllm
VARYING = {"run_id", "created_at", "resumed_at", "load_seconds"}  # of the manifest; seconds are timings


def _generations(run: Path) -> list[tuple[Any, ...]]:
    return duckdb.sql(f"SELECT * FROM read_parquet('{run}/generations/*/*.parquet', hive_partitioning=true) "
                      "ORDER BY arm, request_id").fetchall()


def _without_varying(verdict: dict[str, Any]) -> dict[str, Any]:
    manifest = {k: v for k, v in verdict["manifest"].items() if k not in VARYING}
    manifest["config"] = {k: v for k, v in manifest["config"].items() if k != "run_id"}
    manifest["spec"] = {k: v for k, v in manifest["spec"].items() if k != "run_id"}
    return {**verdict, "manifest": manifest}


def test_same_command_twice_gives_the_same_generations_and_verdict(zoo: Path, tmp_path: Path) -> None:
    """The baseline is replayed by vLLM; the candidate is imported (a fixed file), which spares two engine starts."""
    requests = load_traffic(SAMPLE, limit=100)
    write_traffic(requests, tmp_path / "traffic.parquet")
    outputs = tmp_path / "candidate.jsonl"
    outputs.write_text("".join(json.dumps({"request_id": r.request_id, "output": f"Answer for {r.segment}."}) + "\n"
                               for r in requests))
    runs = []
    for run_id in ("first", "second"):
        proc = run_harness("replay", "experiment=zoo_benign", f"traffic.path={tmp_path / 'traffic.parquet'}",
                           "drift.enabled=false", "golden.path=null", f"output_dir={tmp_path}", f"run_id={run_id}",
                           "cache.enabled=false",  # both runs generate: this tests the engine, not the cache
                           "baseline.engine.batch_size=32", f"candidate.imported={outputs}")
        assert proc.returncode in (0, 10, 11, 13), proc.stderr[-3000:]
        runs.append(tmp_path / "zoo_benign" / run_id)
    first, second = (_generations(r) for r in runs)
    assert len(first) == 200 and first == second
    assert sum(1 for row in first if row[-1] == "baseline" and row[3]) == 100  # the baseline really generated text
    verdicts = [json.loads((r / "verdict.json").read_text()) for r in runs]
    assert _without_varying(verdicts[0]) == _without_varying(verdicts[1])
    determinism = verdicts[0]["manifest"]["determinism"]
    assert determinism["VLLM_BATCH_INVARIANT"] in ("0", "1")
    assert determinism["arms"]["baseline"] == {
        "backend": "vllm", "engine_seed": 0, "sampling_seed": 0, "batch_size": 32, "dtype": "float32",
        "quantization": None, "max_model_len": 256, "enforce_eager": True, "temperature": 0.0, "extra": {}}
