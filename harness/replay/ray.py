"""Replay on Ray: each arm's engines are Ray actors, scheduled by Ray on this machine's or a cluster's devices.

``RayReplayer`` keeps ``harness.replay``'s contract (same run directory, parts, resume, generation cache): the driver
plans the batches (``plan``, ``work``: what is done, what the cache answers), ``engine.replicas`` engine actors per
arm (each one the arm's normal engine, ``harness.engines``: the same tokenization, sampling, error rows as a local
replay) generate the rest, at most two batches in flight per actor, and the driver commits each batch as it comes
back (``commit_batch``; batches finish in any order, which resume already allows). The actors live for the arm's
jobs (traffic, then golden set) and are killed after them. Each actor asks for ``num_gpus = tensor_parallel_size``
on a GPU cluster, one CPU otherwise (vLLM's CPU build); a request that no node can satisfy is reported after
``schedule_timeout_s`` instead of waiting forever.

Why actors and not ``ray.data.llm``'s processor: an actor pool lives across an arm's jobs (one engine start per arm,
not per dataset), commits batch by batch (kill the run, the finished batches stay: resume), and serves through the
harness's own engine, so outputs are those of a local replay; the driver writes the run directory, so workers need no
shared storage. Embeddings for drift run as a Ray Data ``map_batches`` over an actor pool
(``harness.signals.embedding.ray_embed``).

Ray is started here on this machine (``ray.address`` null: ``ray.init(num_cpus=...)``, stopped at the end of the
command), or joined (``auto`` or ``ray://head:10001``; nodes need the same environment: the harness and vLLM
installed, the checkpoints at the same paths).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from harness.config import ArmConfig, RayConfig
from harness.console import Stage
from harness.engines.base import EngineError, Generation, PreparedRequest, capabilities
from harness.ray_session import cluster_gpus
from harness.replay import ArmTiming, ReplayJob
from harness.replay.cache import GenerationCache
from harness.replay.ledger import Work, commit_batch, plan, work
from harness.replay.local import LocalReplayer, stage_name

log = logging.getLogger(__name__)
INFLIGHT_PER_ACTOR = 2


def _actor_class() -> Any:
    import ray

    class ArmWorker:
        """One engine of one arm, in a Ray actor."""

        def __init__(self, arm: ArmConfig) -> None:
            from harness.engines.base import make_engine

            self.engine = make_engine(arm)

        def generate(self, index: int, todo: Sequence[PreparedRequest]) -> tuple[int, list[Generation], float]:
            t = time.perf_counter()
            out = self.engine.generate(todo)
            return index, out, time.perf_counter() - t

        def close(self) -> None:
            self.engine.close()

    return ray.remote(ArmWorker)


class RayReplayer:
    """``engine.replicas`` engine actors per arm, batches committed as they finish (module docstring)."""

    def __init__(self, settings: RayConfig) -> None:
        self.settings = settings

    def replay(self, name: str, arm: ArmConfig, jobs: Sequence[ReplayJob], cache: GenerationCache | None
               ) -> list[ArmTiming]:
        if not capabilities(arm).on_ray:  # nothing to place on Ray: a file, or HTTP servers
            return LocalReplayer().replay(name, arm, jobs, cache)
        actors: list[Any] = []
        started = [0.0]
        try:
            return [self._job(name, arm, j, cache, actors, started) for j in jobs]
        finally:
            self._stop(actors)

    def _start(self, name: str, arm: ArmConfig) -> list[Any]:
        import ray

        gpus = arm.engine.tensor_parallel_size if cluster_gpus() else 0
        options: dict[str, Any] = {"num_gpus": gpus} if gpus else {"num_cpus": 1}
        actors = [_actor_class().options(**options).remote(arm) for _ in range(arm.engine.replicas)]
        ready = [a.__ray_ready__.remote() for a in actors]
        done, pending = ray.wait(ready, num_returns=len(ready), timeout=self.settings.schedule_timeout_s)
        if pending:
            self._stop(actors)
            raise EngineError(f"arm {name}: {len(pending)} of {arm.engine.replicas} engine actors were not running "
                              f"after {self.settings.schedule_timeout_s:.0f} s (each asks for {options}; the cluster "
                              f"has {ray.available_resources()} free). Fix: fewer engine.replicas, a smaller "
                              "tensor_parallel_size, or more nodes; raise ray.schedule_timeout_s if the engines are "
                              "only slow to start.")
        try:
            ray.get(done)
        except ray.exceptions.RayActorError as e:
            self._stop(actors)
            raise EngineError(f"arm {name}: an engine actor failed to start: {e}") from e
        return actors

    @staticmethod
    def _stop(actors: list[Any]) -> None:
        import ray

        for a in actors:
            try:
                ray.get(a.close.remote(), timeout=30)
            except Exception as exc:  # an actor that died already
                log.debug("actor close: %s", exc)
            ray.kill(a)
        actors.clear()

    def _job(self, name: str, arm: ArmConfig, job: ReplayJob, cache: GenerationCache | None, actors: list[Any],
             started: list[float]) -> ArmTiming:
        import ray

        total, done = plan(job.run, name, job.traffic, arm.engine.batch_size)
        progress = Stage(stage_name(name, job.label),
                         max(job.traffic.requests - len(done) * arm.engine.batch_size, 0))
        items = work(job.run, name, arm, job.traffic, done, cache)
        inflight: dict[Any, tuple[Work, int]] = {}
        hits = misses = 0
        try:
            for item in items:
                if not item.todo:  # all from the cache
                    commit_batch(job.run, name, item, [], 0.0, cache)
                    hits += len(item.cached)
                    progress.update(len(item.requests))
                    continue
                if not actors:
                    t0 = time.perf_counter()
                    actors += self._start(name, arm)
                    started[0] = time.perf_counter() - t0
                    log.info("arm %s: %d engine actors ready in %.1f s", name, len(actors), started[0])
                while len(inflight) >= INFLIGHT_PER_ACTOR * len(actors):
                    hits, misses = self._collect(name, job, inflight, cache, progress, hits, misses)
                busy = [sum(1 for _, k in inflight.values() if k == n) for n in range(len(actors))]
                k = busy.index(min(busy))  # the least busy actor
                inflight[actors[k].generate.remote(item.index, item.todo)] = (item, k)
            while inflight:
                hits, misses = self._collect(name, job, inflight, cache, progress, hits, misses)
        except ray.exceptions.RayError as e:
            raise EngineError(f"arm {name}: an engine actor failed ({type(e).__name__}: {e}); the batches committed "
                              "so far are kept. Fix: read the error, then run the same command again to "
                              "resume.") from e
        finally:
            progress.close(f"{hits} from the cache" + (f", {len(done)} batches resumed" if done else ""))
        return replace(ArmTiming(name, started[0] if misses else 0.0, total - len(done), len(done), hits, misses,
                                 misses > 0), arm=job.label)

    @staticmethod
    def _collect(name: str, job: ReplayJob, inflight: dict[Any, tuple[Work, int]], cache: GenerationCache | None,
                 progress: Stage, hits: int, misses: int) -> tuple[int, int]:
        """Wait for one batch, check and commit it."""
        import ray

        [ref], _ = ray.wait(list(inflight), num_returns=1)
        item, _ = inflight.pop(ref)
        index, fresh, seconds = ray.get(ref)
        if index != item.index or [g.request_id for g in fresh] != [p.request_id for p in item.todo]:
            raise EngineError(f"arm {name}: an engine actor answered batch {item.index} with other request ids "
                              "(a bug in the engine).")
        commit_batch(job.run, name, item, fresh, seconds, cache)
        progress.update(len(item.requests))
        return hits + len(item.cached), misses + len(item.todo)
