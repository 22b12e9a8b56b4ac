"""Tests for the OpenAI chat-completions JSONL importer."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from harness.traffic import Message, TrafficError, load_traffic
from harness.traffic.openai_import import import_openai_jsonl, main

UNIX = 1714564800  # 2024-05-01T12:00:00Z
T0 = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)


def _response(content: str = "hello", **fields: Any) -> dict:
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": UNIX,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}}], **fields}


def _body(**fields: Any) -> dict:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], **fields}


def _log(tmp_path: Path, *lines: dict | str | bytes) -> Path:
    path = tmp_path / "log.jsonl"
    raw = [x if isinstance(x, bytes) else (x if isinstance(x, str) else json.dumps(x)).encode() for x in lines]
    path.write_bytes(b"\n".join(raw) + b"\n")
    return path


def _import(tmp_path: Path, *lines: dict | str | bytes, **kwargs: Any) -> list:
    out = tmp_path / "out" / "traffic.parquet"
    assert import_openai_jsonl(_log(tmp_path, *lines), out, **kwargs) == len(lines)
    return load_traffic(out)


def _problems(tmp_path: Path, *lines: dict | str | bytes) -> list[str]:
    out = tmp_path / "traffic.parquet"
    with pytest.raises(TrafficError) as info:
        import_openai_jsonl(_log(tmp_path, *lines), out)
    assert not out.exists()
    return info.value.problems


def test_wrapped_shape(tmp_path: Path) -> None:
    line = {"id": "req-7", "timestamp": "2024-05-01T12:00:00Z", "metadata": {"route": "faq"},
            "request": _body(temperature=0.2, top_p=0.5, max_tokens=32,
                             messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]),
            "response": _response("hello there")}
    [request] = _import(tmp_path, line)
    assert request.request_id == "req-7"
    assert request.timestamp == T0
    assert request.segment == "default"
    assert request.messages == (Message("system", "be brief"), Message("user", "hi"))
    assert request.prompt is None
    assert (request.temperature, request.top_p, request.max_tokens) == (0.2, 0.5, 32)
    assert request.response == "hello there"
    assert request.response_schema is None
    assert request.metadata == {"route": "faq", "model": "gpt-4o-mini"}


def test_bare_shape_falls_back_to_the_response_id_and_time(tmp_path: Path) -> None:
    [request] = _import(tmp_path, _body(max_completion_tokens=99, max_tokens=5, response=_response()))
    assert request.request_id == "chatcmpl-1"
    assert request.timestamp == T0
    assert request.max_tokens == 99
    assert request.response == "hello"
    assert request.metadata == {"model": "gpt-4o-mini"}


def test_default_id_and_segment_field(tmp_path: Path) -> None:
    lines = [{"created_at": UNIX, "metadata": {"task": "summarize"}, "request": _body()},
             {"created_at": UNIX + 1.5, "request": _body()}]
    first, second = _import(tmp_path, *lines, segment_field="task", default_segment="other")
    assert (first.request_id, second.request_id) == ("log-1", "log-2")
    assert (first.segment, second.segment) == ("summarize", "other")
    assert second.timestamp == T0 + dt.timedelta(seconds=1.5)
    assert second.response is None


@pytest.mark.parametrize(("value", "expected"), [
    ("2024-05-01T12:00:00Z", T0),
    ("2024-05-01T14:00:00+02:00", T0),
    ("2024-05-01T12:00:00", T0),  # naive means UTC
    (UNIX, T0),
])
def test_timestamps(tmp_path: Path, value: Any, expected: dt.datetime) -> None:
    [request] = _import(tmp_path, {"timestamp": value, "request": _body()})
    assert request.timestamp == expected and request.timestamp.tzinfo == dt.UTC


def test_list_content_parts_are_joined(tmp_path: Path) -> None:
    parts = [{"type": "text", "text": "first"}, {"type": "text", "text": "second"}]
    messages = [{"role": "developer", "content": [{"type": "text", "text": "rules"}]},
                {"role": "user", "content": parts}]
    [request] = _import(tmp_path, {"timestamp": UNIX, "request": _body(messages=messages)})
    assert request.messages == (Message("system", "rules"), Message("user", "first\nsecond"))


@pytest.mark.parametrize(("response_format", "expected"), [
    ({"type": "json_schema", "json_schema": {"name": "answer", "strict": True,
                                             "schema": {"type": "object", "required": ["a"]}}},
     {"type": "object", "required": ["a"]}),
    ({"type": "json_object"}, {"type": "object"}),
    ({"type": "text"}, None),
])
def test_response_format(tmp_path: Path, response_format: dict, expected: dict | None) -> None:
    [request] = _import(tmp_path, {"timestamp": UNIX, "request": _body(response_format=response_format)})
    assert request.response_schema == expected


def test_bad_lines_are_all_reported_with_their_line_numbers(tmp_path: Path) -> None:
    image = [{"type": "image_url", "image_url": {"url": "http://x"}}]
    problems = _problems(
        tmp_path,
        {"timestamp": UNIX, "request": _body()},
        '{"request": ',
        b'{"timestamp": 1, "request": {"messages": [{"role": "user", "content": "caf\xe9"}]}}',
        {"timestamp": UNIX, "request": _body(messages=[{"role": "user", "content": image}])},
        {"request": _body()},
        {"timestamp": UNIX, "request": _body(temperature=3)},
        {"timestamp": UNIX, "request": _body(response_format={"type": "json_schema", "json_schema": {}})},
        "[1, 2]",
    )
    log = tmp_path / "log.jsonl"
    assert problems[0].startswith(f"{log}: line 2: expected one JSON object per line, found invalid JSON")
    assert problems[1].startswith(f"{log}: line 3: expected UTF-8 text, found the invalid byte 0xe9")
    assert problems[2].startswith(f"{log}: line 4, field messages[0].content[0]: expected a text part, "
                                  "found 'image_url'")
    assert problems[3].startswith(f"{log}: line 5, field timestamp: expected 'timestamp' or 'created_at'")
    assert problems[4].startswith(f"{log}: line 6, field temperature: expected a number in [0, 2], found 3")
    assert problems[5].startswith(f"{log}: line 7, field response_format.json_schema.schema:")
    assert problems[6].startswith(f"{log}: line 8: expected a JSON object, found list")
    assert len(problems) == 7
    assert all(". Fix: " in p for p in problems)


def test_semantic_errors_use_the_traffic_rules(tmp_path: Path) -> None:
    ending_with_assistant = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    problems = _problems(
        tmp_path,
        {"id": "a", "timestamp": UNIX, "request": _body(messages=ending_with_assistant)},
        {"id": "b", "timestamp": UNIX, "request": _body(messages=[{"role": "tool", "content": "x"},
                                                                  {"role": "user", "content": "y"}])},
        {"id": "c", "timestamp": UNIX, "request": _body()},
        {"id": "c", "timestamp": UNIX, "request": _body()},
        {"timestamp": "yesterday", "request": _body()},
    )
    assert "line 1, field messages[1].role: expected the last message to be from the user" in problems[0]
    assert "line 2, field messages[0].role: expected one of system, user, assistant, found 'tool'" in problems[1]
    assert "line 4, field id: expected a unique request id, found the same id as line 3" in problems[2]
    assert "line 5, field timestamp: expected an ISO-8601 string or unix seconds, found 'yesterday'" in problems[3]


def test_missing_and_empty_input(tmp_path: Path) -> None:
    with pytest.raises(TrafficError, match="file not found"):
        import_openai_jsonl(tmp_path / "nope.jsonl", tmp_path / "out.parquet")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    with pytest.raises(TrafficError, match="found none"):
        import_openai_jsonl(empty, tmp_path / "out.parquet")


def test_main(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = _log(tmp_path, {"created_at": UNIX, "metadata": {"task": "t"}, "request": _body()})
    out = tmp_path / "traffic.parquet"
    assert main([str(src), str(out), "--segment-field", "task"]) == 0
    assert capsys.readouterr().out.strip() == f"wrote 1 requests to {out}"
    assert load_traffic(out)[0].segment == "t"
    bad = _log(tmp_path, "not json")
    assert main([str(bad), str(out)]) == 2
    assert "line 1" in capsys.readouterr().err
