"""Reading a traffic file: one streamed pass that validates every row, then the requests again in batches.

`open_traffic` validates the whole file without holding it: it reads `READ_ROWS` rows at a time
(`pyarrow.parquet.ParquetFile.iter_batches`), turns only those into Python values, and keeps 8 bytes per row
(a hash of the request id) for the duplicate check. Replay then reads the requests back batch by batch with
`Traffic.batches`. `load_traffic` is the same pass keeping every `Request`, for callers that want them all.
"""

from __future__ import annotations

import hashlib
import logging
import re
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from harness.traffic.schema import (
    COLUMN_TYPES,
    REQUIRED_COLUMNS,
    Issue,
    Request,
    TrafficError,
    check_columns,
    show_id,
    validate_row,
)

logger = logging.getLogger(__name__)

READ_ROWS = 8192
"""Rows turned into Python values at a time while validating."""
READ_ERRORS = (pa.ArrowException, OSError, ValueError, OverflowError, IndexError, KeyError, TypeError)
"""What pyarrow raises on a damaged file (its errors subclass these builtins, e.g. ArrowInvalid is a ValueError)."""


@dataclass(frozen=True)
class TrafficBatch:
    """One replay batch: its index, its request ids, and its requests when they were asked for."""

    index: int
    request_ids: list[str]
    requests: list[Request] | None


@dataclass(frozen=True)
class Traffic:
    """A validated traffic file: what it holds, and its requests read again in batches (never all at once)."""

    path: Path
    limit: int | None
    requests: int
    chat_requests: int  # requests with `messages` (the rest have a `prompt`)
    first_chat: str | None  # the request_id of the first chat request, for error messages
    columns: tuple[str, ...] = field(repr=False)  # the known columns present in the file

    def batches(self, size: int, wanted: Callable[[int], bool] = lambda _: True) -> Iterator[TrafficBatch]:
        """The requests in file order, `size` per batch (the last may be shorter).

        Args:
            size: requests per batch (the replay batch size).
            wanted: which batch indices to build `Request`s for; the others carry only their ids.

        Raises:
            TrafficError: when a row no longer validates (the file changed since `open_traffic`).
        """
        try:
            parquet = _open(self.path)
            for index, table in enumerate(_slices(parquet, list(self.columns), size, self.limit)):
                ids = [str(x) for x in table.column("request_id").to_pylist()]
                yield TrafficBatch(index, ids, self._requests(table, index * size) if wanted(index) else None)
        except TrafficError:
            raise
        except READ_ERRORS as err:
            raise TrafficError([f"{self.path}: could not read it again ({one_line(err)}). Fix: the file changed "
                                "since the run validated it: restore it, or replay again with a new run_id."]) from err

    def _requests(self, table: pa.Table, first_row: int) -> list[Request]:
        requests = []
        for i, (row, cell_issues) in enumerate(table_rows(table)):
            request, issues = validate_row(row)
            if request is None or cell_issues:
                issue = (cell_issues + issues)[0]
                raise TrafficError([issue.describe(str(self.path), _at(first_row + i, row.get("request_id")))
                                    + " The file changed since the run validated it: restore it, or replay again "
                                    "with a new run_id."])
            requests.append(request)
        return requests


def open_traffic(path: str | Path, limit: int | None = None) -> Traffic:
    """Validates a traffic file in one streamed pass, in bounded memory.

    Args:
        path: the Parquet file (see docs/traffic.md for its columns).
        limit: validate (and later replay) only the first `limit` rows.

    Returns:
        The validated file's description; `Traffic.batches` reads its requests.

    Raises:
        TrafficError: listing every problem found: missing or mistyped columns, then bad rows.
    """
    return _scan(Path(path), limit, keep=False)[0]


def load_traffic(path: str | Path, limit: int | None = None) -> list[Request]:
    """Reads and validates a traffic Parquet file, keeping every request in memory.

    Args:
        path: the Parquet file (see docs/traffic.md for its columns).
        limit: read and validate only the first `limit` rows.

    Returns:
        One `Request` per row, in file order.

    Raises:
        TrafficError: listing every problem found: missing or mistyped columns, then bad rows.
    """
    return _scan(Path(path), limit, keep=True)[1]


def traffic_fingerprint(path: str | Path) -> str:
    """Returns the sha256 hex digest of a traffic file's bytes, read in chunks.

    Args:
        path: the traffic file.

    Raises:
        TrafficError: when the file does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise TrafficError([f"{path}: file not found. Fix: check `traffic.path`."])
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def one_line(err: BaseException) -> str:
    """An exception as one line (pyarrow's messages span several), cut at 300 characters."""
    text = " ".join(f"{type(err).__name__}: {err}".split())
    return text if len(text) <= 300 else text[:297] + "..."


# ---- reading ---------------------------------------------------------------------------------------------------

def _open(path: Path) -> pq.ParquetFile:
    if not path.is_file():
        raise TrafficError([f"{path}: file not found. Fix: check `traffic.path` (relative paths start at the "
                            f"directory the command runs in: {Path.cwd()})."])
    try:
        # pre_buffer=False: with pyarrow's default (True) iter_batches keeps every row group it pre-buffered until
        # the file is closed, so memory grows with the file (measured: 604 MiB instead of 187 for 2M rows).
        return pq.ParquetFile(path, pre_buffer=False)
    except READ_ERRORS as err:
        raise TrafficError([f"{path}: is not a Parquet file ({one_line(err)}). Fix: convert it, e.g. from OpenAI "
                            "JSONL with `python -m harness import-openai IN.jsonl OUT.parquet`."]) from err


def _slices(parquet: pq.ParquetFile, columns: list[str], size: int, limit: int | None) -> Iterator[pa.Table]:
    """Tables of exactly `size` rows (the last may be shorter), read `READ_ROWS` at a time, up to `limit` rows."""
    if not columns:  # nothing usable to read (the column problems are reported already)
        return
    schema = pa.schema([parquet.schema_arrow.field(c) for c in columns])
    left = parquet.metadata.num_rows if limit is None else limit
    pending: list[pa.RecordBatch] = []
    buffered = 0
    for batch in parquet.iter_batches(batch_size=min(READ_ROWS, max(size, 1)), columns=columns):
        if left <= 0:
            break
        batch = batch.slice(0, left)
        left -= batch.num_rows
        pending.append(batch)
        buffered += batch.num_rows
        while buffered >= size:
            table = pa.Table.from_batches(pending, schema)
            yield _utc_timestamps(table.slice(0, size))
            rest = table.slice(size)
            pending, buffered = rest.to_batches(), rest.num_rows
    if buffered:
        yield _utc_timestamps(pa.Table.from_batches(pending, schema))


def _utc_timestamps(table: pa.Table) -> pa.Table:
    """Naive timestamps mean UTC; any unit becomes microseconds."""
    index = table.schema.get_field_index("timestamp")
    if index < 0:
        return table
    utc = table.column(index).cast(pa.timestamp("us", tz="UTC"), safe=False)
    return table.set_column(index, "timestamp", utc)


def table_rows(table: pa.Table) -> list[tuple[dict[str, Any], list[Issue]]]:
    """Each row's Python values and the issues of the cells that have none (invalid UTF-8, dates out of range)."""
    try:
        return [(row, []) for row in table.to_pylist()]
    except READ_ERRORS + (UnicodeDecodeError,):
        pass
    out = []
    for i in range(table.num_rows):
        row: dict[str, Any] = {}
        issues: list[Issue] = []
        for name in table.column_names:
            try:
                row[name] = table.column(name)[i].as_py()
            except UnicodeDecodeError as err:
                found = f"the invalid byte 0x{err.object[err.start]:02x} at byte {err.start} of a text value"
                issues.append(Issue(name, "UTF-8 text", found, "re-encode the text as UTF-8 before writing it"))
            except READ_ERRORS as err:
                issues.append(Issue(name, "a value Python can read", one_line(err),
                                    "fix or drop the value"))
        out.append((row, issues))
    return out


# ---- validation ------------------------------------------------------------------------------------------------

class _Problems:
    """The problems found, in row order at the end; only the first `TrafficError.MAX_KEPT` are kept as text."""

    def __init__(self) -> None:
        self.kept: list[tuple[int, str]] = []
        self.count = 0

    def add(self, row: int, text: str) -> None:
        self.count += 1
        if len(self.kept) < TrafficError.MAX_KEPT:
            self.kept.append((row, text))

    def error(self) -> TrafficError:
        return TrafficError([text for _, text in sorted(self.kept, key=lambda x: x[0])], total=self.count)


def _at(row_number: int, request_id: Any) -> str:
    return f"row {row_number} (request_id={show_id(request_id)})"


def _skipped(present: set[str], usable: set[str]) -> set[str]:
    """The columns rows are not checked on, so a column problem is not repeated on every row: one that is there but
    unusable, an absent required one, messages and prompt when both are absent. An absent optional column is null."""
    skip = ((present & set(COLUMN_TYPES)) - usable) | (set(REQUIRED_COLUMNS) - present)
    return skip | {"messages", "prompt"} if not {"messages", "prompt"} & present else skip


def _columns_of(issue: Issue) -> set[str]:
    return set(re.split(r"[\[.]", issue.column)[0].split("/"))


def _scan(path: Path, limit: int | None, keep: bool) -> tuple[Traffic, list[Request]]:
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be None or >= 1, got {limit}")
    parquet = _open(path)
    column_issues, usable = check_columns(parquet.schema_arrow)
    problems = _Problems()
    for column_issue in column_issues:
        problems.add(-1, column_issue.describe(str(path)))
    skip = _skipped(set(parquet.schema_arrow.names), set(usable))
    hashes: array[int] = array("q")
    requests: list[Request] = []
    rows = chat = 0
    first_chat = None
    try:
        for table in _slices(parquet, usable, READ_ROWS, limit):
            for row_number, (row, cell_issues) in enumerate(table_rows(table), start=rows):
                request, issues = validate_row(row)
                request_id = row.get("request_id")
                hashes.append(hash(request_id) if isinstance(request_id, str) else hash((None, row_number)))
                bad = skip | {c for x in cell_issues for c in _columns_of(x)}
                kept = cell_issues + [x for x in issues if not bad & _columns_of(x)]
                for issue in kept:
                    problems.add(row_number, issue.describe(str(path), _at(row_number, request_id)))
                if request is not None and not kept:
                    chat += request.messages is not None
                    first_chat = first_chat or (request.request_id if request.messages is not None else None)
                    if keep:
                        requests.append(request)
            rows += table.num_rows
    except READ_ERRORS as err:
        raise TrafficError([f"{path}: could not read the rows after row {rows} ({one_line(err)}). "
                            "Fix: rewrite the file (it is damaged or was written by a broken writer)."]) from err
    if "request_id" in usable:
        _duplicates(path, parquet, hashes, problems)
    if not problems.count and not rows:
        problems.add(-1, f"{path}: expected at least one row, found 0 rows. Fix: point `traffic.path` at captured "
                         "traffic.")
    if problems.count:
        raise problems.error()
    return Traffic(path, limit, rows, chat, first_chat, tuple(usable)), requests


def _duplicates(path: Path, parquet: pq.ParquetFile, hashes: array[int], problems: _Problems) -> None:
    """Reports every repeated request_id, naming the first row with it; a second pass only when hashes repeat."""
    values = np.frombuffer(hashes, dtype=np.int64) if len(hashes) else np.zeros(0, np.int64)
    ordered = np.sort(values)
    repeated = set(ordered[1:][ordered[1:] == ordered[:-1]].tolist())
    if not repeated:
        return
    first: dict[str, int] = {}
    for row_number, request_id in enumerate(_ids(parquet, len(hashes))):
        if not isinstance(request_id, str) or hash(request_id) not in repeated:
            continue
        if request_id in first:
            issue = Issue("request_id", "a unique id", f"the same id as row {first[request_id]}",
                          "make every request_id unique, e.g. append the row number")
            problems.add(row_number, issue.describe(str(path), _at(row_number, request_id)))
        else:
            first[request_id] = row_number


def _ids(parquet: pq.ParquetFile, rows: int) -> Iterator[Any]:
    for table in _slices(parquet, ["request_id"], READ_ROWS, rows):
        for (row, _) in table_rows(table):
            yield row.get("request_id")
