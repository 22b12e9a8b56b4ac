"""Output-distribution statistics: length, JSON and schema compliance, refusals, hedging, structure, the format
profile, truncation, empty outputs and errors. Cheap, per request, no model needed.

Classifiers are phrase rules, documented here and in ``docs/signals.md``:

- refusal: the output declines the request, for safety or as a non-answer (``harness.signals.refusal``, measured
  on human labels: docs/refusal.md); ``non_answer`` is the share that decline to give an opinion or an answer
  without a safety framing (reported, not gated: that split is not measured);
- hedge: the output signals uncertainty (``HEDGE_PATTERNS``);
- hedges and non-answers the refusal classifier does not see (``harness.signals.evasion``): ``deflection`` (the
  opening deflects, "this question is subjective and depends on the individual's ...", and no content follows),
  ``declined_choice`` (the request offers options and the output picks none; null when it offers none),
  ``off_form`` (the request asks for one word, a number, yes/no, the letter; the output does not take that form;
  null when it asks for none) and ``evasive``: any of them or a refusal;
- structure: a request that asks for bullet points or a list (``ASKS_FOR_LIST``) must get at least two
  lines that start with ``-``, ``*``, ``•`` or ``1.``-style numbering;
- the format profile (``harness.signals.format``): fenced code, headings, tables, lists, output that starts with
  JSON, the dominant script. These and the length have no direction of their own: a move beyond the margin is a
  ``divergence`` unless ``gate.directions`` gives the metric a direction on a route (docs/gate.md).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from harness.signals.base import SIGNAL_SCHEMA, Family, MetricSpec, ScoreInputs
from harness.signals.evasion import LIST_LINE, declines_choice, deflects, off_form
from harness.signals.format import FORMAT_FEATURES, format_profile
from harness.signals.refusal import ANSWER, NON_ANSWER, classify
from harness.traffic import Request

if TYPE_CHECKING:
    from harness.gate import Check, Policy
    from harness.spec import RunSpec

HEDGE_PATTERNS = re.compile(
    r"\b(not (completely |entirely |totally |100% )?(sure|certain)|I (think|believe|guess)\b|"
    r"could be wrong|may not be accurate|it depends|perhaps|possibly|I'?m unsure)", re.IGNORECASE)
ASKS_FOR_LIST = re.compile(r"\b(bullet(ed)?( points?| list)?|as a list|list the)\b", re.IGNORECASE)


REFUSAL_MEASURED = ("rule classifier; on held-out human-labelled XSTest setups precision 96%, recall 90% for full "
                    "refusals: docs/refusal.md")
EVASION_MEASURED = ("rule classifier; on held-out human-labelled XSTest setups, declined in any way (full or partial "
                    "refusal): see docs/refusal.md")
FORMAT_MARGIN = 0.10  # 10 points of requests, either way


def _m(name: str, kind: str, hib: bool | None, desc: str, absolute: float | None = None,
       relative: float | None = None) -> MetricSpec:
    """A stats metric: a degradation when it has a direction, else a divergence (no direction of its own)."""
    return MetricSpec(name, "stats", kind, hib, desc, role="degradation" if hib is not None else "divergence",
                      margin_absolute=absolute, margin_relative=relative)


METRICS = (  # default margins: rates in absolute points (0.05 = 5 points), means relative (0.15 = 15%)
    _m("chars", "mean", None, "output length in characters", relative=0.15),
    _m("output_tokens", "mean", None, "output length in tokens"),
    _m("json_valid", "rate", True, "output parses as JSON (requests with a response_schema)", 0.05),
    _m("schema_valid", "rate", True, "output satisfies the request's response_schema", 0.05),
    _m("refusal", "rate", False, f"output declines the request ({REFUSAL_MEASURED})", 0.03),
    _m("non_answer", "rate", False, "of the declines: no opinion or answer given, no safety framing (not measured)"),
    _m("hedge", "rate", False, "output hedges (phrase classifier)", 0.05),
    _m("evasive", "rate", False, f"output does not give the answer asked for: declines, deflects, declines the offered "
       f"choice or is off form ({EVASION_MEASURED})", 0.03),
    _m("deflection", "rate", False, "output deflects (subjective, depends on the individual, up to you, reframes the "
       "words) and gives no content (docs/refusal.md)", 0.05),
    _m("declined_choice", "rate", False, "request offers options (letters, yes/no, a scale) and the output picks none "
       "(not measured on human labels)", 0.05),
    _m("off_form", "rate", False, "request asks for a form (one word, a number, yes/no, the letter) and the output "
       "does not take it (not measured on human labels)", 0.05),
    _m("structure_ok", "rate", True, "list requested and at least two list lines given", 0.05),
    _m("truncated", "rate", False, "generation stopped at max_tokens (finish_reason length)", 0.03),
    _m("empty", "rate", False, "output is empty or whitespace", 0.02),
    _m("error", "rate", False, "request could not be served (error row)", 0.01),
    *(_m(name, "rate", None, f"format: {desc}", FORMAT_MARGIN) for name, desc in FORMAT_FEATURES),
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
    decision = classify(text)
    out["refusal"] = float(decision != ANSWER)
    out["non_answer"] = float(decision == NON_ANSWER)
    out["hedge"] = float(bool(HEDGE_PATTERNS.search(text)))
    asked = _last_user_text(r)
    choice, form, deflect = declines_choice(asked, text), off_form(asked, text), deflects(text)
    out["deflection"] = float(deflect)
    out["declined_choice"] = None if choice is None else float(choice)
    out["off_form"] = None if form is None else float(form)
    out["evasive"] = float(decision != ANSWER or deflect or bool(choice) or bool(form))
    if r.response_schema is not None:
        valid, schema_ok = _json_checks(text.strip(), r.response_schema)
        out["json_valid"] = valid
        out["schema_valid"] = None if schema_ok != schema_ok else schema_ok  # NaN: the schema itself is invalid
    if ASKS_FOR_LIST.search(asked):
        out["structure_ok"] = float(len(LIST_LINE.findall(text)) >= 2)
    out.update(format_profile(text))
    return out


class OutputStats:
    """The ``stats`` signal family (role ``degradation``), read by the paired analysis."""

    family = "stats"
    metrics = METRICS
    details: dict[str, Any] | None = None

    def __init__(self, spec: RunSpec | None = None) -> None:
        pass

    def score(self, inputs: ScoreInputs) -> pa.Table:
        return score_table(inputs.requests, inputs.generations)

    def checks(self, policy: Policy) -> list[Check]:
        return []


def score_table(requests: Mapping[str, Request], generations: pa.Table) -> pa.Table:
    """Rows in ``SIGNAL_SCHEMA``: every stats metric of every generation."""
    rows = []
    for g in generations.to_pylist():
        r = requests[g["request_id"]]
        values = score_one(r, g["output_text"] or "", g["finish_reason"], g["output_tokens"], g["error"])
        rows += [{"request_id": g["request_id"], "arm": g["arm"], "segment": g["segment"], "metric": k,
                  "value": v} for k, v in values.items()]
    return pa.Table.from_pylist(rows, schema=SIGNAL_SCHEMA)


PLUGIN = Family(make=OutputStats)
