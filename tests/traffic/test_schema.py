"""Tests for the traffic schema: round trip, column and row validation, error messages."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
import re
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from harness.traffic import (
    TRAFFIC_SCHEMA,
    Message,
    Request,
    TrafficError,
    load_traffic,
    requests_to_table,
    traffic_fingerprint,
    write_traffic,
)
from harness.traffic.schema import OPTIONAL_COLUMNS, validate_row

T0 = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
CHAT = [{"role": "user", "content": "hi"}]
MESSAGES = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))


def _request(request_id: str = "r0", **fields: Any) -> Request:
    values: dict[str, Any] = {
        "request_id": request_id, "timestamp": T0, "segment": "default",
        "messages": (Message("user", "hi"),), "prompt": None, "temperature": None, "top_p": None,
        "max_tokens": None, "response_schema": None, "response": None, "metadata": None,
    }
    return Request(**{**values, **fields})


def _write(tmp_path: Path, columns: dict[str, pa.Array | list], name: str = "traffic.parquet") -> Path:
    """Writes a table with valid defaults for the required columns; `columns` overrides or adds."""
    n = next((len(v) for v in columns.values() if v is not None), 1)
    base: dict[str, Any] = {
        "request_id": pa.array([f"r{i}" for i in range(n)]),
        "timestamp": pa.array([T0] * n, pa.timestamp("us", tz="UTC")),
        "segment": pa.array(["default"] * n),
        "messages": pa.array([CHAT] * n, MESSAGES),
    }
    data = {k: v for k, v in {**base, **columns}.items() if v is not None}
    path = tmp_path / name
    pq.write_table(pa.table(data), path)
    return path


def _problems(path: Path, **kwargs: Any) -> list[str]:
    with pytest.raises(TrafficError) as info:
        load_traffic(path, **kwargs)
    return info.value.problems


def test_round_trip(tmp_path: Path) -> None:
    requests = [
        _request("chat", messages=(Message("system", "be brief"), Message("user", "hi"),
                                   Message("assistant", "hello"), Message("user", "bye")),
                 temperature=0.7, top_p=0.9, max_tokens=64, response="ok",
                 response_schema={"type": "object", "properties": {"a": {"type": "string"}}},
                 metadata={"model": "m1", "tags": [1, 2]}),
        _request("completion", messages=None, prompt="Once upon", segment="story",
                 timestamp=dt.datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=dt.timezone(dt.timedelta(hours=2)))),
    ]
    path = tmp_path / "sub" / "traffic.parquet"
    write_traffic(requests, path)
    # the optional columns (stop, seed, n, penalties, tools) are written only when a request has them
    assert pq.read_schema(path).names == [f.name for f in TRAFFIC_SCHEMA if f.name not in OPTIONAL_COLUMNS]
    loaded = load_traffic(path)
    assert loaded == requests
    assert all(r.timestamp.tzinfo == dt.UTC for r in loaded)
    assert len({*loaded}) == 2  # hashable despite the dict fields
    assert requests_to_table(loaded).equals(requests_to_table(requests))


def test_round_trip_of_stop_seed_n_penalties_and_tools(tmp_path: Path) -> None:
    tools = {"tools": [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}],
             "tool_choice": "auto", "messages": [{"role": "user", "content": "order 7?"},
                                                 {"role": "assistant", "content": None, "tool_calls": [
                                                     {"id": "c1", "type": "function",
                                                      "function": {"name": "lookup", "arguments": "{}"}}]},
                                                 {"role": "tool", "tool_call_id": "c1", "content": "shipped"}]}
    requests = [
        dataclasses.replace(_request("a"), stop=("\n\n", "END"), seed=3, n=2, presence_penalty=0.5,
                            frequency_penalty=-0.1),
        dataclasses.replace(_request("b", messages=(Message("user", "order 7?"), Message("assistant", ""),
                                                     Message("tool", "shipped"))), tools=tools),
    ]
    path = tmp_path / "t.parquet"
    write_traffic(requests, path)
    assert pq.read_schema(path).names == TRAFFIC_SCHEMA.names
    assert load_traffic(path) == requests
    row = {**pq.read_table(path).to_pylist()[0], "n": 0, "stop": ["ok", ""], "presence_penalty": 3.0}
    _, issues = validate_row(row)
    assert {i.column for i in issues} == {"n", "stop", "presence_penalty"}


def test_flexible_types_and_missing_optional_columns(tmp_path: Path) -> None:
    naive = dt.datetime(2024, 5, 1, 12, 0, 0, 123456)
    path = _write(tmp_path, {
        "timestamp": pa.array([naive], pa.timestamp("ns")),
        "messages": None,
        "prompt": pa.array(["p"], pa.large_string()),
        "temperature": pa.array([1], pa.int32()),
        "max_tokens": pa.array([7], pa.int16()),
        "response": pa.array([None], pa.null()),
    })
    [request] = load_traffic(path)
    assert request.timestamp == naive.replace(tzinfo=dt.UTC)
    assert (request.prompt, request.messages, request.temperature, request.max_tokens) == ("p", None, 1.0, 7)
    assert isinstance(request.temperature, float)


def test_unknown_columns_are_ignored_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = _write(tmp_path, {"user_tier": ["gold"]})
    with caplog.at_level(logging.WARNING):
        assert len(load_traffic(path)) == 1
    assert "user_tier" in caplog.text


def test_missing_and_mistyped_columns_are_reported_per_column(tmp_path: Path) -> None:
    path = _write(tmp_path, {"segment": None, "temperature": ["hot"], "top_p": [1.5]})
    problems = _problems(path)
    missing = f"{path}: column segment: expected a string column, found no such column"
    assert any(p.startswith(missing) for p in problems)
    assert any(p.startswith(f"{path}: column temperature: expected double") and "found type string" in p
               for p in problems)
    # rows are still checked on the usable columns, but not on the broken ones
    assert any("row 0 (request_id=r0), column top_p" in p for p in problems)
    assert not any("row 0" in p and "column segment" in p for p in problems)
    assert len(problems) == 3


def test_neither_messages_nor_prompt_column(tmp_path: Path) -> None:
    problems = _problems(_write(tmp_path, {"messages": None}))
    assert problems == [f"{tmp_path / 'traffic.parquet'}: column messages/prompt: expected a messages column (chat) "
                        "or a prompt column (completion), found neither. Fix: add the column holding the request's "
                        "input."]


def test_error_message_format(tmp_path: Path) -> None:
    path = _write(tmp_path, {"temperature": [0.5, 2.5]})
    [problem] = _problems(path)
    assert problem == (f"{path}: row 1 (request_id=r1), column temperature: expected a number in [0, 2], "
                       "found 2.5. Fix: fix the captured value or leave it null.")
    assert re.fullmatch(r".+: row \d+ \(request_id=.+\), column \S+: expected .+, found .+\. Fix: .+\.", problem)


@pytest.mark.parametrize(("columns", "row", "column", "found"), [
    ({"prompt": ["  "], "messages": None}, 0, "prompt", "found '  '"),
    ({"prompt": ["p"]}, 0, "messages/prompt", "found both set"),
    ({"prompt": pa.array([None], pa.string()), "messages": pa.array([None], MESSAGES)}, 0, "messages/prompt",
     "found both null"),
    ({"messages": [[{"role": "tool", "content": "x"}, {"role": "user", "content": "y"}]]}, 0, "messages[0].role",
     "found 'tool'"),
    ({"messages": [[{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]]}, 0,
     "messages[1].role", "expected the last message to be from the user, found 'assistant'"),
    ({"messages": [[{"role": "user", "content": "x"}, {"role": "system", "content": "y"},
                    {"role": "user", "content": "z"}]]}, 0, "messages[1].role", "system only as the first"),
    ({"messages": [[{"role": "user", "content": " "}]]}, 0, "messages[0].content", "non-empty string"),
    ({"messages": pa.array([[]], MESSAGES)}, 0, "messages", "found []"),
    ({"request_id": ["a", "b", "a"]}, 2, "request_id", "found the same id as row 0"),
    ({"request_id": [""]}, 0, "request_id", "non-empty string"),
    ({"segment": pa.array([None], pa.string())}, 0, "segment", "found null"),
    ({"timestamp": pa.array([None], pa.timestamp("s"))}, 0, "timestamp", "found null"),
    ({"response_schema": ['{"type": "object"']}, 0, "response_schema", "invalid JSON"),
    ({"response_schema": ["[1, 2]"]}, 0, "response_schema", "expected a JSON object, found [1, 2]"),
    ({"metadata": ["nope"]}, 0, "metadata", "invalid JSON"),
    ({"temperature": [-0.1]}, 0, "temperature", "found -0.1"),
    ({"temperature": [float("nan")]}, 0, "temperature", "found nan"),
    ({"top_p": [0.0]}, 0, "top_p", "(0, 1]"),
    ({"max_tokens": [0]}, 0, "max_tokens", "integer >= 1"),
])
def test_row_errors(tmp_path: Path, columns: dict, row: int, column: str, found: str) -> None:
    path = _write(tmp_path, columns)
    problems = _problems(path)
    assert len(problems) == 1, problems
    assert f": row {row} (request_id=" in problems[0]
    assert f", column {column}: " in problems[0]
    assert found in problems[0]
    assert ". Fix: " in problems[0]


def test_all_problems_are_collected_and_the_message_is_capped(tmp_path: Path) -> None:
    path = _write(tmp_path, {"temperature": [9.0] * 25, "top_p": [5.0] * 25})
    with pytest.raises(TrafficError) as info:
        load_traffic(path)
    assert len(info.value.problems) == 50
    lines = str(info.value).splitlines()
    assert len(lines) == 21 and lines[-1] == "... and 30 more"
    assert isinstance(info.value, ValueError)


def test_limit_reads_and_validates_only_the_first_rows(tmp_path: Path) -> None:
    path = _write(tmp_path, {"temperature": [0.1, 0.2, 9.0]})
    assert [r.request_id for r in load_traffic(path, limit=2)] == ["r0", "r1"]
    assert _problems(path, limit=3)[0].startswith(f"{path}: row 2")
    assert len(load_traffic(_write(tmp_path, {"temperature": [0.1]}, "one.parquet"), limit=5)) == 1
    with pytest.raises(ValueError, match="limit"):
        load_traffic(path, limit=0)


def test_missing_file_and_not_parquet(tmp_path: Path) -> None:
    [missing] = _problems(tmp_path / "nope.parquet")
    assert "nope.parquet: file not found" in missing and "traffic.path" in missing
    jsonl = tmp_path / "log.jsonl"
    jsonl.write_text('{"messages": []}\n')
    [wrong] = _problems(jsonl)
    assert f"{jsonl}: is not a Parquet file" in wrong
    assert "python -m harness import-openai IN.jsonl OUT.parquet" in wrong


def test_empty_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.parquet"
    write_traffic([], path)
    assert "found 0 rows" in _problems(path)[0]


def test_fingerprint_hashes_the_file_bytes(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    write_traffic([_request()], path)
    assert traffic_fingerprint(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    before = traffic_fingerprint(path)
    write_traffic([_request("other")], path)
    assert traffic_fingerprint(path) != before
    with pytest.raises(TrafficError, match="file not found"):
        traffic_fingerprint(tmp_path / "nope.parquet")
