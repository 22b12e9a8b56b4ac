"""The endpoint judge against the real model's vLLM OpenAI server (the shared ``real_server``: real:smollm2).

Two sample requests (baseline vs terse answers): 4 pointwise and 4 pairwise prompts go through the replayer and
the server engine's HTTP client to the real server with ``response_format`` json_schema; every answer must parse.
A second run with the same cache takes every answer from the generation cache: no request reaches the server.
What the 135M judge says is not checked here (docs/judge.md measures it against humans: a negative control). The
shared server runs without xgrammar's ``disable_any_whitespace``, so a schema-valid answer can be padded with
whitespace until ``max_tokens`` (seen: 1 of 6 pointwise answers at 64 tokens, 3 requests); such an answer must be
unscored as ``unparseable ... (generation stopped at max_tokens)`` with its raw text kept, never a zero or a transport
error.
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
    requests, outputs = judged_outputs(2)
    settings = endpoint_settings(real_server.base_url, real_server.name, "arm.checkpoint=real:smollm2",
                                 "arm.sampling.max_tokens=96", "max_chars=600")
    cache = str(tmp_path / "cache")
    run = RunDir(tmp_path, "exp", "r1")
    res = run_judge(run, requests, outputs, settings, cache)
    scores = run.read_table("judge_scores").to_pylist()
    assert len(scores) == 4 * 5
    scored = [s for s in scores if s["unscored_reason"] is None]
    assert scored and all(1 <= s["score"] <= 5 for s in scored)
    for s in scores:  # answered over HTTP (no judge_error); unscored only when cut at max_tokens, raw text kept
        assert s["unscored_reason"] is None or (s["unscored_reason"].startswith("unparseable")
                                                and s["finish_reason"] == "length" and s["raw_text"]), s
    pairs = run.read_table("judge_pairwise").to_pylist()
    assert len(pairs) == 2
    for p in pairs:
        for order in ("ab", "ba"):
            assert p[f"verdict_{order}"] in ("A", "B", "tie") or p[f"reason_{order}"].startswith("unparseable"), p
    assert res.info["source"] == "endpoint" and "judge_preferred" in res.advisory_metrics  # no human labels

    again = run_judge(RunDir(tmp_path, "exp", "r2"), requests, outputs, settings, cache)
    parts = sorted((tmp_path / "exp" / "r2" / "judge" / "batches").rglob("part-*.parquet"))
    batches = [pq.read_table(p).to_pylist()[0] for p in parts]
    assert batches and all(b["requests"] == 0 and b["cached"] > 0 for b in batches)  # nothing sent: all cached
    assert again.signals.equals(res.signals)
