"""Canary logs: live requests with the arm that served them, read incrementally from directories that grow.

A canary log is Parquet or OpenAI chat-completions JSONL; one record per live request, the traffic columns
(``harness.traffic.schema``: ``request_id``, ``timestamp``, ``segment``, ``messages`` or ``prompt``, ...) plus:

- the **arm**: ``control`` (the version in production) or ``canary`` (the new one), read from any field
  (``LogMapping.arm_field``, a dotted path such as ``response.model`` or ``metadata.upstream``) through a value map
  (``arm_values``: e.g. the proxy's server names ``{v7: control, v8: canary}``); or, when the application's log does
  not know it, **joined** from a second stream, the proxy's access log, by request id (``JoinSpec``: HAProxy's ``%s``
  and ``%ID``, Envoy's ``%UPSTREAM_HOST%`` and ``x-request-id``);
- the segment and the request id from any field path (``segment_field``, ``request_id_field``);
- ``response`` (in JSONL, ``response.choices[0].message.content``; null only with ``error``), ``latency_s`` (>= 0),
  ``finish_reason``, ``output_tokens``, ``error``.

**Fail closed, never stop on data.** ``CanaryLogs.refresh()`` returns the records that arrived since its last call.
A record that does not validate is skipped, counted (``counts``) and appended to the quarantine file with its file,
line or row, the reason (file, row, field, expected, found, fix) and its raw text (JSON-escaped); a request id seen
again among the last ``DUPLICATE_WINDOW`` ids is quarantined too. A JSONL line still being written (no newline yet)
is left for the next poll, not counted. Only a missing log directory is an error (a config error, exit 2).

**Bounded memory.** JSONL files are read from the byte offset reached last time, in chunks; Parquet files once, when
they appear (writers rename complete files into place; one that changes afterwards is quarantined, not re-read).
Nothing is kept but offsets, the last ``DUPLICATE_WINDOW`` ids and, with a join, the records still waiting for their
match (at most ``JoinSpec.wait_s`` of traffic).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
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
DUPLICATE_WINDOW = 200_000  # request ids remembered for the duplicate check (8-40 MB)
CHUNK = 8 << 20  # bytes read from a JSONL file at a time
RAW_KEPT = 2000  # characters of a bad record kept in the quarantine file


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


@dataclass(frozen=True)
class LogMapping:
    """Where the canary's fields are in the records a traffic layer writes (dotted paths into a JSONL line or a
    Parquet row; a JSON-encoded text cell, e.g. ``metadata``, is entered too)."""

    arm_field: str = "arm"
    arm_values: Mapping[str, str] = field(default_factory=dict)  # logged value -> control|canary; {}: as logged
    segment_field: str | None = None  # None: the traffic schema's (the segment column; metadata.segment in JSONL)
    request_id_field: str | None = None  # None: request_id (Parquet), id or the response's id (JSONL)


@dataclass(frozen=True)
class JoinSpec:
    """A second stream, the proxy's access log (JSONL, one line per request), that says which server answered."""

    logs: Path
    request_id_field: str = "request_id"
    arm_field: str = "server"
    wait_s: float = 60.0  # (following) how long a record waits for its match before it counts as unmatched


@dataclass
class Counts:
    """What the reader saw: records read and kept, and every kind of record it could not use."""

    records: int = 0  # kept: validated, mapped and (with a join) matched
    bad: int = 0  # quarantined: invalid JSON or values, unknown arm value, duplicates, changed files
    unmatched: int = 0  # application records without a proxy record (join)
    proxy_unmatched: int = 0  # proxy records without an application record (join)

    @property
    def seen(self) -> int:
        return self.records + self.bad + self.unmatched

    def share_bad(self) -> float:
        """The share of records the canary could not use (bad or unmatched) among all it saw."""
        return (self.bad + self.unmatched) / self.seen if self.seen else 0.0


def field_value(obj: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted ``path`` (``response.model``); None where a step is missing. A JSON text on the way
    (a ``metadata`` cell) is parsed and entered."""
    value: Any = obj
    for step in path.split("."):
        if isinstance(value, str) and value[:1] == "{":
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                return None
        if not isinstance(value, Mapping):
            return None
        value = value.get(step)
    return value


def _check_extra(row: dict[str, Any]) -> list[Issue]:
    issues = []
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


def _arm(value: Any, mapping: LogMapping, where: str) -> tuple[str | None, list[Issue]]:
    if mapping.arm_values:
        arm = mapping.arm_values.get(str(value)) if value is not None else None
        expected = f"one of {sorted(mapping.arm_values)} (arm_values)"
    else:
        arm = value if value in ARMS else None
        expected = "control or canary"
    if arm not in ARMS:
        return None, [Issue(where, expected, show_value(value),
                            "name the arm that served the request (map the traffic layer's value with arm_values)")]
    return arm, []


def record_from_row(row: dict[str, Any]) -> tuple[LogRecord | None, list[Issue]]:
    """Validates one canary log row (plain values, ``arm`` already mapped and checked by ``_arm``) and builds its
    record."""
    request, issues = validate_row(row)
    issues = issues + _check_extra(row)
    if issues or request is None:
        return None, issues
    latency = row.get("latency_s")
    return LogRecord(request, row["arm"], row.get("response"), None if latency is None else float(latency),
                     row.get("finish_reason"), row.get("output_tokens"), row.get("error")), []


def _jsonl_row(line: dict[str, Any], default_id: str, mapping: LogMapping) -> tuple[dict[str, Any], list[Issue]]:
    row, issues = line_to_row(line, default_id, "segment", "default")
    raw = line.get("response")
    response: dict[str, Any] = raw if isinstance(raw, dict) else {}
    choices = response.get("choices") or [{}]
    usage: dict[str, Any] = response["usage"] if isinstance(response.get("usage"), dict) else {}
    first: dict[str, Any] = choices[0] if isinstance(choices, list) and isinstance(choices[0], dict) else {}
    row.update(latency_s=line.get("latency_s"), error=line.get("error"),
               finish_reason=first.get("finish_reason"), output_tokens=usage.get("completion_tokens"))
    if mapping.segment_field:
        segment = field_value(line, mapping.segment_field)
        row["segment"] = "default" if segment is None else segment
    if mapping.request_id_field:
        row["request_id"] = field_value(line, mapping.request_id_field)
    if row["metadata"] is not None:
        row["metadata"] = {k: v for k, v in row["metadata"].items() if k != "segment"} or None
    return row, issues


def _parquet_row(row: dict[str, Any], mapping: LogMapping) -> dict[str, Any]:
    out = dict(row)
    if mapping.segment_field:
        out["segment"] = field_value(row, mapping.segment_field)
    if mapping.request_id_field:
        out["request_id"] = field_value(row, mapping.request_id_field)
    return out


@dataclass
class _Tail:
    """Where reading a JSONL file stopped: the byte offset after the last complete line, and that line's number."""

    offset: int = 0
    line: int = 0


def jsonl_lines(path: Path, tail: _Tail) -> Iterator[tuple[int, bytes]]:
    """The complete lines added to ``path`` since ``tail`` (numbered from 1); advances ``tail``. A last line without
    its newline is still being written: it is left for the next call. A file that shrank was rewritten: read again
    from the start."""
    if path.stat().st_size < tail.offset:
        tail.offset, tail.line = 0, 0
    with path.open("rb") as f:
        f.seek(tail.offset)
        pending = b""
        while chunk := f.read(CHUNK):
            *lines, pending = (pending + chunk).split(b"\n")
            for raw in lines:
                tail.line += 1
                tail.offset += len(raw) + 1
                yield tail.line, raw


class CanaryLogs:
    """The canary's log directory (and, with a join, the proxy's), read incrementally; see the module docstring."""

    def __init__(self, directory: str | Path, mapping: LogMapping | None = None, join: JoinSpec | None = None,
                 quarantine: Path | None = None, follow: bool = False, clock: Callable[[], float] = time.time
                 ) -> None:
        self.directory = Path(directory)
        self.mapping = mapping or LogMapping()
        self.join, self.quarantine, self.follow, self.clock = join, quarantine, follow, clock
        self.counts = Counts()
        self.more = False  # the last refresh stopped at its limit: more records are waiting
        self._tails: dict[Path, _Tail] = {}
        self._parquet: dict[Path, tuple[int, int]] = {}
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._waiting_app: dict[str, tuple[dict[str, Any], Path, str, float]] = {}  # id -> row, file, where, since
        self._waiting_proxy: dict[str, tuple[Any, float]] = {}  # request id -> logged arm value, since
        self._quarantined: set[tuple[str, str]] = set()  # (file, where) already in the quarantine file
        if quarantine is not None and quarantine.exists():  # a restarted evaluator reads its logs again
            for line in quarantine.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    q = json.loads(line)
                    self._quarantined.add((q["file"], q["at"]))
                except (ValueError, KeyError, TypeError):
                    continue

    @staticmethod
    def _paths(directory: Path, suffixes: tuple[str, ...]) -> list[Path]:
        if not directory.is_dir():
            raise TrafficError([f"{directory}: no such directory. Fix: point canary.logs (and canary.join.logs) at "
                                "the directory the traffic layer's logger writes (Parquet or JSONL files)."])
        return sorted(p for p in directory.iterdir() if p.suffix in suffixes and p.is_file()
                      and not p.name.startswith(".") and not p.name.endswith(".tmp"))

    def _bad(self, path: Path, where: str, reason: str, raw: Any) -> None:
        self.counts.bad += 1
        self._quarantine(path, where, reason, raw)

    def _quarantine(self, path: Path, where: str, reason: str, raw: Any) -> None:
        if self.quarantine is None or (str(path), where) in self._quarantined:
            return
        self._quarantined.add((str(path), where))
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else json.dumps(raw, default=str)
        with self.quarantine.open("a", encoding="utf-8") as f:
            f.write(json.dumps({"file": str(path), "at": where, "reason": reason, "raw": text[:RAW_KEPT],
                                "quarantined_at": dt.datetime.now(dt.UTC).isoformat()}) + "\n")

    def refresh(self, limit: int | None = None) -> list[LogRecord]:
        """The records that arrived since the last call, oldest first (bad ones quarantined and counted); at most
        about ``limit`` of them (a JSONL file is left mid-way, a Parquet file is read whole): ``more`` then says that
        more are waiting, and the next call goes on from there."""
        out: list[LogRecord] = []
        self.more = False
        if self.join is not None:
            self._read_proxy()
        for path in self._paths(self.directory, LOG_SUFFIXES):
            if limit is not None and len(out) >= limit:
                self.more = True
                break
            rows = self._read_parquet(path) if path.suffix == ".parquet" else self._read_jsonl(path)
            for row, where, raw in rows:
                record = self._accept(path, row, where, raw)
                if record is not None:
                    out.append(record)
                if limit is not None and len(out) >= limit and path.suffix == ".jsonl":
                    self.more = True
                    break
        if self.join is not None:
            out += self._expire()
        self.counts.records += len(out)
        return sorted(out, key=lambda r: r.timestamp)

    def _read_jsonl(self, path: Path) -> Iterator[tuple[dict[str, Any] | None, str, Any]]:
        tail = self._tails.setdefault(path, _Tail())
        for number, raw in jsonl_lines(path, tail):
            if not raw.strip():
                continue
            where = f"line {number}"
            line, issues = decode_line(raw.rstrip(b"\r"), number)
            if line is not None:
                row, issues = _jsonl_row(line, f"{path.stem}-{number}", self.mapping)
                row["arm"] = field_value(line, self.mapping.arm_field) if self.join is None else None
            if issues:
                self._bad(path, where, "; ".join(i.describe(str(path), where, kind="field") for i in issues), raw)
                continue
            yield row, where, raw

    def _read_parquet(self, path: Path) -> Iterator[tuple[dict[str, Any] | None, str, Any]]:
        st = path.stat()
        key = (st.st_size, st.st_mtime_ns)
        if path in self._parquet:
            if self._parquet[path] != key:
                self._parquet[path] = key
                self._bad(path, "file", f"{path}: changed after it was read. Fix: write each log part once (a "
                                        "temporary file renamed into place), new records in new files.", None)
            return
        self._parquet[path] = key
        try:
            table = pq.read_table(path)
        except (OSError, pa.ArrowException) as err:
            self._bad(path, "file", f"{path}: expected a Parquet file, found an unreadable one ({err}). Fix: "
                                    "rewrite the log part.", None)
            return
        if "timestamp" in table.column_names and pa.types.is_timestamp(table.schema.field("timestamp").type):
            i = table.schema.get_field_index("timestamp")
            table = table.set_column(i, "timestamp", table.column(i).cast(pa.timestamp("us", tz="UTC"), safe=False))
        for number, (row, cell_issues) in enumerate(table_rows(table), start=1):
            where = f"row {number} (request_id={show_id(row.get('request_id'))})"
            if cell_issues:
                self._bad(path, where, "; ".join(i.describe(str(path), where) for i in cell_issues), row)
                continue
            mapped = _parquet_row(row, self.mapping)
            mapped["arm"] = field_value(row, self.mapping.arm_field) if self.join is None else None
            yield mapped, where, row

    def _accept(self, path: Path, row: dict[str, Any] | None, where: str, raw: Any) -> LogRecord | None:
        """Map the arm (or wait for the proxy's record), validate, check the id is new."""
        assert row is not None
        if self.join is not None:
            rid = row.get("request_id")
            if rid is None:
                self._bad(path, where, f"{path}: {where}, field request_id: expected the request id the proxy logs "
                                       "too, found none. Fix: log the X-Request-ID header the proxy set.", raw)
                return None
            proxy = self._waiting_proxy.pop(str(rid), None)
            if proxy is None:
                self._waiting_app[str(rid)] = (row, path, where, self.clock())
                return None
            row["arm"] = proxy[0]
        return self._validate(path, row, where, raw)

    def _validate(self, path: Path, row: dict[str, Any], where: str, raw: Any) -> LogRecord | None:
        arm, issues = _arm(row.get("arm"), self.mapping, "arm")
        row = {**row, "arm": arm}
        record, more = record_from_row(row) if not issues else (None, [])
        issues += more
        if issues or record is None:
            kind = "field" if path.suffix == ".jsonl" else "column"
            self._bad(path, where, "; ".join(i.describe(str(path), where, kind=kind) for i in issues), raw)
            return None
        rid = record.request.request_id
        if rid in self._ids:
            self._bad(path, where, f"{path}: {where}: request_id={show_id(rid)}: expected a unique request id, found "
                                   "it again. Fix: give every live request its own id (a retried write logs twice).",
                      raw)
            return None
        self._ids[rid] = None
        if len(self._ids) > DUPLICATE_WINDOW:
            self._ids.popitem(last=False)
        return record

    def _read_proxy(self) -> None:
        assert self.join is not None
        for path in self._paths(self.join.logs, (".jsonl",)):
            tail = self._tails.setdefault(path, _Tail())
            for number, raw in jsonl_lines(path, tail):
                if not raw.strip():
                    continue
                line, issues = decode_line(raw.rstrip(b"\r"), number)
                rid = field_value(line, self.join.request_id_field) if line is not None else None
                if line is None or rid is None:
                    reason = "; ".join(i.describe(str(path), f"line {number}", kind="field") for i in issues) or (
                        f"{path}: line {number}, field {self.join.request_id_field}: expected the request id, found "
                        "none. Fix: log the unique id (HAProxy %ID, Envoy x-request-id) in the proxy's access log.")
                    self._bad(path, f"line {number}", reason, raw)
                    continue
                self._waiting_proxy[str(rid)] = (field_value(line, self.join.arm_field), self.clock())

    def _expire(self) -> list[LogRecord]:
        """Application records whose proxy record arrived since; the rest expire after ``wait_s`` (at once when
        not following: everything there is has been read)."""
        assert self.join is not None
        out = []
        now = self.clock()
        for rid in list(self._waiting_app):
            row, path, where, since = self._waiting_app[rid]
            if rid in self._waiting_proxy:
                del self._waiting_app[rid]
                row["arm"] = self._waiting_proxy.pop(rid)[0]
                record = self._validate(path, row, where, row)
                if record is not None:
                    out.append(record)
            elif not self.follow or now - since > self.join.wait_s:
                del self._waiting_app[rid]
                self.counts.unmatched += 1
                self._quarantine(path, where, f"{path}: {where}: request_id={show_id(rid)}: no proxy record with this "
                                              f"id within {self.join.wait_s:g} s. Fix: log the proxy's unique id in "
                                              "the application's log (the X-Request-ID header).", row)
        for rid in list(self._waiting_proxy):
            if not self.follow or now - self._waiting_proxy[rid][1] > self.join.wait_s:
                del self._waiting_proxy[rid]
                self.counts.proxy_unmatched += 1
        return out


def write_log(records: list[dict[str, Any]], path: Path) -> Path:
    """Writes canary log rows (plain values, traffic columns + ``EXTRA_COLUMNS``) to Parquet, atomically (a
    temporary file renamed into place, so a reader never sees half a file). Messages as lists of dicts."""
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
