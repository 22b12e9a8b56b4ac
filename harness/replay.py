"""Replay: arms x traffic -> generations, in batches, one Parquet part per batch.

The replayer seam. A ``Replayer`` replays each arm's jobs (``ReplayJob``: the traffic into the run directory, then
the golden set into ``<run>/golden/``) and returns one ``ArmTiming`` per job; everything after the replay (signals,
analysis, gate, report) reads only the run directory, so any replayer that keeps this contract can stand in for
``LocalReplayer`` (today's in-process loop, one engine per arm):

- **reads**: the traffic in batches of ``arm.engine.batch_size`` (``Traffic.batches``; batch ``b`` holds the
  requests ``b*size .. (b+1)*size-1`` in file order), the run directory's existing parts (resume), the cache;
- **prepares** each request for the arm (``prepare``: system prompt, template, sampling arm > captured > default);
- **writes**, per batch ``b`` of arm ``a``: ``batches/arm=a/part-b.parquet`` (``BATCH_SCHEMA``: the generated
  requests' counts and the seconds waited for them), then ``generations/arm=a/part-b.parquet``
  (``GENERATION_SCHEMA``, one row per request of the batch, traffic order). Both writes are atomic and durable
  (``harness.store``); the generations part is written last and is the batch's commit record;
- **done** means the generations part exists and holds exactly the traffic batch's request ids (``plan`` checks
  this and raises ``ResumeError`` otherwise); a done batch is never generated again, so the same command with the
  same ``run_id`` resumes an interrupted replay (even after kill -9); ``check_resume`` refuses a resume whose
  traffic or arm settings changed;
- **cache**: requests the generation cache holds (``harness.cache``) are taken from it; the misses are generated
  and added to it before the batch is committed (``commit_batch``); the ``batches`` part counts only the generated
  ones (``cached`` = how many came from the cache).
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

import pyarrow as pa

from harness.cache import GenerationCache
from harness.config import ArmConfig
from harness.console import Stage
from harness.engines.base import (
    DEFAULT_MAX_TOKENS,
    DEFAULT_TEMPERATURE,
    DEFAULT_TOP_P,
    ENGINES,
    Engine,
    EngineError,
    Generation,
    PreparedRequest,
    backend_name,
    make_engine,
    request_seed,
)
from harness.engines.checkpoints import has_chat_template
from harness.store import BATCH_SCHEMA, GENERATION_SCHEMA, RunDir
from harness.traffic import Request, Traffic

if TYPE_CHECKING:
    from harness.spec import Manifest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ArmTiming:
    """Seconds spent loading the engine and generating, for one arm in this invocation."""

    arm: str
    load_seconds: float
    batches_run: int
    batches_skipped: int
    cache_hits: int = 0  # requests of the replayed batches served from the generation cache
    cache_misses: int = 0  # requests of the replayed batches sent to the engine
    engine_started: bool = False


def _first(*values: float | int | None) -> float | int | None:
    return next((v for v in values if v is not None), None)


def prepare(r: Request, arm: ArmConfig) -> PreparedRequest:
    """Apply the arm's system prompt, prompt template and sampling (arm > captured > default)."""
    messages = None
    if r.messages is not None:
        msgs = [{"role": m.role, "content": m.content} for m in r.messages]
        if arm.prompt_template:
            msgs[-1]["content"] = arm.prompt_template.format(prompt=msgs[-1]["content"])
        if arm.system_prompt is not None:
            msgs = [m for m in msgs if m["role"] != "system"]
            msgs.insert(0, {"role": "system", "content": arm.system_prompt})
        messages = tuple(msgs)
    prompt = r.prompt
    if prompt is not None and arm.prompt_template:
        prompt = arm.prompt_template.format(prompt=prompt)
    s = arm.sampling
    return PreparedRequest(
        request_id=r.request_id, messages=messages, prompt=prompt,
        temperature=float(_first(s.temperature, r.temperature, DEFAULT_TEMPERATURE)),  # type: ignore[arg-type]
        top_p=float(_first(s.top_p, r.top_p, DEFAULT_TOP_P)),  # type: ignore[arg-type]
        max_tokens=int(_first(s.max_tokens, r.max_tokens, DEFAULT_MAX_TOKENS)),  # type: ignore[arg-type]
        seed=request_seed(s.seed, r.request_id), response_schema=r.response_schema)


def _generation_table(batch: int, requests: Sequence[Request], gens: Sequence[Generation]) -> pa.Table:
    segment = {r.request_id: r.segment for r in requests}
    return pa.Table.from_pylist([
        {"request_id": g.request_id, "segment": segment[g.request_id], "batch": batch, "output_text": g.output_text,
         "prompt_tokens": g.prompt_tokens, "output_tokens": g.output_tokens, "finish_reason": g.finish_reason,
         "error": g.error, "ttft_s": g.ttft_s, "itl_s": g.itl_s, "latency_s": g.latency_s} for g in gens],
        schema=GENERATION_SCHEMA)


def _batch_table(batch: int, gens: Sequence[Generation], seconds: float, cached: int) -> pa.Table:
    """Counts of the generated requests only (``gens``); ``cached`` requests took no engine time."""
    served = [g for g in gens if g.error is None]
    return pa.Table.from_pylist([{
        "batch": batch, "requests": len(served), "prompt_tokens": sum(g.prompt_tokens or 0 for g in served),
        "output_tokens": sum(g.output_tokens or 0 for g in served), "seconds": seconds, "cached": cached}],
        schema=BATCH_SCHEMA)


class ResumeError(EngineError):
    """The run directory holds a replay made with other traffic or other arm settings."""


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


@dataclass
class _Work:
    """One traffic batch to replay: its requests, those the cache answers, and the rest, prepared for the arm."""

    index: int
    requests: Sequence[Request]
    cached: dict[str, Generation]
    todo: list[PreparedRequest]


@dataclass(frozen=True)
class ReplayJob:
    """One replay of an arm: ``traffic`` into ``run`` (the run directory, or ``<run>/golden/``), recorded under
    ``label`` in the manifest (the arm's name, or ``golden_<arm>``)."""

    traffic: Traffic
    run: RunDir
    label: str


class Replayer(Protocol):
    """Replays an arm's jobs into their run directories under the contract in the module docstring."""

    def replay(self, name: str, arm: ArmConfig, jobs: Sequence[ReplayJob], cache: GenerationCache | None
               ) -> list[ArmTiming]: ...


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


def plan(run: RunDir, name: str, traffic: Traffic, size: int) -> tuple[int, set[int]]:
    """The arm's batch count and the batches already done (their generations parts exist); removes temporaries
    an interrupted replay left. Done parts are checked against the traffic while it is read (``work``)."""
    total = math.ceil(traffic.requests / size)
    done = {b for b in range(total) if run.has_part("generations", name, b)}
    stale = run.remove_stale_temporaries(name)
    if stale:
        log.info("arm %s: removed %d temporary files left by an interrupted replay", name, stale)
    if done and len(done) == total:
        log.info("arm %s: all %d batches already replayed, skipped", name, total)
    elif done:
        log.info("arm %s: resuming: %d of %d batches already replayed, skipped; %d to replay", name, len(done),
                 total, total - len(done))
    return total, done


def work(run: RunDir, name: str, arm: ArmConfig, traffic: Traffic, done: set[int],
         cache: GenerationCache | None) -> Iterator[_Work]:
    """The batches left to replay, prepared, with what the cache answers; checks each done part's request ids.

    Raises:
        ResumeError: a done part holds other requests than the traffic's batch with that index.
    """
    for batch in traffic.batches(arm.engine.batch_size, wanted=lambda b: b not in done):
        if batch.requests is None:
            _check_part(run, name, batch.index, batch.request_ids)
            continue
        prepared = [prepare(r, arm) for r in batch.requests]
        cached = cache.lookup(prepared) if cache is not None else {}
        yield _Work(batch.index, batch.requests, cached, [p for p in prepared if p.request_id not in cached])


def commit_batch(run: RunDir, name: str, item: _Work, fresh: Sequence[Generation], seconds: float,
                 cache: GenerationCache | None) -> None:
    """Record a replayed batch: the cache gets the fresh generations, then the batches part, then the generations
    part (the commit record)."""
    if cache is not None and item.todo:
        cache.add(item.todo, fresh)
    by_id = {**item.cached, **{g.request_id: g for g in fresh}}
    gens = [by_id[r.request_id] for r in item.requests]
    run.write_part("batches", name, item.index, _batch_table(item.index, fresh, seconds, len(item.cached)))
    run.write_part("generations", name, item.index, _generation_table(item.index, item.requests, gens))


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


def _generate(name: str, engine: Callable[[], Engine], items: Iterator[_Work]
              ) -> Iterator[tuple[_Work, list[Generation], float]]:
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
    pulled: deque[_Work] = deque()  # the items the engine has taken and not answered yet, in order

    def todos(first: _Work) -> Iterator[list[PreparedRequest]]:
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


def _check_part(run: RunDir, name: str, b: int, request_ids: list[str]) -> None:
    found = run.part_request_ids(name, b)
    if found != request_ids:
        raise ResumeError(
            f"{run.part_path('generations', name, b)}: expected the {len(request_ids)} requests of traffic batch {b} "
            f"({_span(request_ids)}), found {len(found)} ({_span(found)}): the run was replayed with other "
            "traffic, limit or engine.batch_size. Fix: resume with the settings in its manifest.json, or use a new "
            "run_id.")


def _span(ids: list[str]) -> str:
    return "none" if not ids else f"{ids[0]} .. {ids[-1]}"


def check_resume(previous: Manifest, current: Manifest, replayed: set[str]) -> None:
    """Refuses to resume a run whose traffic or replayed arms were set up differently.

    Args:
        previous: the run's manifest as written by the interrupted invocation.
        current: the manifest this invocation would write.
        replayed: the arms that already have generations parts.

    Raises:
        ResumeError: naming the first difference and the fix.
    """
    fix = "Fix: run the same command again (see the run's manifest.json), or use a new run_id."
    for key in ("sha256", "limit"):
        was, now = getattr(previous.traffic, key), getattr(current.traffic, key)
        if was != now:
            raise ResumeError(f"run {current.run_id} replayed traffic with {key} {was}, this command has {now}. "
                              + fix)
    for arm in sorted(replayed & set(current.arms)):
        was_settings = previous.arm_settings(arm) if arm in previous.arms else {}
        now_settings = current.arm_settings(arm)
        if was_settings != now_settings:
            diff = _first_difference(was_settings, now_settings)
            raise ResumeError(f"run {current.run_id}: arm {arm} was replayed with {diff[0]} = {diff[1]!r}, this "
                              f"command has {diff[2]!r}. " + fix)


def _first_difference(was: dict[str, Any], now: dict[str, Any], prefix: str = "") -> tuple[str, Any, Any]:
    for key in sorted(set(was) | set(now)):
        a, b = was.get(key), now.get(key)
        if isinstance(a, dict) and isinstance(b, dict) and a != b:
            return _first_difference(a, b, f"{prefix}{key}.")
        if a != b:
            return f"{prefix}{key}", a, b
    return prefix.rstrip(".") or "(nothing)", was, now


def preflight(arms: Mapping[str, ArmConfig], traffic: Traffic, ray: bool = False) -> None:
    """What can be checked before any engine starts: a known backend, engines per arm that the replayer can run,
    a chat template for chat traffic.

    Raises:
        EngineError: naming the arm, the setting or checkpoint, the first chat request and the fix.
    """
    for name, arm in arms.items():
        if backend_name(arm) not in ENGINES:
            raise EngineError(f"arm {name}: unknown engine backend {backend_name(arm)!r}; known: {sorted(ENGINES)}. "
                              f"Fix: set {name}.engine.backend to one of them.")
        _check_replicas(name, arm, ray)
    for name, arm in arms.items():
        if not traffic.chat_requests or arm.imported or not arm.checkpoint \
                or has_chat_template(arm.checkpoint) is not False:
            continue
        raise EngineError(
            f"arm {name}: checkpoint {arm.checkpoint!r} has no chat template (no chat_template.jinja, no "
            f"chat_template in tokenizer_config.json), but {traffic.chat_requests} of the {traffic.requests} requests "
            f"in {traffic.path} are chat messages (the first: request_id={traffic.first_chat}). Fix: use a chat/"
            "instruct checkpoint or add a chat template to its tokenizer, or replay traffic with a plain `prompt`.")


def _check_replicas(name: str, arm: ArmConfig, ray: bool) -> None:
    e = arm.engine
    if e.replicas < 1 or e.tensor_parallel_size < 1:
        raise EngineError(f"arm {name}: engine.replicas and engine.tensor_parallel_size must be at least 1, found "
                          f"{e.replicas} and {e.tensor_parallel_size}.")
    if e.devices and len(e.devices) != e.replicas:
        raise EngineError(f"arm {name}: engine.devices has {len(e.devices)} entries and engine.replicas is "
                          f"{e.replicas}. Fix: one CUDA_VISIBLE_DEVICES value per replica, e.g. "
                          f"{name}.engine.replicas={len(e.devices)}.")
    backend = backend_name(arm)
    if e.replicas > 1 and backend == "server" and e.server.base_url:
        raise EngineError(f"arm {name}: engine.replicas={e.replicas} starts local servers, but the arm is the "
                          f"endpoint {e.server.base_url}. Fix: replicas=1 (the endpoint balances its own replicas).")
    if e.replicas > 1 and backend not in ("server", "imported") and not ray:
        raise EngineError(f"arm {name}: engine.replicas={e.replicas} needs engines outside this process. Fix: "
                          f"{name}.engine.backend=server (one local vLLM server per replica) or ray.enabled=true "
                          "(one Ray engine actor per replica).")


def determinism(arms: Mapping[str, ArmConfig]) -> dict[str, Any]:
    """What decides whether replaying again gives the same generations, per arm, for the manifest.

    Greedy decoding with the same checkpoint, dtype, batch size, seeds and engine build gives identical outputs on
    one machine (tests/test_reproducible.py). ``VLLM_BATCH_INVARIANT=1`` makes vLLM's kernels independent of the
    batch composition on supported GPUs (NVIDIA compute capability >= 9.0 per vLLM 0.32's envs.py); on the CPU
    build it changes no kernel.
    """
    out: dict[str, Any] = {"VLLM_BATCH_INVARIANT": os.environ.get("VLLM_BATCH_INVARIANT", "0"),
                           "CUBLAS_WORKSPACE_CONFIG": os.environ.get("CUBLAS_WORKSPACE_CONFIG"), "arms": {}}
    for name, arm in arms.items():
        e, s = arm.engine, arm.sampling
        out["arms"][name] = {
            "backend": "imported" if arm.imported else e.backend, "engine_seed": e.seed, "sampling_seed": s.seed,
            "batch_size": e.batch_size, "dtype": e.dtype, "quantization": e.quantization,
            "max_model_len": e.max_model_len, "enforce_eager": e.enforce_eager,
            "temperature": "as captured" if s.temperature is None else s.temperature,
            "extra": dict(e.extra)}
    return out
