"""The benchmark scripts run end to end on tiny inputs and write their records (no timing is asserted)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from harness.bench import analysis_scaling, cache, engines, overhead
from harness.signals.base import SIGNAL_SCHEMA
from harness.store import GENERATION_SCHEMA, RunDir

MACHINE_FIELDS = {"date", "command", "cpu", "cpu_count", "gpu", "load_average_1m", "versions"}


def test_analysis_scaling_synthesizes_real_schemas_and_reports(tmp_path: Path) -> None:
    out = tmp_path / "scaling.jsonl"
    analysis_scaling.main(["--sizes", "600", "--part-size", "256", "--report-max", "600", "--keep", str(tmp_path),
                           "--out", str(out)])
    rec = json.loads(out.read_text())
    assert MACHINE_FIELDS <= rec.keys() and rec["command"].startswith("python -m harness.bench.analysis_scaling")
    (size,) = rec["sizes"]
    assert size["requests"] == 600 and size["signal_rows"] == 600 * 2 * 10 and size["parts_per_arm"] == 3
    assert size["report_s"] is not None and size["analyze_s"] > 0 and size["scan_s"] > 0
    run = RunDir(tmp_path, "bench_scaling", "n600")
    assert pq.read_schema(run.table_path("signals")) == SIGNAL_SCHEMA
    assert pq.read_schema(run.part_path("generations", "candidate", 2)) == GENERATION_SCHEMA
    assert pq.read_table(run.part_path("generations", "candidate", 2)).num_rows == 600 - 512
    assert {"summary", "changed_pairs"} <= {p.stem for p in run.path.glob("*.parquet")}
    assert (run.path / "report.md").exists() and (run.path / "report.html").exists()


def test_engines_bench_runs_the_transformers_engine(zoo: Path, tmp_path: Path) -> None:
    out = tmp_path / "engines.jsonl"
    engines.main(["--n", "12", "--repeats", "1", "--backends", "transformers", "--batch-size", "8", "--out", str(out)])
    rec = json.loads(out.read_text())
    r = rec["backends"]["transformers"]
    assert MACHINE_FIELDS <= rec.keys() and r["requests"] == 12 and r["output_tokens"] > 0 and r["requests_per_s"] > 0


@pytest.mark.vllm
def test_overhead_bench_replays_and_matches_the_plain_script(zoo: Path, tmp_path: Path) -> None:
    out = tmp_path / "overhead.jsonl"
    overhead.main(["--n", "40", "--repeats", "1", "--out", str(out)])
    rec = json.loads(out.read_text())
    (rep,) = rec["reps"]
    assert rec["served"] == 40 and rep["identical_outputs"] == 40
    assert rep["replay_s"] > 0 and rep["plain_s"] > 0 and rep["plain_tokens_s"] > 0


def test_cache_bench_runs_the_experiment_twice_and_the_second_generates_nothing(zoo: Path, tmp_path: Path) -> None:
    """On the transformers engine (starts in a second), without golden set and drift: a smoke test, no timing."""
    out = tmp_path / "cache.jsonl"
    cache.main(["--limit", "6", "--out", str(out), "golden.path=null", "drift.enabled=false",
                "baseline.engine.backend=transformers", "candidate.engine.backend=transformers"])
    rec = json.loads(out.read_text())
    first, second = rec["runs"]
    assert MACHINE_FIELDS <= rec.keys() and rec["same_verdict"] and rec["ratio"] > 0
    assert {a: (v["cache_hits"], v["cache_misses"]) for a, v in first["replay"].items()} == {
        "baseline": (0, 6), "candidate": (0, 6)}
    assert {a: (v["cache_hits"], v["cache_misses"], v["engine_started"]) for a, v in second["replay"].items()} == {
        "baseline": (6, 0, False), "candidate": (6, 0, False)}
