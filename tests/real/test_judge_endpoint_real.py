"""The endpoint judge against the real model's vLLM OpenAI server (the shared ``real_server``: real:smollm2).

Three sample requests (baseline vs terse answers): 6 pointwise and 6 pairwise prompts go through the replayer and
the server engine's HTTP client to the real server with ``response_format`` json_schema; every answer must parse.
A second run with the same cache takes every answer from the generation cache: no request reaches the server.
What the 135M judge says is not checked here (docs/judge.md measures it against humans: a negative control).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from judge_helpers import endpoint_settings, judged_outputs

from harness.signals.judge import run_judge
from harness.store import RunDir

pytestmark = [pytest.mark.vllm]


def test_endpoint_judge_on_the_real_server(real_server: Any, tmp_path: Path) -> None:
    requests, outputs = judged_outputs(3)
    settings = endpoint_settings(real_server.base_url, real_server.name, "arm.checkpoint=real:smollm2",
                                 "arm.sampling.max_tokens=64", "max_chars=600")
    cache = str(tmp_path / "cache")
    run = RunDir(tmp_path, "exp", "r1")
    res = run_judge(run, requests, outputs, settings, cache)
    scores = run.read_table("judge_scores").to_pylist()
    assert len(scores) == 6 * 5 and all(s["unscored_reason"] is None for s in scores), scores
    assert all(1 <= s["score"] <= 5 for s in scores)
    pairs = run.read_table("judge_pairwise").to_pylist()
    assert len(pairs) == 3 and all(p["verdict_ab"] in ("A", "B", "tie") and p["verdict_ba"] in ("A", "B", "tie")
                                   for p in pairs)
    assert res.info["source"] == "endpoint" and "judge_preferred" in res.advisory_metrics  # no human labels

    again = run_judge(RunDir(tmp_path, "exp", "r2"), requests, outputs, settings, cache)
    parts = sorted((tmp_path / "exp" / "r2" / "judge" / "batches").rglob("part-*.parquet"))
    batches = [pq.read_table(p).to_pylist()[0] for p in parts]
    assert batches and all(b["requests"] == 0 and b["cached"] > 0 for b in batches)  # nothing sent: all cached
    assert again.signals.equals(res.signals)
