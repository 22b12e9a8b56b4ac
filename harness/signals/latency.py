"""The ``latency`` signal family: latency under load, from an open-loop timed replay (``replay.load``, docs/load.md).

Per request and arm (one row each, from the run's ``load`` parts): ``ttft`` (seconds to the first token), ``tpot``
(seconds per output token after the first), ``e2e_latency`` (send to last token) and, when an SLO is set
(``replay.load.slo_*``), ``slo_met`` (1 when the request met every SLO set: the goodput's numerator). All are
``degradation`` metrics read by the paired analysis like any other (``summary.sql`` -> ``harness.gate.metric_checks``
-> ``breach_check``): the paired t on per-request differences (means; relative margin 20% by default,
``gate.thresholds.<metric>``), ``slo_met`` Tango's score test in absolute points (5 by default). Pairing by request is
sound only when both arms saw the same schedule; the family checks that (the schedule fingerprints) and the
schedule's fidelity (``replay.load.max_lateness_p99_s``): when either fails, every latency metric is ``advisory``
(reported, never a breach) and the details say why. Percentiles per arm and segment are ``latency.sql``'s.

``details`` (``verdict.json`` ``latency``): per arm the schedule fidelity (send lateness p50/p99, achieved vs
scheduled rate), the over-saturation flag (``saturation``), goodput, and whether the gate trusts the latency signals.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from harness.engines.schedule import fidelity
from harness.signals.base import SIGNAL_SCHEMA, Family, MetricSpec, ScoreInputs

if TYPE_CHECKING:
    from harness.config import LoadConfig
    from harness.gate import Check, Policy
    from harness.spec import RunSpec

FAMILY = "latency"


@dataclass(frozen=True)
class Saturation:
    """Whether latency rose through the run (``saturation``): block medians of TTFT after a warm-up, their last over
    their first, and Kendall's tau of the block medians on block order (exact one-sided p, H0: no upward trend)."""

    n: int
    ratio: float | None
    tau: float | None
    p_value: float | None
    flagged: bool
    blocks: int = 6


WARMUP = 0.25  # the first quarter of requests (by send time) fill an empty server: left out
BLOCKS = 6


def saturation(sent_s: Sequence[float], ttft_s: Sequence[float], ratio: float = 1.5,
               alpha: float = 0.01) -> Saturation:
    """The over-saturation flag. Requests ordered by send time; the first ``WARMUP`` share left out (a queue that
    starts empty rises at first under any load); the rest cut into ``BLOCKS`` consecutive blocks. Flagged when the
    last block's median TTFT exceeds ``ratio`` times the first block's and the block medians rise (Kendall's tau on
    block order, exact one-sided p < ``alpha``; with 6 blocks at most one pair out of order at alpha 0.01). Block
    medians rather than requests: consecutive latencies in a queue are correlated, and a test on single requests
    takes that for a trend (docs/load.md has the simulation). Fewer than 24 requests: never flagged."""
    y = [t for _, t in sorted(zip(sent_s, ttft_s, strict=True))]
    n = len(y)
    if n < 24:
        return Saturation(n, None, None, None, False, BLOCKS)
    rest = y[int(n * WARMUP):]
    size = len(rest) / BLOCKS
    med = [statistics.median(rest[round(i * size):round((i + 1) * size)]) for i in range(BLOCKS)]
    r = med[-1] / med[0] if med[0] > 0 else None
    from scipy.stats import kendalltau

    res = kendalltau(range(BLOCKS), med, alternative="greater", method="exact")
    tau, p = float(res.statistic), float(res.pvalue)
    return Saturation(n, r, tau, p, r is not None and r > ratio and p < alpha, BLOCKS)


def _m(name: str, kind: str, desc: str, advisory: bool, absolute: float | None = None,
       relative: float | None = None, hib: bool = False) -> MetricSpec:
    return MetricSpec(name, FAMILY, kind, hib, desc, "degradation", absolute, relative, advisory)


class Latency:
    """The ``latency`` family (module docstring)."""

    family = FAMILY

    def __init__(self, spec: RunSpec) -> None:
        self.load: LoadConfig = spec.load
        self.details: dict[str, Any] | None = None
        self._trusted = True

    @property
    def slo(self) -> dict[str, float]:
        return {k: v for k, v in (("ttft", self.load.slo_ttft_s), ("tpot", self.load.slo_tpot_s),
                                  ("e2e_latency", self.load.slo_e2e_s)) if v is not None}

    @property
    def metrics(self) -> tuple[MetricSpec, ...]:
        adv = not self._trusted
        out = [_m("ttft", "mean", "seconds to the first token, under the replayed load", adv, relative=0.2),
               _m("tpot", "mean", "seconds per output token after the first, under the replayed load", adv,
                  relative=0.2),
               _m("e2e_latency", "mean", "seconds from send to the last token, under the replayed load", adv,
                  relative=0.2)]
        if self.slo:
            out.append(_m("slo_met", "rate", "request met every latency SLO (goodput's numerator)", adv,
                          absolute=0.05, hib=True))
        return tuple(out)

    def score(self, inputs: ScoreInputs) -> pa.Table:
        import pyarrow.parquet as pq

        parts = sorted((inputs.run.path / "load").glob("arm=*/part-*.parquet"))
        rows: list[dict[str, Any]] = []
        per_arm: dict[str, list[dict[str, Any]]] = {}
        for p in parts:
            per_arm.setdefault(p.parent.name.removeprefix("arm="), []).extend(pq.read_table(p).to_pylist())
        for arm, recs in per_arm.items():
            for r in recs:
                if r["sent_s"] is None or r["error"] is not None:
                    continue
                values: dict[str, float | None] = _values(r)
                if self.slo:
                    values["slo_met"] = float(self._met(r))
                rows += [{"request_id": r["request_id"], "arm": arm, "segment": r["segment"], "metric": k,
                          "value": v} for k, v in values.items()]
        self.details = self._details(per_arm)
        return pa.Table.from_pylist(rows, schema=SIGNAL_SCHEMA)

    def _met(self, r: dict[str, Any]) -> bool:
        values = _values(r)
        return all((x := values[k]) is not None and x <= v for k, v in self.slo.items())

    def _details(self, per_arm: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
        arms: dict[str, Any] = {}
        for arm, recs in sorted(per_arm.items()):
            sent = [r for r in recs if r["sent_s"] is not None]
            fid = fidelity([r["scheduled_s"] for r in recs], [r["sent_s"] for r in recs], self.load.max_lateness_p99_s)
            ok = [r for r in sent if r["error"] is None and r["ttft_s"] is not None]
            sat = saturation([r["sent_s"] for r in ok], [r["ttft_s"] for r in ok], self.load.saturation_ratio,
                             self.load.saturation_alpha)
            span = (max(r["done_s"] or r["sent_s"] for r in sent) - min(r["sent_s"] for r in sent)) if sent else 0.0
            good = sum(self._met(r) for r in ok)
            arms[arm] = {"fidelity": {**asdict(fid), "describe": fid.describe()}, "saturation": asdict(sat),
                         "schedule": recs[0]["schedule"] if recs else None, "sent": len(sent),
                         "errors": sum(r["error"] is not None for r in sent), "makespan_s": span,
                         "goodput_rps": good / span if span > 0 else None,
                         "throughput_rps": len(ok) / span if span > 0 else None}
        reasons = [f"arm {a}: schedule fidelity broken ({d['fidelity']['describe']})" for a, d in arms.items()
                   if not d["fidelity"]["ok"]]
        schedules = {d["schedule"] for a, d in arms.items() if a in ("baseline", "candidate")}
        if len(schedules) > 1:
            reasons.append("baseline and candidate saw different schedules: their latencies do not pair by request")
        self._trusted = not reasons
        return {FAMILY: {"arms": arms, "trusted": not reasons, "untrusted_because": reasons, "slo": self.slo,
                         "saturated": [a for a, d in arms.items() if d["saturation"]["flagged"]]}}

    def checks(self, policy: Policy) -> list[Check]:
        return []


def _values(r: dict[str, Any]) -> dict[str, float | None]:
    return {"ttft": r["ttft_s"], "tpot": r["tpot_s"], "e2e_latency": r["latency_s"]}


def _make(spec: RunSpec) -> Latency | None:
    return Latency(spec) if spec.load.mode != "off" else None


PLUGIN = Family(make=_make)
