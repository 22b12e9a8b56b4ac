"""The report: ``report.html`` (promotion ticket), ``report.md``, ``ticket.md`` and the figures, from one typed value.

``ReportInput`` is everything the report shows: the typed manifest, the verdict, the analysis tables, the traffic
requests (for prompts) and what the signal families added to ``verdict.json`` (``sections``: ``divergence``, ...).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

    from harness.gate import Verdict
    from harness.spec import Manifest
    from harness.store import RunDir
    from harness.traffic import Request

ARMS = ("baseline", "candidate")


@dataclass(frozen=True)
class ReportInput:
    """What a report is made from (``harness.run.evaluate`` builds it)."""

    manifest: Manifest
    verdict: Verdict
    tables: Mapping[str, pa.Table]  # the analysis tables: summary, changed_pairs, throughput, ...
    requests: Mapping[str, Request]
    sections: Mapping[str, Any]  # what the families add to verdict.json, e.g. divergence

    @property
    def divergence(self) -> Mapping[str, Any] | None:
        return self.sections.get("divergence")

    @property
    def arms(self) -> dict[str, str]:
        """Source (checkpoint or imported file) of the baseline and the candidate."""
        return {a: self.manifest.arms[a].source for a in ARMS}

    @property
    def pairs(self) -> list[dict[str, Any]]:
        """The most changed pairs to show (``report.top_pairs``)."""
        return self.tables["changed_pairs"].to_pylist()[: self.manifest.spec.report.top_pairs]

    def prompt(self, request_id: str) -> str:
        """The request's text as shown: each chat message as ``[role] content``, or the plain prompt."""
        r = self.requests.get(request_id)
        if r is None:
            return ""
        if r.messages:
            return "\n".join(f"[{m.role}] {m.content}" for m in r.messages)
        return r.prompt or ""


def write_report(run: RunDir, data: ReportInput) -> Path:
    """Figures, ``report.html``, ``ticket.md`` and ``report.md`` in the run directory; returns report.md's path."""
    from harness.report import html, markdown, plots

    verdict = data.verdict
    figures = [plots.length_distributions(run.table_path("signals"), run.path / "length_distributions.png"),
               plots.signal_deltas([c for c in verdict.checks if c.family != "drift"], run.path / "signal_deltas.png")]
    if data.divergence is not None:
        figures.append(plots.similarity_histogram(run.read_table("drift"), data.divergence["aa_floor"],
                                                  run.path / "similarity.png"))
    judge = run.table_path("judge_pairwise_summary")
    judge_pairwise = run.read_table("judge_pairwise_summary").to_pylist() if judge.exists() else None
    run.write_text("report.html", html.render_html(data, figures, judge_pairwise))
    run.write_text("ticket.md", markdown.render_ticket(data, ["report.html", "verdict.json", "report.md"]))
    return run.write_text("report.md", markdown.render(data, [p.name for p in figures], judge_pairwise))
