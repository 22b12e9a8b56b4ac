"""``ReportInput``: everything the report shows, as one typed value (the renderers' only input)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

    from harness.gate import Verdict
    from harness.report.pairs import Pair
    from harness.report.signoff import SignOff
    from harness.spec import Manifest
    from harness.traffic import Request



@dataclass(frozen=True)
class ReportInput:
    """What a report is made from (``harness.run.evaluate`` builds it)."""

    manifest: Manifest
    verdict: Verdict
    tables: Mapping[str, pa.Table]  # the analysis tables: summary, changed_pairs, throughput, ...
    requests: Mapping[str, Request]
    sections: Mapping[str, Any]  # what the families add to verdict.json, e.g. divergence
    # request_id -> metric -> (baseline, candidate) for the changed pairs; "cosine": (None, candidate vs baseline)
    pair_signals: Mapping[str, Mapping[str, tuple[float | None, float | None]]] = field(default_factory=dict)
    signoffs: Sequence[SignOff] = ()  # who accepted the verdict (signoff.json)
    job_exit_code: int | None = None  # the CI job's exit code under the exit policy (ci.fail_on); None: the verdict's

    @property
    def ci_line(self) -> str:
        """The exit policy's decision in one sentence."""
        code = self.verdict.exit_code if self.job_exit_code is None else self.job_exit_code
        policy = ", ".join(self.manifest.spec.fail_on) or "nothing"
        fails = "fails" if code else "passes"
        why = " (signed off)" if self.signoffs and code == 0 and self.verdict.verdict != "PASS" else ""
        return f"CI: exit code {code}, the job {fails}{why}; ci.fail_on: {policy}."

    @property
    def divergence(self) -> Mapping[str, Any] | None:
        return self.sections.get("divergence")

    @property
    def imported_arms(self) -> list[str]:
        """Arms whose outputs were read from a file (backend ``imported``): they have no engine time."""
        return [a for a, m in self.manifest.arms.items() if m.backend == "imported"]

    @property
    def has_aa(self) -> bool:
        """Whether the run has an A/A arm (a noise floor for the embedding drift)."""
        return "aa" in self.manifest.arms

    @property
    def arms(self) -> dict[str, str]:
        """Source (checkpoint or imported file) of the baseline and the candidate."""
        from harness.spec import ARMS

        return {a: self.manifest.arms[a].source for a in ARMS}

    @property
    def pairs(self) -> list[Pair]:
        """The most changed pairs to show (``report.top_pairs``): deduplicated, labelled, grouped by segment."""
        from harness.report.pairs import select

        floor = self.divergence.get("aa_floor") if self.divergence else None
        return select(self.tables["changed_pairs"].to_pylist(), self.manifest.spec.report.top_pairs,
                      self.pair_signals, floor, self.prompt)

    def prompt(self, request_id: str) -> str:
        """The request's text as shown: each chat message as ``[role] content``, or the plain prompt."""
        r = self.requests.get(request_id)
        if r is None:
            return ""
        if r.messages:
            return "\n".join(f"[{m.role}] {m.content}" for m in r.messages)
        return r.prompt or ""
