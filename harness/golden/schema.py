"""Golden sets: curated requests with expected outputs, replayed through both arms and scored by metric.

A golden set is a Parquet file with the traffic columns (docs/traffic.md: ``request_id``, ``timestamp``,
``segment``, ``messages`` or ``prompt``, ...) plus, all required:

- ``expected`` (string): the reference answer;
- ``checks`` (list<struct<metric: string, target: string>>): the metrics applied to this item; a null
  ``target`` means ``expected``;
- ``dimension`` (string): what the item tests: ``factuality``, ``instruction_adherence``, ``format`` or
  ``task_accuracy``;
- ``added_at`` (timestamp): when the item entered the set (rotation);
- ``source`` (string): where it came from (``zoo:seed=2026``, ``run:<run_id>``, ``manual``, ...).

Every row is validated before any replay: unknown metrics, duplicated metrics within an item, targets that
do not parse for their metric (regex, number, JSON) are reported with file, row, column and fix.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from harness.golden.metrics import get_metric, parse_numeric_target
from harness.traffic import Request, TrafficError, open_traffic, requests_to_table
from harness.traffic.reader import Traffic

DIMENSIONS = ("factuality", "instruction_adherence", "format", "task_accuracy")
CHECK_TYPE = pa.list_(pa.struct([("metric", pa.string()), ("target", pa.string())]))
GOLDEN_COLUMNS = pa.schema([
    ("expected", pa.string()), ("checks", CHECK_TYPE), ("dimension", pa.string()),
    ("added_at", pa.timestamp("us", tz="UTC")), ("source", pa.string()),
])


@dataclass(frozen=True)
class GoldenItem:
    """The golden part of one request: what a right answer is and how it is checked."""

    request_id: str
    segment: str
    expected: str
    checks: tuple[tuple[str, str], ...]  # (metric, target), target resolved (never null)
    dimension: str
    added_at: dt.datetime
    source: str


def _check_target(metric: str, target: str) -> str | None:
    """A problem with ``target`` for ``metric``, or None."""
    try:
        if metric == "regex":
            re.compile(target)
        elif metric == "numeric_tolerance":
            parse_numeric_target(target)
        elif metric in ("json_schema_valid", "json_field_accuracy") and not isinstance(json.loads(target), dict):
            return "a JSON object"
    except (re.error, ValueError) as e:
        return f"a valid target ({e})"
    return None


def _resolve_checks(where: str, checks: list[dict[str, Any]], expected: str | None
                    ) -> tuple[list[tuple[str, str]], list[str]]:
    """The (metric, target) pairs of an item's checks, targets resolved (null -> ``expected``), and the problems."""
    resolved: list[tuple[str, str]] = []
    problems: list[str] = []
    for c in checks:
        metric, target = c.get("metric"), c.get("target")
        try:
            get_metric(str(metric))
        except KeyError as e:
            problems.append(f"{where}, column checks: {e.args[0]}. Fix: use a registered metric.")
            continue
        if any(m == metric for m, _ in resolved):
            problems.append(f"{where}, column checks: metric {metric!r} twice. Fix: keep one check per metric.")
            continue
        target = target if target is not None else (expected or "")
        bad = _check_target(str(metric), target)
        if bad:
            problems.append(f"{where}, column checks: expected {bad} as the {metric} target, found {target!r}. "
                            "Fix: correct the target.")
            continue
        resolved.append((str(metric), target))
    return resolved, problems


def _validate(file: str, i: int, row: dict[str, Any]) -> tuple[GoldenItem | None, list[str]]:
    where = f"{file}: row {i} (request_id {row.get('request_id')!r})"
    problems: list[str] = []
    expected, checks = row.get("expected"), row.get("checks")
    if not isinstance(expected, str) or not expected.strip():
        problems.append(f"{where}, column expected: expected the reference answer, found {expected!r}. "
                        "Fix: write the right answer for this request.")
    if row.get("dimension") not in DIMENSIONS:
        problems.append(f"{where}, column dimension: expected one of {', '.join(DIMENSIONS)}, found "
                        f"{row.get('dimension')!r}. Fix: say what the item tests.")
    for col in ("added_at", "source"):
        if row.get(col) is None or row.get(col) == "":
            problems.append(f"{where}, column {col}: expected a value, found null. Fix: record when and where the "
                            "item was added (rotation needs it).")
    if not checks:
        problems.append(f"{where}, column checks: expected at least one {{metric, target}}, found {checks!r}. "
                        "Fix: list the metrics that decide whether an answer is right.")
    resolved, bad = _resolve_checks(where, checks or [], expected)
    problems += bad
    if problems:
        return None, problems
    return GoldenItem(row["request_id"], row["segment"], str(expected), tuple(resolved), row["dimension"],
                      row["added_at"], row["source"]), []


def load_golden(path: str | Path) -> tuple[Traffic, dict[str, GoldenItem]]:
    """Validate a golden set: its traffic columns (as traffic) and its golden columns, every row.

    Returns:
        The traffic to replay and the golden items by request id.

    Raises:
        TrafficError: every problem found, each naming the file, row, column and the fix.
    """
    path = Path(path)
    quiet = logging.getLogger("harness.traffic.schema")  # the golden columns are not "unknown traffic columns"
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        traffic = open_traffic(path)
    finally:
        quiet.setLevel(level)
    schema = pq.read_schema(path)
    missing = [f"{path}: column {f.name}: expected a {f.type} column, found no such column. Fix: add it "
               "(see harness/golden/schema.py)." for f in GOLDEN_COLUMNS if f.name not in schema.names]
    if missing:
        raise TrafficError(missing)
    table = pq.read_table(path, columns=["request_id", "segment", *GOLDEN_COLUMNS.names])
    items, problems = {}, []
    for i, row in enumerate(table.to_pylist()):
        item, bad = _validate(str(path), i, row)
        problems += bad
        if item is not None:
            items[item.request_id] = item
    if problems:
        raise TrafficError(problems)
    return traffic, items


REFERENCE_SOURCE = "traffic"


def traffic_has_references(path: str | Path) -> bool:
    """Whether a traffic file carries reference checks (a ``checks`` column): it is then its own golden set."""
    return "checks" in pq.read_schema(path).names


def load_references(path: str | Path) -> dict[str, GoldenItem]:
    """The reference checks a traffic file carries (columns ``checks`` and optionally ``expected``, ``dimension``),
    as golden items of the requests that have them; rows whose ``checks`` is null have no reference.

    Raises:
        TrafficError: every check that does not fit its metric (file, row, request id, column, fix).
    """
    names = pq.read_schema(path).names
    columns = ["request_id", "segment", "checks", *(c for c in ("expected", "dimension") if c in names)]
    items, problems = {}, []
    for i, row in enumerate(pq.read_table(path, columns=columns).to_pylist()):
        if not row["checks"]:
            continue
        where = f"{path}: row {i} (request_id {row['request_id']!r})"
        expected = row.get("expected")
        resolved, bad = _resolve_checks(where, row["checks"], expected)
        dimension = row.get("dimension") or "task_accuracy"
        if dimension not in DIMENSIONS:
            bad.append(f"{where}, column dimension: expected one of {', '.join(DIMENSIONS)}, found {dimension!r}. "
                       "Fix: say what the reference tests, or leave it null.")
        problems += bad
        if not bad:
            items[row["request_id"]] = GoldenItem(row["request_id"], row["segment"], expected or "", tuple(resolved),
                                                  dimension, dt.datetime(1970, 1, 1, tzinfo=dt.UTC), REFERENCE_SOURCE)
    if problems:
        raise TrafficError(problems)
    return items


def write_golden(requests: Sequence[Request], items: Sequence[GoldenItem], path: str | Path) -> Path:
    """Write a golden set: ``requests`` and ``items`` aligned by position."""
    table = requests_to_table(requests)
    extra = pa.Table.from_pylist([{
        "expected": it.expected,
        "checks": [{"metric": m, "target": None if t == it.expected else t} for m, t in it.checks],
        "dimension": it.dimension, "added_at": it.added_at, "source": it.source} for it in items],
        schema=GOLDEN_COLUMNS)
    for f in GOLDEN_COLUMNS:
        table = table.append_column(f, extra[f.name])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path
