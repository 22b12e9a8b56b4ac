"""The signal plug-in point: a Protocol, a registry by family name, and the metric catalog.

A signal family is one module and one registry entry (``SIGNALS``, or ``register`` from your own code). It
scores the run's generations and emits one row per request, arm and metric: ``(request_id, arm, segment, metric,
value)``; ``value`` is null when the metric does not apply to that request (e.g. JSON validity for a request that
expects no JSON). Aggregation, deltas and segments happen in SQL (``harness/analysis``), and the gate reads each
metric's direction, role and default margin from the catalog (``metrics.parquet``): what a breach means is data,
not code.

Roles (``ROLES``): how the gate counts a breached metric (docs/gate.md):

- ``degradation``: a move the worse way beyond the margin is a regression (output statistics);
- ``eval``: the same, and a move the better way is an improvement; the sample must have the power to see the
  margin, else INSUFFICIENT_DATA (golden set, judge);
- ``divergence``: the outputs changed, with no direction of their own (embedding drift).

A family carries itself through optional hooks (``Family``): its settings schema (the experiment's ``<name>:``
group), extra arms it needs replayed (drift's A/A arm), a record checked before any engine starts (the manifest's
``records.<name>``) and extra replay jobs per arm (golden's set). ``run.py``, ``spec.py`` and ``cli.py`` call the
hooks of whatever families an experiment names, and name none of them.

Most families are read by the paired analysis (``summary.sql`` -> ``harness.gate.metric_checks``). A family whose
statistic is not a paired delta (drift: a share against an A/A level) returns its own checks from ``checks``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Protocol

import pyarrow as pa

from harness.signals.registry import SIGNALS, Family, family, register
from harness.traffic import Request

if TYPE_CHECKING:
    from harness.gate import Check, Policy
    from harness.spec import Manifest, RunSpec
    from harness.store import RunDir

__all__ = ["CATALOG_SCHEMA", "ROLES", "SIGNALS", "SIGNAL_SCHEMA", "Family", "MetricSpec", "ScoreInputs", "Signal",
           "family", "make_signal", "metric_catalog", "register"]

ROLES = ("degradation", "eval", "divergence")

SIGNAL_SCHEMA = pa.schema([
    ("request_id", pa.string()),
    ("arm", pa.string()),
    ("segment", pa.string()),
    ("metric", pa.string()),
    ("value", pa.float64()),
])

CATALOG_SCHEMA = pa.schema([
    ("name", pa.string()), ("family", pa.string()), ("kind", pa.string()), ("higher_is_better", pa.bool_()),
    ("description", pa.string()), ("role", pa.string()), ("margin_absolute", pa.float64()),
    ("margin_relative", pa.float64()), ("advisory", pa.bool_())])


@dataclass(frozen=True)
class MetricSpec:
    """One metric of a signal family.

    Attributes:
        name: column value in the signal tables, and the key of its gate threshold.
        family: the signal family that emits it.
        kind: ``rate`` (values 0/1, compared in absolute points) or ``mean`` (compared relatively).
        higher_is_better: True/False, or None when both directions are a change to flag (length).
        description: one line for the report.
        role: how a breach counts (``ROLES``).
        margin_absolute, margin_relative: the default margin (``gate.thresholds.<name>`` and
            ``gate.margins.<family>`` override it); neither: reported, not gated.
        advisory: reported, never counted (e.g. a judge criterion not calibrated against human labels).
    """

    name: str
    family: str
    kind: str
    higher_is_better: bool | None
    description: str
    role: str = "degradation"
    margin_absolute: float | None = None
    margin_relative: float | None = None
    advisory: bool = False


@dataclass(frozen=True)
class ScoreInputs:
    """What a signal family may read: the run directory, its manifest (``manifest.spec``: the typed run spec),
    the traffic and every arm's generations."""

    run: RunDir
    manifest: Manifest
    requests: Mapping[str, Request]
    generations: pa.Table  # GENERATION_SCHEMA columns plus ``arm``, every arm of the traffic replay


class Signal(Protocol):
    """A signal family: scores generations, one row per request, arm and metric.

    ``metrics`` is read after ``score`` (a family may learn them while scoring, e.g. which judge criteria are
    advisory); ``details`` is what the family adds to ``verdict.json`` and the report under its name (or None).
    """

    family: str
    details: dict[str, Any] | None

    @property
    def metrics(self) -> tuple[MetricSpec, ...]: ...

    def score(self, inputs: ScoreInputs) -> pa.Table:
        """Rows in ``SIGNAL_SCHEMA`` for the generations in ``inputs``."""
        ...

    def checks(self, policy: Policy) -> list[Check]:
        """The gate's checks of a statistic that is not a paired delta; ``[]`` when the paired analysis reads it."""
        ...


def make_signal(name: str, spec: RunSpec) -> Signal | None:
    """The family ``name`` for the run ``spec`` (None when it does not apply to this run).

    Raises:
        BadInput: ``name`` is not registered (``harness.signals.registry``).
    """
    return family(name).make(spec)  # type: ignore[no-any-return]


def metric_catalog(signals: list[Signal]) -> pa.Table:
    """The metrics of ``signals`` as a table (joined in SQL for direction, kind, role and margin)."""
    rows: list[dict[str, Any]] = [asdict(m) for s in signals for m in s.metrics]
    return pa.Table.from_pylist(rows, schema=CATALOG_SCHEMA)
