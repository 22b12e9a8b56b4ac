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
           ("latency_p90_s", "latency p90 s"), ("goodput_per_core", "goodput req/s/core"),
           ("lateness_p99_s", "send lateness p99 s"), ("run_id", "run"))
CONFIG_COLUMNS = (("config", "config"), ("repeats", "repeats"), ("verdicts", "verdicts"),
                  ("quality_failed", "failed the gate on quality"), ("output_tokens_per_s", "output tok/s"),
                  ("goodput_per_core", "goodput req/s/core"), ("ttft_p99_s", "TTFT p99 s"),
                  ("tpot_p50_s", "TPOT p50 s"), ("lateness_p99_s_max", "send lateness p99 s (worst)"))


def _interval(c: dict[str, Any], col: str) -> str:
    lo, hi = c.get(f"{col}_lo"), c.get(f"{col}_hi")
    return f"[{lo:.4g}, {hi:.4g}]" if lo is not None and hi is not None else ""


def config_rows(configs: Sequence[dict[str, Any]], front: Sequence[int],
                speed: str) -> tuple[list[str], list[list[Any]]]:
    """The per-config table: means over repeats, the 95% interval of the speed axis, Pareto membership."""
    header = [t for _, t in CONFIG_COLUMNS] + [f"95% interval ({speed})", "Pareto"]
    body = [[", ".join(map(str, c[k])) if isinstance(c[k], list) else c[k] for k, _ in CONFIG_COLUMNS]
            + [_interval(c, speed), "yes" if i in front else "dominated"] for i, c in enumerate(configs)]
    return header, body


def render_summary(sweep_id: str, manifest: Manifest, rows: Sequence[dict[str, Any]], quality_label: str,
                   quality: Sequence[float | None], front: Sequence[int], figure: str,
                   configs: Sequence[dict[str, Any]] = (), config_front: Sequence[int] = (),
                   speed: str = "output_tokens_per_s") -> str:
    """The sweep's Markdown summary: what was fixed, one row per candidate setting, one per config (repeats
    together), the figure."""
    c_header, c_body = config_rows(configs, config_front, speed)
    baseline = manifest.arms["baseline"]
    header = [title for _, title in COLUMNS] + [quality_label, "Pareto"]
    body = [[r.get(k) for k, _ in COLUMNS] + [q, "yes" if i in front else ""]
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
        *(["## Configs (repeats together)", "", md_table(c_header, c_body), ""] if configs else []),
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
                        quality: Sequence[float | None], front: Sequence[int], figure: Path,
                        configs: Sequence[dict[str, Any]] = (), config_front: Sequence[int] = (),
                        speed: str = "output_tokens_per_s") -> str:
    """The sweep's summary as one self-contained HTML page: the same table as ``summary.md``, the figure embedded,
    a link to each job's report."""
    baseline = manifest.arms["baseline"]
    header = [title for _, title in COLUMNS] + [quality_label, "Pareto"]
    body = [[r.get(k) for k, _ in COLUMNS] + [q, "yes" if i in front else ""]
            for i, (r, q) in enumerate(zip(rows, quality, strict=True))]
    sweep_id = sweep_dir.name
    intro = (f"Experiment {manifest.experiment}, {manifest.traffic.requests} requests of {manifest.traffic.path}; "
             f"baseline {baseline.source} ({manifest.spec.arms['baseline'].engine.dtype}), fixed across jobs. "
             f"{len(rows)} jobs; each is a normal run ({manifest.experiment}/<run>).")
    parts = [f"<h1>Sweep {html.esc(sweep_id)}</h1>", f"<p>{html.esc(intro)}</p>",
             "<p>Throughput is over generated requests only (engine time, load excluded). A candidate served entirely "
             "from the generation cache shows 0 generated and no rate: nothing was measured.</p>",
             _html_table(header, body),
             ("<h2>Configs (repeats together)</h2>" + _html_table(*config_rows(configs, config_front, speed))
              if configs else ""),
             _embedded(figure) if figure.is_file() else "",
             _report_links(sweep_dir, rows)]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
            f'<meta http-equiv="Content-Security-Policy" content="{html.CSP}">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            '<meta name="referrer" content="no-referrer">\n'
            f"<title>Sweep {html.esc(sweep_id)}</title>\n"
            f"<style>{html.STYLE}</style></head>\n<body>\n" + "\n".join(parts) + "\n</body></html>\n")


def write_summary_html(sweep_dir: Path, manifest: Manifest, rows: Sequence[dict[str, Any]], quality_label: str,
                       quality: Sequence[float | None], front: Sequence[int], figure: Path,
                       configs: Sequence[dict[str, Any]] = (), config_front: Sequence[int] = (),
                       speed: str = "output_tokens_per_s") -> Path:
    """Write ``summary.html`` into the sweep directory (atomically); returns its path."""
    path = sweep_dir / "summary.html"
    tmp = sweep_dir / f".summary.html.{os.getpid()}.tmp"
    tmp.write_text(render_summary_html(sweep_dir, manifest, rows, quality_label, quality, front, figure, configs,
                                       config_front, speed), encoding="utf-8")
    os.replace(tmp, path)
    return path


def short_label(c: dict[str, Any]) -> str:
    """A config's name in the figure: its non-default settings by their last key part (``max_num_seqs=4``)."""
    config = c.get("config")
    if config is None:
        return f"j{c.get('job')}"
    parts = [f"{k.rsplit('.', 1)[-1]}={v}" for k, _, v in (x.partition("=") for x in str(config).split())
             if v != "(default)"]
    return " ".join(parts) or "as configured (no override)"


SPEED_LABELS = {"goodput_per_core": "candidate goodput, requests/s per core (SLOs met, open-loop replay)",
                "output_tokens_per_s": "candidate output tokens/s (generated requests, engine time)"}


def pareto_plot(configs: Sequence[dict[str, Any]], quality: Sequence[float | None], label: str, front: Sequence[int],
                path: Path, speed: str = "output_tokens_per_s") -> Path:
    """Quality (higher is better) vs speed per config (the mean over its repeats, a 95% interval as error bars):
    the Pareto front joined and coloured, dominated configs grey, configs that failed the gate on quality (a
    breached family other than latency, in any repeat) marked with a red cross and "fails gate"."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.2, 4.0))
    shown = [i for i, c in enumerate(configs) if c.get(speed) is not None and quality[i] is not None]
    failed = False
    for i in shown:
        c, on = configs[i], i in front
        x, y = c[speed], quality[i]
        lo, hi = c.get(f"{speed}_lo"), c.get(f"{speed}_hi")
        xerr = [[x - lo], [hi - x]] if lo is not None and hi is not None else None
        colour = ARM_COLORS["candidate"] if on else "#B0B0B0"
        ax.errorbar(x, y, xerr=xerr, fmt="o", ms=8 if on else 6, color=colour, ecolor=colour, capsize=3, zorder=3)
        note = short_label(c)
        if c.get("quality_failed", c.get("breached", 0)):
            failed = True
            ax.scatter([x], [y], marker="x", s=120, color="#C0392B", linewidths=2, zorder=4)
            note += "  (fails gate)"
        ax.annotate(note, (x, y), fontsize=7, xytext=(5, 4 - 10 * (i % 3)), textcoords="offset points",
                    color="#333333" if on else "#8C8C8C")
    line = sorted((configs[i][speed], quality[i]) for i in front if i in shown)
    if line:
        ax.plot([p[0] for p in line], [p[1] for p in line], "--", color=ARM_COLORS["candidate"], label="Pareto front")
    if failed:
        ax.scatter([], [], marker="x", color="#C0392B", label="fails the gate on quality")
    ax.scatter([], [], color="#B0B0B0", label="dominated")
    ax.legend(fontsize=7, loc="best")
    missing = [short_label(c) for i, c in enumerate(configs) if i not in shown]
    ax.set_xlabel(SPEED_LABELS.get(speed, speed), fontsize=8)
    ax.set_ylabel(label, fontsize=8)
    ax.set_title("Sweep: quality vs speed" + (f" (not shown, no rate: {', '.join(missing)})" if missing else ""),
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
