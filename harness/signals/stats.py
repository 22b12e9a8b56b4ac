"""Output-distribution statistics: length, JSON and schema compliance, refusals, hedging, structure,
truncation, empty outputs and errors. Cheap, per request, no model needed.

Classifiers are phrase lists, documented here and in ``docs/signals.md``:

- refusal: the output declines the request (``REFUSAL_PATTERNS``);
- hedge: the output signals uncertainty (``HEDGE_PATTERNS``);
- structure: a request that asks for bullet points or a list (``ASKS_FOR_LIST``) must get at least two
  lines that start with ``-``, ``*``, ``•`` or ``1.``-style numbering.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from harness.signals.base import SIGNAL_SCHEMA, MetricSpec
from harness.traffic import Request

REFUSAL_PATTERNS = re.compile(
    r"\b(I'?m sorry,? but I (can(?:no|')t|won'?t|am unable)|I (cannot|can'?t|won'?t) (help|assist|do that)|"
    r"I am (unable|not able) to (help|assist)|as an AI\b)", re.IGNORECASE)
HEDGE_PATTERNS = re.compile(
    r"\b(not (completely |entirely |totally |100% )?(sure|certain)|I (think|believe|guess)\b|"
    r"could be wrong|may not be accurate|it depends|perhaps|possibly|I'?m unsure)", re.IGNORECASE)
ASKS_FOR_LIST = re.compile(r"\b(bullet(ed)?( points?| list)?|as a list|list the)\b", re.IGNORECASE)
LIST_LINE = re.compile(r"^\s*([-*•]|\d+[.)])\s+\S", re.MULTILINE)


def _m(name: str, kind: str, hib: bool | None, desc: str) -> MetricSpec:
    return MetricSpec(name, "stats", kind, hib, desc)


METRICS = (
    _m("chars", "mean", None, "output length in characters"),
    _m("output_tokens", "mean", None, "output length in tokens"),
    _m("json_valid", "rate", True, "output parses as JSON (requests with a response_schema)"),
    _m("schema_valid", "rate", True, "output satisfies the request's response_schema"),
    _m("refusal", "rate", False, "output refuses the request (phrase classifier)"),
    _m("hedge", "rate", False, "output hedges (phrase classifier)"),
    _m("structure_ok", "rate", True, "list requested and at least two list lines given"),
    _m("truncated", "rate", False, "generation stopped at max_tokens (finish_reason length)"),
    _m("empty", "rate", False, "output is empty or whitespace"),
    _m("error", "rate", False, "request could not be served (error row)"),
)


def _last_user_text(r: Request) -> str:
    if r.messages:
        return next((m.content for m in reversed(r.messages) if m.role == "user"), "")
    return r.prompt or ""


def _json_checks(text: str, schema: dict[str, Any]) -> tuple[float, float]:
    import jsonschema

    try:
        obj = json.loads(text)
    except ValueError:
        return 0.0, 0.0
    try:
        jsonschema.validate(obj, schema)
    except jsonschema.ValidationError:
        return 1.0, 0.0
    except jsonschema.SchemaError:
        return 1.0, float("nan")
    return 1.0, 1.0


def score_one(r: Request, text: str, finish_reason: str | None, output_tokens: int | None,
              error: str | None) -> dict[str, float | None]:
    """The stats metrics of one generation; None where a metric does not apply."""
    if error is not None:
        return {m.name: None for m in METRICS} | {"error": 1.0}
    out: dict[str, float | None] = {m.name: None for m in METRICS}
    out["error"] = 0.0
    out["chars"] = float(len(text))
    out["output_tokens"] = float(output_tokens) if output_tokens is not None else None
    out["empty"] = float(not text.strip())
    out["truncated"] = float(finish_reason == "length")
    out["refusal"] = float(bool(REFUSAL_PATTERNS.search(text)))
    out["hedge"] = float(bool(HEDGE_PATTERNS.search(text)))
    if r.response_schema is not None:
        valid, schema_ok = _json_checks(text.strip(), r.response_schema)
        out["json_valid"] = valid
        out["schema_valid"] = None if schema_ok != schema_ok else schema_ok  # NaN: the schema itself is invalid
    if ASKS_FOR_LIST.search(_last_user_text(r)):
        out["structure_ok"] = float(len(LIST_LINE.findall(text)) >= 2)
    return out


class OutputStats:
    """The ``stats`` signal family."""

    family = "stats"
    metrics = METRICS

    def score(self, requests: Mapping[str, Request], generations: pa.Table) -> pa.Table:
        rows = []
        for g in generations.to_pylist():
            r = requests[g["request_id"]]
            values = score_one(r, g["output_text"] or "", g["finish_reason"], g["output_tokens"], g["error"])
            rows += [{"request_id": g["request_id"], "arm": g["arm"], "segment": g["segment"], "metric": k,
                      "value": v} for k, v in values.items()]
        return pa.Table.from_pylist(rows, schema=SIGNAL_SCHEMA)
