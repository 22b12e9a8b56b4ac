"""``report.html``: the promotion-ticket report, one self-contained file that opens with no server.

Same content as ``report.md`` plus a word-level diff of the most changed pairs and the run manifest.
Prompts, outputs, request ids, segments, names and config values are untrusted: every one goes through
``html.escape(..., quote=True)``. The page has no script and no event handler, loads nothing from outside
(figures are ``data:`` URIs) and carries a CSP that forbids anything else. ``redact=True`` replaces prompts
and outputs by their sha256 prefix and length.
"""

from __future__ import annotations

import base64
import difflib
import html
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.gate import Verdict, policy_to_json
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

if TYPE_CHECKING:
    from harness.spec import Manifest

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
VERDICT_COLORS = {"PASS": "#1e7b34", "INVESTIGATE": "#a86400", "ROLLBACK": "#b3261e",
                  "HOLD_FOR_SIGNOFF": "#1f5fa8", "INSUFFICIENT_DATA": "#616161"}
STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 0 auto; padding: 1rem; max-width: 1400px; color: #1b1b1b; }
.banner { color: #fff; padding: .8rem 1rem; border-radius: 6px; }
.banner h1 { margin: 0 0 .3rem; font-size: 1.5rem; }
.banner ul { margin: .3rem 0 0; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: .5rem 0; }
th, td { border: 1px solid #ccc; padding: .25rem .5rem; text-align: left; vertical-align: top;
         overflow-wrap: anywhere; }
th { background: #f2f2f2; }
tr.breach td { background: #fbe3e1; font-weight: 600; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; word-break: break-word; margin: 0; padding: .5rem;
      background: #f7f7f7; border: 1px solid #ddd; border-radius: 4px; font-size: 12.5px; }
.pair { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: .6rem; margin-top: .4rem; }
.pair h4, .prompt h4 { margin: .2rem 0; }
del { background: #fdd1cf; text-decoration: line-through; }
ins { background: #cdf0d3; text-decoration: none; }
img { max-width: 100%; height: auto; display: block; margin: .5rem 0; }
details { margin: 1rem 0; }
"""


def esc(value: Any) -> str:
    """``value`` as HTML text: None blank, floats to 4 significant digits, everything else escaped."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value), quote=True)


def word_diff(old: str, new: str) -> tuple[str, str]:
    """Both texts as escaped HTML, words only in ``old`` in ``<del>``, words only in ``new`` in ``<ins>``."""
    a, b = re.findall(r"\s+|\S+", old), re.findall(r"\s+|\S+", new)
    left: list[str] = []
    right: list[str] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        gone, added = esc("".join(a[i1:i2])), esc("".join(b[j1:j2]))
        if op == "equal":
            left.append(gone)
            right.append(added)
            continue
        if gone:
            left.append(f"<del>{gone}</del>")
        if added:
            right.append(f"<ins>{added}</ins>")
    return "".join(left), "".join(right)


def _text_block(text: str, max_chars: int, redact: bool) -> str:
    if redact:
        return f"<pre>{esc(redacted(text))}</pre>"
    shown, more = cut(text, max_chars)
    return f"<pre>{esc(shown)}{esc(more)}</pre>"


def _diff_blocks(old: str, new: str, max_chars: int, redact: bool) -> tuple[str, str]:
    if redact:
        return _text_block(old, max_chars, True), _text_block(new, max_chars, True)
    (old_cut, old_more), (new_cut, new_more) = cut(old, max_chars), cut(new, max_chars)
    left, right = word_diff(old_cut, new_cut)
    return f"<pre>{left}{esc(old_more)}</pre>", f"<pre>{right}{esc(new_more)}</pre>"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], classes: Sequence[str] = ()) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{esc(classes[i])}"' if i < len(classes) and classes[i] else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{esc(v)}</td>" for v in row) + "</tr>")
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def _banner(experiment: str, run_id: str, verdict: Verdict, arms: Mapping[str, str]) -> str:
    color = VERDICT_COLORS.get(verdict.verdict, VERDICT_COLORS["INSUFFICIENT_DATA"])
    reasons = verdict.reasons or ["No gated metric breached its margin."]
    items = "".join(f"<li>{esc(r)}</li>" for r in reasons)
    return (f'<section class="banner" id="verdict" style="background: {color}">'
            f"<h1>Upgrade gate {esc(experiment)}: {esc(verdict.verdict)} ({esc(verdict.direction)})</h1>"
            f"<div>Signal families: {esc(families(verdict))}.</div>"
            f"<div>Run {esc(run_id)}. Baseline: {esc(arms.get('baseline'))}. "
            f"Candidate: {esc(arms.get('candidate'))}.</div><ul>{items}</ul></section>")


def _signal_table(verdict: Verdict) -> str:
    checks = [*verdict.checks, *(c for c in verdict.segment_checks if c.status in ("breach", "improved", "advisory"))]
    return _table(CHECK_HEADER, [check_row(c) for c in checks],
                  ["breach" if c.status == "breach" else "" for c in checks])


def _throughput_table(throughput: Sequence[Mapping[str, Any]]) -> str:
    keys = ["arm", "batches", "requests", "cached", "prompt_tokens", "output_tokens", "seconds", "requests_per_s",
            "output_tokens_per_s"]
    header = ["arm", "batches", "generated", "from cache", "prompt tokens", "output tokens", "seconds", "requests/s",
              "output tokens/s"]
    return _table(header, [[t.get(k) for k in keys] for t in throughput])


def _figure(path: Path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    alt = Path(path).stem.replace("_", " ")
    return f'<figure><img src="data:image/png;base64,{data}" alt="{esc(alt)}"></figure>'


def _pair(p: Mapping[str, Any], prompt: str, max_chars: int, redact: bool) -> str:
    left, right = _diff_blocks(p["baseline_output"] or "", p["candidate_output"] or "", max_chars, redact)
    delta = p.get("chars_delta")
    change = f", {delta:+d} chars" if delta is not None else ""
    return (f"<article><h3>{esc(p['request_id'])} ({esc(p['segment'])}{change})</h3>"
            f'<div class="prompt"><h4>Prompt</h4>{_text_block(prompt, max_chars, redact)}</div>'
            f'<div class="pair"><div><h4>Baseline</h4>{left}</div><div><h4>Candidate</h4>{right}</div></div>'
            "</article>")


def _manifest(manifest: Manifest) -> str:
    traffic = manifest.traffic
    run_rows: list[list[Any]] = [
        ["experiment", manifest.experiment], ["run", manifest.run_id], ["created", manifest.created_at],
        ["traffic", traffic.path], ["traffic sha256", traffic.sha256], ["requests", traffic.requests],
        ["limit", traffic.limit]]
    arm_rows = [[a, m.source, m.backend, m.fingerprint] for a, m in manifest.arms.items()]
    configs = {a: asdict(arm) for a, arm in manifest.spec.arms.items()}
    gate = policy_to_json(manifest.spec.policy)
    return ("<details><summary>Run manifest</summary>" + _table(["field", "value"], run_rows)
            + _table(["arm", "source", "backend", "fingerprint"], arm_rows)
            + _table(["package", "version"], sorted(manifest.versions.items()))
            + "<h4>Gate</h4>" + f"<pre>{esc(json.dumps(gate, indent=2, default=str))}</pre>"
            + "<h4>Arm config</h4>" + f"<pre>{esc(json.dumps(configs, indent=2, default=str))}</pre></details>")


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
    opts, verdict, arms, divergence = data.manifest.spec.report, data.verdict, data.arms, data.divergence
    experiment, run_id, redact, max_chars = data.manifest.experiment, data.manifest.run_id, opts.redact, opts.max_chars
    summary, throughput, pairs = data.tables["summary"].to_pylist(), data.tables["throughput"].to_pylist(), data.pairs
    metrics = [c.metric for c in verdict.checks]
    body = [_banner(experiment, run_id, verdict, arms),
            "<h2>Signals (all requests)</h2>", _signal_table(verdict),
            "<h2>Segments</h2><p>Gated metrics per segment, baseline -> candidate (gated per segment too; the "
            "p-values are adjusted over all segments of a family).</p>",
            _table(*segment_rows(metrics, summary)),
            *([] if divergence is None else
              ["<h2>Divergence (embedding drift)</h2>", f"<p>{esc(div.summary(divergence))}</p>",
               f"<p>{esc(div.NOTE)}</p>", _table(div.HEADER, div.rows(divergence))]),
            *([] if not judge_pairwise else
              ["<h2>Judge: pairwise preference</h2>", f"<p>{esc(JUDGE_NOTE)}</p>",
               _table(JUDGE_HEADER, judge_rows(judge_pairwise))]),
            "<h2>Throughput (engine time, load excluded)</h2>", _throughput_table(throughput),
            "<h2>Figures</h2>", *(_figure(f) for f in figures),
            "<h2>Most changed pairs</h2>" + ("<p>Prompts and outputs redacted.</p>" if redact else ""),
            *(_pair(p, data.prompt(p["request_id"]), max_chars, redact) for p in pairs),
            "" if pairs else "<p>No output changed.</p>",
            _manifest(data.manifest)]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            '<meta name="referrer" content="no-referrer">\n'
            f"<title>Upgrade gate {esc(experiment)}: {esc(verdict.verdict)}</title>\n"
            f"<style>{STYLE}</style></head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n")
