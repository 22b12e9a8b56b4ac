"""Imported judge results: per-request verdicts and scores from an existing evaluation pipeline (``judge.imported``).

File: CSV (header row), JSONL (one object a line) or Parquet. Two kinds of rows, in one file or two:

==============  =====================================================================================
pairwise row    ``request_id``, ``verdict_ab`` (the verdict with the baseline's output shown first as A),
                ``verdict_ba`` (the candidate's shown first as A): each ``A``, ``B``, ``tie``, or empty
                when that order is unscored; optional ``confidence`` (a number in 0..1, for selective
                trust), ``raw_ab``/``raw_ba`` (the judge's text, kept for the audit page)
pointwise row   ``request_id``, ``arm`` (``baseline``/``candidate``), ``criterion`` (a rubric name),
                ``score`` (an integer on its scale, or empty when unscored)
==============  =====================================================================================

A request of the run missing from the file is unscored (``not_in_imported_file``), never a zero. Every bad row
is reported with the file, its row number (1 = the first data row), the field and the fix, up to 20 at once.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.signals.judge_prompts import PREFERENCES, JudgeError, Rubric

MAX_ERRORS = 20
MISSING = "not_in_imported_file"


@dataclass(frozen=True)
class Imported:
    """What an imported judge file holds, checked: pairwise verdicts and pointwise scores by request."""

    path: str
    pairwise: dict[str, dict[str, Any]] = field(default_factory=dict)  # request_id -> verdict_ab, verdict_ba, ...
    scores: dict[tuple[str, str, str], int | None] = field(default_factory=dict)  # (request, arm, criterion)


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a CSV, JSONL or Parquet file as dicts.

    Raises:
        JudgeError: missing file, unknown suffix, or a JSONL line that is not a JSON object.
    """
    if not path.is_file():
        raise JudgeError(f"imported judge file {path} does not exist. Fix: set judge.imported to a CSV, JSONL or "
                         "Parquet file of verdicts (docs/judge.md, 'Imported judge results').")
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    if path.suffix in (".jsonl", ".json"):
        rows = []
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise JudgeError(f"{path}: line {i + 1} is not JSON ({e.msg}). Fix: one JSON object per line.") from e
            if not isinstance(obj, dict):
                raise JudgeError(f"{path}: line {i + 1} is not a JSON object. Fix: one object per line.")
            rows.append(obj)
        return rows
    if path.suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))
    raise JudgeError(f"{path}: unknown file type {path.suffix!r}. Fix: use .csv, .jsonl or .parquet.")


def _blank(v: Any) -> bool:
    return v is None or (isinstance(v, str) and not v.strip())


def _pairwise_row(where: str, row: dict[str, Any]) -> dict[str, Any] | str:
    out: dict[str, Any] = {}
    for key in ("verdict_ab", "verdict_ba"):
        v = row.get(key)
        if _blank(v):
            out[key] = None
        elif str(v).strip() in PREFERENCES:
            out[key] = str(v).strip()
        else:
            return (f"{where}, field {key}: {v!r} is not a verdict. Fix: write A, B or tie (A = the answer shown "
                    "first), or leave it empty when that order is unscored.")
    conf = row.get("confidence")
    if _blank(conf):
        out["confidence"] = None
    else:
        try:
            out["confidence"] = float(str(conf))
        except (TypeError, ValueError):
            return f"{where}, field confidence: {conf!r} is not a number. Fix: a number in 0..1, or empty."
        if not 0 <= out["confidence"] <= 1:
            return f"{where}, field confidence: {conf!r} is outside 0..1. Fix: rescale it to 0..1."
    out["raw_ab"], out["raw_ba"] = row.get("raw_ab"), row.get("raw_ba")
    return out


def _pointwise_row(where: str, row: dict[str, Any], rubric: Rubric) -> tuple[tuple[str, str, str], int | None] | str:
    arm, name = row.get("arm"), str(row.get("criterion")).strip()
    if arm not in ("baseline", "candidate"):
        return f"{where}, field arm: {arm!r}. Fix: baseline or candidate (whose output was scored)."
    c = rubric.get(name)
    if c is None:
        return (f"{where}, field criterion: {name!r} is not in rubric {rubric.name!r} "
                f"({', '.join(x.name for x in rubric.criteria)}). Fix: rename it or drop the row.")
    raw = row.get("score")
    if _blank(raw):
        return (str(row["request_id"]), str(arm), name), None
    try:
        score = int(str(raw).strip())
    except ValueError:
        return f"{where}, field score: {raw!r} is not an integer. Fix: a whole number on {name}'s scale, or empty."
    if not c.scale_min <= score <= c.scale_max:
        return f"{where}, field score: {score} is outside {name}'s scale {c.scale_min}..{c.scale_max}."
    return (str(row["request_id"]), str(arm), name), score


def load_imported(path: str | Path, rubric: Rubric) -> Imported:
    """Read and check an imported judge file (module docstring).

    Raises:
        JudgeError: every bad row (up to 20), each naming the file, row, field and fix; a repeated request.
    """
    path = Path(path)
    rows = read_rows(path)
    if rows and "request_id" not in rows[0]:
        raise JudgeError(f"{path}: no request_id field in the first row (found {sorted(rows[0])}). Fix: name the "
                         "traffic's request id column request_id.")
    pairwise: dict[str, dict[str, Any]] = {}
    scores: dict[tuple[str, str, str], int | None] = {}
    errors = []
    for i, row in enumerate(rows):
        rid = row.get("request_id")
        where = f"{path}: row {i + 1} (request_id {rid!r})"
        if _blank(rid):
            errors.append(f"{path}: row {i + 1}, field request_id: empty. Fix: give the traffic's request id.")
            continue
        rid = str(rid)
        if not _blank(row.get("criterion")):
            checked = _pointwise_row(where, row, rubric)
            if isinstance(checked, str):
                errors.append(checked)
            elif checked[0] in scores:
                errors.append(f"{where}: a second score for {checked[0]}. Fix: one score per request, arm, criterion.")
            else:
                scores[checked[0]] = checked[1]
            continue
        if "verdict_ab" not in row and "verdict_ba" not in row:
            errors.append(f"{where}: neither verdict_ab/verdict_ba nor criterion/score. Fix: see docs/judge.md, "
                          "'Imported judge results'.")
            continue
        found = _pairwise_row(where, row)
        if isinstance(found, str):
            errors.append(found)
        elif rid in pairwise:
            errors.append(f"{where}: a second pairwise verdict for this request. Fix: one row per request.")
        else:
            pairwise[rid] = found
    if errors:
        more = f"\n  ... and {len(errors) - MAX_ERRORS} more" if len(errors) > MAX_ERRORS else ""
        raise JudgeError(f"{path}: {len(errors)} bad imported judge row(s):\n  " + "\n  ".join(errors[:MAX_ERRORS])
                         + more)
    return Imported(str(path), pairwise, scores)
