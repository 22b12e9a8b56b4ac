"""Golden-set scoring: each golden generation of each arm scored by its item's checks (role ``eval``).

One row per golden request, arm and check, in the signal format; the metric is ``golden_<name>`` of
the golden metric registry (``harness.golden.metrics``), family ``golden``. A request an arm could not
serve (error row) scores 0 on every check: no right answer was given. The golden replay's generations are
under ``<run>/golden/`` (``golden_run``); the default margin is 2 points (``gate.margins.golden``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from harness.golden.metrics import get_metric
from harness.golden.schema import GoldenItem, load_golden
from harness.signals.base import SIGNAL_SCHEMA, MetricSpec, ScoreInputs
from harness.store import RunDir
from harness.traffic import TrafficError, traffic_fingerprint

if TYPE_CHECKING:
    from harness.gate import Check, Policy
    from harness.spec import RunSpec

FAMILY = "golden"
DEFAULT_MARGIN = 0.02


def golden_run(run: RunDir) -> RunDir:
    """The golden replay's own tables, under ``<run>/golden/`` (generations, batches)."""
    return RunDir(run.path, "golden", ".")


def golden_metrics(items: Mapping[str, GoldenItem]) -> tuple[MetricSpec, ...]:
    names = sorted({m for it in items.values() for m, _ in it.checks})
    return tuple(MetricSpec(f"golden_{n}", FAMILY, get_metric(n).kind, get_metric(n).higher_is_better,
                            get_metric(n).description, role="eval", margin_absolute=DEFAULT_MARGIN) for n in names)


def score_golden(items: Mapping[str, GoldenItem], generations: pa.Table) -> pa.Table:
    """Rows ``(request_id, arm, segment, golden_<metric>, value)`` for every golden generation."""
    rows = []
    for g in generations.to_pylist():
        item = items.get(g["request_id"])
        if item is None:
            continue
        for metric, target in item.checks:
            value = 0.0 if g["error"] is not None else get_metric(metric).score(g["output_text"], target)
            rows.append({"request_id": g["request_id"], "arm": g["arm"], "segment": item.segment,
                         "metric": f"golden_{metric}", "value": value})
    return pa.Table.from_pylist(rows, schema=SIGNAL_SCHEMA)


class GoldenSignal:
    """The ``golden`` family: scores the golden replay (``<run>/golden/``) against the items' checks."""

    family = FAMILY
    details: dict[str, Any] | None = None

    def __init__(self) -> None:
        self.metrics: tuple[MetricSpec, ...] = ()

    def score(self, inputs: ScoreInputs) -> pa.Table:
        from harness.analysis.run import connect

        golden = inputs.manifest.golden
        if golden is None or golden.skipped:
            return SIGNAL_SCHEMA.empty_table()
        if traffic_fingerprint(golden.path) != golden.sha256:
            raise TrafficError([f"{golden.path}: changed since this run replayed it (sha256 differs). Fix: restore "
                                "the golden set the run used, or replay again."])
        _, items = load_golden(golden.path)
        self.metrics = golden_metrics(items)
        con = connect(golden_run(inputs.run))
        generations = con.sql("SELECT * FROM generations ORDER BY arm, request_id").to_arrow_table()
        con.close()
        return score_golden(items, generations)

    def checks(self, policy: Policy) -> list[Check]:
        return []


def make(spec: RunSpec) -> GoldenSignal | None:
    """The golden family of a run, or None without a golden set."""
    return GoldenSignal() if spec.golden_path else None
