"""``report.md``: verdict and reasons, signal and segment tables, throughput, figures, changed pairs.

Prompts and outputs are untrusted: they appear only inside fenced code blocks whose fence is longer
than any backtick run in the text, cut to ``max_chars``, so nothing in them renders as Markdown/HTML.
Table cells are escaped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from harness.report import ReportInput
from harness.report import divergence as div
from harness.report.common import (
    CHECK_HEADER,
    JUDGE_HEADER,
    JUDGE_NOTE,
    check_row,
    cut,
    families,
    judge_rows,
    redacted,
    segment_rows,
)


def fence(text: str, max_chars: int) -> str:
    """``text`` as an inert fenced block (fence longer than any backtick run inside)."""
    shown, more = cut(text, max_chars)
    text = shown + more
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}text\n{text}\n{ticks}"


def cell(value: Any) -> str:
    """A Markdown table cell: numbers formatted, text escaped and kept on one line."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    text = str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")
    return re.sub(r"([<>`*_\[\]])", r"\\\1", text)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def render(data: ReportInput, figures: Sequence[str],
           judge_pairwise: Sequence[Mapping[str, Any]] | None = None) -> str:
    """The whole report as Markdown; ``report.redact`` shows prompts and outputs as sha256 prefix + length."""
    opts, verdict, arms, divergence = data.manifest.spec.report, data.verdict, data.arms, data.divergence
    experiment, run_id, redact, max_chars = data.manifest.experiment, data.manifest.run_id, opts.redact, opts.max_chars
    summary, throughput = data.tables["summary"].to_pylist(), data.tables["throughput"].to_pylist()
    pairs = data.pairs

    def block(text: str) -> str:
        return fence(redacted(text) if redact else text, max_chars)

    out = [f"# Upgrade gate {cell(experiment)}: **{verdict.verdict}** ({verdict.direction})", "",
           f"Run {cell(run_id)}. Baseline: {cell(arms['baseline'])}. Candidate: {cell(arms['candidate'])}.", "",
           f"Signal families: {cell(families(verdict))}.", "", "## Reasons", ""]
    out += [f"- {cell(r)}" for r in verdict.reasons] or ["- No gated metric breached its margin."]
    out += ["", "## Signals (all requests)", "",
            "Paired over the requests both arms answered; CI: paired bootstrap; p: the paired test (McNemar for 0/1 "
            "metrics, Wilcoxon otherwise), one-sided, adjusted within the family; n req.: pairs needed to detect "
            "the margin with 80% power (golden, judge).", "",
            _table(CHECK_HEADER, [check_row(c) for c in verdict.checks]), ""]
    out += ["## Segments", "", "Gated per segment too (the p-values are adjusted over all segments of a family).",
            "", _table(*segment_rows([c.metric for c in verdict.checks if c.family != "drift"], summary)), ""]
    flagged = [c for c in verdict.segment_checks if c.status in ("breach", "improved", "advisory")]
    if flagged:
        out += ["Segments that breached or improved:", "", _table(CHECK_HEADER, [check_row(c) for c in flagged]), ""]
    if divergence is not None:
        out += ["## Divergence (embedding drift)", "", cell(div.summary(divergence)), "", div.NOTE, "",
                _table(div.HEADER, div.rows(divergence)), ""]
    if judge_pairwise:
        out += ["## Judge: pairwise preference", "", JUDGE_NOTE, "",
                _table(JUDGE_HEADER, judge_rows(judge_pairwise)), ""]
    out += ["## Throughput (engine time, load excluded)", "",
            _table(["arm", "generated", "from cache", "output tokens", "seconds", "requests/s", "output tokens/s"],
                   [[t["arm"], t["requests"], t.get("cached"), t["output_tokens"], t["seconds"], t["requests_per_s"],
                     t["output_tokens_per_s"]] for t in throughput]), ""]
    out += ["## Figures", ""] + [f"![{f}]({f})" for f in figures] + [""]
    out += ["## Most changed pairs", ""]
    if not pairs:
        out += ["No output changed.", ""]
    for p in pairs:
        out += [f"### {cell(p['request_id'])} ({cell(p['segment'])}, {p['chars_delta']:+d} chars)", "",
                "Prompt:", block(data.prompt(p["request_id"])), "",
                "Baseline:", block(p["baseline_output"] or ""), "",
                "Candidate:", block(p["candidate_output"] or ""), ""]
    out += ["## Files", "", "`report.html` (this report, self-contained, with word-level diffs and the manifest), "
            "`verdict.json` (verdict, breaches, manifest), `summary.parquet`, `signals.parquet`, "
            "`generations/`, `batches/`, `manifest.json`.", ""]
    return "\n".join(out)


def render_ticket(data: ReportInput, attachments: Sequence[str], max_reasons: int = 5) -> str:
    """A summary sized for a ticket comment: verdict, the top reasons, the files to attach."""
    verdict, arms, experiment, run_id = data.verdict, data.arms, data.manifest.experiment, data.manifest.run_id
    reasons = [f"- {cell(r)}" for r in verdict.reasons[:max_reasons]]
    if len(verdict.reasons) > max_reasons:
        reasons.append(f"- ... and {len(verdict.reasons) - max_reasons} more in report.html")
    return "\n".join([
        f"**Model upgrade gate: {verdict.verdict}** ({verdict.direction}; {cell(experiment)}, run {cell(run_id)})",
        "", f"Signal families: {cell(families(verdict))}.", "",
        f"Baseline {cell(arms['baseline'])} vs candidate {cell(arms['candidate'])}.", "",
        *(reasons or ["- No gated metric breached its margin."]), "",
        "Attached: " + ", ".join(cell(a) for a in attachments), ""])
