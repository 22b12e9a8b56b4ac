"""Canary logs: Parquet and OpenAI JSONL with an arm field, a growing directory, and clear errors."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from harness.canary.logs import CanaryLogs, write_log
from harness.traffic.schema import TrafficError

T0 = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)


def row(i: int, arm: str = "control", **kw: object) -> dict:
    return {"request_id": f"r{i}", "timestamp": T0 + dt.timedelta(seconds=i), "segment": "faq",
            "messages": [{"role": "user", "content": f"question {i}"}], "response": "Yes.", "arm": arm,
            "latency_s": 0.1, **kw}


def jsonl_line(i: int, arm: str, **kw: object) -> str:
    return json.dumps({"id": f"j{i}", "timestamp": (T0 + dt.timedelta(seconds=i)).isoformat(), "arm": arm,
                       "latency_s": 0.2, "metadata": {"segment": "chat"},
                       "request": {"model": "m", "messages": [{"role": "user", "content": "hi"}]},
                       "response": {"choices": [{"message": {"role": "assistant", "content": "Hello."},
                                                 "finish_reason": "stop"}], "usage": {"completion_tokens": 3}},
                       **kw})


def test_parquet_and_jsonl_and_new_files_are_picked_up(tmp_path: Path) -> None:
    write_log([row(1), row(2, "canary")], tmp_path / "a.parquet")
    logs = CanaryLogs(tmp_path)
    assert [r.arm for r in logs.refresh()] == ["control", "canary"]
    (tmp_path / "b.jsonl").write_text(jsonl_line(3, "canary") + "\n")
    (tmp_path / ".c.parquet.tmp").write_text("half written")
    records = logs.refresh()
    assert len(records) == 3
    last = records[-1]
    assert (last.arm, last.response, last.request.segment, last.finish_reason, last.output_tokens) == (
        "canary", "Hello.", "chat", "stop", 3)


def test_every_problem_names_file_row_field_and_fix(tmp_path: Path) -> None:
    write_log([row(1, arm="blue"), row(2, response=None), row(3, latency_s=-1.0)], tmp_path / "bad.parquet")
    with pytest.raises(TrafficError) as err:
        CanaryLogs(tmp_path).refresh()
    text = str(err.value)
    assert "bad.parquet: row 1 (request_id=r1), column arm: expected control or canary, found 'blue'. Fix:" in text
    assert "row 2 (request_id=r2), column response" in text
    assert "row 3 (request_id=r3), column latency_s: expected seconds >= 0" in text


def test_jsonl_problems_and_duplicate_ids(tmp_path: Path) -> None:
    (tmp_path / "x.jsonl").write_text(jsonl_line(1, "canary") + "\n{not json\n" + jsonl_line(2, None) + "\n")
    with pytest.raises(TrafficError) as err:
        CanaryLogs(tmp_path).refresh()
    assert "x.jsonl: line 2: expected one JSON object per line" in str(err.value)
    assert "x.jsonl: line 3, field arm: expected control or canary, found null" in str(err.value)
    (tmp_path / "x.jsonl").unlink()
    write_log([row(1)], tmp_path / "a.parquet")
    write_log([row(1, "canary")], tmp_path / "b.parquet")
    with pytest.raises(TrafficError, match="request_id=r1: expected a unique request id"):
        CanaryLogs(tmp_path).refresh()


def test_missing_directory_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(TrafficError, match="no such directory. Fix: point canary.logs"):
        CanaryLogs(tmp_path / "nope").refresh()
