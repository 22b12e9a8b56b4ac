"""Canary logs: live requests with the arm that served them, read from a directory that grows.

A canary log is Parquet or OpenAI chat-completions JSONL; one record per live request, the traffic columns
(``harness.traffic.schema``: ``request_id``, ``timestamp``, ``segment``, ``messages`` or ``prompt``, ...) plus:

- ``arm``: ``control`` (the version in production) or ``canary`` (the new one); required;
- ``response``: the output text (in JSONL, ``response.choices[0].message.content``); null only with ``error``;
- ``latency_s``: seconds from request to response, >= 0 (optional);
- ``finish_reason``, ``output_tokens`` (in JSONL from the response), ``error`` (the failure text of a failed call).

``CanaryLogs(dir).refresh()`` reads the files new or changed since the last call (``*.parquet``, ``*.jsonl``; names
starting with ``.`` or ending ``.tmp`` are skipped: writers write a temporary file and rename it into place). Every
problem is reported like traffic's: ``<file>: row <i> (request_id=...), column <c>: expected ..., found ....
Fix: ...`` (a ``TrafficError``, exit code 2); a request id seen twice is an error too. The arms answer different
requests, so every comparison is unpaired.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from harness.traffic.openai_import import decode_line, line_to_row
from harness.traffic.reader import table_rows
from harness.traffic.schema import Issue, Request, TrafficError, show_id, show_value, validate_row

ARMS = ("control", "canary")
LOG_SUFFIXES = (".parquet", ".jsonl")
EXTRA_COLUMNS = ("arm", "latency_s", "finish_reason", "output_tokens", "error")


@dataclass(frozen=True)
class LogRecord:
    """One served live request: the validated request, its arm and what the arm answered."""

    request: Request
    arm: str
    response: str | None
    latency_s: float | None
    finish_reason: str | None
    output_tokens: int | None
    error: str | None

    @property
    def timestamp(self) -> dt.datetime:
        return self.request.timestamp


def _check_extra(row: dict[str, Any]) -> list[Issue]:
    issues = []
    if row.get("arm") not in ARMS:
        issues.append(Issue("arm", "control or canary", show_value(row.get("arm")),
                            "name the arm that served the request (the traffic layer's server -> arm)"))
    latency = row.get("latency_s")
    if latency is not None and (isinstance(latency, bool) or not isinstance(latency, int | float) or latency < 0):
        issues.append(Issue("latency_s", "seconds >= 0", show_value(latency), "record the latency in seconds or null"))
    tokens = row.get("output_tokens")
    if tokens is not None and (isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 0):
        issues.append(Issue("output_tokens", "an integer >= 0", show_value(tokens), "record the count or null"))
    for name in ("finish_reason", "error"):
        if row.get(name) is not None and not isinstance(row.get(name), str):
            issues.append(Issue(name, "a string", show_value(row.get(name)), f"store {name} as text or null"))
    if row.get("response") is None and row.get("error") is None:
        issues.append(Issue("response", "the output text (or an error)", "null",
                            "log the response text, or the error of a failed call in 'error'"))
    return issues


def record_from_row(row: dict[str, Any]) -> tuple[LogRecord | None, list[Issue]]:
    """Validates one canary log row (plain values) and builds its record."""
    request, issues = validate_row(row)
    issues = issues + _check_extra(row)
    if issues or request is None:
        return None, issues
    latency = row.get("latency_s")
    return LogRecord(request, row["arm"], row.get("response"), None if latency is None else float(latency),
                     row.get("finish_reason"), row.get("output_tokens"), row.get("error")), []


def _jsonl_row(line: dict[str, Any], default_id: str) -> tuple[dict[str, Any], list[Issue]]:
    row, issues = line_to_row(line, default_id, "segment", "default")
    raw = line.get("response")
    response: dict[str, Any] = raw if isinstance(raw, dict) else {}
    choices = response.get("choices") or [{}]
    usage: dict[str, Any] = response["usage"] if isinstance(response.get("usage"), dict) else {}
    first: dict[str, Any] = choices[0] if isinstance(choices, list) and isinstance(choices[0], dict) else {}
    row.update(arm=line.get("arm"), latency_s=line.get("latency_s"), error=line.get("error"),
               finish_reason=first.get("finish_reason"), output_tokens=usage.get("completion_tokens"))
    if row["metadata"] is not None:
        row["metadata"] = {k: v for k, v in row["metadata"].items() if k != "segment"} or None
    return row, issues


def read_jsonl(path: Path) -> tuple[list[LogRecord], list[str]]:
    """The records of one JSONL canary log and its problems (``file: line N, field F: ...``)."""
    records, problems = [], []
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            line, issues = decode_line(raw.rstrip(b"\n"), number)
            record = None
            if line is not None:
                row, issues = _jsonl_row(line, f"{path.stem}-{number}")
                record, more = record_from_row(row) if not issues else (None, [])
                issues += more
            problems += [i.describe(str(path), f"line {number}", kind="field") for i in issues]
            if record is not None:
                records.append(record)
    return records, problems


def read_parquet(path: Path) -> tuple[list[LogRecord], list[str]]:
    """The records of one Parquet canary log and its problems (``file: row N (request_id=...), column C: ...``)."""
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as err:
        return [], [f"{path}: expected a Parquet file, found an unreadable one ({err}). Fix: rewrite the log."]
    if "timestamp" in table.column_names and pa.types.is_timestamp(table.schema.field("timestamp").type):
        i = table.schema.get_field_index("timestamp")
        table = table.set_column(i, "timestamp", table.column(i).cast(pa.timestamp("us", tz="UTC"), safe=False))
    records, problems = [], []
    for number, (row, cell_issues) in enumerate(table_rows(table), start=1):
        record, issues = record_from_row(row) if not cell_issues else (None, cell_issues)
        at = f"row {number} (request_id={show_id(row.get('request_id'))})"
        problems += [i.describe(str(path), at) for i in issues]
        if record is not None:
            records.append(record)
    return records, problems


class CanaryLogs:
    """A directory of canary logs that grows; ``refresh`` reads what is new and returns every record so far."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self._files: dict[Path, tuple[tuple[int, int], list[LogRecord]]] = {}

    def _paths(self) -> list[Path]:
        if not self.directory.is_dir():
            raise TrafficError([f"{self.directory}: no such directory. Fix: point canary.logs at the directory the "
                                "traffic layer's logger writes (Parquet or JSONL files)."])
        return sorted(p for p in self.directory.iterdir() if p.suffix in LOG_SUFFIXES and p.is_file()
                      and not p.name.startswith("."))

    def refresh(self) -> list[LogRecord]:
        """Reads new or changed files; returns all records, oldest first.

        Raises:
            TrafficError: every problem of the files read now (a bad file is read again next time, once fixed).
        """
        problems: list[str] = []
        for path in self._paths():
            st = path.stat()
            key = (st.st_size, st.st_mtime_ns)
            if path in self._files and self._files[path][0] == key:
                continue
            records, issues = (read_parquet if path.suffix == ".parquet" else read_jsonl)(path)
            problems += issues
            if not issues:
                self._files[path] = (key, records)
        records = sorted((r for _, rs in self._files.values() for r in rs), key=lambda r: r.timestamp)
        seen: set[str] = set()
        for r in records:
            rid = r.request.request_id
            if rid in seen:
                problems.append(f"{self.directory}: request_id={show_id(rid)}: expected a unique request id, found "
                                "it twice. Fix: give every live request its own id (or drop the repeated record).")
            seen.add(rid)
        if problems:
            raise TrafficError(problems[:TrafficError.MAX_KEPT], total=len(problems))
        return records


def write_log(records: list[dict[str, Any]], path: Path) -> Path:
    """Writes canary log rows (plain values, traffic columns + ``EXTRA_COLUMNS``) to Parquet, atomically (a
    temporary file renamed into place, so a reader never sees half a file). Messages as lists of dicts."""
    import json

    rows = [{**r, "response_schema": None if r.get("response_schema") is None else json.dumps(r["response_schema"]),
             "metadata": None if r.get("metadata") is None else json.dumps(r["metadata"])} for r in records]
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(pa.Table.from_pylist(rows, schema=LOG_SCHEMA), tmp)
    tmp.replace(path)
    return path


LOG_SCHEMA = pa.schema([
    ("request_id", pa.string()), ("timestamp", pa.timestamp("us", tz="UTC")), ("segment", pa.string()),
    ("messages", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))), ("prompt", pa.string()),
    ("temperature", pa.float64()), ("top_p", pa.float64()), ("max_tokens", pa.int64()),
    ("response_schema", pa.string()), ("response", pa.string()), ("metadata", pa.string()), ("arm", pa.string()),
    ("latency_s", pa.float64()), ("finish_reason", pa.string()), ("output_tokens", pa.int64()), ("error", pa.string()),
])
"""The Parquet layout ``write_log`` writes (the load generator's); any layout with these columns' types reads."""
