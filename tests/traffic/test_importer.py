"""The importers on small logs in each client's shape (the real clients' own logs: tests/real/test_real_story.py):
OpenAI chat JSONL (wrapped, plain, streamed chunks, tool calls), LiteLLM's standard logging payload, OpenTelemetry
GenAI spans; --skip-invalid with the quarantine; the segment from a field path; folders; seeded sampling."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.traffic import TrafficError, load_traffic
from harness.traffic.importer import field_path, import_traffic, sample_requests

TOOLS = [{"type": "function", "function": {"name": "order_status", "parameters": {"type": "object"}}}]


def _write(path: Path, lines: list[Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n")
    return path


def _openai_lines() -> list[Any]:
    chat = [{"role": "user", "content": "Where is order 7?"}]
    return [
        {"id": "w1", "timestamp": "2026-12-01T10:00:00Z", "metadata": {"route": "orders"},
         "request": {"model": "m", "messages": chat, "temperature": 0.3, "stop": "\n\n", "seed": 4, "n": 2,
                     "presence_penalty": 0.1, "frequency_penalty": 0.2, "max_completion_tokens": 50},
         "response": {"id": "c1", "created": 1, "choices": [{"message": {"content": "Shipped."}}]}},
        {"id": "p1", "created_at": 1764583200, "messages": [{"role": "developer", "content": "Be brief."}, *chat],
         "metadata": {"route": "faq"}},
        "{not json",
        {"id": "img", "timestamp": "2026-12-01T10:00:00Z", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "x"}}]}]},
        {"id": "tool", "timestamp": "2026-12-01T10:01:00Z", "metadata": {"route": "orders"},
         "request": {"messages": [*chat, {"role": "assistant", "content": None, "tool_calls": [
             {"id": "t1", "type": "function", "function": {"name": "order_status", "arguments": "{\"id\": 7}"}}]},
                                  {"role": "tool", "tool_call_id": "t1", "content": "shipped"}], "tools": TOOLS},
         "response": {"choices": [{"message": {"content": "It shipped."}}]}},
        {"id": "s1", "timestamp": "2026-12-01T10:02:00Z", "request": {"messages": chat, "stream": True},
         "response": [{"id": "c9", "object": "chat.completion.chunk", "choices": [{"delta": {"content": "On "}}]},
                      {"object": "chat.completion.chunk", "choices": [{"delta": {"content": "its way."}}]}]},
    ]


def test_openai_log_with_bad_lines_tools_and_chunks_skip_invalid(tmp_path: Path) -> None:
    src = _write(tmp_path / "logs" / "a.jsonl", _openai_lines())
    out = tmp_path / "t.parquet"
    with pytest.raises(TrafficError, match="line 3: expected one JSON object per line"):
        import_traffic([src], out)  # all or nothing without --skip-invalid
    assert not out.exists()
    result = import_traffic([tmp_path / "logs"], out, segment_field="metadata.route", skip_invalid=True)
    assert (result.written, result.invalid) == (4, 2) and result.quarantine is not None
    quarantined = [json.loads(x) for x in result.quarantine.read_text().splitlines()]
    assert [q["at"] for q in quarantined] == ["line 3", "line 4"] and "image_url" in quarantined[1]["reasons"][0]
    reqs = {r.request_id: r for r in load_traffic(out)}
    w = reqs["w1"]
    assert (w.segment, w.stop, w.seed, w.n, w.presence_penalty, w.frequency_penalty, w.max_tokens) == \
        ("orders", ("\n\n",), 4, 2, 0.1, 0.2, 50)
    assert reqs["p1"].segment == "faq" and reqs["p1"].messages[0].role == "system"
    tool = reqs["tool"]
    assert tool.tools is not None and tool.tools["tools"] == TOOLS and tool.tools["messages"][1]["tool_calls"]
    assert [m.role for m in tool.messages] == ["user", "assistant", "tool"] and tool.response == "It shipped."
    assert reqs["s1"].response == "On its way." and reqs["s1"].segment == "default"  # the chunks joined


def test_litellm_standard_logging_payload(tmp_path: Path) -> None:
    payload = {"id": "ll-1", "startTime": 1764583200.5, "status": "success", "model": "gpt-x", "call_type":
               "completion", "messages": [{"role": "user", "content": "hi"}],
               "model_parameters": {"temperature": 0.2, "max_tokens": 20, "stop": ["END"], "tools": TOOLS},
               "response": {"id": "r", "choices": [{"message": {"content": "hello"}}]},
               "metadata": {"requester_metadata": {"route": "chat"}}}
    failed = {**payload, "id": "ll-2", "status": "failure", "error_str": "timeout"}
    src = _write(tmp_path / "ll.jsonl", [payload, failed])
    result = import_traffic([src], tmp_path / "t.parquet", "litellm", segment_field="metadata.requester_metadata.route",
                            skip_invalid=True)
    assert (result.written, result.invalid, result.reasons) == (1, 1, {"status": 1})
    r = load_traffic(tmp_path / "t.parquet")[0]
    assert (r.request_id, r.segment, r.temperature, r.stop, r.response) == ("ll-1", "chat", 0.2, ("END",), "hello")
    assert r.tools is not None and r.metadata == {"model": "gpt-x", "route": "chat"}


def _attr(key: str, value: Any) -> dict[str, Any]:
    kind = {str: "stringValue", float: "doubleValue", int: "intValue", list: "arrayValue"}[type(value)]
    v = {"values": [{"stringValue": x} for x in value]} if isinstance(value, list) else \
        str(value) if isinstance(value, int) else value
    return {"key": key, "value": {kind: v}}


def test_otel_genai_spans_with_log_events_and_latest_conventions(tmp_path: Path) -> None:
    parent = {"traceId": "t", "spanId": "p", "name": "handle", "startTimeUnixNano": "1764583200000000000",
              "attributes": [_attr("app.route", "billing")]}
    legacy = {"traceId": "t", "spanId": "s1", "parentSpanId": "p", "name": "chat m",
              "startTimeUnixNano": "1764583200100000000",
              "attributes": [_attr("gen_ai.operation.name", "chat"), _attr("gen_ai.request.model", "m"),
                             _attr("gen_ai.request.temperature", 0.5), _attr("gen_ai.request.max_tokens", 64),
                             _attr("gen_ai.request.stop_sequences", ["##"]), _attr("gen_ai.request.seed", 3),
                             _attr("gen_ai.response.id", "chatcmpl-1")]}
    latest = {"traceId": "u", "spanId": "s2", "name": "chat m", "startTimeUnixNano": "1764583201000000000",
              "attributes": [_attr("gen_ai.operation.name", "chat"), _attr("gen_ai.input.messages", json.dumps(
                  [{"role": "user", "parts": [{"type": "text", "content": "Refund?"}]}])),
                             _attr("gen_ai.output.messages", json.dumps(
                  [{"role": "assistant", "parts": [{"type": "text", "content": "Yes."}]}]))]}
    no_content = {"traceId": "v", "spanId": "s3", "name": "chat m", "startTimeUnixNano": "1764583202000000000",
                  "attributes": [_attr("gen_ai.operation.name", "chat")]}
    spans = {"resourceSpans": [{"resource": {"attributes": [_attr("service.name", "bot")]},
                                "scopeSpans": [{"spans": [parent, legacy, latest, no_content]}]}]}
    logs = {"resourceLogs": [{"scopeLogs": [{"logRecords": [
        {"spanId": "s1", "eventName": "gen_ai.user.message", "body": {"kvlistValue": {"values": [
            {"key": "content", "value": {"stringValue": "Invoice?"}}]}}},
        {"spanId": "s1", "eventName": "gen_ai.choice", "body": {"kvlistValue": {"values": [
            {"key": "message", "value": {"kvlistValue": {"values": [
                {"key": "content", "value": {"stringValue": "Sent."}}]}}}]}}}]}]}]}
    src = _write(tmp_path / "otlp.jsonl", [spans, logs])
    result = import_traffic([src], tmp_path / "t.parquet", "otel", segment_field="parent.app.route",
                            skip_invalid=True)
    assert (result.written, result.invalid) == (2, 1)
    reqs = {r.request_id: r for r in load_traffic(tmp_path / "t.parquet")}
    one = reqs["chatcmpl-1"]
    assert (one.segment, one.temperature, one.max_tokens, one.stop, one.seed, one.response) == \
        ("billing", 0.5, 64, ("##",), 3, "Sent.")
    assert one.messages[0].content == "Invoice?" and reqs["s2"].response == "Yes."


def test_field_paths_and_seeded_stratified_sampling(tmp_path: Path) -> None:
    assert field_path({"a": {"b.c": {"d": 1}}}, "a.b.c.d") == 1 and field_path({"a": 1}, "a.b") is None
    lines = [{"id": f"r{i}", "timestamp": "2026-12-01T10:00:00Z", "metadata": {"route": "big" if i < 90 else "rare"},
              "messages": [{"role": "user", "content": f"q{i}"}]} for i in range(100)]
    src = _write(tmp_path / "a.jsonl", lines)
    one = import_traffic([src], tmp_path / "a.parquet", segment_field="metadata.route", sample=10, stratify=True,
                         seed=1)
    assert one.segments == {"big": 9, "rare": 1}
    again = import_traffic([src], tmp_path / "b.parquet", segment_field="metadata.route", sample=10, stratify=True,
                           seed=1)
    ids = [r.request_id for r in load_traffic(tmp_path / "a.parquet")]
    assert ids == [r.request_id for r in load_traffic(tmp_path / "b.parquet")] and ids != [f"r{i}" for i in range(10)]
    assert again.written == 10
    reqs = load_traffic(tmp_path / "a.parquet")
    assert len(sample_requests(reqs, 3, 0, stratify=True)) == 3 and len(sample_requests(reqs, 50, 0, False)) == 10


def test_command_line_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = _write(tmp_path / "a.jsonl", _openai_lines())
    assert main(["import", "openai", str(src), str(tmp_path / "t.parquet")]) == 2
    assert main(["import", "openai", str(src), str(tmp_path / "t.parquet"), "--skip-invalid"]) == 0
    assert "skipped 2 invalid records" in capsys.readouterr().out
    assert main(["import", "openai", str(tmp_path / "missing"), str(tmp_path / "t.parquet")]) == 2
