"""A minimal OpenAI chat-completions client (standard library), for the golden replay against an endpoint and the
demo's load generator."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from harness.traffic import Request


@dataclass(frozen=True)
class Answer:
    """One call: the output text (or the error), finish reason, tokens, seconds, and a response header's value."""

    text: str | None
    finish_reason: str | None
    output_tokens: int | None
    latency_s: float
    error: str | None
    served_by: str | None
    started: float
    request_id: str | None = None  # the traffic layer's unique id (HAProxy's X-Request-ID), when it sets one


def messages_of(r: Request) -> list[dict[str, str]]:
    if r.messages:
        return [{"role": m.role, "content": m.content} for m in r.messages]
    return [{"role": "user", "content": r.prompt or ""}]


def chat(base_url: str, model: str, r: Request, max_tokens: int = 128, timeout_s: float = 60.0,
         header: str = "X-Served-By") -> Answer:
    """POST ``/v1/chat/completions`` for one request, greedy; never raises for a failed call (``error`` is set)."""
    body = {"model": model, "messages": messages_of(r), "max_tokens": r.max_tokens or max_tokens,
            "temperature": 0.0 if r.temperature is None else r.temperature}
    req = urllib.request.Request(base_url.rstrip("/") + "/v1/chat/completions", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    started = time.time()
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:  # noqa: S310 (configured local endpoint)
            data: dict[str, Any] = json.loads(resp.read())
            served, rid = resp.headers.get(header), resp.headers.get("X-Request-ID")
        choice = data["choices"][0]
        return Answer(choice["message"]["content"] or "", choice.get("finish_reason"),
                      (data.get("usage") or {}).get("completion_tokens"), time.perf_counter() - t0, None, served,
                      started, rid)
    except (urllib.error.URLError, OSError, ValueError, KeyError, IndexError, TimeoutError) as e:
        served = e.headers.get(header) if isinstance(e, urllib.error.HTTPError) else None
        rid = e.headers.get("X-Request-ID") if isinstance(e, urllib.error.HTTPError) else None
        return Answer(None, None, None, time.perf_counter() - t0, f"{type(e).__name__}: {e}"[:300], served, started,
                      rid)


def chat_many(base_url: str, model: str, requests: list[Request], concurrency: int = 8, max_tokens: int = 128,
              timeout_s: float = 60.0) -> list[Answer]:
    """``chat`` for every request, ``concurrency`` in flight, answers in request order."""
    with ThreadPoolExecutor(max(1, concurrency)) as pool:
        return list(pool.map(lambda r: chat(base_url, model, r, max_tokens, timeout_s), requests))
