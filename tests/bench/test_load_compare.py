"""The side-by-side comparison with ``vllm bench serve`` (harness/bench/load.py): pure logic on hand-made requests.
The measurement itself runs the real server and the real reference tool (docs/load.md, docs/bench/load.json)."""

from __future__ import annotations

import pytest

from harness.bench.load import paired_requests, pooled_percentiles


def _req(ttft: float, gaps: list[float]) -> dict:
    return {"ttft": ttft, "itl": gaps, "tpot": sum(gaps) / len(gaps) if gaps else None,
            "e2el": ttft + sum(gaps), "output_tokens": len(gaps) + 1}


def test_pooled_percentiles_pool_every_gap_of_every_request() -> None:
    reqs = [_req(0.1, [0.01] * 9), _req(0.3, [0.05])]
    out = pooled_percentiles(reqs)
    assert out["requests"] == 2 and out["gaps"] == 10
    assert out["itl_p50_ms"] == pytest.approx(10.0)  # nine of ten gaps are 10 ms: the long request dominates
    assert out["itl_p99_ms"] == pytest.approx(10 + 0.91 * 40)  # numpy's linear interpolation
    assert out["ttft_p50_ms"] == pytest.approx(200.0)


def test_paired_requests_compare_each_request_with_itself_and_count_the_gaps() -> None:
    ours = [_req(0.10, [0.01, 0.01]), _req(0.20, [0.02])]
    ref = [_req(0.08, [0.01, 0.01, 0.0]), _req(0.21, [0.02])]  # the reference counted one more (empty) chunk
    rounds = [{"ours": {"baseline": ours, "candidate": ours}, "reference": {"/v1/completions": {"requests": ref}}}]
    out = paired_requests(rounds, "/v1/completions")
    assert out["pairs"] == 4
    assert out["gap_count"] == {"ours_more": 0, "same": 2, "ours_fewer": 2}
    assert out["gap_count_difference_values"] == [-1, 0]
    assert out["ttft_diff_median_ms"] == pytest.approx(5.0)  # +20 ms and -10 ms, twice each


def test_requests_of_different_runs_cannot_be_paired() -> None:
    rounds = [{"ours": {"baseline": [_req(0.1, [])], "candidate": [_req(0.1, [])]},
               "reference": {"/v1/completions": {"requests": [_req(0.1, []), _req(0.1, [])]}}}]
    with pytest.raises(ValueError):
        paired_requests(rounds, "/v1/completions")


def test_a_request_with_textless_chunks_is_set_apart_and_the_rest_compared() -> None:
    emoji_ours, emoji_ref = _req(0.1, [0.09] * 20), _req(0.1, [0.03] * 60)  # three tokens a character
    plain = _req(0.1, [0.02] * 50)
    rounds = [{"ours": {"baseline": [plain, emoji_ours], "candidate": [plain, emoji_ours]},
               "reference": {"/v1/chat/completions": {"requests": [_req(0.1, [0.02] * 52), emoji_ref]}}}]
    out = paired_requests(rounds, "/v1/chat/completions")
    assert out["requests_with_textless_chunks"] == [1]  # the role and finish chunks alone do not set a request apart
    assert out["itl_p99_ms_other_requests"] == {"ours": pytest.approx(20.0), "reference": pytest.approx(20.0)}
    assert pooled_percentiles(rounds[0]["ours"]["baseline"])["itl_p99_ms"] == pytest.approx(90.0)
