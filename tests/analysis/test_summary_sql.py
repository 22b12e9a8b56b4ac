"""The DuckDB analysis over a small hand-made run directory (real DuckDB, real Parquet)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from harness.analysis.tables import analyze
from harness.signals.base import SIGNAL_SCHEMA, metric_catalog
from harness.signals.stats import OutputStats
from harness.store import BATCH_SCHEMA, GENERATION_SCHEMA, RunDir


@pytest.fixture()
def run(tmp_path: Path) -> RunDir:
    run = RunDir(tmp_path, "exp", "r1")
    texts = {"baseline": ["aaaa", "bb", "cccccc", "dd"], "candidate": ["aaaa", "b", "cc", "dd"]}
    for arm, outs in texts.items():
        gens = [{"request_id": f"q{i}", "segment": "s1" if i < 2 else "s2", "batch": 0, "output_text": t,
                 "prompt_tokens": 3, "output_tokens": len(t), "finish_reason": "stop", "error": None}
                for i, t in enumerate(outs)]
        run.write_part("generations", arm, 0, pa.Table.from_pylist(gens, schema=GENERATION_SCHEMA))
        run.write_part("batches", arm, 0, pa.Table.from_pylist(
            [{"batch": 0, "requests": 4, "prompt_tokens": 12, "output_tokens": 10, "seconds": 2.0}],
            schema=BATCH_SCHEMA))
    # json_valid: baseline 1,1,1,null ; candidate 1,0,0,null  -> paired n=3, delta -2/3
    jv = {"baseline": [1.0, 1.0, 1.0, None], "candidate": [1.0, 0.0, 0.0, None]}
    rows = [{"request_id": f"q{i}", "arm": arm, "segment": "s1" if i < 2 else "s2", "metric": "json_valid", "value": v}
            for arm, vals in jv.items() for i, v in enumerate(vals)]
    run.write_table("signals", pa.Table.from_pylist(rows, schema=SIGNAL_SCHEMA))
    run.write_table("metrics", metric_catalog([OutputStats()]))
    return run


def test_summary_is_paired_and_segmented(run: RunDir) -> None:
    summary = {(r["metric"], r["segment"]): r for r in analyze(run)["summary"].to_pylist()}
    overall = summary[("json_valid", None)]
    assert overall["n"] == 3 and overall["n_changed"] == 2
    assert overall["baseline"] == pytest.approx(1.0) and overall["candidate"] == pytest.approx(1 / 3)
    assert overall["delta"] == pytest.approx(-2 / 3)
    # differences 0, -1, -1: a bootstrap resample of 3 is all -1 with probability (2/3)^3 = 0.30 > 2.5% and all 0
    # with probability (1/3)^3 = 0.037 > 2.5%, so the 95% percentile interval is [-1, 0]
    assert (overall["ci_low"], overall["ci_high"]) == (pytest.approx(-1.0), pytest.approx(0.0))
    # the gate's test is Tango's score test (on down/up); against zero the exact McNemar is kept:
    # b = 2 pairs went 1 -> 0, c = 0: P(X >= 2 | Bin(2, 1/2)) = 1/4
    assert overall["test"] == "tango" and overall["p_lower"] == pytest.approx(0.25)
    assert (overall["down"], overall["up"], overall["n_nonfinite"]) == (2, 0, 0)
    assert overall["higher_is_better"] is True and overall["kind"] == "rate"
    assert summary[("json_valid", "s1")]["n"] == 2 and summary[("json_valid", "s1")]["delta"] == pytest.approx(-0.5)
    assert summary[("json_valid", "s2")]["n"] == 1 and summary[("json_valid", "s2")]["delta"] == pytest.approx(-1.0)


def test_changed_pairs_throughput_and_outcomes(run: RunDir) -> None:
    tables = analyze(run)
    pairs = tables["changed_pairs"].to_pylist()
    assert [p["request_id"] for p in pairs] == ["q2", "q1"]  # |-4| before |-1|; unchanged pairs left out
    assert pairs[0]["chars_delta"] == -4
    tp = {t["arm"]: t for t in tables["throughput"].to_pylist()}
    assert tp["candidate"]["requests_per_s"] == pytest.approx(2.0) and tp["baseline"]["output_tokens_per_s"] == 5.0
    assert {(r["arm"], r["outcome"], r["requests"]) for r in tables["requests"].to_pylist()} == {
        ("baseline", "ok", 4), ("candidate", "ok", 4)}
    assert (run.path / "summary.parquet").exists()
