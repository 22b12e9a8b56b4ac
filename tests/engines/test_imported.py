"""Imported arms: outputs read from a file keyed by request_id (pure I/O, no model)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from harness.config import ArmConfig
from harness.engines.base import EngineError, PreparedRequest, make_engine


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
    p.write_text('{"request_id": "a", "output": "x"}\n{"request_id": "a", "output": "y"}\n{"request_id": "b"}\n')
    with pytest.raises(EngineError) as e:
        make_engine(ArmConfig(imported=str(p)))
    assert "row 1, field request_id: duplicate 'a'" in str(e.value)
    assert "row 2 (request_id=b), field output" in str(e.value)


def test_missing_file_and_bad_json(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match="does not exist"):
        make_engine(ArmConfig(imported=str(tmp_path / "nope.jsonl")))
    (tmp_path / "bad.jsonl").write_text('{"request_id": "a", "output": "x"}\n{oops\n')
    with pytest.raises(EngineError, match="line 2: not valid JSON"):
        make_engine(ArmConfig(imported=str(tmp_path / "bad.jsonl")))
