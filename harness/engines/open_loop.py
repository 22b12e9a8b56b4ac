"""The open-loop sender: every request of a schedule sent at its time, never waiting for earlier responses.

``send_open_loop`` takes a started ``ServerEngine`` (its endpoints, headers, tokenizer, per-request timeout) and a
schedule (``harness.engines.schedule``); one asyncio task per request sleeps until its send time, takes the time
(``sent_s``), sends it streamed and records, per chunk carrying text, its arrival. Per request: TTFT (first chunk
with generated text), the gaps between such chunks (ITL: what a streaming user sees; ``vllm bench serve`` times every
chunk, text or not, so a character split over several tokens is one gap here and several there: docs/load.md), TPOT
((last chunk - first chunk) / (output tokens - 1)), end-to-end latency (send to the last chunk with text), and the
error. There are no retries (a retry would change the load); a failed request is an error row. ``max_in_flight``
caps open requests: a send that has to wait for a slot is late, and the lateness says so.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from harness.engines.base import Generation, PreparedRequest, prompt_ids

if TYPE_CHECKING:
    from harness.engines.server import ServerEngine


@dataclass
class Timed:
    """One request of a timed replay: its schedule, what happened, and the generation."""

    generation: Generation
    scheduled_s: float
    sent_s: float | None = None  # seconds after the start; None: not sent
    done_s: float | None = None  # seconds after the start when the last chunk came
    itl_s: list[float] = field(default_factory=list)  # gaps between chunks carrying text
    tpot_s: float | None = None


def send_open_loop(engine: ServerEngine, requests: Sequence[PreparedRequest], scheduled: Sequence[float],
                   not_sent: Sequence[str | None], max_in_flight: int) -> list[Timed]:
    """Send ``requests`` at ``scheduled`` (seconds after the start) through ``engine``'s endpoints (round robin),
    open loop; requests with a ``not_sent`` reason become error rows without being sent. Returns one ``Timed`` per
    request, in order."""
    lengths = ([len(ids) for ids in prompt_ids(engine.tokenizer, engine.checkpoint, requests)]
               if engine.tokenizer is not None else [None] * len(requests))
    return engine.loop.run_until_complete(_all(engine, requests, scheduled, not_sent, lengths, max_in_flight))


async def _all(engine: ServerEngine, requests: Sequence[PreparedRequest], scheduled: Sequence[float],
               not_sent: Sequence[str | None], lengths: Sequence[int | None], max_in_flight: int) -> list[Timed]:
    import httpx

    limits = httpx.Limits(max_connections=max_in_flight, max_keepalive_connections=max_in_flight)
    slots = asyncio.Semaphore(max_in_flight)
    async with httpx.AsyncClient(headers=engine.headers, limits=limits,
                                 timeout=httpx.Timeout(engine.settings.timeout_s)) as client:
        start = time.perf_counter() + 0.05  # the tasks are all created before the first send time
        jobs = []
        for i, (r, t, why, n) in enumerate(zip(requests, scheduled, not_sent, lengths, strict=True)):
            if why is not None:
                jobs.append(_skip(r, t, why))
            else:
                ep = engine.endpoints[i % len(engine.endpoints)]
                jobs.append(_one(engine, client, r, t, n, ep.base_url, ep.model, start, slots))
        return list(await asyncio.gather(*jobs))


async def _skip(r: PreparedRequest, t: float, why: str) -> Timed:
    return Timed(Generation(r.request_id, "", None, None, None, why), t)


async def _one(engine: ServerEngine, client: object, r: PreparedRequest, t: float, prompt_len: int | None,
               base_url: str, model: str, start: float, slots: asyncio.Semaphore) -> Timed:
    from harness.engines.server import request_body

    max_tokens = r.max_tokens
    if prompt_len is not None and engine.max_len is not None:
        room = engine.max_len - prompt_len
        if room < 1:
            return Timed(Generation(r.request_id, "", prompt_len, 0, None,
                                    f"prompt_too_long: {prompt_len} tokens, max_model_len {engine.max_len}"), t)
        max_tokens = min(max_tokens, room)
    path, body = request_body(r, model, max_tokens, engine.opts.structured_output)
    delay = start + t - time.perf_counter()
    if delay > 0:
        await asyncio.sleep(delay)
    async with slots:
        sent = time.perf_counter()
        out = await _stream(client, r.request_id, f"{base_url}{path}", body, r.messages is not None, sent,
                            engine.settings.timeout_s)
    out.scheduled_s, out.sent_s = t, sent - start
    out.done_s = out.sent_s + out.generation.latency_s if out.generation.latency_s is not None else None
    return out


async def _stream(client: object, rid: str, url: str, body: dict[str, object], chat: bool, t0: float,
                  timeout_s: float) -> Timed:
    import httpx

    from harness.engines.server import chunk_text, stream_chunks

    assert isinstance(client, httpx.AsyncClient)
    stamps: list[float] = []
    text: list[str] = []
    finish = usage = None
    try:
        async with client.stream("POST", url, json=body) as resp:
            if resp.status_code != 200:
                detail = (await resp.aread()).decode(errors="replace")[:300]
                return Timed(Generation(rid, "", None, None, None, f"HTTP {resp.status_code}: {detail}"), 0.0)
            async for chunk in stream_chunks(resp):
                usage = chunk.get("usage") or usage
                for c in chunk.get("choices") or []:
                    piece = chunk_text(c, chat)
                    if piece:
                        stamps.append(time.perf_counter())
                        text.append(piece)
                    finish = c.get("finish_reason") or finish
    except httpx.TimeoutException as e:
        return Timed(Generation(rid, "", None, None, None, f"timeout after {timeout_s:.0f} s ({type(e).__name__})"),
                     0.0)
    except (httpx.TransportError, httpx.RemoteProtocolError) as e:
        return Timed(Generation(rid, "", None, None, None, f"connection error: {type(e).__name__}: {e}"), 0.0)
    n_out = (usage or {}).get("completion_tokens")
    first, last = (stamps[0], stamps[-1]) if stamps else (None, None)
    tpot = (last - first) / (n_out - 1) if first is not None and last is not None and n_out and n_out > 1 else None
    gen = Generation(rid, "".join(text), (usage or {}).get("prompt_tokens"), n_out, finish,
                     ttft_s=(first - t0) if first is not None else None, itl_s=tpot,
                     latency_s=(last - t0) if last is not None else time.perf_counter() - t0)
    return Timed(gen, 0.0, itl_s=[b - a for a, b in zip(stamps, stamps[1:], strict=False)], tpot_s=tpot)
