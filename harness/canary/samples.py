"""The canary's signal families on unpaired outputs, as samples (``harness.canary.windows.Sample``).

- ``stats``: every output statistic of the offline family, per output (``harness.signals.stats.score_one``: rates,
  lengths, refusals, JSON, the format profile), with the offline catalog's directions and margins;
- ``drift`` (``DriftScorer``): embedding shift against control. The first ``reference`` control outputs are held out;
  every later output of either arm gets its mean cosine similarity to them (packaged MiniLM). Under no change both
  arms' values come from one distribution (the held-out reference makes them exchangeable), so the mSPRT on their
  means is a two-sample test whose null the A/A simulation and the benign demo measure; no direction of its own
  (a divergence);
- ``golden`` (``GoldenReplayer``): a new slice of the golden set replayed against both endpoints on a schedule and
  scored like the offline golden family (eval metrics: regressions and improvements); both versions answer the
  same items, so the samples are ``paired`` and compared per item.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from harness.canary.client import chat_many
from harness.canary.logs import LogRecord
from harness.canary.windows import Sample
from harness.signals.base import MetricSpec
from harness.signals.stats import METRICS as STATS_METRICS
from harness.signals.stats import score_one

log = logging.getLogger(__name__)

DRIFT_METRIC = MetricSpec("drift_similarity", "drift", "mean", None,
                          "mean cosine similarity of an output to a held-out sample of control outputs (MiniLM)",
                          role="divergence", margin_absolute=0.02)


def stats_samples(records: Iterable[LogRecord]) -> list[Sample]:
    """Every applicable stats metric of every record."""
    out = []
    for r in records:
        values = score_one(r.request, r.response or "", r.finish_reason, r.output_tokens, r.error)
        out += [Sample(r.request.request_id, r.arm, r.request.segment, k, v, r.timestamp)
                for k, v in values.items() if v is not None]
    return out


class DriftScorer:
    """Embeds outputs as they arrive and scores them against the held-out control reference."""

    def __init__(self, model: str, reference: int, device: str | None = None, control_share: float = 1.0) -> None:
        from harness.signals.embedding import Embedder

        self.embedder = Embedder(model, device=device)
        self.reference_size, self.control_share = reference, control_share
        self.reference: np.ndarray | None = None
        self.reference_ids: set[str] = set()
        self._pending: list[tuple[str, str, str, dt.datetime, np.ndarray]] = []  # waiting for the reference

    def samples(self, records: Sequence[LogRecord]) -> list[Sample]:
        """Drift samples of records that just arrived (oldest first). Until the reference is complete, embedded
        outputs wait (their id, arm, segment, time and vector; the reference's own outputs are not scored); then
        each output is embedded once, scored, and dropped: memory holds the reference, not the traffic."""
        ok = [r for r in records if r.error is None and r.response is not None
              and (r.arm == "canary" or _kept(r.request.request_id, self.control_share))]
        if not ok:
            return []
        vectors = self.embedder.encode([r.response or "" for r in ok])
        batch = [(r.request.request_id, r.arm, r.request.segment, r.timestamp, v)
                 for r, v in zip(ok, vectors, strict=True)]
        if self.reference is None:
            self._pending += batch
            control = [b for b in self._pending if b[1] == "control"][: self.reference_size]
            if len(control) < self.reference_size:
                return []
            self.reference = np.stack([b[4] for b in control])
            self.reference_ids = {b[0] for b in control}
            batch, self._pending = [b for b in self._pending if b[0] not in self.reference_ids], []
        if not batch:
            return []
        sims = np.stack([b[4] for b in batch]) @ self.reference.T
        return [Sample(rid, arm, segment, DRIFT_METRIC.name, float(sim), at)
                for (rid, arm, segment, at, _), sim in zip(batch, sims.mean(1), strict=True)]


def _kept(request_id: str, share: float) -> bool:
    """A deterministic ``share`` of control requests (by a hash of the id) is embedded: control is 95% of traffic."""
    import zlib

    return share >= 1.0 or zlib.crc32(request_id.encode()) % 10_000 < share * 10_000


@dataclass(frozen=True)
class Endpoint:
    """An OpenAI-compatible base URL and the model name it serves."""

    url: str
    model: str


def served_model(url: str, timeout_s: float = 10.0) -> str:
    """The first model ``GET /v1/models`` lists."""
    import json
    import urllib.request

    with urllib.request.urlopen(url.rstrip("/") + "/v1/models", timeout=timeout_s) as resp:  # noqa: S310
        return str(json.loads(resp.read())["data"][0]["id"])


class GoldenReplayer:
    """Replays slice ``k`` of the golden set (items ``k*limit`` to ``(k+1)*limit``) against both endpoints."""

    def __init__(self, path: str, limit: int, control: Endpoint, canary: Endpoint, max_tokens: int = 128,
                 timeout_s: float = 60.0) -> None:
        from harness.golden.schema import load_golden

        traffic, self.items = load_golden(path)
        self.requests = [r for b in traffic.batches(1024) for r in (b.requests or [])]
        self.limit, self.endpoints = limit, {"control": control, "canary": canary}
        self.max_tokens, self.timeout_s = max_tokens, timeout_s

    def catalog(self) -> tuple[MetricSpec, ...]:
        from harness.signals.golden import golden_metrics

        return golden_metrics(self.items)

    def replay(self, k: int, at: dt.datetime) -> list[Sample]:
        """The golden samples of slice ``k`` (wraps around the set), counted at time ``at``."""
        from harness.golden.metrics import get_metric

        n = len(self.requests)
        chosen = [self.requests[(k * self.limit + i) % n] for i in range(min(self.limit, n))]
        out = []
        for arm, ep in self.endpoints.items():
            answers = chat_many(ep.url, ep.model, chosen, concurrency=8, max_tokens=self.max_tokens,
                                timeout_s=self.timeout_s)
            errors = sum(a.error is not None for a in answers)
            if errors:
                log.warning("golden replay %d against %s: %d of %d calls failed (scored 0)", k, arm, errors,
                            len(chosen))
            for r, a in zip(chosen, answers, strict=True):
                item = self.items[r.request_id]
                for metric, target in item.checks:
                    value = 0.0 if a.error is not None else get_metric(metric).score(a.text or "", target)
                    if value is not None:
                        out.append(Sample(f"golden:{k}:{r.request_id}", arm, item.segment, f"golden_{metric}",
                                          float(value), at, paired=True))
        return out


STATS_CATALOG: tuple[MetricSpec, ...] = STATS_METRICS
