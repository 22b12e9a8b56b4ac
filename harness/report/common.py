"""What the Markdown and HTML reports share: how texts are cut and redacted, the check rows, the segment x metric
grid, the throughput rows and the judge rows, every number in its metric's unit (``harness.report.units``)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from harness.report.units import Units, num, p_value


def cut(text: str, max_chars: int) -> tuple[str, str]:
    """``text`` cut to ``max_chars`` and the marker to show after it ("" when nothing was cut)."""
    if len(text) <= max_chars:
        return text, ""
    return text[:max_chars], f"... [{len(text) - max_chars} more chars]"


def redacted(text: str) -> str:
    """What a redacted report shows instead of ``text``: its sha256 prefix and its length."""
    return f"sha256:{hashlib.sha256(text.encode()).hexdigest()[:12]} ({len(text)} chars)"


STATUS_CLASS = {"breach": "breach", "improved": "improved", "advisory": "warn", "not_significant": "warn",
                "inconclusive": "warn",
                "too_few": "few"}
"""CSS class per check status: breach red, improved green, advisory and inconclusive amber, ok plain."""
STATUS_TEXT = {"breach": "breach", "improved": "improved", "advisory": "advisory", "not_significant": "not sig.",
               "inconclusive": "inconclusive",
               "too_few": "too few", "ok": "ok"}

CHECK_HEADER = ["family", "metric", "segment", "n", "baseline", "candidate", "delta", "95% CI", "test", "p (adj.)",
                "margin", "n req.", "status"]
OVERALL_HEADER = [h for h in CHECK_HEADER if h != "segment"]


def count(x: Any) -> str:
    """An integer count with thousands separators (DuckDB sums arrive as ``Decimal``)."""
    if x is None:
        return ""
    return f"{int(x):,}" if isinstance(x, int | Decimal) or float(x).is_integer() else num(float(x))


def check_row(c: Any, units: Units, segment: bool = True) -> list[str]:
    """One gate check as a table row (Markdown and HTML), every number in the metric's unit; ``segment`` False:
    without the segment column (``OVERALL_HEADER``)."""
    unit = units.of(c)
    return [c.family, c.metric, *([c.segment or "all"] if segment else []), count(c.n), unit.value(c.baseline),
            unit.value(c.candidate), units.change(c), unit.ci(c.ci_low, c.ci_high), c.test, p_value(c.p_value),
            units.margin(c), count(c.n_required), STATUS_TEXT.get(c.status, c.status)]


def families(verdict: Any) -> str:
    """``stats: breached, golden: ok, ...`` for the ticket."""
    return ", ".join(f"{k}: {v}" for k, v in sorted(verdict.families.items())) or "none gated"


def grid(verdict: Any) -> tuple[list[str], list[tuple[str, str, list[Any]]]]:
    """The segment x metric view: header (``all`` then each segment) and per gated metric ``(family, metric,
    checks)``, one check (or None: not gated there) per column."""
    checks = [*verdict.checks, *verdict.segment_checks]
    segments = sorted({str(c.segment) for c in verdict.segment_checks})
    metrics = list(dict.fromkeys((c.family, c.metric) for c in checks))
    at = {(c.family, c.metric, "all" if c.segment is None else str(c.segment)): c for c in checks}
    rows = [(f, m, [at.get((f, m, s)) for s in ("all", *segments)]) for f, m in metrics]
    return ["all", *segments], rows


def grid_cell(c: Any, units: Units) -> tuple[str, str]:
    """A grid cell's two lines: ``baseline -> candidate`` and the change with its status (ok says nothing)."""
    status = "" if c.status == "ok" else f"; {STATUS_TEXT.get(c.status, c.status)}"
    return units.levels(c), units.change(c) + status


THROUGHPUT_HEADER = ["arm", "batches", "generated", "from cache", "prompt tokens", "output tokens", "engine s",
                     "requests/s", "output tokens/s"]
IMPORTED_NOTE = "imported outputs: no throughput (read from a file, no engine time)"


def throughput_rows(throughput: Sequence[Mapping[str, Any]], imported: Sequence[str]) -> list[list[str]]:
    """Per replayed arm its engine counts and rates; imported arms are left out (``IMPORTED_NOTE``), an arm served
    entirely from the cache says so instead of rates."""
    out = []
    for t in throughput:
        if t.get("arm") in imported:
            continue
        rates = [num(t.get("requests_per_s")), num(t.get("output_tokens_per_s"))]
        if t.get("requests_per_s") is None:
            rates = ["all from cache", ""] if t.get("cached") else ["no engine time", ""]
        out.append([str(t.get("arm")), count(t.get("batches")), count(t.get("requests")), count(t.get("cached") or 0),
                    count(t.get("prompt_tokens")), count(t.get("output_tokens")), num(t.get("seconds")), *rates])
    return out


def throughput_note(imported: Sequence[str]) -> str:
    """The sentence that replaces the rates of imported arms ("" when no arm is imported)."""
    return f"{', '.join(imported)}: {IMPORTED_NOTE}." if imported else ""


LATENCY_HEADER = ["arm", "measured", "TTFT p50 / p90 / p99", "inter-token p50 / p90", "end to end p50 / p90 / p99"]
LATENCY_NOTE = ("Per request, streamed by the server backend: time to first token (TTFT), mean time per output token "
                "after the first, and send-to-last-token latency, over the requests generated in this run (cached "
                "ones carry none).")


def latency_rows(latency: Sequence[Mapping[str, Any]] | None) -> list[list[str]]:
    """The latency percentiles (``latency.parquet``) per arm, in milliseconds; [] when nothing was measured."""
    def ms(t: Mapping[str, Any], *keys: str) -> str:
        return " / ".join("" if t.get(k) is None else f"{1000 * t[k]:.1f}" for k in keys) + " ms"

    return [[str(t["arm"]), count(t["measured"]), ms(t, "ttft_p50_s", "ttft_p90_s", "ttft_p99_s"),
             ms(t, "itl_p50_s", "itl_p90_s"), ms(t, "latency_p50_s", "latency_p90_s", "latency_p99_s")]
            for t in (latency or []) if t.get("segment") is None]


LOAD_HEADER = ["arm", "sent / not sent / errors", "send lateness p50 / p99", "scheduled / achieved req/s",
               "goodput req/s", "saturated", "latency trusted"]
LOAD_NOTE = ("Open-loop timed replay (replay.load): each request sent at its scheduled time, never waiting for earlier "
             "answers. Lateness = actual - scheduled send; goodput = requests meeting every SLO per second of "
             "makespan; saturated = TTFT rising through the run. Untrusted latency (fidelity bound broken, or the arms "
             "saw different schedules) is reported, never gated.")


def load_rows(load: Sequence[Mapping[str, Any]] | None, section: Mapping[str, Any] | None) -> list[list[str]]:
    """The timed replay's fidelity and load per arm (``load.parquet``, the latency family's section); [] when the run
    was closed loop."""
    def ms(x: float | None) -> str:
        return "" if x is None else f"{1000 * x:.1f} ms"

    def rate(x: float | None) -> str:
        return "" if x is None else f"{x:.3g}"

    sec = section or {}
    arms = sec.get("arms", {})
    trusted = "yes" if sec.get("trusted", True) else "no: " + "; ".join(sec.get("untrusted_because", []))
    return [[str(t["arm"]), f"{t['sent']} / {t['not_sent']} / {t['errors']}",
             f"{ms(t['lateness_p50_s'])} / {ms(t['lateness_p99_s'])}",
             f"{rate(t['scheduled_rps'])} / {rate(t['achieved_rps'])}", rate(t["goodput_rps"]),
             "yes" if arms.get(t["arm"], {}).get("saturation", {}).get("flagged") else "no", trusted]
            for t in (load or [])]


JUDGE_HEADER = ["segment", "n", "candidate wins", "ties", "baseline wins", "inconsistent", "unscored",
                "inconsistency rate"]
JUDGE_NOTE = ("Pairwise judge, both orders: a preference counts only when (A, B) and (B, A) agree; the inconsistency "
              "rate measures the judge's position bias.")


def judge_rows(rows: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
    """The pairwise judge summary (``judge_pairwise_summary.parquet``) as table rows."""
    return [[r["segment"] or "all", count(r["n"]), count(r["wins"]), count(r["ties"]), count(r["losses"]),
             count(r["inconsistent"]), count(r["unscored"]),
             "" if r["inconsistency_rate"] is None else f"{r['inconsistency_rate']:.1%}"] for r in rows]
