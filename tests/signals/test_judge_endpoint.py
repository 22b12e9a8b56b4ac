"""The endpoint judge against a scripted OpenAI-compatible endpoint: retries, errors, the key, cache and resume.

The judge's prompts go through the replayer (``harness.signals.judge_engine``) and the server engine's HTTP client
(``harness.engines.server``); the endpoint is a small local HTTP server whose failures the test scripts
(``judge_helpers.scripted_endpoint``). The same judge against the real model's vLLM server: tests/real.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from judge_helpers import BAD, endpoint_settings, files_text, judged_outputs, scripted_endpoint

from harness.engines.base import EngineError
from harness.signals.judge import run_judge
from harness.store import RunDir

FAST = ("arm.engine.server.backoff_s=0.01", "arm.engine.server.concurrency=4")


def test_retries_errors_and_the_key_is_never_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCRIPTED_JUDGE_KEY", "sekrit-4711")
    requests, outputs = judged_outputs(4, bad=1)
    with scripted_endpoint(key="sekrit-4711") as (url, state):
        state.fail_first = True  # every prompt's first attempt: 503 with Retry-After 0
        settings = endpoint_settings(url, "scripted", "arm.engine.server.api_key_env=SCRIPTED_JUDGE_KEY", *FAST)
        run = RunDir(tmp_path, "exp", "r1")
        res = run_judge(run, requests, outputs, settings, str(tmp_path / "cache"))
    prompts = 8 + 8  # 4 requests x 2 arms pointwise, x 2 orders pairwise
    assert len(set(state.attempts)) == prompts and len(state.attempts) == 2 * prompts  # each retried once
    scores = run.read_table("judge_scores").to_pylist()
    bad_rid = sorted(requests)[1]
    refused = [s for s in scores if s["request_id"] == bad_rid and s["arm"] == "candidate"]
    assert refused and all(s["score"] is None and s["unscored_reason"].startswith("judge_error: HTTP 400")
                           for s in refused)
    assert all(s["score"] == 3 for s in scores if s not in refused)
    pairs = {p["request_id"]: p for p in run.read_table("judge_pairwise").to_pylist()}
    assert pairs[bad_rid]["preference"] == "unscored"  # both orders show the refused answer
    assert {p["preference"] for rid, p in pairs.items() if rid != bad_rid} == {"inconsistent"}  # always "A"
    assert res.info["source"] == "endpoint" and res.info["judge_fingerprint"] == f"endpoint:{url} scripted"
    assert "judge_preferred" in res.advisory_metrics
    text = files_text(tmp_path)
    assert "sekrit-4711" not in text and "SCRIPTED_JUDGE_KEY" in text  # the variable's name only
    assert BAD in text  # the raw outputs are kept, the key never


def test_resume_after_the_endpoint_goes_down_then_the_cache(tmp_path: Path) -> None:
    requests, outputs = judged_outputs(3)
    cache = str(tmp_path / "cache")
    with scripted_endpoint() as (url, state):
        settings = endpoint_settings(url, "scripted", "arm.engine.batch_size=4", "arm.engine.server.retries=1",
                                     *FAST)
        run = RunDir(tmp_path, "exp", "r1")
        state.down_after = 4  # the first pointwise batch is answered, then the endpoint stops answering
        with pytest.raises(EngineError, match="refused every request of the batch.*resume"):
            run_judge(run, requests, outputs, settings, cache)
        committed = sorted((run.path / "judge" / "generations" / "arm=pointwise").glob("part-*.parquet"))
        assert [p.name for p in committed] == ["part-00000.parquet"] and not (run.path / "judge.json").exists()
        first_batch = set(state.attempts[:4])

        state.down_after, state.attempts = None, []
        res = run_judge(run, requests, outputs, settings, cache)  # the same command again: resumes
        assert len(state.attempts) == 6 + 6 - 4 and not first_batch & set(state.attempts)
        assert all(s["score"] == 3 for s in run.read_table("judge_scores").to_pylist())
        assert res.engine_ran

        state.attempts = []
        again = run_judge(RunDir(tmp_path, "exp", "r2"), requests, outputs, settings, cache)  # a new run: cache
        assert state.attempts == [] and again.signals.equals(res.signals)
