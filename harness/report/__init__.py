"""The report: ``report.html`` (promotion ticket), ``report.md``, ``ticket.md`` and the figures, from one typed value.

``ReportInput`` is everything the report shows: the typed manifest, the verdict, the analysis tables, the traffic
requests (for prompts) and what the signal families added to ``verdict.json`` (``sections``: ``divergence``, ...);
``pair_signals``: the per-request signal values of the changed pairs, which label them (``write_report`` reads them
from the run directory when they are not given).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from harness.report.data import ReportInput

if TYPE_CHECKING:
    from harness.store import RunDir

__all__ = ["ReportInput", "write_report"]



def write_report(run: RunDir, data: ReportInput) -> Path:
    """Figures, ``report.html``, ``ticket.md``, ``pr_comment.md`` and ``report.md`` in the run directory; returns
    report.md's path."""
    from harness.report import html, markdown, plots
    from harness.report.pairs import load_pair_signals

    verdict = data.verdict
    changed = data.tables.get("changed_pairs")
    if not data.pair_signals and changed is not None and "request_id" in changed.column_names:
        ids = {str(r) for r in changed.column("request_id").to_pylist()}
        data = replace(data, pair_signals=load_pair_signals(run, ids))
    figures = [plots.length_distributions(run.table_path("signals"), run.path / "length_distributions.png"),
               plots.signal_deltas([c for c in verdict.checks if c.family != "drift"], run.path / "signal_deltas.png")]
    if data.divergence is not None:
        figures.append(plots.similarity_histogram(run.read_table("drift"), data.divergence["aa_floor"],
                                                  run.path / "similarity.png"))
    if (run.path / "judge_admission.json").exists():
        from harness.report import judge_audit

        run.write_text("judge.html", judge_audit.render(run, data.requests))
    judge = run.table_path("judge_pairwise_summary")
    judge_pairwise = run.read_table("judge_pairwise_summary").to_pylist() if judge.exists() else None
    run.write_text("report.html", html.render_html(data, figures, judge_pairwise))
    run.write_text("ticket.md", markdown.render_ticket(data, ["report.html", "verdict.json", "report.md"]))
    run.write_text("pr_comment.md", markdown.render_pr_comment(data))
    return run.write_text("report.md", markdown.render(data, [p.name for p in figures], judge_pairwise))
