"""Building blocks of ``report.html``: escaping, the word diff, tables, text blocks, the changed pairs, the manifest.

Every data value goes through ``esc`` (``html.escape(..., quote=True)``); the only markup added around data is the
page's own (``<del>``/``<ins>`` of the diff, ``<wbr>`` after an underscore of an escaped name).
"""

from __future__ import annotations

import difflib
import html
import json
import re
from collections.abc import Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from harness.gate import policy_to_json
from harness.report.common import cut, redacted

if TYPE_CHECKING:
    from harness.report.pairs import Pair
    from harness.spec import Manifest

SAME_SHOWN = 3  # request ids named under a pair whose prompt and outputs other requests share


def esc(value: Any) -> str:
    """``value`` as HTML text: None blank, floats to 4 significant digits, everything else escaped."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value), quote=True)


def name(value: Any) -> str:
    """An escaped identifier that may wrap after its underscores (metric names in narrow tiles), never inside."""
    return esc(value).replace("_", "_<wbr>")


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


def text_block(text: str, max_chars: int, redact: bool) -> str:
    """A prompt or output in ``<pre>``: cut with a marker, or redacted."""
    if redact:
        return f"<pre>{esc(redacted(text))}</pre>"
    shown, more = cut(text, max_chars)
    return f"<pre>{esc(shown)}{esc(more)}</pre>"


def _diff_blocks(old: str, new: str, max_chars: int, redact: bool) -> tuple[str, str]:
    if redact:
        return text_block(old, max_chars, True), text_block(new, max_chars, True)
    (old_cut, old_more), (new_cut, new_more) = cut(old, max_chars), cut(new, max_chars)
    left, right = word_diff(old_cut, new_cut)
    return f"<pre>{left}{esc(old_more)}</pre>", f"<pre>{right}{esc(new_more)}</pre>"


def table(header: Sequence[str], rows: Sequence[Sequence[Any]], classes: Sequence[str] = ()) -> str:
    """A table in its own horizontal scroller (the page never scrolls sideways); a cell given as
    ``(html, class)`` is HTML the caller escaped, any other cell is escaped here; ``classes``: per row."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{esc(classes[i])}"' if i < len(classes) and classes[i] else ""
        cells = []
        for v in row:
            if isinstance(v, tuple):
                cells.append(f'<td class="{esc(v[1])}">{v[0]}</td>' if v[1] else f"<td>{v[0]}</td>")
            else:
                cells.append(f"<td>{esc(v)}</td>")
        body.append(f"<tr{cls}>{''.join(cells)}</tr>")
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def pair(p: Pair, prompt: str, max_chars: int, redact: bool) -> str:
    """One changed pair: id and labels, the requests sharing its prompt and outputs, the prompt, the two outputs
    side by side with a word diff."""
    left, right = _diff_blocks(p.baseline_output, p.candidate_output, max_chars, redact)
    tags = "".join(f'<span class="tag {esc(lb.tone)}">{esc(lb.text)}</span>' for lb in p.labels)
    same = ""
    if p.same:
        more = len(p.same) - SAME_SHOWN
        ids = ", ".join(esc(r) for r in p.same[:SAME_SHOWN]) + (f" and {more} more" if more > 0 else "")
        same = f'<p class="same">Same prompt and outputs, not shown again: {ids}.</p>'
    return (f'<article class="changed"><h4>{esc(p.request_id)}</h4><div class="tags">{tags}</div>{same}'
            f'<div class="prompt"><h5>Prompt</h5>{text_block(prompt, max_chars, redact)}</div>'
            f'<div class="pair"><div><h5>Baseline</h5>{left}</div><div><h5>Candidate</h5>{right}</div></div>'
            "</article>")


def pairs_section(pairs: Sequence[Pair], prompt: Any, max_chars: int, redact: bool) -> str:
    """The most changed pairs grouped by segment (``prompt``: request id -> text)."""
    if not pairs:
        return "<h2>Most changed pairs</h2><p>No output changed.</p>"
    out = ["<h2>Most changed pairs</h2><p>One entry per request and per distinct prompt and outputs, labelled with "
           "the signals that flag it; the largest changes in length, one of each kind of flag first.</p>"
           + ("<p>Prompts and outputs redacted.</p>" if redact else "")]
    segment: object = object()
    for p in pairs:
        if p.segment != segment:
            segment = p.segment
            out.append(f'<h3 class="segment">Segment {esc(p.segment or "(none)")}</h3>')
        out.append(pair(p, prompt(p.request_id), max_chars, redact))
    return "".join(out)


def manifest_details(manifest: Manifest) -> str:
    """The run manifest, folded: run fields, arms, versions, gate and arm configs."""
    traffic = manifest.traffic
    run_rows: list[list[Any]] = [
        ["experiment", manifest.experiment], ["run", manifest.run_id], ["created", manifest.created_at],
        ["traffic", traffic.path], ["traffic sha256", traffic.sha256], ["requests", traffic.requests],
        ["limit", traffic.limit]]
    arm_rows = [[a, m.source, m.backend, m.fingerprint] for a, m in manifest.arms.items()]
    configs = {a: asdict(arm) for a, arm in manifest.spec.arms.items()}
    gate = policy_to_json(manifest.spec.policy)
    return ("<details><summary>Run manifest</summary>" + table(["field", "value"], run_rows)
            + table(["arm", "source", "backend", "fingerprint"], arm_rows)
            + table(["package", "version"], sorted(manifest.versions.items()))
            + "<h4>Gate</h4>" + f"<pre>{esc(json.dumps(gate, indent=2, default=str))}</pre>"
            + "<h4>Arm config</h4>" + f"<pre>{esc(json.dumps(configs, indent=2, default=str))}</pre></details>")
