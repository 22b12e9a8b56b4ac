"""``index.html``: every run of every experiment, a trend figure per experiment, and the sweeps' summaries.

The same rules as ``report.html`` (``harness.report.html``): experiment names, run ids, sources and reasons are
untrusted, every text goes through ``html.escape(..., quote=True)``; the page has no script, loads nothing (figures
are ``data:`` URIs) and carries the same strict CSP. Links are relative paths built from directory names only,
each segment percent-encoded (``urllib.parse.quote``), then escaped.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import os
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

from harness.report.history import INDEX, RunSummary, collect_runs, collect_sweeps
from harness.report.html import CSP, STYLE, VERDICT_COLORS, esc
from harness.report.plots import pyplot

STATUS_COLORS = {"breach": "#C44E52", "advisory": "#8172B2", "not_significant": "#CCB974", "improved": "#4C72B0",
                 "inconclusive": "#DD8452",
                 "too_few": "#8C8C8C", "ok": "#55A868"}
MAX_PANELS = 12
EXTRA_STYLE = """
#runs td { white-space: normal; overflow-wrap: break-word; max-width: 22rem; }
#runs td.nw { white-space: nowrap; }
#runs td.reason { min-width: 16rem; max-width: 40rem; }
"""
RUN_HEADER = ["time (UTC)", "experiment", "run", "verdict", "direction", "report", "top reason", "baseline",
              "candidate"]  # what a reader looks for first comes first: wide tables scroll


def href(relative: str) -> str:
    """An ``href`` value for a relative path made of directory names: each segment percent-encoded, then escaped."""
    return esc("/".join(quote(segment, safe="") for segment in relative.split("/")))


def _when(run: RunSummary) -> str:
    return run.time.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _link(relative: str | None, label: str, missing: str) -> str:
    return f'<a href="{href(relative)}">{esc(label)}</a>' if relative else esc(missing)


def _verdict_cell(verdict: str, shown: str | None = None) -> str:
    color = VERDICT_COLORS.get(verdict, VERDICT_COLORS["INSUFFICIENT_DATA"])
    return f'<td class="verdict nw" style="background: {color}; color: #fff">{esc(shown or verdict)}</td>'


def _runs_table(runs: Sequence[RunSummary]) -> str:
    rows = []
    for r in runs:
        cells = [f'<td class="nw">{esc(_when(r))}</td>', f"<td>{esc(r.experiment)}</td>", f"<td>{esc(r.run_id)}</td>",
                 _verdict_cell(r.verdict, r.shown_verdict), f'<td class="nw">{esc(r.direction)}</td>',
                 f'<td class="nw">{_link(r.report, "report.html", "not written")}</td>',
                 f'<td class="reason">{esc(r.reason)}</td>',
                 f"<td>{esc(r.baseline)}</td>", f"<td>{esc(r.candidate)}</td>"]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    head = "".join(f"<th>{esc(h)}</th>" for h in RUN_HEADER)
    return (f'<div class="scroll"><table id="runs"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>")


def trended_metrics(runs: Sequence[RunSummary]) -> list[tuple[str, str]]:
    """``(family, metric)`` of every overall check whose status was not ``ok`` in at least one of ``runs``."""
    seen: dict[tuple[str, str], None] = {}
    for r in sorted(runs, key=lambda r: r.time):
        for c in r.checks:
            if c.status != "ok":
                seen[(c.family, c.metric)] = None
    return list(seen)


def trend_png(runs: Sequence[RunSummary], metrics: Sequence[tuple[str, str]]) -> bytes:
    """One panel per metric: its overall delta (candidate - baseline) over run time, markers coloured by status."""
    plt = pyplot()
    ordered = sorted(runs, key=lambda r: r.time)
    fig, axes = plt.subplots(len(metrics), 1, figsize=(7.0, 1.5 * len(metrics) + 0.9), sharex=True, squeeze=False)
    used: dict[str, None] = {}
    for ax, (family, metric) in zip(axes[:, 0], metrics, strict=True):
        points = [(r.time, c.delta, c.status) for r in ordered for c in r.checks
                  if (c.family, c.metric) == (family, metric) and c.delta is not None]
        ax.plot([p[0] for p in points], [p[1] for p in points], "-", color="#BBBBBB", linewidth=1, zorder=1)
        for when, delta, status in points:
            used[status] = None
            ax.scatter([when], [delta], s=28, color=STATUS_COLORS.get(status, "#333333"), zorder=3)
        ax.axhline(0, color="black", linewidth=0.6)
        ax.set_ylabel("delta", fontsize=7)
        ax.set_title(f"{family}/{metric}", fontsize=8, loc="left")
        ax.tick_params(labelsize=7)
    handles = [plt.Line2D([], [], marker="o", linestyle="", color=STATUS_COLORS.get(s, "#333333"), label=s)
               for s in used]
    fig.legend(handles=handles, fontsize=7, loc="upper right", ncol=max(1, len(handles)))
    fig.suptitle("Overall delta (candidate - baseline) per run", fontsize=9, x=0.02, ha="left")
    fig.autofmt_xdate()
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _trend(experiment: str, runs: Sequence[RunSummary]) -> str:
    done = [r for r in runs if r.finished]
    latest = done[0].verdict if done else "none yet"
    out = [f"<h3>{esc(experiment)}</h3>",
           f"<p>{_count(len(runs), 'run')}, {len(done)} with a verdict; latest verdict: {esc(latest)}.</p>"]
    metrics = trended_metrics(done)
    if len(done) < 2:
        return "".join(out + ["<p>One run with a verdict: no trend yet.</p>" if done else
                              "<p>No run with a verdict: no trend.</p>"])
    if not metrics:
        return "".join(out + [f"<p>Every gated metric was ok in all {len(done)} runs: nothing to plot.</p>"])
    if len(metrics) > MAX_PANELS:
        rest = ", ".join(f"{f}/{m}" for f, m in metrics[MAX_PANELS:])
        out.append(f"<p>{len(metrics)} metrics were not ok at least once; the first {MAX_PANELS} are plotted, "
                   f"not shown: {esc(rest)}.</p>")
        metrics = metrics[:MAX_PANELS]
    data = base64.b64encode(trend_png(done, metrics)).decode("ascii")
    alt = f"trend of the gated metrics of {experiment}"
    return "".join(out + [f'<figure><img class="trend" src="data:image/png;base64,{data}" alt="{esc(alt)}">'
                          "</figure>"])


def _sweeps(sweeps: Sequence[tuple[str, str | None]]) -> str:
    if not sweeps:
        return "<p>No sweeps.</p>"
    rows = "".join(f"<tr><td>{esc(s)}</td><td>{_link(page, page.rsplit('/', 1)[-1] if page else '', 'no summary')}"
                   "</td></tr>" for s, page in sweeps)
    return ('<div class="scroll"><table id="sweeps"><thead><tr><th>sweep</th><th>summary</th></tr></thead>'
            f"<tbody>{rows}</tbody></table></div>")


def render_index(runs: Sequence[RunSummary], sweeps: Sequence[tuple[str, str | None]],
                 now: dt.datetime | None = None) -> str:
    """The history page as one self-contained HTML document (no script, no external resource, strict CSP).

    Args:
        runs: every run, newest first (``harness.report.history.collect_runs``).
        sweeps: each sweep id and its summary page relative to the output directory (``collect_sweeps``).
        now: when the page is written (shown on it); default: now.

    Returns:
        The HTML document.
    """
    now = now or dt.datetime.now(dt.UTC)
    experiments: dict[str, list[RunSummary]] = {}
    for r in runs:  # newest first, so experiments come in the order of their latest run
        experiments.setdefault(r.experiment, []).append(r)
    unfinished = sum(not r.finished for r in runs)
    body = ["<h1>Upgrade gate: run history</h1>",
            f"<p>{_count(len(runs), 'run')} of {_count(len(experiments), 'experiment')}, newest first "
            f"({unfinished} without a verdict: unfinished or unreadable). "
            f"Written {esc(now.strftime('%Y-%m-%d %H:%M:%S'))} UTC by <code>python -m harness runs</code>; "
            "each link opens the run's own report.</p>",
            "<h2>Runs</h2>", _runs_table(runs) if runs else "<p>No runs yet.</p>",
            "<h2>Trends per experiment</h2>",
            "<p>Per experiment, the overall delta (candidate - baseline) of each gated metric whose status was not ok "
            "in at least one run, over run time; marker colour: the check's status in that run.</p>",
            *(_trend(e, rs) for e, rs in experiments.items()),
            "<h2>Sweeps</h2>", _sweeps(sweeps)]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            '<meta name="referrer" content="no-referrer">\n'
            "<title>Upgrade gate: run history</title>\n"
            f"<style>{STYLE}{EXTRA_STYLE}</style></head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n")


def write_index(output_dir: Path) -> Path:
    """Write ``<output_dir>/index.html`` (every run, per experiment trends, the sweeps); returns its path.

    Args:
        output_dir: the directory the runs were written to; created when missing.

    Returns:
        The path of ``index.html``.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / INDEX
    text = render_index(collect_runs(output_dir), collect_sweeps(output_dir))
    tmp = output_dir / f".{INDEX}.{os.getpid()}.tmp"
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path
