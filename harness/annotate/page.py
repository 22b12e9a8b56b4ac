"""The labelling page: one self-contained HTML file, no server, nothing loaded from outside.

Every untrusted text (prompts, outputs, request ids, segments, rubric descriptions, run names) is escaped with
``html.escape(..., quote=True)`` in the markup; the data block the script reads is JSON with ``<``, ``>`` and ``&``
written as ``\\u003c``-style escapes, so no text can close it. The Content-Security-Policy admits exactly one
script and one style sheet, by their sha256 (``default-src 'none'``: no network, no frames, no forms, no other
script, no inline handler).

Blinding: each pair's outputs are shown as A and B only; which arm is A is in the data block (``left``), never in
what the page shows, and the script writes the arms into the label file when it downloads it (every row also
says where its output was shown: ``shown_as``).
"""

from __future__ import annotations

import base64
import hashlib
import json
from html import escape
from pathlib import Path

from harness.annotate.labels import COLUMNS
from harness.annotate.sample import Item, Sample
from harness.signals.judge_prompts import Rubric

SCRIPT = Path(__file__).with_name("kit.js").read_text(encoding="utf-8")
STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 0 auto; padding: .8rem; max-width: 1280px; color: #1b1b1b;
       overflow-wrap: anywhere; }
header.top { display: flex; flex-wrap: wrap; gap: .4rem 1rem; align-items: baseline; }
header.top h1 { font-size: 1.2rem; margin: 0; }
#status { color: #1f5fa8; }
.meta { color: #555; font-size: 12.5px; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; background: #f6f6f6; border: 1px solid #ddd;
      border-radius: 4px; padding: .5rem; margin: .2rem 0; max-height: 45vh; overflow-y: auto; }
.outs { display: grid; grid-template-columns: repeat(auto-fit, minmax(300px, 1fr)); gap: .6rem; }
h3 { font-size: 1rem; margin: .6rem 0 .1rem; }
table.crit { border-collapse: collapse; margin: .5rem 0; }
table.crit th, table.crit td { border: 1px solid #ccc; padding: .25rem .5rem; text-align: left; vertical-align: top; }
td.cell { text-align: center; min-width: 3rem; font-size: 1.1rem; cursor: pointer; }
td.cell.cursor { outline: 3px solid #1f5fa8; outline-offset: -3px; background: #e8f0fb; }
.desc { color: #555; font-size: 12.5px; }
button { font: inherit; padding: .25rem .7rem; border: 1px solid #888; border-radius: 4px; background: #fff; }
button.on { background: #1f5fa8; color: #fff; border-color: #1f5fa8; }
div.gold { margin: .5rem 0; }
div.gold textarea { display: none; width: 100%; min-height: 5rem; font: 13px ui-monospace, monospace; }
div.gold.on textarea { display: block; }
kbd { border: 1px solid #aaa; border-bottom-width: 2px; border-radius: 3px; padding: 0 .25rem; font-size: 12px; }
#help ul { margin: .2rem 0; }
"""


def _sha(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


CSP = (f"default-src 'none'; script-src {_sha(SCRIPT)}; style-src {_sha(STYLE)}; img-src 'none'; "
       "base-uri 'none'; form-action 'none'")


def _json_block(obj: object) -> str:
    text = json.dumps(obj, ensure_ascii=True, sort_keys=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _criteria_table(rubric: Rubric | None) -> str:
    if rubric is None or not rubric.criteria:
        return ""
    rows = "".join(
        f"<tr><th>{escape(c.name)} <span class=\"desc\">({c.scale_min}-{c.scale_max})</span><br>"
        f"<span class=\"desc\">{escape(c.description)}</span></th>"
        + "".join(f'<td class="cell" data-criterion="{escape(c.name, quote=True)}" data-side="{side}" '
                  f'data-min="{c.scale_min}" data-max="{c.scale_max}">\u00b7</td>' for side in ("A", "B"))
        + "</tr>" for c in rubric.criteria)
    return f'<table class="crit"><tr><th>criterion</th><th>A</th><th>B</th></tr>{rows}</table>'


def _item(i: int, n: int, item: Item, rubric: Rubric | None) -> str:
    a, b = item.shown
    return (f'<section class="item" id="{item.key}" data-key="{item.key}"{"" if i == 0 else " hidden"}>'
            f'<p class="meta">pair {i + 1} of {n} &middot; segment <b>{escape(item.segment)}</b> &middot; request '
            f'{escape(item.request_id)} &middot; drawn from stratum {escape(item.stratum)}</p>'
            f'<h3>Request</h3><pre class="prompt">\n{escape(item.prompt)}</pre>'
            f'<div class="outs"><div><h3>Output A</h3><pre class="out-A">\n{escape(a)}</pre></div>'
            f'<div><h3>Output B</h3><pre class="out-B">\n{escape(b)}</pre></div></div>'
            f"{_criteria_table(rubric)}"
            '<p>Which output is better? <button data-pref="A">A better <kbd>a</kbd></button> '
            '<button data-pref="tie">tie <kbd>t</kbd></button> <button data-pref="B">B better <kbd>b</kbd></button></p>'
            '<div class="gold"><label><input type="checkbox" class="golden"> promote this request to the golden set '
            '<kbd>g</kbd> (the reference answer below: the preferred output, edit it as needed)</label>'
            '<textarea class="expected" aria-label="reference answer"></textarea></div></section>')


HELP = ("<ul><li><kbd>1</kbd>-<kbd>9</kbd> (<kbd>0</kbd> = 10): score the highlighted cell, then go to the next "
        "(<kbd>&uarr;</kbd> <kbd>&darr;</kbd> move, <kbd>Backspace</kbd> clears, a click selects)</li>"
        "<li><kbd>a</kbd> A is better, <kbd>b</kbd> B is better, <kbd>t</kbd> tie</li>"
        "<li><kbd>g</kbd> promote the request to the golden set (reference: the preferred output, editable)</li>"
        "<li><kbd>n</kbd> <kbd>&rarr;</kbd> <kbd>Enter</kbd> next pair, <kbd>p</kbd> <kbd>&larr;</kbd> previous</li>"
        "<li><kbd>d</kbd> download the labels (CSV; give it to <code>python -m harness annotate RUN --labels "
        "FILE</code> or to <code>judge.annotations</code>)</li><li><kbd>?</kbd> this help</li></ul>"
        "<p>Which output came from which model version is hidden; the order of the pairs and the sides are random. "
        "Labels are kept in this browser until you download them.</p>")


def render_page(sample: Sample, rubric: Rubric | None) -> str:
    """The labelling page of ``sample`` (``rubric``: the criteria to score; None: the pairwise choice only)."""
    other = {"baseline": "candidate", "candidate": "baseline"}
    data = {"sample": sample.sample_id, "seed": sample.seed, "run": sample.run, "columns": list(COLUMNS),
            "rubric": rubric.name if rubric else None,
            "items": {it.key: {"request_id": it.request_id, "left": it.left_arm, "right": other[it.left_arm]}
                      for it in sample.items}}
    n = len(sample.items)
    body = "".join(_item(i, n, it, rubric) for i, it in enumerate(sample.items))
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            '<meta name="referrer" content="no-referrer">\n'
            f"<title>Label pairs: {escape(sample.run)}</title>\n<style>{STYLE}</style></head><body>\n"
            f'<header class="top"><h1>Label pairs of {escape(sample.run)}</h1>'
            f'<span class="meta">sample {escape(sample.sample_id)}, seed {sample.seed}, {n} pairs drawn from '
            f"{sample.changed} changed and {sample.unchanged} unchanged; rubric "
            f"{escape(rubric.name) if rubric else 'none (pairwise choice only)'}</span>"
            '<label>annotator <input id="annotator" value="annotator" size="12"></label>'
            '<span id="progress"></span><button id="prev">&larr; previous</button>'
            '<button id="next">next &rarr;</button><button id="download">download labels <kbd>d</kbd></button>'
            '<span id="status"></span></header>\n'
            f'<details id="help" open><summary>Keys</summary>{HELP}</details>\n{body}\n'
            f'<script type="application/json" id="kit-data">{_json_block(data)}</script>\n'
            f"<script>{SCRIPT}</script>\n</body></html>\n")


def write_page(sample: Sample, rubric: Rubric | None, out: Path) -> Path:
    """Write the page to ``out`` (folders created); returns ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_page(sample, rubric), encoding="utf-8")
    return out
