"""What the Markdown and HTML reports share: how texts are cut and redacted, and the per-segment pivot."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any


def cut(text: str, max_chars: int) -> tuple[str, str]:
    """``text`` cut to ``max_chars`` and the marker to show after it ("" when nothing was cut)."""
    if len(text) <= max_chars:
        return text, ""
    return text[:max_chars], f"... [{len(text) - max_chars} more chars]"


def redacted(text: str) -> str:
    """What a redacted report shows instead of ``text``: its sha256 prefix and its length."""
    return f"sha256:{hashlib.sha256(text.encode()).hexdigest()[:12]} ({len(text)} chars)"


def _arrow(row: Mapping[str, Any]) -> str:
    base, cand = row["baseline"], row["candidate"]
    return f"{base:.3g} -> {cand:.3g}" if base is not None and cand is not None else ""


def segment_rows(metrics: Sequence[str], summary: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of the per-segment view: one row per segment, one column per metric that applies
    somewhere, each cell ``baseline -> candidate`` (blank: not applicable)."""
    values = {(r["segment"], r["metric"]): _arrow(r) for r in summary if r["segment"] is not None}
    segments = sorted({r["segment"] for r in summary if r["segment"] is not None})
    used = [m for m in metrics if any((s, m) in values for s in segments)]
    return ["segment", *used], [[s, *(values.get((s, m)) for m in used)] for s in segments]


CHECK_HEADER = ["family", "metric", "segment", "n", "baseline", "candidate", "delta", "95% CI", "test", "p (adj.)",
                "margin", "n req.", "status"]


def check_row(c: Any) -> list[Any]:
    """One gate check as a table row (Markdown and HTML)."""
    return [c.family, c.metric, c.segment or "all", c.n, c.baseline, c.candidate, f"{c.delta:+.3g}",
            f"[{c.ci_low:+.3g}, {c.ci_high:+.3g}]", c.test, f"{c.p_value:.2g}", c.threshold,
            c.n_required if c.n_required is not None else "", c.status]


def families(verdict: Any) -> str:
    """``stats: breached, golden: ok, ...`` for the banner."""
    return ", ".join(f"{k}: {v}" for k, v in sorted(verdict.families.items())) or "none gated"


JUDGE_HEADER = ["segment", "n", "candidate wins", "ties", "baseline wins", "inconsistent", "unscored",
                "inconsistency rate"]
JUDGE_NOTE = ("Pairwise judge, both orders: a preference counts only when (A, B) and (B, A) agree; the inconsistency "
              "rate measures the judge's position bias.")


def judge_rows(rows: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
    """The pairwise judge summary (``judge_pairwise_summary.parquet``) as table rows."""
    return [[r["segment"] or "all", r["n"], r["wins"], r["ties"], r["losses"], r["inconsistent"], r["unscored"],
             r["inconsistency_rate"]] for r in rows]
