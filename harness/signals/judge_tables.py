"""From the judge's files to its results: signal rows, the pairwise summary (DuckDB), agreement with humans.

Every function here reads tables written by a judge pass (``judge_scores``, ``judge_pairwise``) and needs no
engine, so a report can be rebuilt from the run directory.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import pyarrow as pa

from harness.signals.agreement import agreement_rows, load_annotations, load_preferences
from harness.signals.base import SIGNAL_SCHEMA
from harness.signals.judge_admission import (
    Bar,
    PairJudgment,
    admit_pairwise,
    consistency,
    length_bias,
    position_bias,
)
from harness.signals.judge_prompts import Rubric

SQL = Path(__file__).resolve().parents[1] / "analysis" / "judge_pairwise.sql"
AGREEMENT_SCHEMA = pa.schema([
    ("criterion", pa.string()), ("metric", pa.string()), ("n", pa.int64()), ("exact", pa.float64()),
    ("kappa", pa.float64()), ("weighted_kappa", pa.float64()), ("spearman", pa.float64()),
    ("calibrated", pa.bool_()), ("reason", pa.string()), ("exact_low", pa.float64()), ("exact_high", pa.float64()),
    ("weighted_kappa_low", pa.float64()), ("weighted_kappa_high", pa.float64())])


def _row(rid: str, arm: str, segment: str, metric: str, value: float | None) -> dict[str, Any]:
    return {"request_id": rid, "arm": arm, "segment": segment, "metric": metric, "value": value}


def _judgment(p: dict[str, Any], human: str | None = None, lengths: tuple[int, ...] = (0, 0)) -> PairJudgment:
    return PairJudgment(p["request_id"], p["verdict_ab"], p["verdict_ba"], human, lengths[0], lengths[1],
                        p.get("confidence"))


def signal_rows(scores: pa.Table, pairwise: pa.Table | None, threshold: float | None = None) -> pa.Table:
    """Rows in ``SIGNAL_SCHEMA``: ``judge_<criterion>`` (score, null if unscored), ``judge_unscored`` (1 when any
    criterion of the answer is unscored) and ``judge_preferred`` (1 for the arm preferred in both orders, 0 for
    the other arm and on ties or inconsistent orders, null when an order is unscored).

    ``threshold`` (an admitted preference's selective-trust threshold): a pair whose confidence is below it, or whose
    orders disagree, is an abstention: null for both arms."""
    answers: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for s in scores.to_pylist():
        answers[(s["request_id"], s["arm"], s["segment"])].append(s)
    rows = []
    for (rid, arm, segment), crits in answers.items():
        rows += [_row(rid, arm, segment, f"judge_{c['criterion']}",
                      None if c["score"] is None else float(c["score"])) for c in crits]
        rows.append(_row(rid, arm, segment, "judge_unscored",
                         float(any(c["unscored_reason"] is not None for c in crits))))
    for p in (pairwise.to_pylist() if pairwise is not None else []):
        j = _judgment(p)
        conf = j.confidence if j.confidence is not None else consistency(j)
        abstain = threshold is not None and (conf < threshold or p["preference"] == "inconsistent")
        for arm in ("baseline", "candidate"):
            value = None if p["preference"] == "unscored" or abstain else float(p["preference"] == arm)
            rows.append(_row(p["request_id"], arm, p["segment"], "judge_preferred", value))
    return pa.Table.from_pylist(rows, schema=SIGNAL_SCHEMA)


def unscored_rate(scores: pa.Table, pairwise: pa.Table | None) -> tuple[int, int]:
    """(unusable, total) judge answers: pointwise answers with any unscored criterion, plus unscored pairwise orders."""
    bad: dict[tuple[str, str], bool] = {}
    for s in scores.to_pylist():
        key = (s["request_id"], s["arm"])
        bad[key] = bad.get(key, False) or s["unscored_reason"] is not None
    n_bad, n = sum(bad.values()), len(bad)
    for p in (pairwise.to_pylist() if pairwise is not None else []):
        n_bad += (p["reason_ab"] is not None) + (p["reason_ba"] is not None)
        n += 2
    return n_bad, n


def pairwise_summary(pairwise: pa.Table) -> pa.Table:
    """``harness/analysis/judge_pairwise.sql`` over the ``judge_pairwise`` table: win/tie/loss, inconsistency."""
    import duckdb

    con = duckdb.connect()
    try:
        con.register("judge_pairwise", pairwise)
        return con.sql(SQL.read_text()).to_arrow_table()
    finally:
        con.close()


def agreement(scores: pa.Table, rubric: Rubric, annotations: str | None, bar: float,
              min_n: int, level: float = 0.95) -> tuple[pa.Table | None, tuple[str, ...]]:
    """Per-criterion agreement with the annotation file (None without one) and the uncalibrated criteria.

    Without annotations every criterion is uncalibrated: nothing shows the judge agrees with people yet.
    """
    if not annotations:
        return None, tuple(c.name for c in rubric.criteria)
    labels = load_annotations(annotations, rubric)
    rows = agreement_rows(scores.to_pylist(), labels, rubric, bar, min_n, level)
    return (pa.Table.from_pylist(rows, schema=AGREEMENT_SCHEMA),
            tuple(r["criterion"] for r in rows if not r["calibrated"]))


def pairwise_admission(pairwise: pa.Table, lengths: dict[str, tuple[int, ...]], annotations: str | None, bar: Bar,
                       untrusted: bool = False, calibration: str | None = None,
                       rubric: Rubric | None = None) -> dict[str, Any]:
    """``judge_admission.admit_pairwise`` over the run's pairs joined with the annotation file's preference rows,
    plus the ``calibration`` file's labelled pairs that are not in the run (the same judge's verdicts elsewhere).

    Without preference labels nothing is measured against humans: not admitted, and the reason says so; the biases
    are still measured (on the run's pairs). ``untrusted`` (too many unscored answers) keeps it advisory whatever
    the agreement.
    """
    labels = load_preferences(annotations) if annotations else {}
    pairs = [_judgment(p, labels.get(p["request_id"]), lengths.get(p["request_id"], (0, 0)))
             for p in pairwise.to_pylist()]
    extra: list[PairJudgment] = []
    if calibration:
        from harness.signals.judge_import import load_imported
        from harness.signals.judge_prompts import Criterion

        imported = load_imported(calibration, rubric or Rubric("none", (Criterion("x", "unused"),)))
        seen = {p.request_id for p in pairs}
        extra = [PairJudgment(rid, v["verdict_ab"], v["verdict_ba"], labels[rid], confidence=v["confidence"])
                 for rid, v in sorted(imported.pairwise.items()) if rid not in seen and rid in labels]
    out = admit_pairwise(pairs + extra, bar)
    out["calibration_pairs"] = len(extra)
    out["disagreements"] = [{"request_id": p.request_id, "judge": p.preference, "human": p.human,
                             "verdict_ab": p.verdict_ab, "verdict_ba": p.verdict_ba, "confidence": p.confidence}
                            for p in pairs if p.human is not None and p.preference != p.human]
    if extra:  # the biases are the run's: its pairs only
        out["length_bias"], out["position_bias"] = length_bias(pairs, bar.level), position_bias(pairs, bar.level)
    if not labels:
        out["admitted"] = False
        out["reason"] = ("no human preference labels (judge.annotations rows with criterion preference): "
                         "the agreement is not measured")
    elif untrusted:
        out["admitted"] = False
        out["reason"] = "; ".join(x for x in ("too many unscored judge answers (judge.max_unscored)",
                                              out["reason"]) if x)
    return out
