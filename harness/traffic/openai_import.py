"""Import an OpenAI chat-completions log (JSONL) into traffic Parquet.

Each line is either `{"request": {...}, "response": {...}, "id", "timestamp"/"created_at", "metadata"}` or a bare
request body with an optional top-level "response". docs/traffic.md has the field mapping.

    python -m harness.traffic.openai_import IN.jsonl OUT.parquet [--segment-field F]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from harness.traffic.schema import Issue, Request, TrafficError, show_value, validate_row, write_traffic

_TEXT_ONLY = "drop the request, or its non-text parts: the harness replays text only"


def decode_line(raw: bytes, number: int) -> tuple[dict | None, list[Issue]]:
    try:
        text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
    except UnicodeDecodeError as err:
        found = f"the invalid byte 0x{raw[err.start]:02x} at byte {err.start} of the line"
        return None, [Issue("", "UTF-8 text", found, "re-export the log as UTF-8")]
    try:
        line = json.loads(text)
    except json.JSONDecodeError as err:
        return None, [Issue("", "one JSON object per line", f"invalid JSON ({err.msg} at column {err.colno})",
                            "fix or drop this line")]
    except RecursionError:
        return None, [Issue("", "one JSON object per line", "JSON nested too deeply to parse",
                            "fix or drop this line")]
    if not isinstance(line, dict):
        return None, [Issue("", "a JSON object", type(line).__name__, "write one JSON object per line")]
    return line, []


def _content(value: Any, index: int, issues: list[Issue]) -> Any:
    """Joins a list of text parts with newlines; any other value is left for validation."""
    if not isinstance(value, list):
        return value
    texts = []
    for j, part in enumerate(value):
        if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        else:
            kind = part.get("type") if isinstance(part, dict) else type(part).__name__
            issues.append(Issue(f"messages[{index}].content[{j}]", "a text part", show_value(kind), _TEXT_ONLY))
    return "\n".join(texts)


def _messages(value: Any, issues: list[Issue]) -> list[dict] | None:
    if not isinstance(value, list):
        return value
    messages = []
    for i, message in enumerate(value):
        if not isinstance(message, dict):
            messages.append(message)
            continue
        role = "system" if message.get("role") == "developer" else message.get("role")
        messages.append({"role": role, "content": _content(message.get("content"), i, issues)})
    return messages


def parse_response(response: Any, issues: list[Issue]) -> tuple[str | None, Any, Any]:
    """Returns the response text, id and creation time (unix seconds)."""
    if response is None:
        return None, None, None
    if not isinstance(response, dict):
        issues.append(Issue("response", "a chat.completion object", show_value(response), "drop the response"))
        return None, None, None
    choices = response.get("choices")
    message = choices[0].get("message") if isinstance(choices, list) and choices and isinstance(choices[0], dict) \
        else None
    if not isinstance(message, dict):
        issues.append(Issue("response.choices[0].message", "a message", show_value(message),
                            "drop the response, or the line if the call failed"))
        return None, response.get("id"), response.get("created")
    return message.get("content"), response.get("id"), response.get("created")


def parse_timestamp(value: Any, created: Any, issues: list[Issue]) -> dt.datetime | None:
    field = "timestamp"
    if value is None:
        value, field = created, "response.created"
    if value is None:
        issues.append(Issue("timestamp", "'timestamp' or 'created_at' (ISO-8601 or unix seconds), or "
                            "response.created", "none of them", "add the capture time to every line"))
        return None
    try:
        if isinstance(value, str):
            parsed = dt.datetime.fromisoformat(value)
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return dt.datetime.fromtimestamp(value, dt.UTC)
    except (ValueError, OverflowError, OSError):
        pass
    issues.append(Issue(field, "an ISO-8601 string or unix seconds", show_value(value), "fix the capture time"))
    return None


def parse_response_schema(response_format: Any, issues: list[Issue]) -> dict | None:
    if response_format is None:
        return None
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "json_object":
        return {"type": "object"}
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if isinstance(schema, dict):
            return schema
        issues.append(Issue("response_format.json_schema.schema", "a JSON Schema object", show_value(schema),
                            "add the schema the caller expects"))
        return None
    if kind != "text":
        issues.append(Issue("response_format", "type text, json_object or json_schema", show_value(response_format),
                            "fix the response_format"))
    return None


def parse_metadata(line: dict, request: dict, issues: list[Issue]) -> dict:
    metadata: dict = {}
    sources = [("metadata", line.get("metadata"))]
    if request is not line:  # a wrapped request body may carry its own (OpenAI stored-completions) metadata
        sources.insert(0, ("request.metadata", request.get("metadata")))
    for where, value in sources:
        if isinstance(value, dict):
            metadata.update(value)
        elif value is not None:
            issues.append(Issue(where, "a JSON object", show_value(value), "make the metadata an object or drop it"))
    if request.get("model") is not None:
        metadata["model"] = request["model"]
    return metadata


def line_to_row(line: dict, default_id: str, segment_field: str | None, default_segment: str
                 ) -> tuple[dict[str, Any], list[Issue]]:
    """Maps one log line to a traffic row (plain values, as `validate_row` takes them)."""
    issues: list[Issue] = []
    request = line.get("request", line)
    if not isinstance(request, dict):
        return {}, [Issue("request", "a chat.completions request body", show_value(request), "fix the request")]
    response, response_id, created = parse_response(line.get("response"), issues)
    timestamp = parse_timestamp(line.get("timestamp", line.get("created_at")), created, issues)
    metadata = parse_metadata(line, request, issues)
    max_tokens = request.get("max_completion_tokens")
    schema = parse_response_schema(request.get("response_format"), issues)
    request_id = line.get("id") or response_id or default_id
    segment = metadata.get(segment_field) if segment_field else None
    return {
        "request_id": str(request_id) if isinstance(request_id, int) else request_id,
        "timestamp": timestamp,
        "segment": default_segment if segment is None else segment,
        "messages": _messages(request.get("messages"), issues),
        "prompt": request.get("prompt"),
        "temperature": request.get("temperature"),
        "top_p": request.get("top_p"),
        "max_tokens": request.get("max_tokens") if max_tokens is None else max_tokens,
        "response_schema": schema,
        "response": response,
        "metadata": metadata or None,
    }, issues


def _import_line(raw: bytes, number: int, default_id: str, segment_field: str | None, default_segment: str
                 ) -> tuple[Request | None, list[Issue]]:
    line, issues = decode_line(raw, number)
    if line is None:
        return None, issues
    row, issues = line_to_row(line, default_id, segment_field, default_segment)
    return validate_row(row) if not issues else (None, issues)


def import_openai_jsonl(src: str | Path, dst: str | Path, segment_field: str | None = None,
                        default_segment: str = "default") -> int:
    """Converts an OpenAI chat-completions log (JSONL) to traffic Parquet.

    Args:
        src: the JSONL log, one request (with its response, optionally) per line.
        dst: the traffic Parquet file to write.
        segment_field: the metadata key holding each request's segment; lines without it get `default_segment`.
        default_segment: the segment for lines that carry none.

    Returns:
        The number of requests written.

    Raises:
        TrafficError: every problem found, each naming the file, the 1-based line and the field; nothing is written.

    The log is read a line at a time and the requests are written as they come (to a temporary file renamed at the
    end), so memory holds one Parquet row group of requests and the set of ids seen, not the log.
    """
    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise TrafficError([f"{src}: file not found. Fix: check the path to the OpenAI JSONL log."])
    problems: list[str] = []
    total = 0
    seen: dict[str, int] = {}

    def requests() -> Iterator[Request]:  # one line at a time; valid requests stream into the Parquet writer
        nonlocal total
        with src.open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                if not raw.strip():
                    continue
                request, issues = _import_line(raw.rstrip(b"\n"), number, f"{src.stem}-{number}", segment_field,
                                               default_segment)
                if request is not None and request.request_id in seen:
                    issues.append(Issue("id", "a unique request id", f"the same id as line {seen[request.request_id]}",
                                        "make the ids unique or drop the repeated line"))
                elif request is not None:
                    seen[request.request_id] = number
                    yield request
                total += len(issues)
                room = TrafficError.MAX_KEPT - len(problems)
                problems.extend(i.describe(str(src), f"line {number}", kind="field") for i in issues[:max(room, 0)])

    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    try:
        count = write_traffic(requests(), tmp)
        if not problems and not count:
            problems.append(f"{src}: expected at least one JSON line, found none. Fix: check the log's path.")
        if problems:
            raise TrafficError(problems, total=total)
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)
    return count


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: `python -m harness.traffic.openai_import IN.jsonl OUT.parquet [--segment-field F]`.

    Args:
        argv: the arguments (default: `sys.argv[1:]`).

    Returns:
        The exit status: 0 on success, 2 when the log has problems (listed on stderr) or the input is missing.
    """
    parser = argparse.ArgumentParser(prog="python -m harness.traffic.openai_import",
                                     description="Import an OpenAI chat-completions log (JSONL) into traffic Parquet.")
    parser.add_argument("src", help="the OpenAI chat-completions log (JSONL)")
    parser.add_argument("dst", help="the traffic Parquet file to write")
    parser.add_argument("--segment-field", default=None, help="the metadata key holding the segment")
    parser.add_argument("--default-segment", default="default", help="the segment of lines without one")
    args = parser.parse_args(argv)
    if not Path(args.src).is_file():
        print(f"error: {args.src}: no such file. Fix: give the path of an OpenAI chat-completions log (JSONL).",
              file=sys.stderr)
        return 2
    try:
        count = import_openai_jsonl(args.src, args.dst, args.segment_field, args.default_segment)
    except TrafficError as err:
        print(err, file=sys.stderr)
        return 2
    print(f"wrote {count} requests to {args.dst}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
