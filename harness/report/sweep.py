"""A sweep's report: ``summary.md`` (one row per job) and the quality vs throughput figure with its Pareto front."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.report.markdown import _table
from harness.report.plots import ARM_COLORS, _pyplot

if TYPE_CHECKING:
    from harness.spec import Manifest

COLUMNS = (("job", "job"), ("settings", "swept settings"), ("verdict", "verdict"), ("direction", "direction"),
           ("families", "families"), ("key_deltas", "key deltas (cand - base)"),
           ("generated", "generated"), ("cached", "cached"), ("output_tokens_per_s", "output tok/s"),
           ("requests_per_s", "req/s"), ("seconds_per_request", "s/request"), ("run_id", "run"))


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
        _table(header, body), "",
        f"![quality vs throughput]({figure})", "",
    ])


def pareto_plot(rows: Sequence[dict[str, Any]], quality: Sequence[float | None], label: str, front: Sequence[int],
                path: Path) -> Path:
    """Quality (higher is better) vs generated output tokens/s per job; the Pareto front joined and marked."""
    plt = _pyplot()
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
