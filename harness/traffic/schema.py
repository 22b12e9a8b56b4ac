"""The captured-traffic Parquet schema, the `Request` record, its column and row checks, and writing it.

One row per captured request. `docs/traffic.md` has the column table and the validation rules; every problem is
reported as `<file>: row <i> (request_id=<id>), column <col>: expected <...>, found <...>. Fix: <how>.`
Reading a file (streamed, in bounded memory) is `harness.traffic.reader`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import pyarrow as pa
import pyarrow.parquet as pq

from harness.errors import BadInput

logger = logging.getLogger(__name__)

ROLES = ("system", "user", "assistant")
TOOL_ROLES = (*ROLES, "tool")  # in a request with `tools`: its tool-calling turns are kept (and not replayed)
MAX_LISTED = 20
MESSAGE_TYPE = pa.struct([("role", pa.string()), ("content", pa.string())])
TRAFFIC_SCHEMA = pa.schema([
    pa.field("request_id", pa.string(), nullable=False),
    pa.field("timestamp", pa.timestamp("us", tz="UTC"), nullable=False),
    pa.field("segment", pa.string(), nullable=False),
    pa.field("messages", pa.list_(MESSAGE_TYPE)),
    pa.field("prompt", pa.string()),
    pa.field("temperature", pa.float64()),
    pa.field("top_p", pa.float64()),
    pa.field("max_tokens", pa.int64()),
    pa.field("response_schema", pa.string()),
    pa.field("response", pa.string()),
    pa.field("metadata", pa.string()),
    pa.field("stop", pa.list_(pa.string())),
    pa.field("seed", pa.int64()),
    pa.field("n", pa.int64()),
    pa.field("presence_penalty", pa.float64()),
    pa.field("frequency_penalty", pa.float64()),
    pa.field("tools", pa.string()),
])
REQUIRED_COLUMNS = ("request_id", "timestamp", "segment")
OPTIONAL_COLUMNS = ("stop", "seed", "n", "presence_penalty", "frequency_penalty", "tools")
"""Written only when a request has a value (files without them read as before, byte for byte)."""
ROW_GROUP_ROWS = 65_536


@dataclass(frozen=True)
class Message:
    """One chat message: `role` is system, user or assistant."""

    role: str
    content: str


@dataclass(frozen=True)
class Request:
    """One captured request, validated; see docs/traffic.md for each field's meaning."""

    request_id: str
    timestamp: dt.datetime  # tz-aware UTC
    segment: str
    messages: tuple[Message, ...] | None
    prompt: str | None
    temperature: float | None
    top_p: float | None
    max_tokens: int | None
    response_schema: dict | None = field(hash=False)  # parsed JSON
    response: str | None
    metadata: dict | None = field(hash=False)  # parsed JSON
    stop: tuple[str, ...] | None = None  # captured stop sequences
    seed: int | None = None  # captured sampling seed
    n: int | None = None  # captured number of choices (the replay generates one; the report counts n > 1)
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    # tool calling as captured: {"tools": [...], "tool_choice": ..., "messages": [the request's messages as logged,
    # tool_calls and tool results included]}; such a request is kept in the traffic and not replayed (an error row
    # with reason not_replayed: tool calling, counted in the report)
    tools: dict | None = field(default=None, hash=False)


class TrafficError(BadInput, ValueError):
    """Every problem found in a traffic file, one per line.

    The message lists the first 20; `problems` keeps the first `MAX_KEPT` (a file where every row is bad does not
    fill memory with messages) and `total` counts them all.
    """

    MAX_KEPT = 1000

    def __init__(self, problems: Sequence[str], total: int | None = None) -> None:
        self.problems = list(problems)
        self.total = max(total or 0, len(self.problems))
        lines = self.problems[:MAX_LISTED]
        if self.total > MAX_LISTED:
            lines.append(f"... and {self.total - MAX_LISTED} more")
        super().__init__("\n".join(lines))


class Issue(NamedTuple):
    """One problem with one value; the caller says where it is (a row of a file, a line of a log)."""

    column: str
    expected: str
    found: str
    fix: str

    def describe(self, file: str, at: str | None = None, kind: str = "column") -> str:
        """Formats the problem as `<file>: <at>, <kind> <column>: expected ..., found .... Fix: ....`."""
        parts = [p for p in (at, f"{kind} {self.column}" if self.column else None) if p]
        return f"{file}: {', '.join(parts)}: expected {self.expected}, found {self.found}. Fix: {self.fix}."


def show_id(value: Any) -> str:
    """A request id for a one-line message: as is when printable, else its repr (a newline in an id stays visible)."""
    text = value if isinstance(value, str) and value.isprintable() else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def show_value(value: Any) -> str:
    text = "null" if value is None else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# ---- columns ---------------------------------------------------------------------------------------------------

def _is_str(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _is_number(t: pa.DataType) -> bool:
    return pa.types.is_floating(t) or pa.types.is_integer(t)


def _is_messages(t: pa.DataType) -> bool:
    if not (pa.types.is_list(t) or pa.types.is_large_list(t)) or not pa.types.is_struct(t.value_type):
        return False
    item = t.value_type
    names = {item.field(i).name: item.field(i).type for i in range(item.num_fields)}
    return all(k in names and _is_str(names[k]) for k in ("role", "content"))


COLUMN_TYPES: dict[str, tuple[str, Callable[[pa.DataType], bool]]] = {
    "request_id": ("string", _is_str),
    "timestamp": ("timestamp", pa.types.is_timestamp),
    "segment": ("string", _is_str),
    "messages": ("list<struct<role: string, content: string>>", _is_messages),
    "prompt": ("string", _is_str),
    "temperature": ("double (or an integer type)", _is_number),
    "top_p": ("double (or an integer type)", _is_number),
    "max_tokens": ("an integer type (int64)", pa.types.is_integer),
    "response_schema": ("string (JSON text)", _is_str),
    "response": ("string", _is_str),
    "metadata": ("string (JSON text)", _is_str),
    "stop": ("list<string>", lambda t: pa.types.is_list(t) and _is_str(t.value_type)),
    "seed": ("an integer type (int64)", pa.types.is_integer),
    "n": ("an integer type (int64)", pa.types.is_integer),
    "presence_penalty": ("double (or an integer type)", _is_number),
    "frequency_penalty": ("double (or an integer type)", _is_number),
    "tools": ("string (JSON text)", _is_str),
}


REFERENCE_COLUMNS = ("checks", "expected", "dimension")
"""Reference checks a traffic file may carry (read by ``harness.golden.schema.load_references``, not here)."""


def check_columns(schema: pa.Schema) -> tuple[list[Issue], list[str]]:
    """Returns the column-level issues and the known columns whose type is usable."""
    issues, usable = [], []
    for name in dict.fromkeys(schema.names):
        if name in REFERENCE_COLUMNS:
            continue
        if name not in COLUMN_TYPES:
            logger.warning("ignoring unknown traffic column %r", name)
    for name, (expected, ok) in COLUMN_TYPES.items():
        count = len(schema.get_all_field_indices(name))
        if count == 0 and name in REQUIRED_COLUMNS:
            issues.append(Issue(name, f"a {expected} column", "no such column", f"add a '{name}' column"))
        elif count > 1:
            issues.append(Issue(name, "one column", f"{count} columns", f"keep one column named '{name}'"))
        elif count == 1:
            t = schema.field(name).type
            if ok(t) or (name not in REQUIRED_COLUMNS and pa.types.is_null(t)):
                usable.append(name)
            else:
                issues.append(Issue(name, expected, f"type {t}", f"cast the column to {expected}"))
    if "messages" not in schema.names and "prompt" not in schema.names:
        issues.append(Issue("messages/prompt", "a messages column (chat) or a prompt column (completion)",
                            "neither", "add the column holding the request's input"))
    return issues, usable


# ---- rows ------------------------------------------------------------------------------------------------------

def _text(issues: list[Issue], name: str, value: Any, required: bool, fix: str) -> None:
    if value is None and not required:
        return
    if not isinstance(value, str) or not value.strip():
        issues.append(Issue(name, "a non-empty string", show_value(value), fix))


def _number(issues: list[Issue], name: str, value: Any, expected: str, ok: Callable[[float], bool]) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or not ok(value)):
        issues.append(Issue(name, expected, show_value(value), "fix the captured value or leave it null"))


def _json_object(issues: list[Issue], name: str, value: Any) -> dict | None:
    if value is None:
        return None
    try:
        parsed = json.loads(value) if isinstance(value, str) else value
    except json.JSONDecodeError as err:
        issues.append(Issue(name, "JSON object text", f"invalid JSON ({err.msg} at char {err.pos})",
                            "store the object as JSON text, e.g. json.dumps(obj)"))
        return None
    if not isinstance(parsed, dict):
        issues.append(Issue(name, "a JSON object", show_value(parsed), "store a JSON object ({...}) as text"))
        return None
    return parsed


def _check_messages(issues: list[Issue], messages: Any, tools: bool = False) -> None:
    if not isinstance(messages, list) or not messages:
        issues.append(Issue("messages", "a non-empty list of messages", show_value(messages), "add the chat messages"))
        return
    if tools:  # a tool-calling request: kept as captured (its turns are in `tools`), not replayed
        for i, message in enumerate(messages):
            role = message.get("role") if isinstance(message, dict) else None
            if role not in TOOL_ROLES:
                issues.append(Issue(f"messages[{i}].role", "one of system, user, assistant, tool", show_value(role),
                                    "map other roles to these ('developer' is 'system')"))
        return
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            issues.append(Issue(f"messages[{i}]", "a {role, content} message", show_value(message), "drop the entry"))
            continue
        role = message.get("role")
        if role not in ROLES:
            issues.append(Issue(f"messages[{i}].role", "one of system, user, assistant", show_value(role),
                                "map other roles to these ('developer' is 'system'); tool turns are not replayed"))
        elif role == "system" and i > 0:
            issues.append(Issue(f"messages[{i}].role", "system only as the first message", f"system at {i}",
                                "move the system message to the front or merge it into the first one"))
        _text(issues, f"messages[{i}].content", message.get("content"), True, "drop empty messages or fill them")
    last = messages[-1].get("role") if isinstance(messages[-1], dict) else None
    if last != "user":
        issues.append(Issue(f"messages[{len(messages) - 1}].role", "the last message to be from the user",
                            show_value(last), "end with the user turn to replay (keep the reply in 'response')"))


def _check_input(issues: list[Issue], messages: Any, prompt: Any, tools: bool = False) -> None:
    if messages is None and prompt is None:
        issues.append(Issue("messages/prompt", "exactly one of messages and prompt", "both null",
                            "set messages for a chat request or prompt for a completion request"))
    elif messages is not None and prompt is not None:
        issues.append(Issue("messages/prompt", "exactly one of messages and prompt", "both set",
                            "keep only one of them in this row"))
    elif messages is not None:
        _check_messages(issues, messages, tools)
    else:
        _text(issues, "prompt", prompt, True, "fill in the prompt or drop the row")


def validate_row(row: Mapping[str, Any]) -> tuple[Request | None, list[Issue]]:
    """Checks one row of plain Python values (as `pyarrow.Table.to_pylist` gives them) and builds its `Request`.

    Args:
        row: column name -> value; absent columns count as null. JSON columns may be text or already a dict.

    Returns:
        The request (None when there are issues) and the issues found, each naming its column.
    """
    issues: list[Issue] = []
    _text(issues, "request_id", row.get("request_id"), True, "give every request a non-empty id")
    timestamp = row.get("timestamp")
    if not isinstance(timestamp, dt.datetime):
        issues.append(Issue("timestamp", "a capture time", show_value(timestamp), "fill in when the request was made"))
    _text(issues, "segment", row.get("segment"), True, "set a route or task tag, e.g. 'default'")
    tools = _json_object(issues, "tools", row.get("tools"))
    _check_input(issues, row.get("messages"), row.get("prompt"), tools is not None)
    _number(issues, "temperature", row.get("temperature"), "a number in [0, 2]", lambda t: 0 <= t <= 2)
    _number(issues, "top_p", row.get("top_p"), "a number in (0, 1]", lambda p: 0 < p <= 1)
    max_tokens = row.get("max_tokens")
    _number(issues, "max_tokens", max_tokens, "an integer >= 1", lambda n: isinstance(n, int) and n >= 1)
    if row.get("response") is not None and not isinstance(row.get("response"), str):
        issues.append(Issue("response", "a string", show_value(row.get("response")), "store the response text"))
    response_schema = _json_object(issues, "response_schema", row.get("response_schema"))
    metadata = _json_object(issues, "metadata", row.get("metadata"))
    stop = row.get("stop")
    if stop is not None and (not isinstance(stop, list | tuple) or not all(isinstance(s, str) and s for s in stop)):
        issues.append(Issue("stop", "a list of non-empty strings", show_value(stop), "store the stop sequences"))
    _number(issues, "seed", row.get("seed"), "an integer >= 0", lambda v: isinstance(v, int) and v >= 0)
    _number(issues, "n", row.get("n"), "an integer >= 1", lambda v: isinstance(v, int) and v >= 1)
    for name in ("presence_penalty", "frequency_penalty"):
        _number(issues, name, row.get(name), "a number in [-2, 2]", lambda v: -2 <= v <= 2)
    if issues:
        return None, issues
    messages = row.get("messages")
    return Request(
        request_id=row["request_id"],
        timestamp=_utc(row["timestamp"]),
        segment=row["segment"],
        messages=None if messages is None else tuple(Message(m["role"], m.get("content") or "") for m in messages),
        prompt=row.get("prompt"),
        temperature=None if row.get("temperature") is None else float(row["temperature"]),
        top_p=None if row.get("top_p") is None else float(row["top_p"]),
        max_tokens=max_tokens,
        response_schema=response_schema,
        response=row.get("response"),
        metadata=metadata,
        stop=None if stop is None else tuple(stop),
        seed=row.get("seed"),
        n=row.get("n"),
        presence_penalty=None if row.get("presence_penalty") is None else float(row["presence_penalty"]),
        frequency_penalty=None if row.get("frequency_penalty") is None else float(row["frequency_penalty"]),
        tools=tools,
    ), []


def _utc(timestamp: dt.datetime) -> dt.datetime:
    if timestamp.tzinfo is None:
        return timestamp.replace(tzinfo=dt.UTC)
    return timestamp.astimezone(dt.UTC)


# ---- writing ---------------------------------------------------------------------------------------------------

def requests_to_table(requests: Sequence[Request], optional: bool | None = None) -> pa.Table:
    """Converts requests to a table in `TRAFFIC_SCHEMA`; the inverse of `load_traffic`.

    Args:
        requests: the requests; JSON fields are dumped with sorted keys.

    Returns:
        The table, timestamps as `timestamp('us', tz='UTC')`.
    """
    def dump(value: dict | None) -> str | None:
        return None if value is None else json.dumps(value, sort_keys=True)

    rows = [{
        "request_id": r.request_id,
        "timestamp": _utc(r.timestamp),
        "segment": r.segment,
        "messages": None if r.messages is None else [{"role": m.role, "content": m.content} for m in r.messages],
        "prompt": r.prompt,
        "temperature": r.temperature,
        "top_p": r.top_p,
        "max_tokens": r.max_tokens,
        "response_schema": dump(r.response_schema),
        "response": r.response,
        "metadata": dump(r.metadata),
        "stop": None if r.stop is None else list(r.stop),
        "seed": r.seed,
        "n": r.n,
        "presence_penalty": r.presence_penalty,
        "frequency_penalty": r.frequency_penalty,
        "tools": dump(r.tools),
    } for r in requests]
    table = pa.Table.from_pylist(rows, schema=TRAFFIC_SCHEMA)
    if optional:
        return table
    empty = [c for c in OPTIONAL_COLUMNS if table.column(c).null_count == table.num_rows]
    if optional is False and len(empty) < len(OPTIONAL_COLUMNS):
        raise ValueError(f"requests carry {sorted(set(OPTIONAL_COLUMNS) - set(empty))}: write them with optional=True")
    return table.drop_columns(empty)


def write_traffic(requests: Iterable[Request], path: str | Path, row_group_rows: int = ROW_GROUP_ROWS,
                  optional: bool | None = None) -> int:
    """Writes requests to a traffic Parquet file, creating its directory, `row_group_rows` requests at a time.

    Args:
        requests: the requests to write (any iterable: a generator keeps memory bounded).
        path: the Parquet file to write.
        row_group_rows: requests per Parquet row group (readers stream the file a row group at a time).
        optional: write the `OPTIONAL_COLUMNS` (stop, seed, n, penalties, tools) always (True), or only when the
            first row group has a value in one (None: the first group decides; importers pass True).

    Returns:
        The number of requests written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    chunks = _chunked(requests, row_group_rows)
    first = next(chunks, [])
    if optional is None:
        optional = requests_to_table(first).num_columns > len(TRAFFIC_SCHEMA) - len(OPTIONAL_COLUMNS)
    schema = TRAFFIC_SCHEMA if optional else pa.schema([f for f in TRAFFIC_SCHEMA if f.name not in OPTIONAL_COLUMNS])
    with pq.ParquetWriter(path, schema) as writer:
        for chunk in _prepend(first, chunks):
            writer.write_table(requests_to_table(chunk, optional or False).cast(schema),
                               row_group_size=row_group_rows)
            written += len(chunk)
        if not written:
            writer.write_table(requests_to_table([], optional or False).cast(schema))
    return written


def _prepend(first: list[Request], rest: Iterator[list[Request]]) -> Iterator[list[Request]]:
    if first:
        yield first
    yield from rest


def _chunked(items: Iterable[Request], size: int) -> Iterator[list[Request]]:
    chunk: list[Request] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
