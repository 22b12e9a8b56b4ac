"""``judge.html``: the judge's agreement with humans, its biases and every disagreement, for a reviewer to audit.

Written beside ``report.html`` (which links to it) when the run has a pairwise judge (``judge_admission.json``).
Self-contained: no script, no remote resource; every value escaped (``html_parts.esc``). Sections: the admission
decision and its reason; the agreement table (per order and both orders: accuracy and Cohen's kappa with their
intervals; per criterion: exact agreement and weighted kappa with intervals, from ``judge_agreement.parquet``);
position bias (order flips, first-shown share); length bias (the longer output's share of preferences, judge vs
humans) with the raw and the length-controlled win rate; selective trust (threshold, coverage, abstentions); then
the disagreements, split into the judge favouring the candidate against the humans (a false improvement) and the
baseline against them (a false regression), each linked to its pair below (``#pair-<request_id>``): the request,
both outputs, both orders' verdicts and the judge's raw answers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pyarrow.dataset as ds

from harness.report.common import cut
from harness.report.html_parts import esc, table

if TYPE_CHECKING:
    from harness.store import RunDir
    from harness.traffic import Request

STYLE = ("body{font-family:system-ui,sans-serif;max-width:70rem;margin:1rem auto;padding:0 1rem}"
         "table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ccc;padding:.2rem .4rem;"
         "text-align:left;vertical-align:top}pre{white-space:pre-wrap;background:#f6f6f6;padding:.4rem;margin:.2rem 0}"
         ".ok{color:#064}.bad{color:#a00}")
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
MAX_CHARS = 3000


def anchor(request_id: str) -> str:
    """The pair's element id: ``pair-`` and the request id with anything outside [A-Za-z0-9_-] as ``_``."""
    return "pair-" + re.sub(r"[^A-Za-z0-9_-]", "_", request_id)


def _f(x: Any, pct: bool = False) -> str:
    if x is None:
        return "-"
    return f"{100 * x:.1f}%" if pct else f"{x:.3f}"


def _ci(lo: Any, hi: Any, pct: bool = False) -> str:
    return "-" if lo is None or hi is None else f"[{_f(lo, pct)}, {_f(hi, pct)}]"


def agreement_rows(adm: Mapping[str, Any], criteria: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
    """Rows of the agreement table: the pairwise preference per order and both orders, then each criterion."""
    what = {"AB": "preference, order AB (baseline shown first)", "BA": "preference, order BA (candidate first)",
            "both": "preference, both orders (kappa: order AB vs order BA)"}
    rows: list[list[Any]] = [[what[o["order"]], o["n"], _f(o["accuracy"], True),
                              _ci(o["accuracy_low"], o["accuracy_high"], True), _f(o["kappa"]),
                              _ci(o["kappa_low"], o["kappa_high"])] for o in adm["orders"]]
    rows += [[f"criterion {c['criterion']} (weighted kappa)", c["n"], _f(c["exact"], True),
              _ci(c.get("exact_low"), c.get("exact_high"), True), _f(c["weighted_kappa"]),
              _ci(c.get("weighted_kappa_low"), c.get("weighted_kappa_high"))] for c in criteria if c["n"]]
    return rows


def _outputs(run: RunDir, ids: set[str]) -> dict[tuple[str, str], str]:
    files = sorted(str(p) for p in (run.path / "generations").glob("arm=*/part-*.parquet"))
    if not files or not ids:
        return {}
    out = {}
    for part in files:
        arm = part.split("arm=")[1].split("/")[0]
        for r in ds.dataset(part, format="parquet").to_table(columns=["request_id", "output_text"]).to_pylist():
            if r["request_id"] in ids:
                out[(r["request_id"], arm)] = r["output_text"] or ""
    return out


def _text(text: str, max_chars: int) -> str:
    shown, more = cut(text, max_chars)
    return f"<pre>{esc(shown)}</pre>" + (f"<p>{esc(more)}</p>" if more else "")


def _pair(d: Mapping[str, Any], pw: Mapping[str, Any], prompt: str, outputs: Mapping[tuple[str, str], str]) -> str:
    rid = d["request_id"]
    block = [f'<section id="{esc(anchor(rid))}"><h3>Request {esc(rid)}</h3>',
             f"<p>human: <b>{esc(d['human'])}</b>; judge: <b>{esc(d['judge'])}</b> (order AB: "
             f"{esc(d['verdict_ab'])}, order BA: {esc(d['verdict_ba'])}; confidence {esc(d.get('confidence'))})</p>",
             f"<h4>Request</h4>{_text(prompt, MAX_CHARS)}"]
    for arm in ("baseline", "candidate"):
        block.append(f"<h4>{arm}</h4>{_text(outputs.get((rid, arm), '(not found)'), MAX_CHARS)}")
    for order in ("ab", "ba"):
        if pw.get(f"raw_{order}"):
            block.append(f"<h4>judge's answer, order {order.upper()}</h4>{_text(pw[f'raw_{order}'], 600)}")
    return "\n".join(block + ["</section>"])


def render(run: RunDir, requests: Mapping[str, Request]) -> str:
    """The page (module docstring) from the run directory's judge files and the traffic's requests."""
    from harness.signals.judge_pass import request_text

    adm = run.read_json("judge_admission.json")
    criteria = run.read_table("judge_agreement").to_pylist() if run.table_path("judge_agreement").exists() else []
    pairwise = {p["request_id"]: p for p in run.read_table("judge_pairwise").to_pylist()}
    dis = adm.get("disagreements", [])
    outputs = _outputs(run, {d["request_id"] for d in dis})
    pb, lb, st = adm["position_bias"], adm["length_bias"], adm["selective_trust"]
    decision = ('<p class="ok"><b>Admitted</b>: the pairwise preference counts in the verdict.</p>' if adm["admitted"]
                else f'<p class="bad"><b>Advisory</b>: {esc(adm["reason"])}</p>')
    bar = adm["bar"]
    link = lambda d: f'<a href="#{esc(anchor(d["request_id"]))}">{esc(d["request_id"])}</a>'  # noqa: E731
    groups = [("The judge prefers the candidate, the humans do not (a false improvement)",
               [d for d in dis if d["judge"] == "candidate"]),
              ("The judge prefers the baseline, the humans do not (a false regression)",
               [d for d in dis if d["judge"] == "baseline"]),
              ("The judge abstains or is inconsistent (tie, inconsistent, unscored)",
               [d for d in dis if d["judge"] not in ("candidate", "baseline")])]
    body = ["<h1>Judge audit</h1>", decision,
            f"<p>Bar: in both orders, the {esc(bar['level'])} interval's lower bound of Cohen's kappa at least "
            f"{esc(bar['kappa'])} and of accuracy at least {esc(bar['accuracy'])}, on at least {esc(bar['min_n'])} "
            f"labelled pairs ({esc(adm['labelled'])} here, {esc(adm.get('calibration_pairs', 0))} of them from the "
            f"calibration file); selective trust target {esc(bar['target'])}.</p>",
            "<h2>Agreement with humans</h2>",
            table(["what", "n", "accuracy", "interval", "kappa", "interval"], agreement_rows(adm, criteria)),
            "<h2>Biases</h2>",
            table(["measure", "judge", "humans", "n"], [
                ["order flips (the two orders disagree)", _f(pb["flip_rate"], True), "", pb["n"]],
                ["first-shown answer's share of decisive verdicts", _f(pb["first_shown_rate"], True), "",
                 pb["decisive_verdicts"]],
                ["the longer output's share of decisive preferences", _f(lb["judge_longer"]["rate"], True),
                 _f(lb["human_longer"]["rate"], True), lb["judge_longer"]["n"]],
                ["candidate win rate, raw (ties 0.5)", _f(lb["raw_win_rate"], True), "", lb["n"]],
                ["candidate win rate, length-controlled", _f(lb["lc_win_rate"], True), "", lb["n"]]]),
            "<h2>Selective trust</h2>",
            f"<p>Threshold {esc(st['threshold'])}: {esc(st['admitted'])} judgments admitted (coverage "
            f"{_f(st['coverage'], True)}), agreement {_f(st['agreement'], True)} "
            f"{_ci(st['agreement_low'], st['agreement_high'], True)}, {esc(st['abstentions'])} abstentions.</p>",
            f"<h2>Disagreements with humans ({len(dis)})</h2>"]
    for title, items in groups:
        body.append(f"<h3>{esc(title)}: {len(items)}</h3><p>{', '.join(link(d) for d in items) or 'none'}</p>")
    body.append("<h2>The pairs</h2>")
    for d in dis:
        r = requests.get(d["request_id"])
        body.append(_pair(d, pairwise.get(d["request_id"], {}), request_text(r) if r else "", outputs))
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
            f"<title>Judge audit: {esc(run.run_id)}</title><style>{STYLE}</style></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n")
