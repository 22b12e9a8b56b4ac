"""Judge vs human agreement: Cohen's kappa (unweighted and quadratic-weighted), Spearman, exact agreement.

The statistics are pure functions of two equal-length label lists. ``load_annotations`` reads and checks the
human annotation file; ``agreement_rows`` joins it with the judge's scores and says, per criterion, whether
the judge is calibrated (weighted kappa at least the bar, on enough pairs).

Annotation file (CSV with a header, or Parquet), one row per request, arm and criterion:

=============  ======================================================================
``request_id`` the traffic's request id
``arm``        ``baseline`` or ``candidate``: whose output the human rated
``criterion``  a criterion name of the judge's rubric
``label``      the human's integer score on that criterion's scale
=============  ======================================================================

Other columns (annotator, note) are ignored. One label per request, arm and criterion: aggregate several
annotators (e.g. majority or median) before.

Pairwise preference labels go in the same file (an extension; files without them read as before): ``criterion``
``preference``, ``label`` ``baseline``, ``candidate`` or ``tie`` (which arm's output the human preferred), ``arm``
empty or ``pair``. ``load_preferences`` reads them; ``load_annotations`` leaves them to it.

Intervals: ``wilson`` (a proportion) and ``kappa_interval`` (a percentile bootstrap of Cohen's kappa, resampling
the joint table; seeded, so the same labels give the same interval).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from harness.signals.judge_prompts import JudgeError, Rubric

COLUMNS = ("request_id", "arm", "criterion", "label")
ARMS = ("baseline", "candidate")
PREFERENCE = "preference"
GOLDEN = "golden"  # the labelling kit's promotion rows (harness.annotate.labels), not a label
PREFERENCE_LABELS = ("baseline", "candidate", "tie")
MAX_ERRORS = 20


def exact_agreement(a: Sequence[Any], b: Sequence[Any]) -> float:
    """Share of pairs with identical labels."""
    return sum(x == y for x, y in zip(a, b, strict=True)) / len(a)


def _marginals(a: Sequence[Any], b: Sequence[Any], categories: Sequence[Any]) -> tuple[list[float], list[float]]:
    n = len(a)
    return [a.count(k) / n for k in categories], [b.count(k) / n for k in categories]


def cohen_kappa(a: Sequence[Any], b: Sequence[Any], categories: Sequence[Any]) -> float | None:
    """Unweighted Cohen's kappa ``(p_o - p_e) / (1 - p_e)``; None when undefined (``p_e`` = 1)."""
    pa, pb = _marginals(a, b, categories)
    pe = sum(x * y for x, y in zip(pa, pb, strict=True))
    if math.isclose(pe, 1.0):
        return None
    return (exact_agreement(a, b) - pe) / (1 - pe)


def weighted_kappa(a: Sequence[int], b: Sequence[int], categories: Sequence[int]) -> float | None:
    """Quadratic-weighted Cohen's kappa ``1 - sum(w O) / sum(w E)`` with ``w_ij = (i - j)^2``.

    ``O`` is the observed joint distribution, ``E`` the product of the marginals; the weights' scale cancels,
    so ``(i - j)^2`` and ``((i - j) / (k - 1))^2`` give the same value. None when ``sum(w E)`` is 0.
    """
    pa, pb = _marginals(a, b, categories)
    idx = {k: i for i, k in enumerate(categories)}
    n = len(a)
    observed = sum((idx[x] - idx[y]) ** 2 for x, y in zip(a, b, strict=True)) / n
    expected = sum((i - j) ** 2 * pa[i] * pb[j] for i in range(len(categories)) for j in range(len(categories)))
    if math.isclose(expected, 0.0):
        return None
    return 1 - observed / expected


def _ranks(x: Sequence[float]) -> list[float]:
    """1-based ranks, ties get the mean of the ranks they span."""
    order = sorted(range(len(x)), key=lambda i: x[i])
    ranks = [0.0] * len(x)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and x[order[j + 1]] == x[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Spearman's rho: Pearson's correlation of the (tie-averaged) ranks; None when a side is constant."""
    ra, rb = _ranks(a), _ranks(b)
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb, strict=True))
    va, vb = sum((x - ma) ** 2 for x in ra), sum((y - mb) ** 2 for y in rb)
    if va == 0 or vb == 0:
        return None
    return cov / math.sqrt(va * vb)


def _read(path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def wilson(k: int, n: int, level: float = 0.95) -> tuple[float | None, float | None]:
    """Wilson score interval of a proportion ``k / n`` (two-sided, ``level``: ``drift_stats.wilson_interval`` at its
    z); (None, None) when ``n`` is 0."""
    if n == 0:
        return None, None
    from statistics import NormalDist

    from harness.signals.drift_stats import wilson_interval

    return wilson_interval(k, n, NormalDist().inv_cdf(0.5 + level / 2))


def kappa_interval(a: Sequence[Any], b: Sequence[Any], categories: Sequence[Any], level: float = 0.95,
                   resamples: int = 2000, seed: int = 0, weighted: bool = False) -> tuple[float | None, float | None]:
    """Percentile bootstrap interval of Cohen's kappa (``weighted``: quadratic weights, ``categories`` in order).

    Resamples the ``len(a)`` pairs with replacement from their joint table (a multinomial draw per resample);
    resamples whose kappa is undefined are dropped. (None, None) when fewer than half are defined or ``a`` is empty.
    """
    import numpy as np

    n, k = len(a), len(categories)
    if n == 0:
        return None, None
    idx = {c: i for i, c in enumerate(categories)}
    joint = np.zeros(k * k)
    for x, y in zip(a, b, strict=True):
        joint[idx[x] * k + idx[y]] += 1
    draws = np.random.default_rng(seed).multinomial(n, joint / n, size=resamples).reshape(resamples, k, k) / n
    i, j = np.indices((k, k))
    w = (i - j) ** 2 if weighted else (i != j).astype(float)
    observed = (draws * w).sum(axis=(1, 2))
    expected = np.einsum("ri,rj,ij->r", draws.sum(axis=2), draws.sum(axis=1), w)
    ok = expected > 1e-12
    if ok.sum() < resamples / 2:
        return None, None
    kappas = 1 - observed[ok] / expected[ok]
    lo, hi = np.quantile(kappas, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def _check_row(i: int, row: dict[str, Any], rubric: Rubric) -> tuple[tuple[str, str, str], int] | str:
    where = f"row {i + 1} (request_id {row.get('request_id')!r})"
    if not row.get("request_id"):
        return f"{where}: empty request_id. Fix: give the traffic's request id."
    if row.get("arm") not in ARMS:
        return f"{where}: arm {row.get('arm')!r}, expected one of {ARMS}."
    c = rubric.get(str(row.get("criterion")))
    if c is None:
        return (f"{where}: criterion {row.get('criterion')!r} is not in rubric {rubric.name!r} "
                f"({', '.join(x.name for x in rubric.criteria)}). Fix: rename it or drop the row.")
    raw = str(row.get("label", "")).strip()
    try:
        label = int(raw)
    except ValueError:
        return f"{where}: label {raw!r} is not an integer. Fix: write the score on {c.name}'s scale as a whole number."
    if not c.scale_min <= label <= c.scale_max:
        return f"{where}: label {label} outside {c.name}'s scale {c.scale_min}..{c.scale_max}."
    return (str(row["request_id"]), str(row["arm"]), c.name), label


def load_annotations(path: str | Path, rubric: Rubric) -> dict[tuple[str, str, str], int]:
    """(request_id, arm, criterion) -> human label, checked against the rubric.

    Raises:
        JudgeError: missing file or columns, a bad row (arm, criterion, label) or a repeated key; every
            problem (up to 20) is listed with its row number (the header is not counted) and the fix.
    """
    path = Path(path)
    if not path.is_file():
        raise JudgeError(f"annotation file {path} does not exist. Fix: set judge.annotations to a CSV or Parquet "
                         f"file with columns {', '.join(COLUMNS)}, or to null.")
    rows = _read(path)
    missing = [c for c in COLUMNS if not rows or c not in rows[0]]
    if missing:
        raise JudgeError(f"{path}: missing column(s) {missing}; expected {list(COLUMNS)} (header row in CSV). "
                         "See docs/judge.md, 'Calibration'.")
    out: dict[tuple[str, str, str], int] = {}
    errors = []
    for i, row in enumerate(rows):
        if row.get("criterion") in (PREFERENCE, GOLDEN):
            continue  # pairwise labels: load_preferences; golden promotions: harness.annotate
        checked = _check_row(i, row, rubric)
        if isinstance(checked, str):
            errors.append(checked)
        elif checked[0] in out:
            errors.append(f"row {i + 1}: a second label for {checked[0]}. Fix: keep one label per request, arm and "
                          "criterion (aggregate annotators first).")
        else:
            out[checked[0]] = checked[1]
    if errors:
        more = f"\n  ... and {len(errors) - MAX_ERRORS} more" if len(errors) > MAX_ERRORS else ""
        raise JudgeError(f"{path}: {len(errors)} bad annotation row(s):\n  " + "\n  ".join(errors[:MAX_ERRORS]) + more)
    return out


def load_preferences(path: str | Path) -> dict[str, str]:
    """request_id -> the human's pairwise preference (``baseline``, ``candidate`` or ``tie``): the file's rows with
    ``criterion`` ``preference`` (module docstring); empty when it has none.

    Raises:
        JudgeError: missing file or columns, a bad label or a repeated request id, each with its row number and fix.
    """
    path = Path(path)
    if not path.is_file():
        raise JudgeError(f"annotation file {path} does not exist. Fix: set judge.annotations to a CSV or Parquet "
                         f"file with columns {', '.join(COLUMNS)}, or to null.")
    rows = _read(path)
    missing = [c for c in ("request_id", "criterion", "label") if not rows or c not in rows[0]]
    if missing:
        raise JudgeError(f"{path}: missing column(s) {missing}; expected {list(COLUMNS)} (header row in CSV). "
                         "See docs/judge.md, 'Calibration'.")
    out: dict[str, str] = {}
    errors = []
    for i, row in enumerate(rows):
        if row.get("criterion") != PREFERENCE:
            continue
        rid, label = str(row.get("request_id") or ""), str(row.get("label") or "").strip()
        where = f"row {i + 1} (request_id {rid!r}), field label"
        if not rid:
            errors.append(f"row {i + 1}: empty request_id. Fix: give the traffic's request id.")
        elif label not in PREFERENCE_LABELS:
            errors.append(f"{where}: {label!r} is not a preference. Fix: write one of {', '.join(PREFERENCE_LABELS)} "
                          "(the arm whose output the person preferred).")
        elif rid in out:
            errors.append(f"row {i + 1}: a second preference for request {rid!r}. Fix: keep one per request "
                          "(aggregate annotators first).")
        else:
            out[rid] = label
    if errors:
        more = f"\n  ... and {len(errors) - MAX_ERRORS} more" if len(errors) > MAX_ERRORS else ""
        raise JudgeError(f"{path}: {len(errors)} bad preference row(s):\n  " + "\n  ".join(errors[:MAX_ERRORS]) + more)
    return out


def agreement_rows(scores: Iterable[dict[str, Any]], labels: dict[tuple[str, str, str], int], rubric: Rubric,
                   bar: float, min_n: int, level: float = 0.95) -> list[dict[str, Any]]:
    """One row per criterion: n matched pairs, exact agreement, kappa, weighted kappa, Spearman, calibrated.

    ``scores`` are rows of ``judge_scores`` (request_id, arm, criterion, score); unscored ones are left out.
    A criterion is calibrated (admitted) when the LOWER bound of its weighted kappa's ``level`` interval
    (``kappa_interval``) is at least ``bar``, on at least ``min_n`` pairs; the exact agreement has a Wilson interval.
    """
    pairs: dict[str, tuple[list[int], list[int]]] = {c.name: ([], []) for c in rubric.criteria}
    for s in scores:
        label = labels.get((s["request_id"], s["arm"], s["criterion"]))
        if label is not None and s["score"] is not None and s["criterion"] in pairs:
            pairs[s["criterion"]][0].append(int(s["score"]))
            pairs[s["criterion"]][1].append(label)
    out = []
    for c in rubric.criteria:
        judge, human = pairs[c.name]
        n = len(judge)
        row: dict[str, Any] = {"criterion": c.name, "metric": c.metric, "n": n, "exact": None, "kappa": None,
                               "weighted_kappa": None, "spearman": None, "exact_low": None, "exact_high": None,
                               "weighted_kappa_low": None, "weighted_kappa_high": None}
        if n:
            lo, hi = kappa_interval(judge, human, c.scale, level, weighted=True)
            row |= {"exact": exact_agreement(judge, human), "kappa": cohen_kappa(judge, human, c.scale),
                    "weighted_kappa": weighted_kappa(judge, human, c.scale), "spearman": spearman(judge, human),
                    "weighted_kappa_low": lo, "weighted_kappa_high": hi}
            hits = sum(x == y for x, y in zip(judge, human, strict=True))
            row["exact_low"], row["exact_high"] = wilson(hits, n, level)
        wk, low = row["weighted_kappa"], row["weighted_kappa_low"]
        row["calibrated"] = n >= min_n and low is not None and low >= bar
        row["reason"] = ("" if row["calibrated"] else f"only {n} annotated pairs (< {min_n})" if n < min_n
                         else f"weighted kappa {'undefined' if wk is None else f'{wk:.3f}'}, lower bound "
                              f"{'undefined' if low is None else f'{low:.3f}'} < {bar}")
        out.append(row)
    return out
