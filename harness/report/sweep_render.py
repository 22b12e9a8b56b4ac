"""A sweep's report: ``summary.md`` and ``summary.html`` (one row per job) and the quality vs throughput figure with
its Pareto front. ``summary.html`` follows ``report.html``'s rules: every text escaped, no script, the figure as a
``data:`` URI, a strict CSP, links only relative paths built from directory names."""

from __future__ import annotations

import base64
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from harness.report import html
from harness.report.markdown import md_table
from harness.report.plots import ARM_COLORS, pyplot

if TYPE_CHECKING:
    from harness.spec import Manifest

COLUMNS = (("job", "job"), ("settings", "swept settings"), ("verdict", "verdict"), ("direction", "direction"),
           ("families", "families"), ("key_deltas", "key deltas (cand - base)"),
           ("generated", "generated"), ("cached", "cached"), ("output_tokens_per_s", "output tok/s"),
           ("requests_per_s", "req/s"), ("seconds_per_request", "s/request"), ("ttft_p50_s", "TTFT p50 s"),
           ("latency_p90_s", "latency p90 s"), ("run_id", "run"))


def render_summary(sweep_id: str, manifest: Manifest, rows: Sequence[dict[str, Any]], quality_label: str,
                   quality: Sequence[float | None], front: Sequence[int], figure: str) -> str:
    """The sweep's Markdown summary: what was fixed, one row per candidate setting, the figure."""
    baseline = manifest.arms["baseline"]
    header = [title for _, title in COLUMNS] + [quality_label, "Pareto"]
    body = [[r[k] for k, _ in COLUMNS] + [q, "yes" if i in front else ""]
            for i, (r, q) in enumerate(zip(rows, quality, strict=True))]
    return "\n".join([
        f"# Sweep {sweep_id}", "",
        f"Experiment `{manifest.experiment}`, {manifest.traffic.requests} requests of "
        f"`{manifest.traffic.path}`; baseline `{baseline.source}` "
        f"({manifest.spec.arms['baseline'].engine.dtype}), fixed across jobs. {len(rows)} jobs; each is a normal run "
        f"(`reports/{manifest.experiment}/<run>`).", "",
        "Throughput is over generated requests only (engine time, load excluded). A candidate served entirely "
        "from the generation cache shows 0 generated and no rate: nothing was measured.", "",
        md_table(header, body), "",
        f"![quality vs throughput]({figure})", "",
    ])


def _report_links(sweep_dir: Path, rows: Sequence[dict[str, Any]]) -> str:
    """Links to each job's ``report.html`` (``../../<experiment>/<run>/report.html``) where it was written."""
    items = []
    for r in rows:
        run_dir = Path(r["run_dir"])
        if run_dir.parent.parent.resolve() == sweep_dir.parent.parent.resolve() and (run_dir / "report.html").is_file():
            rel = "/".join(quote(s, safe="") for s in ("..", "..", run_dir.parent.name, run_dir.name, "report.html"))
            items.append(f'<li>job {html.esc(r["job"])}: <a href="{html.esc(rel)}">{html.esc(run_dir.name)}</a></li>')
    return f"<h2>Job reports</h2><ul>{''.join(items)}</ul>" if items else ""


def _html_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A table whose every cell is escaped (``html.esc``: None blank, floats to 4 significant digits)."""
    head = "".join(f"<th>{html.esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.esc(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _embedded(figure: Path) -> str:
    data = base64.b64encode(figure.read_bytes()).decode("ascii")
    return f'<figure><img src="data:image/png;base64,{data}" alt="quality vs throughput"></figure>'


def render_summary_html(sweep_dir: Path, manifest: Manifest, rows: Sequence[dict[str, Any]], quality_label: str,
                        quality: Sequence[float | None], front: Sequence[int], figure: Path) -> str:
    """The sweep's summary as one self-contained HTML page: the same table as ``summary.md``, the figure embedded,
    a link to each job's report."""
    baseline = manifest.arms["baseline"]
    header = [title for _, title in COLUMNS] + [quality_label, "Pareto"]
    body = [[r[k] for k, _ in COLUMNS] + [q, "yes" if i in front else ""]
            for i, (r, q) in enumerate(zip(rows, quality, strict=True))]
    sweep_id = sweep_dir.name
    intro = (f"Experiment {manifest.experiment}, {manifest.traffic.requests} requests of {manifest.traffic.path}; "
             f"baseline {baseline.source} ({manifest.spec.arms['baseline'].engine.dtype}), fixed across jobs. "
             f"{len(rows)} jobs; each is a normal run ({manifest.experiment}/<run>).")
    parts = [f"<h1>Sweep {html.esc(sweep_id)}</h1>", f"<p>{html.esc(intro)}</p>",
             "<p>Throughput is over generated requests only (engine time, load excluded). A candidate served entirely "
             "from the generation cache shows 0 generated and no rate: nothing was measured.</p>",
             _html_table(header, body), _embedded(figure) if figure.is_file() else "",
             _report_links(sweep_dir, rows)]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
            f'<meta http-equiv="Content-Security-Policy" content="{html.CSP}">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            '<meta name="referrer" content="no-referrer">\n'
            f"<title>Sweep {html.esc(sweep_id)}</title>\n"
            f"<style>{html.STYLE}</style></head>\n<body>\n" + "\n".join(parts) + "\n</body></html>\n")


def write_summary_html(sweep_dir: Path, manifest: Manifest, rows: Sequence[dict[str, Any]], quality_label: str,
                       quality: Sequence[float | None], front: Sequence[int], figure: Path) -> Path:
    """Write ``summary.html`` into the sweep directory (atomically); returns its path."""
    path = sweep_dir / "summary.html"
    tmp = sweep_dir / f".summary.html.{os.getpid()}.tmp"
    tmp.write_text(render_summary_html(sweep_dir, manifest, rows, quality_label, quality, front, figure),
                   encoding="utf-8")
    os.replace(tmp, path)
    return path


def pareto_plot(rows: Sequence[dict[str, Any]], quality: Sequence[float | None], label: str, front: Sequence[int],
                path: Path) -> Path:
    """Quality (higher is better) vs generated output tokens/s per job; the Pareto front joined and marked."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    shown = [i for i, r in enumerate(rows) if r["output_tokens_per_s"] is not None and quality[i] is not None]
    for i in shown:
        on = i in front
        ax.scatter(rows[i]["output_tokens_per_s"], quality[i], s=60 if on else 30,
                   color=ARM_COLORS["candidate"] if on else "#8C8C8C", zorder=3)
        ax.annotate(f"j{rows[i]['job']}", (rows[i]["output_tokens_per_s"], quality[i]), fontsize=7,
                    xytext=(4, 3), textcoords="offset points")
    line = sorted((rows[i]["output_tokens_per_s"], quality[i]) for i in front)
    if line:
        ax.plot([p[0] for p in line], [p[1] for p in line], "--", color=ARM_COLORS["candidate"], label="Pareto front")
        ax.legend(fontsize=7)
    missing = [f"j{r['job']}" for i, r in enumerate(rows) if i not in shown]
    ax.set_xlabel("candidate output tokens/s (generated requests, engine time)", fontsize=8)
    ax.set_ylabel(label, fontsize=8)
    ax.set_title("Sweep: quality vs throughput" + (f" (not shown, no rate: {', '.join(missing)})" if missing
                                                  else ""), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
