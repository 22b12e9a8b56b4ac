"""Imported arms: outputs read from a file keyed by request_id (pure I/O, no model)."""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from harness.config import ArmConfig
from harness.engines.base import EngineError, PreparedRequest, make_engine
from harness.engines.imported import imported_coverage
from harness.traffic import Message, Request, Traffic, open_traffic, write_traffic

T0 = dt.datetime(2026, 11, 26, tzinfo=dt.UTC)


def preq(rid: str) -> PreparedRequest:
    return PreparedRequest(rid, ({"role": "user", "content": "hi"},), None, 0.0, 1.0, 16, 0, None)


def test_jsonl_and_parquet_give_the_same_rows(tmp_path: Path) -> None:
    rows = [{"request_id": "a", "output": "one", "finish_reason": "length", "output_tokens": 3},
            {"request_id": "b", "output": "two"}]
    (tmp_path / "o.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "o.parquet")
    for name in ("o.jsonl", "o.parquet"):
        engine = make_engine(ArmConfig(imported=str(tmp_path / name)))
        gens = engine.generate([preq("a"), preq("b"), preq("c")])
        assert [(g.request_id, g.output_text, g.finish_reason, g.error) for g in gens] == [
            ("a", "one", "length", None), ("b", "two", "stop", None), ("c", "", None, "missing_in_import")]
        assert gens[0].output_tokens == 3


def test_bad_rows_are_named(tmp_path: Path) -> None:
    p = tmp_path / "o.jsonl"
    p.write_text('{"request_id": "a", "output": "x"}\n{"request_id": "a", "output": "y"}\n{"request_id": "b"}\n'
                 '{"request_id": "c", "output": "z", "output_tokens": "7", "finish_reason": 1}\n')
    with pytest.raises(EngineError) as e:
        make_engine(ArmConfig(imported=str(p)))
    assert str(e.value).splitlines() == [
        f"{p}: line 2 (request_id=a), field request_id: expected a unique id, found duplicate 'a' (first at line 1). "
        "Fix: keep one output per request.",
        f"{p}: line 3 (request_id=b), field output: expected a string, found null. Fix: store the output text ('' "
        "when empty).",
        f"{p}: line 4 (request_id=c), field finish_reason: expected a string (stop, length, ...) or null, found 1. "
        "Fix: store the finish reason as text or leave it out.",
        f"{p}: line 4 (request_id=c), field output_tokens: expected an integer >= 0 or null, found '7'. Fix: store "
        "the token count or leave it out."]


def test_missing_file_bad_json_bad_utf8_and_not_parquet(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match="does not exist"):
        make_engine(ArmConfig(imported=str(tmp_path / "nope.jsonl")))
    (tmp_path / "bad.jsonl").write_bytes(b'{"request_id": "a", "output": "x"}\n{oops\n[1]\n'
                                         b'{"request_id": "b", "output": "caf\xe9"}\n')
    with pytest.raises(EngineError) as e:
        make_engine(ArmConfig(imported=str(tmp_path / "bad.jsonl")))
    assert [line.split(": ", 2)[1] for line in str(e.value).splitlines()] == ["line 2", "line 3", "line 4"]
    assert "line 4: expected UTF-8 text, found the invalid byte 0xe9 at byte 34 of the line" in str(e.value)
    (tmp_path / "o.parquet").write_text("not parquet")
    with pytest.raises(EngineError, match=r"o.parquet: could not read it as Parquet .* Fix: "):
        make_engine(ArmConfig(imported=str(tmp_path / "o.parquet")))
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(EngineError, match="expected at least one output, found none"):
        make_engine(ArmConfig(imported=str(tmp_path / "empty.jsonl")))


def _traffic(tmp_path: Path, ids: list[str]) -> Traffic:
    requests = [Request(i, T0, "default", (Message("user", "hi"),), None, None, None, None, None, None, None)
                for i in ids]
    write_traffic(requests, tmp_path / "traffic.parquet")
    return open_traffic(tmp_path / "traffic.parquet")


def test_ids_not_in_the_traffic_are_counted_and_warned(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    outputs = tmp_path / "o.jsonl"
    outputs.write_text("".join(json.dumps({"request_id": i, "output": "x"}) + "\n" for i in ("a", "b", "z1", "z2")))
    with caplog.at_level(logging.WARNING):
        coverage = imported_coverage(outputs, _traffic(tmp_path, ["a", "b", "c"]))
    assert coverage == {"rows": 4, "matched": 2, "missing_in_import": 1, "not_in_traffic": 2,
                        "not_in_traffic_examples": ["z1", "z2"]}
    assert "2 of its 4 request_ids are not in the traffic (e.g. z1, z2)" in caplog.text


def test_no_id_in_the_traffic_is_an_error(tmp_path: Path) -> None:
    outputs = tmp_path / "o.jsonl"
    outputs.write_text(json.dumps({"request_id": "other-1", "output": "x"}) + "\n")
    with pytest.raises(EngineError) as e:
        imported_coverage(outputs, _traffic(tmp_path, ["a"]))
    assert str(e.value).startswith(f"{outputs}: expected outputs for the requests in {tmp_path / 'traffic.parquet'}, "
                                   "found none of its 1 request_ids there (e.g. ['other-1']). Fix: ")
