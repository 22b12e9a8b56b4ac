"""What real clients log, as records the importer maps to traffic rows: OpenAI chat JSONL (wrapped and plain), LiteLLM's
standard logging payload, and OpenTelemetry GenAI spans (OTLP JSON). docs/traffic.md has the field mapping.

A format is a function ``records(path) -> (where, record or None, issues)`` (one per line or span) and a function
``to_row(record) -> (row, issues)`` giving the plain values ``validate_row`` takes. The segment comes from any field
path of the record (``harness.traffic.importer``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from harness.traffic.openai_import import (
    decode_line,
    parse_metadata,
    parse_response,
    parse_response_schema,
    parse_timestamp,
)
from harness.traffic.schema import Issue, show_value

Record = dict[str, Any]
SAMPLING_KEYS = ("temperature", "top_p", "stop", "seed", "n", "presence_penalty", "frequency_penalty")


def jsonl_records(path: Path) -> Iterator[tuple[str, Record | None, list[Issue]]]:
    """One JSON object per line (blank lines skipped)."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if raw.strip():
                line, issues = decode_line(raw.rstrip(b"\n"), number)
                yield f"line {number}", line, issues


# ---- messages, tools and the response --------------------------------------------------------------------------

def _text(content: Any, where: str, issues: list[Issue]) -> Any:
    if not isinstance(content, list):
        return content
    texts = []
    for j, part in enumerate(content):
        if isinstance(part, dict) and part.get("type") in ("text", "input_text") and isinstance(part.get("text"), str):
            texts.append(part["text"])
        else:
            kind = part.get("type") if isinstance(part, dict) else type(part).__name__
            issues.append(Issue(f"{where}[{j}]", "a text part", show_value(kind),
                                "drop the request, or its non-text parts: the harness replays text only"))
    return "\n".join(texts)


def chat_messages(value: Any, issues: list[Issue]) -> tuple[Any, bool]:
    """The messages as traffic rows take them, and whether they hold tool-calling turns."""
    if not isinstance(value, list):
        return value, False
    out, tool_turns = [], False
    for i, m in enumerate(value):
        if not isinstance(m, dict):
            out.append(m)
            continue
        role = "system" if m.get("role") == "developer" else m.get("role")
        tool_turns |= role == "tool" or bool(m.get("tool_calls")) or bool(m.get("function_call"))
        content = _text(m.get("content"), f"messages[{i}].content", issues)
        out.append({"role": role, "content": "" if content is None and tool_turns else content})
    return out, tool_turns


def tools_record(request: Record, messages: Any, tool_turns: bool) -> dict[str, Any] | None:
    """The ``tools`` column: definitions, tool_choice and the logged turns, when the request calls tools."""
    tools = request.get("tools") or request.get("functions")
    if not tools and not tool_turns:
        return None
    return {"tools": tools or [], "tool_choice": request.get("tool_choice"), "messages": messages}


def _joined_chunks(chunks: list[Any]) -> str | None:
    parts = []
    for c in chunks:
        choices = c.get("choices") if isinstance(c, dict) else None
        delta = choices[0].get("delta") if isinstance(choices, list) and choices and isinstance(choices[0], dict) \
            else None
        if isinstance(delta, dict) and isinstance(delta.get("content"), str):
            parts.append(delta["content"])
    return "".join(parts) if parts else None


def response_text(response: Any, issues: list[Issue]) -> tuple[str | None, Any, Any]:
    """The response text, id and creation time of a chat.completion, a list of streamed chunks, or one chunk."""
    if response is None:
        return None, None, None
    if isinstance(response, str):
        return response, None, None
    if isinstance(response, list):  # a streamed response logged chunk by chunk
        first = response[0] if response and isinstance(response[0], dict) else {}
        return _joined_chunks(response), first.get("id"), first.get("created")
    if isinstance(response, dict) and response.get("object") == "chat.completion.chunk":
        return _joined_chunks([response]), response.get("id"), response.get("created")
    return parse_response(response, issues)


def _row(request: Record, messages: Any, response: str | None, request_id: Any, timestamp: Any,
         metadata: dict[str, Any], issues: list[Issue], params: Record | None = None) -> Record:
    params = request if params is None else params
    msgs, tool_turns = chat_messages(messages, issues)
    stop = params.get("stop")
    max_tokens = params.get("max_completion_tokens", params.get("max_tokens"))
    return {
        "request_id": str(request_id) if isinstance(request_id, int) else request_id, "timestamp": timestamp,
        "messages": msgs, "prompt": request.get("prompt"), "max_tokens": max_tokens,
        **{k: params.get(k) for k in SAMPLING_KEYS}, "stop": [stop] if isinstance(stop, str) else stop,
        "response_schema": parse_response_schema(params.get("response_format"), issues), "response": response,
        "metadata": metadata or None, "tools": tools_record(params, messages, tool_turns),
    }


# ---- OpenAI chat JSONL -------------------------------------------------------------------------------------------

def openai_row(line: Record) -> tuple[Record, list[Issue]]:
    """A wrapped ``{"request", "response", "id", "timestamp"/"created_at", "metadata"}`` line or a plain request body
    (with an optional top-level ``response``)."""
    issues: list[Issue] = []
    request = line.get("request", line)
    if not isinstance(request, dict):
        return {}, [Issue("request", "a chat.completions request body", show_value(request), "fix the request")]
    response, response_id, created = response_text(line.get("response"), issues)
    timestamp = parse_timestamp(line.get("timestamp", line.get("created_at")), created, issues)
    metadata = parse_metadata(line, request, issues)
    return _row(request, request.get("messages"), response, line.get("id") or response_id, timestamp, metadata,
                issues), issues


# ---- LiteLLM StandardLoggingPayload ------------------------------------------------------------------------------

def litellm_row(payload: Record) -> tuple[Record, list[Issue]]:
    """One ``StandardLoggingPayload`` (what LiteLLM hands a logging callback as ``standard_logging_object``): ``id``,
    ``startTime``, ``messages``, ``model_parameters``, ``response``, ``metadata``, ``status``."""
    issues: list[Issue] = []
    if payload.get("status") not in (None, "success"):
        return {}, [Issue("status", "success", show_value(payload.get("status")),
                          f"the call failed ({str(payload.get('error_str'))[:80]}): drop it")]
    params = payload.get("model_parameters") or {}
    if not isinstance(params, dict):
        return {}, [Issue("model_parameters", "an object", show_value(params), "fix the payload")]
    response, response_id, created = response_text(payload.get("response"), issues)
    timestamp = parse_timestamp(payload.get("startTime"), created, issues)
    metadata = {k: v for k, v in {"model": payload.get("model"), "model_group": payload.get("model_group"),
                                  **((payload.get("metadata") or {}).get("requester_metadata") or {})}.items()
                if v is not None}
    request = {"prompt": None}
    return _row(request, payload.get("messages"), response, payload.get("id") or response_id, timestamp, metadata,
                issues, params), issues


# ---- OpenTelemetry GenAI spans (OTLP JSON) -----------------------------------------------------------------------

def _any_value(v: Any) -> Any:
    if not isinstance(v, dict):
        return v
    for key in ("stringValue", "boolValue", "doubleValue"):
        if key in v:
            return v[key]
    if "intValue" in v:
        return int(v["intValue"])
    if "arrayValue" in v:
        return [_any_value(x) for x in v["arrayValue"].get("values", [])]
    if "kvlistValue" in v:
        return {kv["key"]: _any_value(kv.get("value")) for kv in v["kvlistValue"].get("values", [])}
    return None


def _attributes(items: Any) -> dict[str, Any]:
    return {kv["key"]: _any_value(kv.get("value")) for kv in items or [] if isinstance(kv, dict) and "key" in kv}


def otlp_records(path: Path) -> Iterator[tuple[str, Record | None, list[Issue]]]:
    """GenAI chat spans of OTLP JSON files (one ``ExportTraceServiceRequest``/``ExportLogsServiceRequest`` per line,
    as the Collector's file exporter writes them); log records and span events of a span become its ``events``, the
    parent span's attributes its ``parent``, the resource's its ``resource``."""
    spans: dict[str, Record] = {}
    events: dict[str, list[Record]] = {}
    bad: list[tuple[str, list[Issue]]] = []
    for where, line, issues in jsonl_records(path):
        if line is None:
            bad.append((where, issues))
            continue
        for rs in line.get("resourceSpans", []):
            resource = _attributes((rs.get("resource") or {}).get("attributes"))
            for ss in rs.get("scopeSpans", []):
                for s in ss.get("spans", []):
                    spans[s.get("spanId", "")] = {"where": where, "span": s, "resource": resource,
                                                  "attributes": _attributes(s.get("attributes"))}
                    for e in s.get("events", []):
                        events.setdefault(s.get("spanId", ""), []).append(
                            {"name": e.get("name"), "attributes": _attributes(e.get("attributes")), "body": None})
        for rl in line.get("resourceLogs", []):
            for sl in rl.get("scopeLogs", []):
                for lr in sl.get("logRecords", []):
                    attrs = _attributes(lr.get("attributes"))
                    events.setdefault(lr.get("spanId", ""), []).append(
                        {"name": lr.get("eventName") or attrs.get("event.name"), "attributes": attrs,
                         "body": _any_value(lr.get("body"))})
    yield from ((w, None, i) for w, i in bad)
    for span_id, found in spans.items():
        attrs = found["attributes"]
        if attrs.get("gen_ai.operation.name") not in ("chat", "text_completion") and not any(
                k.startswith("gen_ai.request.") for k in attrs):
            continue  # not a model call (a parent span, an HTTP span)
        parent = spans.get(found["span"].get("parentSpanId", ""), {}).get("attributes", {})
        yield (f"{found['where']}, span {span_id}",
               {"span": found["span"], "attributes": attrs, "resource": found["resource"], "parent": parent,
                "events": events.get(span_id, [])}, [])


def _json_attr(value: Any) -> Any:
    try:
        return json.loads(value) if isinstance(value, str) else value
    except json.JSONDecodeError:
        return None


def _semconv_messages(value: Any) -> list[Record] | None:
    """``gen_ai.input.messages`` (latest conventions): ``[{role, parts: [{type: text, content}|tool_call|...]}]``."""
    found = _json_attr(value)
    if not isinstance(found, list):
        return None
    out = []
    for m in found:
        parts = m.get("parts", []) if isinstance(m, dict) else []
        text = "".join(p.get("content", "") for p in parts if isinstance(p, dict) and p.get("type") == "text")
        calls = [p for p in parts if isinstance(p, dict) and p.get("type") == "tool_call"]
        results = [p for p in parts if isinstance(p, dict) and p.get("type") == "tool_call_response"]
        msg: Record = {"role": m.get("role") if isinstance(m, dict) else None, "content": text or None}
        if calls:
            msg["tool_calls"] = calls
        if results:
            msg["role"], msg["content"] = "tool", json.dumps(results[0].get("response"))
        out.append(msg)
    return out


def _event_messages(events: list[Record]) -> tuple[list[Record], str | None]:
    """Messages and the first choice from ``gen_ai.{system,user,assistant,tool}.message`` / ``gen_ai.choice`` events
    (conventions 1.30: content in the body or the attributes)."""
    messages, choice = [], None
    for e in events:
        name = str(e.get("name") or "")
        body = e["body"] if isinstance(e.get("body"), dict) else {}
        content = body.get("content", e["attributes"].get("content"))
        if name == "gen_ai.choice":
            message = body.get("message") if isinstance(body.get("message"), dict) else body
            if choice is None and isinstance(message, dict):
                choice = message.get("content")
        elif name.startswith("gen_ai.") and name.endswith(".message"):
            msg: Record = {"role": body.get("role") or name.split(".")[1], "content": content}
            if body.get("tool_calls"):
                msg["tool_calls"] = body["tool_calls"]
            messages.append(msg)
    return messages, choice


def otel_row(record: Record) -> tuple[Record, list[Issue]]:
    """A GenAI chat span: ``gen_ai.request.*`` attributes, the messages from ``gen_ai.input.messages`` (latest
    conventions), else from the span's events or log records (1.30), else ``gen_ai.prompt.N.*`` attributes."""
    issues: list[Issue] = []
    a, span = record["attributes"], record["span"]
    messages = _semconv_messages(a.get("gen_ai.input.messages"))
    outputs = _semconv_messages(a.get("gen_ai.output.messages"))
    response = outputs[0]["content"] if outputs else None
    if messages is None:
        messages, response = _event_messages(record["events"])
    if not messages:
        prompts = sorted({int(k.split(".")[2]) for k in a
                          if k.startswith("gen_ai.prompt.") and k.split(".")[2].isdigit()})
        messages = [{"role": a.get(f"gen_ai.prompt.{i}.role"), "content": a.get(f"gen_ai.prompt.{i}.content")}
                    for i in prompts]
        response = a.get("gen_ai.completion.0.content", response)
    if not messages:
        issues.append(Issue("gen_ai.input.messages", "the request's messages (capture content: "
                            "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT)", "none",
                            "turn on content capture in the instrumentation, or import another log"))
    params = {"temperature": a.get("gen_ai.request.temperature"), "top_p": a.get("gen_ai.request.top_p"),
              "max_tokens": a.get("gen_ai.request.max_tokens"), "stop": a.get("gen_ai.request.stop_sequences"),
              "seed": a.get("gen_ai.request.seed"), "n": a.get("gen_ai.request.choice.count"),
              "presence_penalty": a.get("gen_ai.request.presence_penalty"),
              "frequency_penalty": a.get("gen_ai.request.frequency_penalty"),
              "tools": _json_attr(a.get("gen_ai.tool.definitions"))}
    start = span.get("startTimeUnixNano")
    timestamp = parse_timestamp(int(start) / 1e9 if start is not None else None, None, issues)
    metadata = {k: v for k, v in {"model": a.get("gen_ai.request.model"), "trace_id": span.get("traceId"),
                                  "response_model": a.get("gen_ai.response.model")}.items() if v is not None}
    rid = a.get("gen_ai.response.id") or span.get("spanId")
    return _row({"prompt": None}, messages, response, rid, timestamp, metadata, issues, params), issues


FORMATS: dict[str, tuple[Callable[[Path], Iterator[tuple[str, Record | None, list[Issue]]]],
                         Callable[[Record], tuple[Record, list[Issue]]]]] = {
    "openai": (jsonl_records, openai_row),
    "litellm": (jsonl_records, litellm_row),
    "otel": (otlp_records, otel_row),
}
