"""``LocalReplayer``: the replay in this process, one engine per arm (the contract in ``harness.replay``)."""

from __future__ import annotations

import itertools
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace

from harness.config import ArmConfig
from harness.console import Stage
from harness.engines.base import Engine, EngineError, Generation, PreparedRequest, make_engine
from harness.replay import ArmTiming, ReplayJob
from harness.replay.cache import GenerationCache
from harness.replay.ledger import Work, commit_batch, plan, work
from harness.store import RunDir
from harness.traffic import Traffic

log = logging.getLogger(__name__)


class ArmEngine:
    """An arm's engine as a context manager: started on first use (``get``), kept open across the arm's jobs (the
    traffic, then the golden set, so it starts once per arm), closed on exit, on success and on failure."""

    def __init__(self, arm: ArmConfig) -> None:
        self.arm = arm
        self.engine: Engine | None = None
        self.load_seconds = 0.0

    def __enter__(self) -> ArmEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self) -> Engine:
        if self.engine is None:
            t0 = time.perf_counter()
            self.engine = make_engine(self.arm)
            self.load_seconds = time.perf_counter() - t0
        return self.engine

    def close(self) -> None:
        if self.engine is not None:
            self.engine.close()
            self.engine = None


class LocalReplayer:
    """In this process: one engine per arm (``ArmEngine``), the jobs one after the other through ``replay_arm``."""

    def replay(self, name: str, arm: ArmConfig, jobs: Sequence[ReplayJob], cache: GenerationCache | None
               ) -> list[ArmTiming]:
        with ArmEngine(arm) as engine:
            return [replace(replay_arm(name, arm, j.traffic, j.run, engine, cache, stage=stage_name(name, j.label)),
                            arm=j.label) for j in jobs]


def stage_name(arm: str, label: str) -> str:
    """What the progress line calls a replay job: ``replay baseline``, ``golden set baseline``."""
    return f"golden set {arm}" if label.startswith("golden_") else f"replay {arm}"


def replay_arm(name: str, arm: ArmConfig, traffic: Traffic, run: RunDir,
               engine: ArmEngine | None = None, cache: GenerationCache | None = None,
               stage: str | None = None) -> ArmTiming:
    """Replay ``traffic`` through ``arm`` batch by batch, in this process (the contract in the module docstring).

    The engine starts only when some request is left to generate, and is handed the batches as a stream
    (``Engine.stream``): it may read the next batches from the traffic while it generates the current one (the
    vLLM engine holds at most ``MAX_INFLIGHT_BATCHES``), so only those batches of requests are in memory at a time.
    Without ``engine``, one is started for this call and closed at its end.

    Raises:
        ResumeError: a part exists whose request ids are not the traffic's batch with that index.
    """
    total, done = plan(run, name, traffic, arm.engine.batch_size)
    pool = engine or ArmEngine(arm)
    started = pool.engine is not None
    hits = misses = 0
    progress = Stage(stage or f"replay {name}", max(traffic.requests - len(done) * arm.engine.batch_size, 0))

    def started_engine() -> Engine:
        if pool.engine is None:
            pool.get()
            log.info("arm %s: engine ready in %.1f s; %d of %d batches to replay", name, pool.load_seconds,
                     total - len(done), total)
        assert pool.engine is not None
        return pool.engine

    try:
        for item, fresh, seconds in _generate(name, started_engine, work(run, name, arm, traffic, done, cache)):
            commit_batch(run, name, item, fresh, seconds, cache)
            hits, misses = hits + len(item.cached), misses + len(item.todo)
            progress.update(len(item.requests))
            log.info("arm %s: batch %d/%d done", name, item.index + 1, total)
    finally:
        if engine is None:
            pool.close()
        progress.close(f"{hits} from the cache" + (f", {len(done)} batches resumed" if done else ""))
    if cache is not None:
        log.info("arm %s: %d of %d requests from the cache", name, hits, hits + misses)
    load_seconds = pool.load_seconds if misses and not started else 0.0
    return ArmTiming(name, load_seconds, total - len(done), len(done), hits, misses, misses > 0)


def _generate(name: str, engine: Callable[[], Engine], items: Iterator[Work]
              ) -> Iterator[tuple[Work, list[Generation], float]]:
    """Each work item with the generations of its ``todo`` and the seconds the replay waited for them, in order.

    Items with nothing to generate pass through without an engine; from the first item with requests to generate
    on, the rest are streamed through the engine (started then, by ``engine()``). ``seconds`` is the wall time spent
    waiting for the item's generations: the engine time the throughput is computed from.
    """
    first = None
    for item in items:
        if item.todo:
            first = item
            break
        yield item, [], 0.0
    if first is None:
        return
    pulled: deque[Work] = deque()  # the items the engine has taken and not answered yet, in order

    def todos(first: Work) -> Iterator[list[PreparedRequest]]:
        for it in itertools.chain([first], items):
            pulled.append(it)
            yield it.todo

    stream = engine().stream(todos(first))
    while True:
        t = time.perf_counter()
        fresh = next(stream, None)
        seconds = time.perf_counter() - t
        if fresh is None:
            return
        it = pulled.popleft()
        if [g.request_id for g in fresh] != [p.request_id for p in it.todo]:
            raise EngineError(f"arm {name}: the engine answered batch {it.index} with other request ids than it was "
                              "given. Fix: an engine must return one generation per request, in order (a bug in the "
                              "engine).")
        yield it, fresh, seconds if it.todo else 0.0
