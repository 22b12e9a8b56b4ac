"""Golden-set validation and the zoo's golden set."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from harness.fixtures.zoo.golden import DEFAULT_GOLDEN, golden_items
from harness.golden.schema import load_golden, write_golden
from harness.traffic import TrafficError


def test_committed_zoo_golden_set_is_valid_and_current(tmp_path: Path) -> None:
    traffic, items = load_golden(DEFAULT_GOLDEN)
    assert traffic.requests == len(items) == 1600
    assert {i.dimension for i in items.values()} == {"factuality", "instruction_adherence", "format",
                                                      "task_accuracy"}
    rebuilt = write_golden(*golden_items(), tmp_path / "g.parquet")  # the code still writes the committed file
    assert pq.read_table(rebuilt).equals(pq.read_table(DEFAULT_GOLDEN))


def _broken(tmp_path: Path) -> Path:
    requests, items = golden_items(n=4)
    path = write_golden(requests, items, tmp_path / "g.parquet")
    t = pq.read_table(path).to_pylist()
    t[0]["expected"] = ""
    t[1]["checks"] = [{"metric": "regex", "target": "(unclosed"}, {"metric": "no_such_metric", "target": None}]
    t[2]["dimension"] = "vibes"
    t[3]["checks"] = [{"metric": "rouge_l", "target": None}, {"metric": "rouge_l", "target": None}]
    pq.write_table(pa.Table.from_pylist(t, schema=pq.read_schema(path)), path)
    return path


def test_every_bad_row_is_named_with_its_fix(tmp_path: Path) -> None:
    path = _broken(tmp_path)
    with pytest.raises(TrafficError) as e:
        load_golden(path)
    msg = str(e.value)
    assert f"{path}: row 0 (request_id 'golden-2026-00000'), column expected" in msg
    assert "row 1" in msg and "regex target" in msg and "unknown golden metric 'no_such_metric'" in msg
    assert "row 2" in msg and "column dimension" in msg and "'vibes'" in msg
    assert "row 3" in msg and "metric 'rouge_l' twice" in msg
    assert msg.count("Fix:") == 6  # row 0 twice: its json_field_accuracy target is the (empty) expected text


def test_missing_golden_column_is_named(tmp_path: Path) -> None:
    path = write_golden(*golden_items(n=4), tmp_path / "g.parquet")
    pq.write_table(pq.read_table(path).drop_columns(["source"]), path)
    with pytest.raises(TrafficError, match="column source: expected a string column, found no such column"):
        load_golden(path)
