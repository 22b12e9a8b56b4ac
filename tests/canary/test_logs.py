"""Canary logs: Parquet and OpenAI JSONL, growing directories read incrementally, fields from any path, a join with
the proxy's access log, and bad records quarantined (never an exception on data)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from harness.canary.logs import CanaryLogs, JoinSpec, LogMapping, write_log
from harness.traffic.schema import TrafficError

T0 = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)


def row(i: int, arm: str = "control", **kw: object) -> dict:
    return {"request_id": f"r{i}", "timestamp": T0 + dt.timedelta(seconds=i), "segment": "faq",
            "messages": [{"role": "user", "content": f"question {i}"}], "response": "Yes.", "arm": arm,
            "latency_s": 0.1, **kw}


def jsonl_line(i: int, arm: str | None, **kw: object) -> str:
    return json.dumps({"id": f"j{i}", "timestamp": (T0 + dt.timedelta(seconds=i)).isoformat(), "arm": arm,
                       "latency_s": 0.2, "metadata": {"segment": "chat"},
                       "request": {"model": "m", "messages": [{"role": "user", "content": "hi"}]},
                       "response": {"choices": [{"message": {"role": "assistant", "content": "Hello."},
                                                 "finish_reason": "stop"}], "usage": {"completion_tokens": 3}},
                       **kw})


def _quarantined(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_parquet_and_jsonl_and_new_files_are_picked_up_once(tmp_path: Path) -> None:
    logs_dir = tmp_path / "logs"
    logs_dir.mkdir()
    write_log([row(1), row(2, "canary")], logs_dir / "a.parquet")
    logs = CanaryLogs(logs_dir)
    assert [r.arm for r in logs.refresh()] == ["control", "canary"]
    (logs_dir / "b.jsonl").write_text(jsonl_line(3, "canary") + "\n")
    (logs_dir / ".c.parquet.tmp").write_text("half written")
    [last] = logs.refresh()  # only what is new
    assert (last.arm, last.response, last.request.segment, last.finish_reason, last.output_tokens) == (
        "canary", "Hello.", "chat", "stop", 3)
    assert logs.refresh() == [] and logs.counts.records == 3 and logs.counts.bad == 0


def test_bad_records_are_quarantined_with_file_row_field_and_fix(tmp_path: Path) -> None:
    logs_dir = tmp_path / "logs"
    logs_dir.mkdir()
    write_log([row(1, arm="blue"), row(2, response=None), row(3, latency_s=-1.0), row(4)], logs_dir / "bad.parquet")
    quarantine = tmp_path / "quarantine.jsonl"
    logs = CanaryLogs(logs_dir, quarantine=quarantine)
    assert [r.request.request_id for r in logs.refresh()] == ["r4"]  # the evaluator goes on with the good ones
    reasons = [q["reason"] for q in _quarantined(quarantine)]
    assert ("bad.parquet: row 1 (request_id=r1), column arm: expected control or canary, found 'blue'. Fix:"
            in reasons[0])
    assert "row 2 (request_id=r2), column response" in reasons[1]
    assert "row 3 (request_id=r3), column latency_s: expected seconds >= 0" in reasons[2]
    assert logs.counts.bad == 3 and logs.counts.share_bad() == 0.75


def test_garbage_duplicates_and_a_half_written_last_line(tmp_path: Path) -> None:
    logs_dir = tmp_path / "logs"
    logs_dir.mkdir()
    quarantine = tmp_path / "q.jsonl"
    log = logs_dir / "x.jsonl"
    log.write_text(jsonl_line(1, "canary") + "\n{not json\n" + jsonl_line(2, None) + "\n" + jsonl_line(1, "control")
                   + "\n" + jsonl_line(5, "control")[:40])  # the logger is still writing line 5
    logs = CanaryLogs(logs_dir, quarantine=quarantine)
    assert [r.request.request_id for r in logs.refresh()] == ["j1"]
    reasons = [q["reason"] for q in _quarantined(quarantine)]
    assert "x.jsonl: line 2: expected one JSON object per line" in reasons[0]
    assert "x.jsonl: line 3, field arm: expected control or canary, found null" in reasons[1]
    assert "line 4: request_id=j1: expected a unique request id" in reasons[2]
    assert logs.counts.bad == 3 and _quarantined(quarantine)[0]["raw"] == "{not json"
    with log.open("a") as f:  # the logger finishes line 5: read now, and counted once
        f.write(jsonl_line(5, "control")[40:] + "\n")
    assert [r.request.request_id for r in logs.refresh()] == ["j5"] and logs.counts.bad == 3


def test_arm_segment_and_id_from_any_field(tmp_path: Path) -> None:
    logs_dir = tmp_path / "logs"
    logs_dir.mkdir()
    lines = [json.dumps({**json.loads(jsonl_line(i, None)), "arm": None, "trace": {"rid": f"t{i}"},
                         "upstream": {"model": model}, "metadata": {"route": {"name": "billing"}}})
             for i, model in ((1, "llm-v7"), (2, "llm-v8"), (3, "llm-v9"))]
    (logs_dir / "app.jsonl").write_text("\n".join(lines) + "\n")
    mapping = LogMapping(arm_field="upstream.model", arm_values={"llm-v7": "control", "llm-v8": "canary"},
                         segment_field="metadata.route.name", request_id_field="trace.rid")
    logs = CanaryLogs(logs_dir, mapping, quarantine=tmp_path / "q.jsonl")
    records = logs.refresh()
    assert [(r.request.request_id, r.arm, r.request.segment) for r in records] == [
        ("t1", "control", "billing"), ("t2", "canary", "billing")]
    assert "expected one of ['llm-v7', 'llm-v8'] (arm_values), found 'llm-v9'" in _quarantined(tmp_path / "q.jsonl")[0][
        "reason"]


def test_the_proxy_log_gives_the_arm_by_request_id(tmp_path: Path) -> None:
    app, proxy = tmp_path / "app", tmp_path / "proxy"
    app.mkdir()
    proxy.mkdir()
    (app / "app.jsonl").write_text("\n".join(jsonl_line(i, None) for i in (1, 2, 3)) + "\n")
    (proxy / "haproxy.jsonl").write_text("\n".join(json.dumps({"request_id": f"j{i}", "server": s})
                                                  for i, s in ((2, "v8"), (1, "v7"), (9, "v7"))) + "\n")
    logs = CanaryLogs(app, LogMapping(arm_values={"v7": "control", "v8": "canary"}), JoinSpec(proxy),
                      quarantine=tmp_path / "q.jsonl")
    assert [(r.request.request_id, r.arm) for r in logs.refresh()] == [("j1", "control"), ("j2", "canary")]
    assert (logs.counts.unmatched, logs.counts.proxy_unmatched, logs.counts.bad) == (1, 1, 0)
    assert "request_id=j3: no proxy record with this id" in _quarantined(tmp_path / "q.jsonl")[0]["reason"]


def test_a_following_join_waits_for_the_proxy_record(tmp_path: Path) -> None:
    app, proxy = tmp_path / "app", tmp_path / "proxy"
    app.mkdir()
    proxy.mkdir()
    now = [100.0]
    (app / "app.jsonl").write_text(jsonl_line(1, None) + "\n")
    logs = CanaryLogs(app, join=JoinSpec(proxy, arm_field="arm", wait_s=30), follow=True, clock=lambda: now[0])
    assert logs.refresh() == [] and logs.counts.unmatched == 0  # waiting
    (proxy / "p.jsonl").write_text(json.dumps({"request_id": "j1", "arm": "canary"}) + "\n")
    now[0] = 110.0
    assert [r.arm for r in logs.refresh()] == ["canary"]


def test_missing_directory_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(TrafficError, match="no such directory. Fix: point canary.logs"):
        CanaryLogs(tmp_path / "nope").refresh()
