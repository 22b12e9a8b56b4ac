"""Golden-set scoring: each golden generation of each arm scored by its item's checks.

One row per golden request, arm and check, in the signal format; the metric is ``golden_<name>`` of
the golden metric registry (``harness.golden.metrics``), family ``golden``. A request an arm could not
serve (error row) scores 0 on every check: no right answer was given.
"""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow as pa

from harness.golden.metrics import get_metric
from harness.golden.schema import GoldenItem
from harness.signals.base import SIGNAL_SCHEMA, MetricSpec
from harness.traffic import Request

FAMILY = "golden"


class GoldenSignal:
    """Scores golden generations against the items' checks."""

    family = FAMILY

    def __init__(self, items: Mapping[str, GoldenItem]) -> None:
        self.items = items
        names = sorted({m for it in items.values() for m, _ in it.checks})
        self.metrics = tuple(MetricSpec(f"golden_{n}", FAMILY, get_metric(n).kind, get_metric(n).higher_is_better,
                                        get_metric(n).description) for n in names)

    def score(self, requests: Mapping[str, Request], generations: pa.Table) -> pa.Table:
        """Rows ``(request_id, arm, segment, golden_<metric>, value)`` for every golden generation."""
        rows = []
        for g in generations.to_pylist():
            item = self.items.get(g["request_id"])
            if item is None:
                continue
            for metric, target in item.checks:
                value = 0.0 if g["error"] is not None else get_metric(metric).score(g["output_text"], target)
                rows.append({"request_id": g["request_id"], "arm": g["arm"], "segment": item.segment,
                             "metric": f"golden_{metric}", "value": value})
        return pa.Table.from_pylist(rows, schema=SIGNAL_SCHEMA)
