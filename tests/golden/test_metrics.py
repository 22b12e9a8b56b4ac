"""The golden metric registry on hand-made outputs (pure logic)."""

from __future__ import annotations

import json

import pytest

from harness.golden.metrics import METRICS, GoldenMetric, get_metric, register, rouge_l


@pytest.mark.parametrize(("metric", "output", "target", "value"), [
    ("exact_match", " Yes. \n", "Yes.", 1.0),
    ("exact_match", "Yes", "Yes.", 0.0),
    ("normalized_contains", "No. The PRO plan does not include phone support!", "pro plan does not include", 1.0),
    ("normalized_contains", "The Pro plans include", "pro plan", 0.0),  # whole words only
    ("regex", "Yes. It does.", r"\AYes\b", 1.0),
    ("regex", "I think Yes.", r"\AYes\b", 0.0),
    ("numeric_tolerance", "it broke after 12 days", "12", 1.0),
    ("numeric_tolerance", "it broke after 13.2 days", "12±1", 0.0),
    ("numeric_tolerance", "it broke after 12.9 days", "12+-1", 1.0),
    ("json_schema_valid", '{"a": 1}', json.dumps({"type": "object", "required": ["a"]}), 1.0),
    ("json_schema_valid", '{"b": 1}', json.dumps({"type": "object", "required": ["a"]}), 0.0),
    ("json_schema_valid", "not json", json.dumps({"type": "object"}), 0.0),
    ("json_field_accuracy", '{"a": 1, "b": 2, "c": 0}', '{"a": 1, "b": 3}', 0.5),
    ("json_field_accuracy", "Sure! {}", '{"a": 1}', 0.0),
])
def test_metric_values(metric: str, output: str, target: str, value: float) -> None:
    assert get_metric(metric).score(output, target) == pytest.approx(value)


def test_rouge_l_by_hand() -> None:
    # LCS of "the cat sat on the mat" and "the cat lay on a mat" = the cat on mat (4): P = 4/6, R = 4/6
    assert rouge_l("the cat sat on the mat", "the cat lay on a mat") == pytest.approx(4 / 6)
    assert rouge_l("", "") == 1.0 and rouge_l("x", "") == 0.0 and rouge_l("a b", "c d") == 0.0


def test_every_metric_declares_direction_and_kind() -> None:
    for m in METRICS.values():
        assert m.kind in ("rate", "mean") and m.higher_is_better is True


def test_users_add_metrics_by_name() -> None:
    register(GoldenMetric("starts_with_yes", "rate", True, "answer starts with Yes",
                          lambda out, _t: float(out.startswith("Yes"))))
    assert get_metric("starts_with_yes").score("Yes.", "") == 1.0
    imported = get_metric("harness.golden.metrics:rouge_l")  # module:function
    assert imported.kind == "mean" and imported.score("a b", "a b") == 1.0
    with pytest.raises(KeyError, match="unknown golden metric 'nope'"):
        get_metric("nope")
