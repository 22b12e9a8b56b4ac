"""``TimedReplayer``: each arm's traffic replayed open loop, at its schedule (``replay.load``, docs/load.md).

The arm's whole traffic is one schedule (``harness.engines.schedule``): captured timestamps / speed-up, or a target
rate (constant, Poisson); it is sent by ``harness.engines.open_loop`` through the arm's server engine, never waiting
for earlier responses. Requests the schedule cuts (``max_requests``, ``max_duration_s``) and tool-calling ones are
error rows, the same on every arm (the schedule is a function of the traffic and the config alone).

What it writes keeps the replay contract (``harness.replay``): ``generations`` parts (batch by
``engine.batch_size``, one row per request) and ``batches`` parts (the makespan, first send to last answer, shared over
the parts by request count), plus one ``load`` part per batch: per request the scheduled and actual send time, the
lateness, TTFT, the inter-chunk gaps (ITL), TPOT, end-to-end latency, the error and the schedule's fingerprint. The
generation cache is neither read nor written (a cached answer has no latency). Resume: a timed replay whose parts
are all there is kept; otherwise it is sent again from the start (a schedule cannot be resumed half-way). The arm's
other jobs (a golden set) are replayed as usual, with the same engine.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import replace

import pyarrow as pa

from harness.config import ArmConfig, LoadConfig
from harness.console import Stage
from harness.engines.base import EngineError, Generation
from harness.engines.open_loop import Timed, send_open_loop
from harness.engines.schedule import cut, fingerprint, offsets
from harness.replay import ArmTiming, ReplayJob
from harness.replay.cache import GenerationCache
from harness.replay.ledger import Work, commit_batch, plan, work
from harness.replay.local import ArmEngine, replay_arm, stage_name
from harness.store import RunDir
from harness.traffic import Request, Traffic

log = logging.getLogger(__name__)

LOAD_SCHEMA = pa.schema([
    ("request_id", pa.string()), ("segment", pa.string()), ("batch", pa.int32()),
    ("scheduled_s", pa.float64()), ("sent_s", pa.float64()), ("lateness_s", pa.float64()),
    ("ttft_s", pa.float64()), ("tpot_s", pa.float64()), ("itl_s", pa.list_(pa.float64())),
    ("latency_s", pa.float64()), ("done_s", pa.float64()), ("prompt_tokens", pa.int64()),
    ("output_tokens", pa.int64()), ("error", pa.string()), ("schedule", pa.string()), ("mode", pa.string()),
])
"""One row per request of a timed replay (``load/arm=*/part-*.parquet``); seconds after the replay's start."""


class TimedReplayer:
    """The ``Replayer`` of a run with ``replay.load`` on: the arm's traffic job open loop, its other jobs as usual."""

    def __init__(self, load: LoadConfig) -> None:
        self.load = load

    def replay(self, name: str, arm: ArmConfig, jobs: Sequence[ReplayJob], cache: GenerationCache | None
               ) -> list[ArmTiming]:
        with ArmEngine(arm) as engine:
            out = []
            for i, j in enumerate(jobs):
                if i == 0 and not arm.imported:
                    out.append(replace(replay_timed(name, arm, j.traffic, j.run, self.load, engine), arm=j.label))
                else:
                    out.append(replace(replay_arm(name, arm, j.traffic, j.run, engine, cache,
                                                  stage=stage_name(name, j.label)), arm=j.label))
            return out


def replay_timed(name: str, arm: ArmConfig, traffic: Traffic, run: RunDir, load: LoadConfig,
                 engine: ArmEngine) -> ArmTiming:
    """Replay ``traffic`` through ``arm`` open loop at ``load``'s schedule (module docstring)."""
    total, done = plan(run, name, traffic, arm.engine.batch_size)
    if len(done) == total and all(run.has_part("load", name, b) for b in range(total)):
        log.info("arm %s: the timed replay is done (%d batches): kept", name, total)
        return ArmTiming(name, 0.0, 0, total)
    items = list(work(run, name, arm, traffic, set(), None))
    requests = [r for it in items for r in it.requests]
    skipped = {rid: g for it in items for rid, g in it.skipped.items()}
    scheduled = offsets(load.mode, len(requests), [r.timestamp for r in requests], load.speedup, load.rate,
                        load.seed)
    why = cut(scheduled, load.max_requests, load.max_duration_s)
    why = [w or (skipped[r.request_id].error if r.request_id in skipped else None) for r, w in zip(requests, why,
                                                                                                   strict=True)]
    schedule = fingerprint(scheduled, [r.request_id for r in requests], why)
    prepared = {p.request_id: p for it in items for p in it.todo}
    progress = Stage(f"timed replay {name}", len(requests))
    srv = engine.get()
    from harness.engines.server import ServerEngine

    if not isinstance(srv, ServerEngine):
        raise EngineError(f"arm {name}: replay.load needs engine.backend=server. Fix: {name}.engine.backend=server.")
    sendable = [i for i, r in enumerate(requests) if r.request_id in prepared]
    log.info("arm %s: timed replay (%s) of %d requests, %d to send over %.1f s", name, load.mode, len(requests),
             sum(why[i] is None for i in sendable), max((scheduled[i] for i in sendable if why[i] is None),
                                                         default=0.0))
    t0 = time.perf_counter()
    timed = send_open_loop(srv, [prepared[requests[i].request_id] for i in sendable],
                           [scheduled[i] for i in sendable], [why[i] for i in sendable], load.max_in_flight)
    wall = time.perf_counter() - t0
    progress.update(len(requests))
    by_id = {t.generation.request_id: t for t in timed}
    sent = [t for t in timed if t.sent_s is not None]
    makespan = (max((t.done_s or t.sent_s or 0.0) for t in sent) - min(t.sent_s or 0.0 for t in sent)) if sent else 0.0
    n_sent = max(len(sent), 1)
    for it in items:
        fresh = [by_id[p.request_id].generation for p in it.todo]
        share = sum(by_id[p.request_id].sent_s is not None for p in it.todo) / n_sent
        commit_batch(run, name, _sent_only(it, fresh), [g for g in fresh if not _not_sent(g)], makespan * share,
                     None)
        run.write_part("load", name, it.index, _load_table(it, by_id, scheduled, requests, why, schedule, load.mode))
    progress.close(f"{len(sent)} sent in {wall:.1f} s")
    return ArmTiming(name, engine.load_seconds, total, 0, 0, len(prepared), True)


def _not_sent(g: Generation) -> bool:
    return bool(g.error and g.error.startswith("not_sent"))


def _sent_only(it: Work, fresh: list[Generation]) -> Work:
    """The work item with the cut requests moved to ``skipped`` (error rows, not counted as generated)."""
    cut_rows = {g.request_id: g for g in fresh if _not_sent(g)}
    return Work(it.index, it.requests, {}, [p for p in it.todo if p.request_id not in cut_rows],
                {**it.skipped, **cut_rows})


def _load_table(it: Work, by_id: dict[str, Timed], scheduled: Sequence[float], requests: Sequence[Request],
                why: Sequence[str | None], schedule: str, mode: str) -> pa.Table:
    index = {r.request_id: i for i, r in enumerate(requests)}
    rows = []
    for r in it.requests:
        t = by_id.get(r.request_id)
        i = index[r.request_id]
        g = t.generation if t is not None else None
        sent = t.sent_s if t is not None else None
        rows.append({"request_id": r.request_id, "segment": r.segment, "batch": it.index,
                     "scheduled_s": scheduled[i], "sent_s": sent,
                     "lateness_s": sent - scheduled[i] if sent is not None else None,
                     "ttft_s": g.ttft_s if g else None, "tpot_s": t.tpot_s if t is not None else None,
                     "itl_s": t.itl_s if t is not None and sent is not None else None,
                     "latency_s": g.latency_s if g and sent is not None else None,
                     "done_s": t.done_s if t is not None else None,
                     "prompt_tokens": g.prompt_tokens if g else None, "output_tokens": g.output_tokens if g else None,
                     "error": (g.error if g else None) or why[i], "schedule": schedule, "mode": mode})
    return pa.Table.from_pylist(rows, schema=LOAD_SCHEMA)
