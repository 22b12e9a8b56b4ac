"""``report.html``: the promotion-ticket report, one self-contained file that opens with no server.

Top of the page: the verdict, a scorecard (one tile per signal family) and at most five grouped reasons, the full
list folded below them. Then the signals, a segment x metric grid coloured by status, drift, judge, throughput,
figures, the most changed pairs (deduplicated, labelled, by segment, with a word-level diff) and the manifest.

Prompts, outputs, request ids, segments, names and config values are untrusted: every one goes through
``html.escape(..., quote=True)``. The page has no script and no event handler, loads nothing from outside
(figures are ``data:`` URIs) and carries a CSP that forbids anything else. ``redact=True`` replaces prompts
and outputs by their sha256 prefix and length. Layout: table cells never wrap (wide tables scroll inside their own
container, never the page); prompts and outputs wrap anywhere inside their ``<pre>``.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.gate import Verdict
from harness.report import divergence as div
from harness.report.common import (
    CHECK_HEADER,
    JUDGE_HEADER,
    JUDGE_NOTE,
    LATENCY_HEADER,
    LATENCY_NOTE,
    OVERALL_HEADER,
    STATUS_CLASS,
    THROUGHPUT_HEADER,
    check_row,
    grid,
    grid_cell,
    judge_rows,
    latency_rows,
    redacted,
    throughput_note,
    throughput_rows,
)
from harness.report.data import ReportInput
from harness.report.html_parts import esc, manifest_details, name, pairs_section, table, word_diff
from harness.report.scorecard import Tile, family_notes, grouped_reasons, meaning, tile_segments, tiles
from harness.report.units import Units

__all__ = ["CSP", "STYLE", "VERDICT_COLORS", "esc", "redacted", "render_html", "word_diff"]

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
VERDICT_COLORS = {"PASS": "#1e7b34", "INVESTIGATE": "#a86400", "ROLLBACK": "#b3261e",
                  "HOLD_FOR_SIGNOFF": "#1f5fa8", "INSUFFICIENT_DATA": "#616161"}
MAX_REASONS = 5
STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 0 auto; padding: 1rem; max-width: 1280px; color: #1b1b1b;
       overflow-wrap: anywhere; }
.banner { color: #fff; padding: .6rem 1rem; border-radius: 6px; }
.banner h1 { margin: 0 0 .2rem; font-size: 1.35rem; line-height: 1.25; }
.banner p { margin: .1rem 0; }
.banner .run { font-size: 12.5px; opacity: .92; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: .5rem; margin: .6rem 0; }
.tile { border: 1px solid #ccc; border-left: 6px solid #9e9e9e; border-radius: 6px; padding: .4rem .55rem;
        min-width: 0; line-height: 1.3; }
.tile.breached { border-left-color: #b3261e; background: #fdf0ef; }
.tile.improved { border-left-color: #1e7b34; background: #eef8f0; }
.tile.advisory { border-left-color: #a86400; background: #fff6e5; }
.tile .fam { font-weight: 700; }
.tile .st { font-weight: 400; font-size: 12px; text-transform: uppercase; letter-spacing: .03em; }
.tile .metric, .tile .small { font-size: 12px; color: #444; }
.tile .big { font-size: 1.15rem; font-weight: 700; }
.tile .big span { white-space: nowrap; }
.tile .big .u { font-size: .8rem; }
.nowrap { white-space: nowrap; }
#reasons ul { margin: .3rem 0; padding-left: 1.2rem; }
h2 { margin: 1.4rem 0 .4rem; font-size: 1.2rem; }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; margin: .5rem 0; }
th, td { border: 1px solid #ccc; padding: .25rem .5rem; text-align: left; vertical-align: top; white-space: nowrap;
         overflow-wrap: normal; font-variant-numeric: tabular-nums; }
th { background: #f2f2f2; }
td .d { font-size: 12px; }
.breach { background: #fbe3e1; }
.improved { background: #e1f3e5; }
.warn { background: #fff1d6; }
.few { color: #777; }
.legend span { padding: 0 .4rem; border: 1px solid #ccc; margin-right: .3rem; white-space: nowrap; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; word-break: break-word; margin: 0; padding: .5rem;
      background: #f7f7f7; border: 1px solid #ddd; border-radius: 4px; font-size: 12.5px; }
.changed { margin: .4rem 0 1.2rem; }
.changed h4 { margin: .3rem 0 .2rem; }
.tag { display: inline-block; font-size: 12px; padding: 0 .45rem; margin: 0 .3rem .2rem 0; border-radius: 9px;
       border: 1px solid #bbb; background: #f2f2f2; white-space: nowrap; }
.tag.worse { background: #fbe3e1; border-color: #e0a29c; }
.tag.better { background: #e1f3e5; border-color: #9ccaa6; }
.same { font-size: 12.5px; color: #444; margin: .1rem 0; }
.pair { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: .6rem; margin-top: .4rem; }
.pair h5, .prompt h5 { margin: .2rem 0; font-size: 13px; }
@media (max-width: 600px) { .pair { grid-template-columns: minmax(0, 1fr); } }
del { background: #fdd1cf; text-decoration: line-through; }
ins { background: #cdf0d3; text-decoration: none; }
img { max-width: 100%; height: auto; display: block; margin: .5rem 0; }
details { margin: .6rem 0; }
summary { cursor: pointer; }
"""


def _banner(experiment: str, run_id: str, verdict: Verdict, arms: Mapping[str, str]) -> str:
    color = VERDICT_COLORS.get(verdict.verdict, VERDICT_COLORS["INSUFFICIENT_DATA"])
    return (f'<section class="banner" id="verdict" style="background: {color}">'
            f"<h1>Upgrade gate {esc(experiment)}: {esc(verdict.verdict)} ({esc(verdict.direction)})</h1>"
            f"<p>{esc(meaning(verdict))}</p>"
            f'<p class="run">Run {esc(run_id)}. Baseline: {esc(arms.get("baseline"))}. '
            f"Candidate: {esc(arms.get('candidate'))}.</p></section>")


def _tile(t: Tile, units: Units) -> str:
    head = f'<div class="fam">{esc(t.family)} <span class="st">{esc(t.status)}</span></div>'
    c = t.headline
    if c is None:
        return f'<div class="tile {esc(t.status.replace(" ", "-"))}">{head}<div class="small">{esc(t.note)}</div></div>'
    unit = units.of(c)
    where = "" if c.segment is None else f" [{esc(c.segment)}]"
    number, suffix, rel = units.change_parts(c)
    big = f'<span class="n">{esc(number)}</span>' + "".join(f' <span class="u">{esc(x)}</span>'
                                                              for x in (suffix, rel) if x)
    return (f'<div class="tile {esc(t.status)}">{head}<div class="metric">{name(c.metric)}{where}</div>'
            f'<div class="big">{big}</div>'
            f'<div class="small"><span class="nowrap">95% CI {esc(unit.ci(c.ci_low, c.ci_high))}</span> '
            f'<span class="nowrap">{esc(units.levels(c))}</span></div>'
            f'<div class="small">{esc(tile_segments(t))}{"; " + esc(t.note) if t.note else ""}</div></div>')


def _scorecard(data: ReportInput, units: Units) -> str:
    cards = tiles(data.verdict, data.manifest.spec.signals, family_notes(data.divergence))
    body = "".join(_tile(t, units) for t in cards) or '<div class="tile">No signal family ran.</div>'
    return f'<section class="cards" id="scorecard" aria-label="Scorecard">{body}</section>'


def _reasons(verdict: Verdict, units: Units) -> str:
    lines = grouped_reasons(verdict, units) or ["No gated metric breached its margin."]
    shown = [f"<li>{esc(r)}</li>" for r in lines[:MAX_REASONS]]
    if len(lines) > MAX_REASONS:
        shown.append(f"<li>... and {len(lines) - MAX_REASONS} more in the full list below.</li>")
    full = ""
    if verdict.reasons:
        items = "".join(f"<li>{esc(r)}</li>" for r in verdict.reasons)
        full = f"<details><summary>All {len(verdict.reasons)} reasons, one per metric and segment</summary>" \
               f"<ul>{items}</ul></details>"
    return f'<section id="reasons"><h2>Why</h2><ul>{"".join(shown)}</ul>{full}</section>'


def _grid(verdict: Verdict, units: Units) -> str:
    header, rows = grid(verdict)
    body = []
    for family, metric, checks in rows:
        cells: list[Any] = [family, metric]
        for c in checks:
            if c is None:
                cells.append("")
                continue
            levels, change = grid_cell(c, units)
            cells.append((f'{esc(levels)}<br><span class="d">{esc(change)}</span>', STATUS_CLASS.get(c.status, "")))
        body.append(cells)
    legend = ('<p class="legend"><span class="breach">breach</span><span class="improved">improved</span>'
              '<span class="warn">advisory / inconclusive</span><span>ok</span><span class="few">too few</span></p>')
    return legend + table(["family", "metric", *header], body)


def _throughput(data: ReportInput, throughput: Sequence[Mapping[str, Any]]) -> str:
    imported = data.imported_arms
    rows = throughput_rows(throughput, imported)
    note = throughput_note(imported)
    latency = latency_rows(data.tables["latency"].to_pylist() if "latency" in data.tables else None)
    return ((f"<p>{esc(note)}</p>" if note else "") + (table(THROUGHPUT_HEADER, rows) if rows else "")
            + (f"<h3>Latency</h3><p>{esc(LATENCY_NOTE)}</p>" + table(LATENCY_HEADER, latency) if latency else ""))


def _figure(path: Path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    alt = Path(path).stem.replace("_", " ")
    return f'<figure><img src="data:image/png;base64,{data}" alt="{esc(alt)}"></figure>'



def _fidelity_html(found: Any) -> str:
    """The production-fidelity section ("" without captured responses)."""
    if not found:
        return ""
    from harness.report.markdown import FIDELITY_HEADER, fidelity_rows, fidelity_summary

    checks = "".join(f"<li>{esc(c)}</li>" for c in found["check"])
    return (f"<h2>Production fidelity</h2><p>{esc(fidelity_summary(found))}</p>"
            + table(FIDELITY_HEADER, fidelity_rows(found))
            + (f"<p>What to check:</p><ul>{checks}</ul>" if checks else ""))


def _sampling_html(sampling: Any) -> str:
    """How each arm's requests were sampled: requests per source of each parameter ("" without a record)."""
    if not sampling:
        return ""
    from harness.replay.ledger import SOURCES
    from harness.report.markdown import SAMPLING_NOTE, sampling_rows

    fallbacks = ", ".join(f"{a} {v['fallback']} of {v['requests']}" for a, v in sampling.items())
    return (f"<h2>Sampling as replayed</h2><p>Requests replayed with a fallback value: {esc(fallbacks)}.</p>"
            f"<p>{esc(SAMPLING_NOTE)}</p>" + table(["arm", "parameter", *SOURCES], sampling_rows(sampling)))


def _signoff_html(data: ReportInput) -> str:
    """Who accepted the verdict ("" when nobody did)."""
    if not data.signoffs:
        return ""
    rows = [[s.at, s.by, s.verdict, s.note] for s in data.signoffs]
    return "<h2>Sign-off</h2>" + table(["when (UTC)", "by", "verdict accepted", "note"], rows)


def render_html(data: ReportInput, figures: Sequence[Path],
                judge_pairwise: Sequence[Mapping[str, Any]] | None = None) -> str:
    """The whole report as one self-contained HTML page (no script, no external resource, strict CSP).

    Args:
        data: the run's manifest, verdict, analysis tables, requests and the families' sections.
        figures: PNG files, embedded as ``data:`` URIs.
        judge_pairwise: the pairwise judge summary rows, when the run has a judge.

    Returns:
        The HTML document.
    """
    opts, verdict, divergence = data.manifest.spec.report, data.verdict, data.divergence
    experiment = data.manifest.experiment
    units = Units(data.tables["summary"].to_pylist())
    segment_checks = list(verdict.segment_checks)
    body = [_banner(experiment, data.manifest.run_id, verdict, data.arms), _scorecard(data, units),
            f"<p>{esc(data.ci_line)}</p>", _signoff_html(data),
            _reasons(verdict, units),
            "<h2>Signals (all requests)</h2>",
            table(OVERALL_HEADER, [check_row(c, units, segment=False) for c in verdict.checks],
                  [STATUS_CLASS.get(c.status, "") for c in verdict.checks]),
            "<h2>Segments</h2><p>Every gated metric per segment, baseline -> candidate and the change, coloured by "
            "its status (gated per segment too; the p-values are adjusted over all segments of a family).</p>",
            _grid(verdict, units),
            *([] if not segment_checks else
              [f"<details><summary>Every segment check ({len(segment_checks)})</summary>",
               table(CHECK_HEADER, [check_row(c, units) for c in segment_checks],
                     [STATUS_CLASS.get(c.status, "") for c in segment_checks]), "</details>"]),
            *([] if divergence is None else
              ["<h2>Divergence (embedding drift)</h2>", f"<p>{esc(div.summary(divergence))}</p>",
               f"<p>{esc(div.note(divergence))}</p>", table(div.header(divergence), div.rows(divergence))]),
            *([] if not judge_pairwise else
              ["<h2>Judge: pairwise preference</h2>", f"<p>{esc(JUDGE_NOTE)}</p>",
               table(JUDGE_HEADER, judge_rows(judge_pairwise)),
               '<p><a href="judge.html">The judge\'s agreement with humans, its biases and every disagreement '
               "with the pairs</a> (judge.html).</p>"]),
            _fidelity_html(data.sections.get("fidelity")), _sampling_html(data.sections.get("sampling")),
            "<h2>Throughput (engine time, load excluded)</h2>",
            _throughput(data, data.tables["throughput"].to_pylist()),
            "<h2>Figures</h2>", *(_figure(f) for f in figures),
            pairs_section(data.pairs, data.prompt, opts.max_chars, opts.redact),
            manifest_details(data.manifest)]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            '<meta name="referrer" content="no-referrer">\n'
            f"<title>Upgrade gate {esc(experiment)}: {esc(verdict.verdict)}</title>\n"
            f"<style>{STYLE}</style></head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n")
