"""The signal plug-in point: a Protocol, a registry by family name, and the metric catalog.

A signal family scores every generation of both arms and emits one row per request, arm and
metric: ``(request_id, arm, segment, metric, value)``; ``value`` is null when the metric does not
apply to that request (e.g. JSON validity for a request that expects no JSON). Aggregation, deltas
and segments happen in SQL (``harness/analysis``). Each metric declares its direction, so the gate's
notion of "worse" is data, not code.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import pyarrow as pa

from harness.traffic import Request

SIGNAL_SCHEMA = pa.schema([
    ("request_id", pa.string()),
    ("arm", pa.string()),
    ("segment", pa.string()),
    ("metric", pa.string()),
    ("value", pa.float64()),
])


@dataclass(frozen=True)
class MetricSpec:
    """One metric of a signal family.

    Attributes:
        name: column value in the signal tables, and the key of its gate threshold.
        family: the signal family that emits it.
        kind: ``rate`` (values 0/1, compared in absolute points) or ``mean`` (compared relatively).
        higher_is_better: True/False, or None when both directions are a change to flag (length).
        description: one line for the report.
    """

    name: str
    family: str
    kind: str
    higher_is_better: bool | None
    description: str


class Signal(Protocol):
    """A signal family: scores generations, one row per request, arm and metric."""

    family: str
    metrics: tuple[MetricSpec, ...]

    def score(self, requests: Mapping[str, Request], generations: pa.Table) -> pa.Table:
        """Score ``generations`` (columns of ``GENERATION_SCHEMA`` plus ``arm``); rows in ``SIGNAL_SCHEMA``."""
        ...


SIGNALS: dict[str, str] = {
    "stats": "harness.signals.stats:OutputStats",
}
"""Family name -> "module:class", imported when used."""


def make_signal(name: str) -> Signal:
    """Instantiate the signal family ``name``."""
    if name not in SIGNALS:
        raise ValueError(f"unknown signal family {name!r}; known: {sorted(SIGNALS)}")
    module, cls = SIGNALS[name].split(":")
    return getattr(importlib.import_module(module), cls)()  # type: ignore[no-any-return]


def metric_catalog(signals: list[Signal]) -> pa.Table:
    """The metrics of ``signals`` as a table (joined in SQL for direction and kind)."""
    rows: list[dict[str, Any]] = [asdict(m) for s in signals for m in s.metrics]
    return pa.Table.from_pylist(rows, schema=pa.schema([
        ("name", pa.string()), ("family", pa.string()), ("kind", pa.string()),
        ("higher_is_better", pa.bool_()), ("description", pa.string())]))
