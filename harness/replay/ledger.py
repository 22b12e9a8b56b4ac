"""The batch ledger every replayer shares: which batches are done, what the generation cache answers, and the commit
of a replayed batch (the contract in ``harness.replay``). ``LocalReplayer`` and ``RayReplayer`` both plan with
``plan``, take their ``Work`` from ``work`` and record each batch with ``commit_batch``.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from harness.config import ArmConfig
from harness.engines.base import (
    DEFAULT_MAX_TOKENS,
    DEFAULT_TEMPERATURE,
    DEFAULT_TOP_P,
    EngineError,
    Generation,
    PreparedRequest,
    request_seed,
)
from harness.replay.cache import GenerationCache
from harness.store import BATCH_SCHEMA, GENERATION_SCHEMA, RunDir
from harness.traffic import Request, Traffic

log = logging.getLogger(__name__)


class ResumeError(EngineError):
    """The run directory holds a replay made with other traffic or other arm settings."""


SOURCES = ("override", "captured", "arm default", "generation_config", "harness default")
"""Where a replayed sampling parameter came from, in order of precedence (``SamplingConfig``)."""


@functools.lru_cache(maxsize=64)
def checkpoint_sampling(checkpoint: str | None) -> dict[str, float | int]:
    """The sampling a vLLM server applies to a request that does not set it: the checkpoint's
    ``generation_config.json`` (``temperature``, ``top_p``, ``max_new_tokens``; ``do_sample: false`` is greedy)."""
    from harness.engines.checkpoints import checkpoint_json

    found = checkpoint_json(checkpoint, "generation_config.json") if checkpoint else None
    if not found:
        return {}
    out: dict[str, float | int] = {}
    if found.get("do_sample") is False:
        out["temperature"] = 0.0
    elif isinstance(found.get("temperature"), int | float):
        out["temperature"] = float(found["temperature"])
    if isinstance(found.get("top_p"), int | float) and found.get("do_sample") is not False:
        out["top_p"] = float(found["top_p"])
    if isinstance(found.get("max_new_tokens"), int):
        out["max_tokens"] = int(found["max_new_tokens"])
    return out


@functools.lru_cache(maxsize=64)
def _room(checkpoint: str | None, configured: int | None) -> int | None:
    from harness.engines.checkpoints import context_length

    return configured or (context_length(checkpoint) if checkpoint else None)


def sampling_sources(r: Request, arm: ArmConfig) -> dict[str, tuple[float | int, str]]:
    """Per sampling parameter of ``r`` on ``arm``: the value replayed and its source (``SOURCES``)."""
    s = arm.sampling
    config = checkpoint_sampling(arm.checkpoint)
    last = {"temperature": DEFAULT_TEMPERATURE, "top_p": DEFAULT_TOP_P,
            "max_tokens": _room(arm.checkpoint, arm.engine.max_model_len) or DEFAULT_MAX_TOKENS}
    out: dict[str, tuple[float | int, str]] = {}
    for name in ("temperature", "top_p", "max_tokens"):
        chain = ((getattr(s, name), "override"), (getattr(r, name), "captured"),
                 (getattr(s, f"default_{name}"), "arm default"), (config.get(name), "generation_config"),
                 (last[name], "harness default"))
        out[name] = next((v, src) for v, src in chain if v is not None)  # type: ignore[misc]
    return out


def prepare(r: Request, arm: ArmConfig) -> PreparedRequest:
    """Apply the arm's system prompt, prompt template and sampling (override > captured > arm default > the
    checkpoint's generation config > greedy / 1.0 / up to max_model_len; ``sampling_sources``)."""
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
    found = sampling_sources(r, arm)
    return PreparedRequest(
        request_id=r.request_id, messages=messages, prompt=prompt, temperature=float(found["temperature"][0]),
        top_p=float(found["top_p"][0]), max_tokens=int(found["max_tokens"][0]),
        seed=r.seed if r.seed is not None and arm.sampling.seed == 0 else request_seed(arm.sampling.seed, r.request_id),
        response_schema=r.response_schema, stop=r.stop, presence_penalty=r.presence_penalty,
        frequency_penalty=r.frequency_penalty)


NOT_REPLAYED_TOOLS = "not_replayed: tool calling (the request has tools or tool turns; kept in the traffic)"


def skipped(r: Request) -> Generation | None:
    """The error row of a request the replay does not send (tool calling), else None."""
    return Generation(r.request_id, "", None, None, None, NOT_REPLAYED_TOOLS) if r.tools is not None else None


def sampling_counts(requests: Iterable[Request], arm: ArmConfig) -> dict[str, Any]:
    """How the arm's requests were sampled: ``requests``, ``fallback`` (requests with a parameter neither overridden
    nor captured) and per parameter the requests per source (``SOURCES``)."""
    params: dict[str, dict[str, int]] = {k: {} for k in ("temperature", "top_p", "max_tokens")}
    n = fallback = 0
    multi = tools = 0
    for r in requests:
        found = sampling_sources(r, arm)
        n += 1
        multi += (r.n or 1) > 1
        tools += r.tools is not None
        fallback += any(src not in ("override", "captured") for _, src in found.values())
        for name, (_, src) in found.items():
            params[name][src] = params[name].get(src, 0) + 1
    return {"requests": n, "fallback": fallback, "params": params, "n_above_1": multi, "tools_not_replayed": tools}


def generation_table(batch: int, requests: Sequence[Request], gens: Sequence[Generation]) -> pa.Table:
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


@dataclass
class Work:
    """One traffic batch to replay: its requests, those the cache answers, and the rest, prepared for the arm."""

    index: int
    requests: Sequence[Request]
    cached: dict[str, Generation]
    todo: list[PreparedRequest]
    skipped: dict[str, Generation] = field(default_factory=dict)  # not sent: error rows with the reason


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
         cache: GenerationCache | None) -> Iterator[Work]:
    """The batches left to replay, prepared, with what the cache answers; checks each done part's request ids.

    Raises:
        ResumeError: a done part holds other requests than the traffic's batch with that index.
    """
    for batch in traffic.batches(arm.engine.batch_size, wanted=lambda b: b not in done):
        if batch.requests is None:
            _check_part(run, name, batch.index, batch.request_ids)
            continue
        skip = {g.request_id: g for r in batch.requests if (g := skipped(r)) is not None}
        prepared = [prepare(r, arm) for r in batch.requests if r.request_id not in skip]
        cached = cache.lookup(prepared) if cache is not None else {}
        yield Work(batch.index, batch.requests, cached, [p for p in prepared if p.request_id not in cached], skip)


def commit_batch(run: RunDir, name: str, item: Work, fresh: Sequence[Generation], seconds: float,
                 cache: GenerationCache | None) -> None:
    """Record a replayed batch: the cache gets the fresh generations, then the batches part, then the generations
    part (the commit record)."""
    if cache is not None and item.todo:
        cache.add(item.todo, fresh)
    by_id = {**item.skipped, **item.cached, **{g.request_id: g for g in fresh}}
    gens = [by_id[r.request_id] for r in item.requests]
    run.write_part("batches", name, item.index, _batch_table(item.index, fresh, seconds, len(item.cached)))
    run.write_part("generations", name, item.index, generation_table(item.index, item.requests, gens))


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


