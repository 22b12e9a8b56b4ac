"""Fuzzing the readers of user files: whatever the input, a clear error naming the file, or a valid result.

The traffic loader gets arbitrary Parquet tables (random columns, types, nulls, strings, nested messages, invalid
UTF-8, damaged bytes); the OpenAI importer and the imported-outputs reader get arbitrary JSONL lines. In the suite
each property runs a fixed, derandomized set of examples; a longer random campaign:

    HARNESS_FUZZ_EXAMPLES=20000 .venv/bin/pytest tests/traffic/test_fuzz.py -p no:cacheprovider

(docs/reliability.md has the campaign's duration and findings).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.engines.base import EngineError
from harness.engines.imported import load_outputs
from harness.traffic import TrafficError, load_traffic, open_traffic, write_traffic
from harness.traffic.openai_import import import_openai_jsonl

CAMPAIGN = int(os.environ.get("HARNESS_FUZZ_EXAMPLES", "0"))
FUZZ = settings(max_examples=CAMPAIGN or 40, derandomize=not CAMPAIGN, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
COLUMNS = ("request_id", "timestamp", "segment", "messages", "prompt", "temperature", "top_p", "max_tokens",
           "response_schema", "response", "metadata")
ROLES = st.sampled_from(["system", "user", "assistant", "tool", "developer", "", "USER"]) | st.text(max_size=5)
TEXT = st.text(max_size=12) | st.sampled_from(["", " ", "{}", '{"a": 1}', "[1]", "null", "NaN", "\x00", "é", "😀"])


# ---- arbitrary Parquet --------------------------------------------------------------------------------------------

def _message_type(role: pa.DataType, content: pa.DataType) -> pa.DataType:
    return pa.list_(pa.struct([("role", role), ("content", content)]))


TYPES: dict[str, tuple[pa.DataType, st.SearchStrategy[Any]]] = {
    "string": (pa.string(), TEXT),
    "large_string": (pa.large_string(), TEXT),
    "binary": (pa.binary(), st.binary(max_size=8)),
    "int8": (pa.int8(), st.integers(-128, 127)),
    "int64": (pa.int64(), st.integers(-(2**63), 2**63 - 1)),
    "uint64": (pa.uint64(), st.integers(0, 2**64 - 1)),
    "float": (pa.float64(), st.floats()),
    "bool": (pa.bool_(), st.booleans()),
    "date": (pa.date32(), st.dates()),
    "null": (pa.null(), st.none()),
    "list_string": (pa.list_(pa.string()), st.lists(TEXT, max_size=3)),
    "struct": (pa.struct([("role", pa.string())]), st.fixed_dictionaries({"role": ROLES})),
    "messages": (_message_type(pa.string(), pa.string()), st.lists(
        st.fixed_dictionaries({"role": st.none() | ROLES, "content": st.none() | TEXT}), max_size=4)),
    "messages_extra": (pa.list_(pa.struct([("role", pa.string()), ("content", pa.string()), ("name", pa.int32())])),
                       st.lists(st.fixed_dictionaries({"role": ROLES, "content": TEXT,
                                                       "name": st.none() | st.integers(0, 9)}), max_size=3)),
    "messages_int_role": (_message_type(pa.int32(), pa.string()), st.lists(
        st.fixed_dictionaries({"role": st.integers(0, 9), "content": TEXT}), max_size=2)),
}
TIMESTAMP_UNITS = ("s", "ms", "us", "ns")


@st.composite
def columns(draw: st.DrawFn, rows: int) -> tuple[str, pa.Array]:
    name = draw(st.sampled_from(COLUMNS) | st.text(max_size=6))
    kind = draw(st.sampled_from([*TYPES, "timestamp", "invalid_utf8"]))
    if kind == "timestamp":  # raw int64 counts, far outside the datetime range included
        unit, tz = draw(st.sampled_from(TIMESTAMP_UNITS)), draw(st.sampled_from([None, "UTC", "+05:30"]))
        raw = draw(st.lists(st.none() | st.integers(-(2**63) + 1, 2**63 - 1) | st.integers(0, 2 * 10**9),
                            min_size=rows, max_size=rows))
        return name, pa.array(raw, pa.int64()).cast(pa.timestamp(unit, tz))
    if kind == "invalid_utf8":  # a string column whose bytes are not UTF-8 (a broken writer)
        raw = draw(st.lists(st.binary(max_size=6), min_size=rows, max_size=rows))
        binary = pa.array(raw, pa.binary())
        return name, pa.Array.from_buffers(pa.string(), rows, binary.buffers())
    arrow_type, values = TYPES[kind]
    return name, pa.array(draw(st.lists(st.none() | values, min_size=rows, max_size=rows)), arrow_type)


@st.composite
def tables(draw: st.DrawFn) -> pa.Table:
    rows = draw(st.integers(0, 6))
    drawn = draw(st.lists(columns(rows), max_size=8))
    base = []  # mostly a valid skeleton, so the row checks are reached too
    if draw(st.booleans()):
        base = [("request_id", pa.array(draw(st.lists(st.sampled_from(["a", "b", "c", "d"]) | TEXT,
                                                      min_size=rows, max_size=rows)), pa.string())),
                ("timestamp", pa.array([dt.datetime(2026, 11, 26)] * rows, pa.timestamp("us"))),
                ("segment", pa.array(["s"] * rows))]
    pairs = base + drawn
    return pa.Table.from_arrays([a for _, a in pairs], names=[n for n, _ in pairs]) if pairs else pa.table({})


def _assert_clear(err: TrafficError | EngineError, path: Path) -> None:
    lines = str(err).splitlines()
    assert lines, "an error without a message"
    for line in lines:
        assert line.startswith(str(path)) or line.startswith("... and "), line
        assert "Fix: " in line or line.startswith("... and "), line


def _load_both(path: Path, limit: int | None) -> None:
    """load_traffic and open_traffic + batches agree: the same requests, or the same problems."""
    try:
        loaded = load_traffic(path, limit)
    except TrafficError as err:
        _assert_clear(err, path)
        try:
            open_traffic(path, limit)
        except TrafficError as again:
            assert again.problems == err.problems
        else:
            raise AssertionError("open_traffic accepted what load_traffic refused")
        return
    traffic = open_traffic(path, limit)
    streamed = [r for b in traffic.batches(3) for r in b.requests or []]
    assert streamed == loaded and traffic.requests == len(loaded)
    write_traffic(loaded, path.with_name("again.parquet"))  # a valid file's requests round-trip
    assert load_traffic(path.with_name("again.parquet")) == loaded


@FUZZ
@given(table=tables(), limit=st.none() | st.integers(1, 4))
def test_traffic_loader_on_arbitrary_tables(table: pa.Table, limit: int | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "traffic.parquet"
        try:
            pq.write_table(table, path)
        except (pa.ArrowException, ValueError):  # a table Parquet cannot store is not an input we can get
            return
        _load_both(path, limit)


@FUZZ
@given(data=st.binary(max_size=64), cut=st.integers(0, 4000), flip=st.lists(st.integers(0, 4000), max_size=3))
def test_traffic_loader_on_damaged_files(data: bytes, cut: int, flip: list[int]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "traffic.parquet"
        write_traffic([], path)
        valid = bytearray(_SAMPLE_BYTES)
        for i in flip:  # damage a valid file's bytes...
            valid[i % len(valid)] ^= 0xFF
        path.write_bytes(bytes(valid[: max(cut, len(valid) - cut)]) if cut % 2 else bytes(valid))
        _load_both(path, None)
        path.write_bytes(data)  # ...or no Parquet at all
        _load_both(path, None)


def _sample_bytes() -> bytes:
    from harness.traffic import Message, Request

    requests = [Request(f"r{i}", dt.datetime(2026, 11, 26, tzinfo=dt.UTC), "s", (Message("user", f"hi {i}"),),
                        None, 0.0, 1.0, 8, {"type": "object"}, "ok", {"k": i}) for i in range(5)]
    with tempfile.TemporaryDirectory() as tmp:
        write_traffic(requests, Path(tmp) / "t.parquet")
        return (Path(tmp) / "t.parquet").read_bytes()


_SAMPLE_BYTES = _sample_bytes()


# ---- arbitrary JSONL ----------------------------------------------------------------------------------------------

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | TEXT,
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3), max_leaves=8)
OFFSETS = st.timedeltas(min_value=-dt.timedelta(hours=23, minutes=59), max_value=dt.timedelta(hours=23, minutes=59))
TIMES = (st.integers() | st.floats() | TEXT
         | st.builds(lambda d, o: d.replace(tzinfo=dt.timezone(o)).isoformat(), st.datetimes(), OFFSETS))
CONTENT = TEXT | st.lists(st.fixed_dictionaries({"type": st.sampled_from(["text", "image_url"]) | TEXT,
                                                 "text": TEXT | JSON}) | JSON, max_size=3) | JSON
MESSAGE = st.fixed_dictionaries({}, optional={"role": ROLES | JSON, "content": CONTENT}) | JSON
REQUEST = st.fixed_dictionaries({}, optional={
    "model": TEXT | JSON, "messages": st.lists(MESSAGE, max_size=3) | JSON, "prompt": TEXT | JSON,
    "temperature": st.floats() | st.integers() | JSON, "top_p": st.floats() | JSON,
    "max_tokens": st.integers() | JSON, "max_completion_tokens": st.integers() | JSON, "metadata": JSON,
    "response_format": st.fixed_dictionaries({"type": st.sampled_from(["text", "json_object", "json_schema"]) | TEXT},
                                             optional={"json_schema": JSON}) | JSON})
RESPONSE = st.fixed_dictionaries({}, optional={
    "id": TEXT | JSON, "created": TIMES | JSON,
    "choices": st.lists(st.fixed_dictionaries({}, optional={"message": st.fixed_dictionaries(
        {}, optional={"content": TEXT | JSON}) | JSON}) | JSON, max_size=2) | JSON}) | JSON
WRAPPED = st.fixed_dictionaries({"request": REQUEST | JSON}, optional={
    "id": TEXT | st.integers() | JSON, "timestamp": TIMES, "created_at": TIMES, "metadata": JSON, "response": RESPONSE})
BARE = REQUEST.flatmap(lambda body: st.fixed_dictionaries(
    {k: st.just(v) for k, v in body.items()}, optional={"response": RESPONSE, "timestamp": TIMES, "id": TEXT}))
LINE = (WRAPPED | BARE | JSON).map(lambda v: json.dumps(v).encode()) | st.binary(max_size=20) \
    | st.sampled_from([b"[" * 5000, b'{"a": ' * 3000, b"\xef\xbb\xbf{}", b"\xff\xfe"])


@FUZZ
@given(lines=st.lists(LINE, max_size=6), segment_field=st.none() | st.sampled_from(["task", "model"]))
def test_openai_importer_on_arbitrary_lines(lines: list[bytes], segment_field: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "log.jsonl", Path(tmp) / "traffic.parquet"
        src.write_bytes(b"\n".join(lines))
        try:
            count = import_openai_jsonl(src, dst, segment_field=segment_field)
        except TrafficError as err:
            _assert_clear(err, src)
            assert not dst.exists()
            return
        assert len(load_traffic(dst)) == count


IMPORTED_ROW = st.fixed_dictionaries({}, optional={
    "request_id": TEXT | JSON, "output": TEXT | JSON, "finish_reason": TEXT | JSON,
    "prompt_tokens": st.integers() | JSON, "output_tokens": st.integers() | JSON}) | JSON
IMPORTED_LINE = IMPORTED_ROW.map(lambda v: json.dumps(v).encode()) | st.binary(max_size=12) \
    | st.sampled_from([b"[" * 5000, b"\xef\xbb\xbf{}"])


@FUZZ
@given(lines=st.lists(IMPORTED_LINE, max_size=6))
def test_imported_outputs_on_arbitrary_lines(lines: list[bytes]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "outputs.jsonl"
        path.write_bytes(b"\n".join(lines))
        try:
            rows = load_outputs(path)
        except EngineError as err:
            _assert_clear(err, path)
            return
        assert all(isinstance(k, str) and isinstance(v["output"], str) for k, v in rows.items())
