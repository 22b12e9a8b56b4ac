"""The golden metric registry: name -> function scoring one output against one target.

A golden item lists its ``checks``: ``(metric, target)`` pairs; ``target`` null means the item's
``expected`` text. Each metric returns a value in [0, 1] (1 = right) or None when it cannot apply, and
declares ``higher_is_better`` and whether it is binary (``rate``) or graded (``mean``): binary metrics are
tested with McNemar, graded ones with Wilcoxon (harness/analysis/paired.py).

Users add their own metric by name: ``register(GoldenMetric(...))`` from their code, or a check whose
metric is ``"package.module:function"`` (a ``(output, target) -> float | None`` function, taken as a
graded metric with higher_is_better True).
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Score = Callable[[str, str], "float | None"]


@dataclass(frozen=True)
class GoldenMetric:
    """One metric of the registry; ``kind`` is ``rate`` (0/1 values) or ``mean`` (graded)."""

    name: str
    kind: str
    higher_is_better: bool
    description: str
    score: Score


def _normalize(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def exact_match(output: str, target: str) -> float:
    """1 when the output equals the target (surrounding whitespace ignored)."""
    return float(output.strip() == target.strip())


def normalized_contains(output: str, target: str) -> float:
    """1 when the normalized target (lowercase, punctuation removed, spaces collapsed) is in the output."""
    return float(f" {_normalize(target)} " in f" {_normalize(output)} ")


def regex(output: str, target: str) -> float:
    """1 when the target pattern matches anywhere in the output (``re.MULTILINE``)."""
    return float(re.search(target, output, re.MULTILINE) is not None)


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def json_schema_valid(output: str, target: str) -> float:
    """1 when the output is JSON satisfying the JSON Schema given as the target."""
    import jsonschema

    try:
        value = json.loads(output)
    except (ValueError, RecursionError):
        return 0.0
    try:
        jsonschema.validate(value, json.loads(target))
    except jsonschema.ValidationError:
        return 0.0
    return 1.0


def json_field_accuracy(output: str, target: str) -> float | None:
    """Share of the target object's fields that the output object has with an equal value (0 if not JSON)."""
    expected = _json_object(target)
    if not expected:
        return None
    got = _json_object(output) or {}
    return sum(k in got and got[k] == v for k, v in expected.items()) / len(expected)


_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_TARGET_NUMBER = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(?:(?:±|\+-|\+/-)\s*(\d+(?:\.\d+)?))?\s*$")


def parse_numeric_target(target: str) -> tuple[float, float]:
    """``"12"`` or ``"12±0.5"`` (also ``+-``, ``+/-``) -> (value, tolerance)."""
    m = _TARGET_NUMBER.match(target)
    if not m:
        raise ValueError(f"numeric target {target!r} is not VALUE or VALUE±TOLERANCE")
    return float(m.group(1)), float(m.group(2) or 0)


def numeric_tolerance(output: str, target: str) -> float:
    """1 when some number in the output is within the target's tolerance of its value."""
    value, tol = parse_numeric_target(target)
    return float(any(abs(float(x) - value) <= tol for x in _NUMBER.findall(output)))


def rouge_l(output: str, target: str) -> float:
    """ROUGE-L F1 over lowercased word tokens (longest common subsequence)."""
    a, b = _normalize(output).split(), _normalize(target).split()
    if not a or not b:
        return float(a == b)
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    lcs = prev[-1]
    if lcs == 0:
        return 0.0
    p, r = lcs / len(a), lcs / len(b)
    return 2 * p * r / (p + r)


METRICS: dict[str, GoldenMetric] = {}


def register(metric: GoldenMetric) -> None:
    """Add (or replace) a metric of the registry."""
    METRICS[metric.name] = metric


for _m in (
    GoldenMetric("exact_match", "rate", True, "output equals the expected text", exact_match),
    GoldenMetric("normalized_contains", "rate", True, "output contains the target phrase (normalized)",
                 normalized_contains),
    GoldenMetric("regex", "rate", True, "output matches the target pattern", regex),
    GoldenMetric("json_schema_valid", "rate", True, "output is JSON valid against the target schema",
                 json_schema_valid),
    GoldenMetric("json_field_accuracy", "mean", True, "share of expected JSON fields right", json_field_accuracy),
    GoldenMetric("numeric_tolerance", "rate", True, "output has the target number within tolerance",
                 numeric_tolerance),
    GoldenMetric("rouge_l", "mean", True, "ROUGE-L F1 against the expected text", rouge_l),
):
    register(_m)


def get_metric(name: str) -> GoldenMetric:
    """The metric called ``name``: a registry name or ``module:function``."""
    if name in METRICS:
        return METRICS[name]
    if ":" in name:
        module, fn = name.split(":", 1)
        try:
            score = getattr(importlib.import_module(module), fn)
        except (ImportError, AttributeError) as e:
            raise KeyError(f"golden metric {name!r} cannot be imported ({e})") from e
        metric = GoldenMetric(name, "mean", True, f"user metric {name}", score)
        register(metric)
        return metric
    raise KeyError(f"unknown golden metric {name!r}; known: {', '.join(sorted(METRICS))}, or module:function")
