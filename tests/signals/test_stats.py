"""The output-distribution signal on hand-written outputs (pure logic)."""

from __future__ import annotations

import datetime as dt

import pytest

from harness.fixtures.zoo.tasks import EXTRACT_SCHEMA
from harness.signals.stats import score_one
from harness.traffic import Message, Request


def req(user: str, schema: dict | None = None) -> Request:
    return Request("r1", dt.datetime(2026, 1, 1, tzinfo=dt.UTC), "s", (Message("user", user),), None, None, None,
                   None, schema, None, None)


GOOD = '{"name": "Ann Berg", "product": "yoga mat", "quantity": 2, "order_id": "12345"}'


@pytest.mark.parametrize(("text", "valid", "schema_ok"), [
    (GOOD, 1.0, 1.0),
    ('{"name": "Ann Berg", "product": "yoga mat", "order_id": "12345"}', 1.0, 0.0),
    ("Sure! Here it is:\n" + GOOD, 0.0, 0.0),
    ("", 0.0, 0.0),
])
def test_json_validity_and_schema(text: str, valid: float, schema_ok: float) -> None:
    s = score_one(req("Extract the order as JSON", EXTRACT_SCHEMA), text, "stop", 10, None)
    assert (s["json_valid"], s["schema_valid"]) == (valid, schema_ok)


def test_json_metrics_do_not_apply_without_schema() -> None:
    s = score_one(req("hello"), "hi", "stop", 1, None)
    assert s["json_valid"] is None and s["schema_valid"] is None and s["structure_ok"] is None


@pytest.mark.parametrize(("text", "refusal", "hedge"), [
    ("I'm sorry, but I can't help with that request.", 1.0, 0.0),
    ("I am not completely sure, but yes. The Pro plan includes SSO.", 0.0, 1.0),
    ("Yes. The Pro plan includes SSO.", 0.0, 0.0),
    ("Perhaps. I think so.", 0.0, 1.0),
])
def test_refusal_and_hedge(text: str, refusal: float, hedge: float) -> None:
    s = score_one(req("Does Pro include SSO?"), text, "stop", 5, None)
    assert (s["refusal"], s["hedge"]) == (refusal, hedge)


@pytest.mark.parametrize(("text", "ok"), [("- a\n- b\n- c", 1.0), ("- only one", 0.0), ("1. a\n2) b", 1.0),
                                          ("a sentence - with a dash", 0.0)])
def test_structure_when_list_requested(text: str, ok: float) -> None:
    s = score_one(req("Summarize this ticket as bullet points."), text, "stop", 5, None)
    assert s["structure_ok"] == ok


def test_length_truncation_empty_and_error() -> None:
    s = score_one(req("hi"), "  ", "length", 96, None)
    assert (s["chars"], s["output_tokens"], s["truncated"], s["empty"], s["error"]) == (2.0, 96.0, 1.0, 1.0, 0.0)
    e = score_one(req("hi"), "", None, None, "prompt_too_long: 300 tokens")
    assert e["error"] == 1.0 and e["chars"] is None and e["hedge"] is None
