"""``report.md``: verdict, scorecard and grouped reasons, signal and segment tables, drift, judge, throughput,
figures, the most changed pairs (deduplicated, labelled, by segment) and every reason the gate wrote.

Prompts and outputs are untrusted: they appear only inside fenced code blocks whose fence is longer
than any backtick run in the text, cut to ``max_chars``, so nothing in them renders as Markdown/HTML.
Table cells are escaped.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from harness.report import divergence as div
from harness.report.common import (
    CHECK_HEADER,
    JUDGE_HEADER,
    JUDGE_NOTE,
    LATENCY_HEADER,
    LATENCY_NOTE,
    LOAD_HEADER,
    LOAD_NOTE,
    OVERALL_HEADER,
    THROUGHPUT_HEADER,
    check_row,
    cut,
    families,
    grid,
    grid_cell,
    judge_rows,
    latency_rows,
    load_rows,
    redacted,
    throughput_note,
    throughput_rows,
)
from harness.report.data import ReportInput
from harness.report.scorecard import family_notes, grouped_reasons, meaning, tile_segments, tiles
from harness.report.units import Units

if TYPE_CHECKING:
    from harness.gate import Verdict

MAX_REASONS = 5


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


def md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _scorecard(data: ReportInput, units: Units) -> list[str]:
    rows = []
    for t in tiles(data.verdict, data.manifest.spec.signals, family_notes(data.divergence)):
        c = t.headline
        if c is None:
            rows.append([t.family, t.status, t.note, "", ""])
            continue
        where = "" if c.segment is None else f" [{c.segment}]"
        rows.append([t.family, t.status, f"{c.metric}{where}: {units.levels(c)}",
                     f"{units.change(c)} {units.of(c).ci(c.ci_low, c.ci_high)}",
                     tile_segments(t) + (f"; {t.note}" if t.note else "")])
    return [md_table(["family", "status", "headline", "delta (95% CI)", "segments"], rows)] if rows else []


def _grid(verdict: Verdict, units: Units) -> str:
    header, rows = grid(verdict)
    body = []
    for family, metric, checks in rows:
        cells = [family, metric]
        for c in checks:
            levels, change = grid_cell(c, units) if c is not None else ("", "")
            cells.append(f"{levels}, {change}" if c is not None else "")
        body.append(cells)
    return md_table(["family", "metric", *header], body)


def _pairs(data: ReportInput, block: Callable[[str], str]) -> list[str]:
    pairs = data.pairs
    if not pairs:
        return ["No output changed.", ""]
    out = ["One entry per request and per distinct prompt and outputs, labelled with the signals that flag it.", ""]
    segment: object = object()
    for p in pairs:
        if p.segment != segment:
            segment = p.segment
            out += [f"### Segment {cell(p.segment or '(none)')}", ""]
        out += [f"#### {cell(p.request_id)}", ""]
        out += ["Flags: " + ", ".join(cell(lb.text) for lb in p.labels), ""] if p.labels else []
        if p.same:
            more = f" and {len(p.same) - 3} more" if len(p.same) > 3 else ""
            out += [f"Same prompt and outputs, not shown again: {', '.join(cell(r) for r in p.same[:3])}{more}.", ""]
        out += ["Prompt:", block(data.prompt(p.request_id)), "", "Baseline:", block(p.baseline_output), "",
                "Candidate:", block(p.candidate_output), ""]
    return out


def render(data: ReportInput, figures: Sequence[str],
           judge_pairwise: Sequence[Mapping[str, Any]] | None = None) -> str:
    """The whole report as Markdown; ``report.redact`` shows prompts and outputs as sha256 prefix + length."""
    opts, verdict, arms, divergence = data.manifest.spec.report, data.verdict, data.arms, data.divergence
    experiment, run_id, redact, max_chars = data.manifest.experiment, data.manifest.run_id, opts.redact, opts.max_chars
    units = Units(data.tables["summary"].to_pylist())

    def block(text: str) -> str:
        return fence(redacted(text) if redact else text, max_chars)

    out = [f"# Upgrade gate {cell(experiment)}: **{verdict.verdict}** ({verdict.direction})", "",
           cell(meaning(verdict)), "",
           f"Run {cell(run_id)}. Baseline: {cell(arms['baseline'])}. Candidate: {cell(arms['candidate'])}.", ""]
    out += [cell(data.ci_line), ""] + _signoff_lines(data)
    out += [*_scorecard(data, units), "", "## Reasons", ""]
    lines = grouped_reasons(verdict, units)
    out += [f"- {cell(r)}" for r in lines[:MAX_REASONS]] or ["- No gated metric breached its margin."]
    if len(lines) > MAX_REASONS:
        out.append(f"- ... and {len(lines) - MAX_REASONS} more: all reasons at the end of this report")
    out += ["", "## Signals (all requests)", "",
            "Paired over the requests both arms answered; CI: paired bootstrap; p: the paired test (McNemar for 0/1 "
            "metrics, Wilcoxon otherwise), one-sided, adjusted within the family; n req.: pairs needed to detect "
            "the margin with 80% power (golden, judge). Rates in percent, their changes in points (pts).", "",
            md_table(OVERALL_HEADER, [check_row(c, units, segment=False) for c in verdict.checks]), ""]
    out += ["## Segments", "", "Every gated metric per segment: baseline -> candidate, the change and its status "
            "when not ok (gated per segment too; the p-values are adjusted over all segments of a family).", "",
            _grid(verdict, units), ""]
    flagged = [c for c in verdict.segment_checks if c.status in ("breach", "improved", "advisory")]
    if flagged:
        out += ["Segments that breached or improved:", "",
                md_table(CHECK_HEADER, [check_row(c, units) for c in flagged]), ""]
    if divergence is not None:
        out += ["## Divergence (embedding drift)", "", cell(div.summary(divergence)), "", div.note(divergence), "",
                md_table(div.header(divergence), div.rows(divergence)), ""]
    if judge_pairwise:
        out += ["## Judge: pairwise preference", "", JUDGE_NOTE, "",
                md_table(JUDGE_HEADER, judge_rows(judge_pairwise)), ""]
    out += fidelity_lines(data.sections.get("fidelity"))
    out += _sampling_lines(data.sections.get("sampling"))
    rows, note = throughput_rows(data.tables["throughput"].to_pylist(), data.imported_arms), \
        throughput_note(data.imported_arms)
    out += ["## Throughput (engine time, load excluded)", ""] + ([cell(note), ""] if note else [])
    out += [md_table(THROUGHPUT_HEADER, rows), ""] if rows else []
    latency = latency_rows(data.tables["latency"].to_pylist() if "latency" in data.tables else None)
    out += ["### Latency", "", LATENCY_NOTE, "", md_table(LATENCY_HEADER, latency), ""] if latency else []
    load = load_rows(data.tables["load"].to_pylist() if "load" in data.tables else None, data.sections.get("latency"))
    out += ["### Load", "", LOAD_NOTE, "", md_table(LOAD_HEADER, load), ""] if load else []
    out += ["## Figures", ""] + [f"![{f}]({f})" for f in figures] + [""]
    out += ["## Most changed pairs", "", *_pairs(data, block)]
    if verdict.reasons:
        out += ["## All reasons", "", "One per metric and segment, as the gate wrote them.", ""]
        out += [f"- {cell(r)}" for r in verdict.reasons] + [""]
    out += ["## Files", "", "`report.html` (this report, self-contained, with word-level diffs and the manifest), "
            "`verdict.json` (verdict, breaches, manifest), `summary.parquet`, `signals.parquet`, "
            "`generations/`, `batches/`, `manifest.json`.", ""]
    return "\n".join(out)


SAMPLING_NOTE = ("Per parameter the first that is set wins: the arm's override, the value the traffic captured, the "
                 "arm's default_*, the checkpoint's generation_config.json (what a vLLM server applies), then greedy "
                 "/ 1.0 / up to max_model_len. Requests replayed with a fallback did not run as production did "
                 "unless production used the same default.")


FIDELITY_HEADER = ["compared with the baseline", "requests", "identical", "cosine mean", "cosine p5",
                   "length ratio (median)"]


def fidelity_rows(found: Mapping[str, Any]) -> list[list[Any]]:
    def row(name: str, s: Mapping[str, Any]) -> list[Any]:
        share = s["identical_share"]
        return [name, s["n"], None if share is None else f"{100 * share:.1f}%", s["cosine_mean"], s["cosine_p5"],
                s["length_ratio_median"]]

    rows = [row("production (captured responses)", found["production"])]
    if found.get("aa"):
        rows.append(row("A/A arm (the level a replay reaches)", found["aa"]))
    return rows


def fidelity_summary(found: Mapping[str, Any]) -> str:
    level = "the A/A level" if found.get("aa") else (
        "no separate A/A level: production's responses are the A/A capture (drift.aa_imported=traffic); absolute "
        "reading" if found.get("aa_is_production") else "no A/A level (absolute reading)")
    verdict = "reproduces production" if found["reproduces"] else "does NOT reproduce production"
    return f"The replayed baseline {verdict} (against {level})."


def fidelity_lines(found: Mapping[str, Any] | None) -> list[str]:
    """The production-fidelity section ([] when the traffic carries no production responses)."""
    if not found:
        return []
    out = ["## Production fidelity", "", cell(fidelity_summary(found)), "",
           md_table(FIDELITY_HEADER, fidelity_rows(found)), ""]
    if found["check"]:
        out += ["What to check:", ""] + [f"- {cell(c)}" for c in found["check"]] + [""]
    return out


def sampling_rows(sampling: Mapping[str, Any] | None) -> list[list[Any]]:
    """Per arm and parameter: requests per source (``harness.replay.ledger.SOURCES``)."""
    from harness.replay.ledger import SOURCES

    rows = []
    for arm, found in (sampling or {}).items():
        for param, by_source in found["params"].items():
            rows.append([arm, param, *(by_source.get(s, 0) for s in SOURCES)])
    return rows


def _sampling_lines(sampling: Mapping[str, Any] | None) -> list[str]:
    if not sampling:
        return []
    from harness.replay.ledger import SOURCES

    fallbacks = ", ".join(f"{a} {v['fallback']} of {v['requests']}" for a, v in sampling.items())
    first = next(iter(sampling.values()))
    kept = (f"Captured n > 1: {first.get('n_above_1', 0)} requests (one choice replayed). Tool calling: "
            f"{first.get('tools_not_replayed', 0)} requests kept in the traffic and not replayed (error rows).")
    return ["## Sampling as replayed", "", f"Requests replayed with a fallback value: {cell(fallbacks)}. {kept}", "",
            SAMPLING_NOTE, "", md_table(["arm", "parameter", *SOURCES], sampling_rows(sampling)), ""]


def _signoff_lines(data: ReportInput) -> list[str]:
    """The sign-off section (who accepted the verdict, when and why); [] when nobody signed off."""
    if not data.signoffs:
        return []
    rows = [[s.at, s.by, s.verdict, s.note] for s in data.signoffs]
    return ["## Sign-off", "", md_table(["when (UTC)", "by", "verdict accepted", "note"], rows), ""]


PR_COMMENT_LIMIT = 60_000  # GitHub refuses comments over 65,536 characters


def render_pr_comment(data: ReportInput, max_reasons: int = 8) -> str:
    """``pr_comment.md``: the verdict, the CI decision, the sign-off, the top reasons and the families, sized for a
    pull-request (or merge-request) comment; every untrusted value escaped for Markdown."""
    verdict, arms = data.verdict, data.arms
    units = Units(data.tables["summary"].to_pylist())
    lines = grouped_reasons(verdict, units)
    out = [f"### Model upgrade gate: **{verdict.verdict}** ({verdict.direction})", "",
           md_table(["experiment", "run", "baseline", "candidate", "CI"],
                    [[data.manifest.experiment, data.manifest.run_id, arms["baseline"], arms["candidate"],
                      data.ci_line.removeprefix("CI: ")]]), "",
           cell(meaning(verdict)), ""]
    out += _signoff_lines(data)
    out += [f"- {cell(r)}" for r in lines[:max_reasons]] or ["- No gated metric breached its margin."]
    if len(lines) > max_reasons:
        out += ["", f"<details><summary>{len(lines) - max_reasons} more reasons</summary>", ""]
        out += [f"- {cell(r)}" for r in lines[max_reasons:]] + ["", "</details>"]
    out += ["", f"Signal families: {cell(families(verdict))}. Full report: `report.html` in the run directory "
            f"({cell(data.manifest.spec.output_dir)}/{cell(data.manifest.experiment)}/{cell(data.manifest.run_id)}).",
            ""]
    text = "\n".join(out)
    return text if len(text) <= PR_COMMENT_LIMIT else text[:PR_COMMENT_LIMIT] + "\n\n... (cut; see report.html)\n"


def render_ticket(data: ReportInput, attachments: Sequence[str], max_reasons: int = 5) -> str:
    """A summary sized for a ticket comment: verdict, the top grouped reasons, the files to attach."""
    verdict, arms, experiment, run_id = data.verdict, data.arms, data.manifest.experiment, data.manifest.run_id
    lines = grouped_reasons(verdict, Units(data.tables["summary"].to_pylist()))
    reasons = [f"- {cell(r)}" for r in lines[:max_reasons]]
    if len(lines) > max_reasons:
        reasons.append(f"- ... and {len(lines) - max_reasons} more in report.html")
    return "\n".join([
        f"**Model upgrade gate: {verdict.verdict}** ({verdict.direction}; {cell(experiment)}, run {cell(run_id)})",
        "", f"Signal families: {cell(families(verdict))}.", "",
        f"Baseline {cell(arms['baseline'])} vs candidate {cell(arms['candidate'])}.", "",
        *(reasons or ["- No gated metric breached its margin."]), "",
        "Attached: " + ", ".join(cell(a) for a in attachments), ""])
