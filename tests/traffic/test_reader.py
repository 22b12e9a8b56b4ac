"""Reading traffic in bounded memory: the streamed validation pass, batches, and row errors a writer can leave."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from harness.traffic import Message, Request, TrafficError, load_traffic, open_traffic, reader, write_traffic

T0 = dt.datetime(2026, 11, 26, tzinfo=dt.UTC)
MESSAGES = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))


def _requests(n: int, prefix: str = "r") -> list[Request]:
    return [Request(f"{prefix}{i}", T0 + dt.timedelta(seconds=i), "s", (Message("user", f"hi {i}"),) if i % 3 else None,
                    None if i % 3 else f"prompt {i}", None, None, None, None, None, None) for i in range(n)]


@pytest.fixture
def small_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Reads 7 rows at a time and records how many rows were turned into Python values at once."""
    monkeypatch.setattr(reader, "READ_ROWS", 7)
    sizes: list[int] = []
    original = reader.table_rows

    def recording(table: pa.Table) -> list:
        sizes.append(table.num_rows)
        return original(table)

    monkeypatch.setattr(reader, "table_rows", recording)
    return sizes


def test_validation_streams_the_file_a_few_rows_at_a_time(tmp_path: Path, small_reads: list[int]) -> None:
    path = tmp_path / "t.parquet"
    assert write_traffic(iter(_requests(50)), path, row_group_rows=5) == 50  # a generator: written in row groups
    assert pq.ParquetFile(path).metadata.num_row_groups == 10
    traffic = open_traffic(path)
    assert (traffic.requests, traffic.chat_requests, traffic.first_chat) == (50, 33, "r1")
    assert max(small_reads) == 7 and sum(small_reads) == 50


def test_batches_are_exact_and_match_load_traffic(tmp_path: Path, small_reads: list[int]) -> None:
    path = tmp_path / "t.parquet"
    write_traffic(_requests(50), path, row_group_rows=5)
    traffic = open_traffic(path, limit=45)
    batches = list(traffic.batches(10, wanted=lambda b: b != 1))
    assert [len(b.request_ids) for b in batches] == [10, 10, 10, 10, 5]
    assert batches[1].requests is None and batches[1].request_ids == [f"r{i}" for i in range(10, 20)]
    streamed = [r for b in batches for r in b.requests or []]
    assert streamed == [r for r in load_traffic(path, limit=45) if not 10 <= int(r.request_id[1:]) < 20]


def test_duplicates_across_read_chunks_name_both_rows(tmp_path: Path, small_reads: list[int]) -> None:
    path = tmp_path / "t.parquet"
    requests = _requests(30)
    requests[25] = _requests(4)[3]  # r3 again, in another chunk
    write_traffic(requests, path)
    with pytest.raises(TrafficError) as info:
        open_traffic(path)
    assert info.value.problems == [f"{path}: row 25 (request_id=r3), column request_id: expected a unique id, found "
                                   "the same id as row 3. Fix: make every request_id unique, e.g. append the row "
                                   "number."]


def test_invalid_utf8_and_out_of_range_timestamps_are_row_errors(tmp_path: Path) -> None:
    ids = pa.array([b"ok", b"caf\xe9", b"fine"], pa.binary())
    content = pa.array([b"hi", b"hi", b"\xff"], pa.binary())
    messages = pa.ListArray.from_arrays([0, 1, 2, 3], pa.StructArray.from_arrays(
        [pa.array(["user"] * 3), pa.Array.from_buffers(pa.string(), 3, content.buffers())], ["role", "content"]))
    table = pa.table({
        "request_id": pa.Array.from_buffers(pa.string(), 3, ids.buffers()),
        "timestamp": pa.array([0, 0, 10**12], pa.int64()).cast(pa.timestamp("s")),
        "segment": ["s"] * 3, "messages": messages})
    path = tmp_path / "t.parquet"
    pq.write_table(table, path)
    with pytest.raises(TrafficError) as info:
        load_traffic(path)
    assert info.value.problems == [
        f"{path}: row 1 (request_id=None), column request_id: expected UTF-8 text, found the invalid byte 0xe9 at "
        "byte 3 of a text value. Fix: re-encode the text as UTF-8 before writing it.",
        f"{path}: row 2 (request_id=fine), column timestamp: expected a value Python can read, found OverflowError: "
        "date value out of range. Fix: fix or drop the value.",
        f"{path}: row 2 (request_id=fine), column messages: expected UTF-8 text, found the invalid byte 0xff at byte "
        "0 of a text value. Fix: re-encode the text as UTF-8 before writing it."]


def test_problems_kept_are_capped_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    n = TrafficError.MAX_KEPT + 500
    pq.write_table(pa.table({"request_id": [f"r{i}" for i in range(n)], "timestamp": pa.array([T0] * n),
                             "segment": [""] * n, "prompt": ["p"] * n}), path)
    with pytest.raises(TrafficError) as info:
        open_traffic(path)
    assert len(info.value.problems) == TrafficError.MAX_KEPT and info.value.total == n
    assert str(info.value).splitlines()[-1] == f"... and {n - 20} more"


def test_a_file_changed_after_validation_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    write_traffic(_requests(4), path)
    traffic = open_traffic(path)
    write_traffic([Request("r0", T0, " ", None, "p", None, None, None, None, None, None)], path)
    with pytest.raises(TrafficError, match=r"row 0 \(request_id=r0\), column segment: .* The file changed since the "
                                           "run validated it"):
        list(traffic.batches(2))
    pq.write_table(pq.read_table(path).drop_columns(["messages"]), path)
    with pytest.raises(TrafficError, match=r"could not read it again \(KeyError: .*\). Fix: the file changed since"):
        list(traffic.batches(2))


def test_a_damaged_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    write_traffic(_requests(20), path)
    data = bytearray(path.read_bytes())
    data[200:400] = b"\x00" * 200  # damage the column data, keep the footer
    path.write_bytes(bytes(data))
    with pytest.raises(TrafficError) as info:
        load_traffic(path)
    [problem] = info.value.problems
    assert problem.startswith(f"{path}: ") and "Fix: " in problem and "\n" not in problem


def test_an_absent_optional_column_counts_as_null_and_its_rows_are_checked(tmp_path: Path) -> None:
    """Found by the fuzz campaign: with no messages column, a null prompt was dropped silently, not reported."""
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"request_id": ["a", "b"], "timestamp": pa.array([T0] * 2), "segment": ["s"] * 2,
                             "prompt": pa.array([None, "p"], pa.string())}), path)
    with pytest.raises(TrafficError) as info:
        load_traffic(path)
    assert info.value.problems == [f"{path}: row 0 (request_id=a), column messages/prompt: expected exactly one of "
                                   "messages and prompt, found both null. Fix: set messages for a chat request or "
                                   "prompt for a completion request."]
