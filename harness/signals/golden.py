"""Golden-set scoring: each golden generation of each arm scored by its item's checks (role ``eval``).

One row per golden request, arm and check, in the signal format; the metric is ``golden_<name>`` of
the golden metric registry (``harness.golden.metrics``), family ``golden``. Two sources of items, scored alike:

- a golden set (``golden.path``), replayed through both arms into ``<run>/golden/`` (``golden_run``); an imported
  arm answers it from its file by request id;
- the reference checks the traffic itself carries (columns ``checks``, ``expected``: ``load_references``), scored on
  the traffic's own generations, imported or generated.

A request an arm could not serve (error row) scores 0 on every check: no right answer was given; one an imported
file does not hold (``missing_in_import``) is left out and counted (``details``), so the paired statistics and the
power calculation run on what both arms answered. The default margin is 2 points (``gate.margins.golden``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from harness.config import GoldenConfig
from harness.golden.metrics import get_metric
from harness.golden.schema import GoldenItem, load_golden, load_references, traffic_has_references
from harness.signals.base import SIGNAL_SCHEMA, Family, MetricSpec, ScoreInputs
from harness.spec import ARMS
from harness.store import RunDir
from harness.traffic import TrafficError, traffic_fingerprint

if TYPE_CHECKING:
    from harness.gate import Check, Policy
    from harness.replay import ReplayJob
    from harness.spec import RunSpec

log = logging.getLogger(__name__)
FAMILY = "golden"
DEFAULT_MARGIN = 0.02


@dataclass(frozen=True)
class GoldenRecord:
    """The eval references of the run (``manifest.records["golden"]``): a golden set (path, sha256, items, or why it
    was skipped) and the reference checks the traffic itself carries (``references``: how many requests have them);
    ``coverage``: per imported arm, how many golden items its file answers (``matched``) and not
    (``missing_in_import``)."""

    path: str | None
    sha256: str | None
    items: int | None = None
    skipped: str | None = None
    references: int = 0
    coverage: dict[str, dict[str, int]] = field(default_factory=dict)


def golden_run(run: RunDir) -> RunDir:
    """The golden replay's own tables, under ``<run>/golden/`` (generations, batches)."""
    return RunDir(run.path, "golden", ".")


def golden_metrics(items: Mapping[str, GoldenItem]) -> tuple[MetricSpec, ...]:
    names = sorted({m for it in items.values() for m, _ in it.checks})
    return tuple(MetricSpec(f"golden_{n}", FAMILY, get_metric(n).kind, get_metric(n).higher_is_better,
                            get_metric(n).description, role="eval", margin_absolute=DEFAULT_MARGIN) for n in names)


MISSING = "missing_in_import"


def score_golden(items: Mapping[str, GoldenItem], generations: pa.Table) -> pa.Table:
    """Rows ``(request_id, arm, segment, golden_<metric>, value)`` for every golden generation of the two arms."""
    rows = []
    for g in generations.to_pylist():
        item = items.get(g["request_id"])
        if item is None or g["arm"] not in ARMS or g["error"] == MISSING:
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
        from harness.store import connect

        record = inputs.manifest.records.get(FAMILY)
        golden = GoldenRecord(**record) if record else None
        tables, items = [], {}
        if golden is not None and golden.path and not golden.skipped:
            if traffic_fingerprint(golden.path) != golden.sha256:
                raise TrafficError([f"{golden.path}: changed since this run replayed it (sha256 differs). Fix: "
                                    "restore the golden set the run used, or replay again."])
            items = load_golden(golden.path)[1]
            con = connect(golden_run(inputs.run))
            tables.append(score_golden(items, con.sql("SELECT * FROM generations").to_arrow_table()))
            con.close()
        if golden is not None and golden.references:
            references = load_references(inputs.manifest.traffic.path)
            tables.append(score_golden(references, inputs.generations))
            items = {**items, **references}
        self.metrics = golden_metrics(items)
        rows = pa.concat_tables([SIGNAL_SCHEMA.empty_table(), *tables])
        scored = {a: len(set(rows.filter(pc.equal(rows["arm"], a))["request_id"].to_pylist())) for a in ARMS}
        self.details = {"golden": {"items": golden.items if golden else None,
                                   "references": golden.references if golden else 0, "scored": scored,
                                   "skipped": golden.skipped if golden else None,
                                   "coverage": golden.coverage if golden else {}}}
        return rows

    def checks(self, policy: Policy) -> list[Check]:
        return []


def make(spec: RunSpec) -> GoldenSignal | None:
    """The golden family of a run, or None with neither a golden set nor references in the traffic."""
    settings = spec.settings.get(FAMILY) or GoldenConfig()
    return GoldenSignal() if settings.path or traffic_has_references(spec.traffic_path) else None


def record(spec: RunSpec, settings: GoldenConfig) -> dict[str, Any] | None:
    """The golden set and the traffic's own references, checked before any engine starts (bad references: exit 2).

    An imported arm answers the golden set from its file (by request id): items it lacks are error rows, left out of
    the scores and counted here; a file with none of the golden ids skips the golden set, with the reason.
    """
    from harness.engines.base import EngineError
    from harness.engines.imported import imported_coverage

    references = len(load_references(spec.traffic_path)) if traffic_has_references(spec.traffic_path) else 0
    if not settings.path:
        return asdict(GoldenRecord(None, None, references=references)) if references else None
    path, sha = str(Path(settings.path).resolve()), traffic_fingerprint(settings.path)
    traffic, items = load_golden(settings.path)
    coverage = {}
    for a in ARMS:
        if spec.arms[a].imported:
            try:
                found = imported_coverage(str(spec.arms[a].imported), traffic)
            except EngineError:  # none of the golden ids: this file holds shadow logs of other traffic only
                skipped = f"arm {a}: its imported outputs answer none of the {len(items)} golden items"
                log.warning("golden set skipped: %s", skipped)
                return asdict(GoldenRecord(path, sha, skipped=skipped, references=references))
            coverage[a] = {"matched": found["matched"], "missing_in_import": found["missing_in_import"]}
    return asdict(GoldenRecord(path, sha, items=len(items), references=references, coverage=coverage))


def replay_jobs(spec: RunSpec, run: RunDir, arm: str, recorded: dict[str, Any] | None) -> list[ReplayJob]:
    """Baseline and candidate replay the golden set into ``<run>/golden/`` with the engine of their traffic replay."""
    from harness.replay import ReplayJob

    golden = GoldenRecord(**recorded) if recorded else None
    if golden is None or not golden.path or golden.skipped or arm not in ARMS:
        return []
    return [ReplayJob(load_golden(golden.path)[0], golden_run(run), f"golden_{arm}")]


PLUGIN = Family(make=make, settings=GoldenConfig, record=record, replay_jobs=replay_jobs)
