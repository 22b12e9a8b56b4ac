"""The label file the kit downloads: read it back, check it, measure agreement, promote requests to the golden set.

One CSV, one row per label (the long format of ``judge.annotations``, docs/judge.md), columns ``COLUMNS``:

==============  ===================================================================================================
``request_id``  the traffic's request id
``arm``         ``baseline`` or ``candidate``: whose output a score is about (un-blinded by the page); empty for
                the pairwise choice and for a golden promotion
``criterion``   a rubric criterion (the score rows), ``preference`` (the pairwise choice) or ``golden``
``label``       the integer score; for ``preference``: ``baseline``, ``candidate`` or ``tie``; ``promote`` for golden
``annotator``   who labelled (the page's annotator field)
``sample``      the page's sample id; ``seed``: its seed (the blinding and the order are reproducible from it)
``item``        the pair's place on the page; ``shown_as``: where the arm's output was shown (``A``/``B``) or,
                for ``preference``, the side chosen
``expected``    ``golden`` rows: the reference answer (the preferred output as labelled, possibly edited)
==============  ===================================================================================================

The score rows are exactly what ``harness.signals.agreement.load_annotations`` reads; the ``preference`` and
``golden`` rows are the kit's own (``read_labels`` reads all three).
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import BadInput

COLUMNS = ("request_id", "arm", "criterion", "label", "annotator", "sample", "seed", "item", "shown_as", "expected")
PREFERENCE = "preference"
GOLDEN = "golden"
CHOICES = ("baseline", "tie", "candidate")  # ordered: the preference as an ordinal scale, for a weighted kappa
ARMS = ("baseline", "candidate")
MAX_ERRORS = 20


@dataclass(frozen=True)
class Labels:
    """One label file, checked: ``scores`` as ``load_annotations`` returns them, the pairwise choices, golden
    promotions (request id -> reference answer), and who made them on which sample."""

    path: Path
    scores: dict[tuple[str, str, str], int] = field(default_factory=dict)
    preferences: dict[str, str] = field(default_factory=dict)
    golden: dict[str, str] = field(default_factory=dict)
    annotators: tuple[str, ...] = ()
    samples: tuple[str, ...] = ()


def _check(i: int, row: Mapping[str, Any], scales: Mapping[str, tuple[int, int]] | None,
           known: set[str] | None) -> str | None:
    where = f"row {i + 1} (request_id {row.get('request_id')!r})"
    criterion, label, arm = row.get("criterion") or "", (row.get("label") or "").strip(), row.get("arm") or ""
    if not row.get("request_id"):
        return f"{where}: empty request_id. Fix: keep the request id the page wrote."
    if known is not None and row["request_id"] not in known:
        return f"{where}: request_id not in this run. Fix: label a page made from this run (or drop the row)."
    if criterion == PREFERENCE:
        return None if label in CHOICES else f"{where}: preference {label!r}, expected one of {CHOICES}."
    if criterion == GOLDEN:
        return None if (row.get("expected") or "").strip() else (
            f"{where}: golden row without an expected answer. Fix: write the reference answer in column expected.")
    if arm not in ARMS:
        return f"{where}: arm {arm!r}, expected one of {ARMS}."
    if scales is not None and criterion not in scales:
        return (f"{where}: criterion {criterion!r} is not in the rubric ({', '.join(scales)}). Fix: label with a "
                "page made for this rubric (--judge), or drop the row.")
    try:
        value = int(label)
    except ValueError:
        return f"{where}: label {label!r} is not an integer. Fix: a whole-number score on {criterion}'s scale."
    lo, hi = (scales or {}).get(criterion, (value, value))
    return None if lo <= value <= hi else f"{where}: label {value} outside {criterion}'s scale {lo}..{hi}."


def read_labels(path: str | Path, scales: Mapping[str, tuple[int, int]] | None = None,
                known: set[str] | None = None) -> Labels:
    """Read and check one label file (see the module docstring).

    Args:
        path: the CSV the page downloaded.
        scales: criterion -> (min, max) of the rubric; None: any criterion, any integer.
        known: the run's request ids; None: not checked.

    Raises:
        BadInput: a missing file or column, a bad row or a repeated label; every problem (up to 20) with its row
            number (header not counted) and the fix.
    """
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"label file {path} does not exist. Fix: give the CSV the labelling page downloaded.")
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in COLUMNS[:4] if c not in (reader.fieldnames or [])]
        if missing:
            raise BadInput(f"{path}: missing column(s) {missing}; expected {list(COLUMNS)}. Fix: give the file the "
                           "labelling page downloaded (docs/annotate.md).")
        rows = list(reader)
    out = Labels(path)
    errors: list[str] = []
    for i, row in enumerate(rows):
        problem = _check(i, row, scales, known)
        rid, criterion = row["request_id"], row["criterion"]
        key: Any = rid if criterion in (PREFERENCE, GOLDEN) else (rid, row["arm"], criterion)
        target: dict[Any, Any] = (out.preferences if criterion == PREFERENCE else out.golden if criterion == GOLDEN
                                  else out.scores)
        if problem is None and key in target:
            problem = f"row {i + 1}: a second {criterion} label for {key}. Fix: keep one (the page writes one)."
        if problem:
            errors.append(problem)
            continue
        label = row["label"].strip()
        target[key] = (label if criterion == PREFERENCE else row["expected"] if criterion == GOLDEN
                       else int(label))
    if errors:
        more = f"\n  ... and {len(errors) - MAX_ERRORS} more" if len(errors) > MAX_ERRORS else ""
        raise BadInput(f"{path}: {len(errors)} bad label row(s):\n  " + "\n  ".join(errors[:MAX_ERRORS]) + more)
    return Labels(path, out.scores, out.preferences, out.golden,
                  tuple(sorted({r.get("annotator") or "" for r in rows})),
                  tuple(sorted({r.get("sample") or "" for r in rows})))


def pair_agreement(a: Mapping[Any, Any], b: Mapping[Any, Any], categories: Sequence[Any]) -> dict[str, Any]:
    """Agreement of two label maps on their common keys: n, exact share, Cohen's kappa and the quadratic-weighted
    kappa on the ordered ``categories`` (the statistics of ``harness.signals.agreement``)."""
    from harness.signals.agreement import cohen_kappa, exact_agreement, weighted_kappa

    keys = sorted(set(a) & set(b), key=str)
    index = {c: i for i, c in enumerate(categories)}
    x, y = [index[a[k]] for k in keys], [index[b[k]] for k in keys]
    scale = list(range(len(categories)))
    if not keys:
        return {"n": 0, "exact": None, "kappa": None, "weighted_kappa": None}
    return {"n": len(keys), "exact": exact_agreement(x, y), "kappa": cohen_kappa(x, y, scale),
            "weighted_kappa": weighted_kappa(x, y, scale)}


def agreement_table(first: Labels, second: Labels | Mapping[str, str],
                    scales: Mapping[str, tuple[int, int]]) -> list[dict[str, Any]]:
    """One row per criterion and one for the preference: ``first`` against ``second`` (another annotator's
    labels, or a judge's pairwise preferences by request id)."""
    rows = []
    if isinstance(second, Labels):
        for criterion, (lo, hi) in scales.items():
            a = {k: v for k, v in first.scores.items() if k[2] == criterion}
            b = {k: v for k, v in second.scores.items() if k[2] == criterion}
            rows.append({"criterion": criterion, **pair_agreement(a, b, list(range(lo, hi + 1)))})
        theirs: Mapping[str, str] = second.preferences
    else:
        theirs = second
    usable = {k: v for k, v in theirs.items() if v in CHOICES}
    rows.append({"criterion": PREFERENCE, **pair_agreement(first.preferences, usable, CHOICES)})
    return rows
