"""Replay: arms x traffic -> generations, in batches, one Parquet part per batch.

An arm is replayed batch by batch; a batch whose part already exists in the run directory is
skipped, so re-running the same command with the same ``run_id`` resumes an interrupted replay.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa

from harness.config import ArmConfig
from harness.engines.base import (
    DEFAULT_MAX_TOKENS,
    DEFAULT_TEMPERATURE,
    DEFAULT_TOP_P,
    Engine,
    Generation,
    PreparedRequest,
    make_engine,
    request_seed,
)
from harness.store import BATCH_SCHEMA, GENERATION_SCHEMA, RunDir
from harness.traffic import Request

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ArmTiming:
    """Seconds spent loading the engine and generating, for one arm in this invocation."""

    arm: str
    load_seconds: float
    batches_run: int
    batches_skipped: int


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
         "error": g.error} for g in gens], schema=GENERATION_SCHEMA)


def _batch_table(batch: int, gens: Sequence[Generation], seconds: float) -> pa.Table:
    served = [g for g in gens if g.error is None]
    return pa.Table.from_pylist([{
        "batch": batch, "requests": len(served), "prompt_tokens": sum(g.prompt_tokens or 0 for g in served),
        "output_tokens": sum(g.output_tokens or 0 for g in served), "seconds": seconds}], schema=BATCH_SCHEMA)


def replay_arm(name: str, arm: ArmConfig, requests: Sequence[Request], run: RunDir) -> ArmTiming:
    """Replay ``requests`` through ``arm``, writing generation and batch parts under ``run``."""
    size = arm.engine.batch_size
    batches = [requests[i: i + size] for i in range(0, len(requests), size)]
    todo = [b for b in range(len(batches)) if not run.has_part("generations", name, b)]
    if not todo:
        log.info("arm %s: all %d batches already replayed", name, len(batches))
        return ArmTiming(name, 0.0, 0, len(batches))
    t0 = time.perf_counter()
    engine: Engine = make_engine(arm)
    load_seconds = time.perf_counter() - t0
    log.info("arm %s: engine ready in %.1f s; %d of %d batches to replay", name, load_seconds, len(todo), len(batches))
    try:
        for b in todo:
            prepared = [prepare(r, arm) for r in batches[b]]
            t = time.perf_counter()
            gens = engine.generate(prepared)
            seconds = time.perf_counter() - t
            run.write_part("batches", name, b, _batch_table(b, gens, seconds))
            run.write_part("generations", name, b, _generation_table(b, batches[b], gens))
            log.info("arm %s: batch %d/%d, %d requests in %.2f s", name, b + 1, len(batches), len(gens), seconds)
    finally:
        engine.close()
    return ArmTiming(name, load_seconds, len(todo), len(batches) - len(todo))
