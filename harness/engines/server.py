"""The server engine: an arm served by OpenAI-compatible HTTP endpoints, started here or already running.

``engine.server.base_url`` null (the default): the harness starts ``engine.replicas`` local vLLM OpenAI servers for
the arm (``VLLMServer``: a free loopback port each, ``CUDA_VISIBLE_DEVICES`` from ``engine.devices``, the log in the
run directory beside ``engine.log``, stopped by PID at the end, on error, on SIGINT/SIGTERM, and by the kernel when
the harness dies: ``PR_SET_PDEATHSIG``). ``base_url`` set: the arm is that endpoint (vLLM, SGLang, TGI, ...) and
``engine.server.model`` its model name; the API key is read from the environment variable named by
``api_key_env`` (the name is recorded, never the key).

Every request is streamed (``stream: true`` with usage), which gives per request the time to first token, the
inter-token latency ((end - first token) / (output tokens - 1)) and the end-to-end latency. Chat requests go to
``/v1/chat/completions``, prompts to ``/v1/completions``; a response schema is sent as ``response_format``
(json_schema). Requests run concurrently (``concurrency`` in flight per endpoint) with a per-request timeout;
429, 5xx and connection errors are retried with exponential backoff (``Retry-After`` honoured); a request that
still fails becomes an error row and the run goes on. A local server that exits, or an endpoint that refuses every
request of a batch, stops the arm with an error naming it (the batches already committed are kept: resume).

When the arm names a local checkpoint, prompts are tokenized here exactly as the offline engine does
(``harness.engines.base.prompt_ids``): a prompt that does not fit ``max_model_len`` is an error row and
``max_tokens`` is clamped to the room left, so the server sees the same requests as ``vllm.LLM``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.console import current_run_dir
from harness.engines.base import Capabilities, EngineError, Generation, PreparedRequest, batch_by_batch, prompt_ids
from harness.engines.checkpoints import context_length, max_model_len, resolve_checkpoint
from harness.engines.vllm_offline import CPU_MAX_NUM_SEQS

if TYPE_CHECKING:
    from harness.config import ArmConfig, EngineConfig

log = logging.getLogger(__name__)
RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}


def free_port() -> int:
    """A TCP port free on loopback now (the server binds it a moment later)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:  # runs in the child between fork and exec
    os.setsid()  # its own process group: stop() signals the server and everything it started
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def server_args(model: str, name: str, port: int, opts: EngineConfig, on_cpu: bool) -> list[str]:
    """The vLLM OpenAI server command line for ``model`` served as ``name`` on ``127.0.0.1:port``."""
    args = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model, "--served-model-name",
            name, "--host", "127.0.0.1", "--port", str(port), "--dtype", opts.dtype,
            "--gpu-memory-utilization", str(opts.gpu_memory_utilization), "--seed", str(opts.seed),
            "--tensor-parallel-size", str(opts.tensor_parallel_size)]
    if opts.max_model_len is not None:  # else the checkpoint's context length (vLLM derives it)
        args += ["--max-model-len", str(opts.max_model_len)]
    if opts.enforce_eager:
        args.append("--enforce-eager")
    if opts.quantization:
        args += ["--quantization", opts.quantization]
    extra = dict(opts.extra)
    if on_cpu:  # the offline engine's fix (vllm_offline): seeded requests crash when a prefill is split
        seqs = extra.get("max_num_seqs", CPU_MAX_NUM_SEQS)
        extra.setdefault("max_num_batched_tokens", max_model_len(model, opts.max_model_len) * seqs)
        if opts.tensor_parallel_size == 1:  # the worker inside the engine process: /health 35 s instead of 40-50 s
            extra.setdefault("distributed_executor_backend", "uni")
    for key, value in extra.items():
        flag = "--" + str(key).replace("_", "-")
        if value is True:
            args.append(flag)
        elif value is not False and value is not None:
            args += [flag, value if isinstance(value, str) else json.dumps(value)]
    return args


class VLLMServer:
    """One local vLLM OpenAI-compatible server process: started, waited for (``/health``), stopped by PID."""

    def __init__(self, checkpoint: str, opts: EngineConfig, log_dir: Path, name: str = "model",
                 devices: str | None = None, startup_timeout: float = 300.0) -> None:
        self.port = free_port()
        log_path = log_dir / f"server-{self.port}.log"
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.name = name
        self.log_path = log_path
        env = {**os.environ}
        if devices is not None:
            env["CUDA_VISIBLE_DEVICES"] = devices
        on_cpu = devices is None and not _has_cuda()
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = log_path.open("ab")
        self.proc = subprocess.Popen(server_args(resolve_checkpoint(checkpoint), name, self.port, opts, on_cpu),
                                     stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                     preexec_fn=_die_with_parent)  # noqa: PLW1509  (no threads hold locks yet)
        log.info("vLLM server for %s starting: pid %d, %s, log %s", checkpoint, self.proc.pid, self.base_url,
                 log_path)
        self.startup_timeout = startup_timeout

    def wait_ready(self) -> None:
        """Poll ``/health`` until it answers 200.

        Raises:
            EngineError: the process exited, or no answer within ``startup_timeout`` (the server is stopped).
        """
        import httpx

        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise EngineError(f"the vLLM server (pid {self.proc.pid}) exited with code {self.proc.returncode} "
                                  f"before it was ready. Its log ({self.log_path}) ends:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.base_url}/health", timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.stop()
        raise EngineError(f"the vLLM server (pid {self.proc.pid}) did not answer /health within "
                          f"{self.startup_timeout:.0f} s. Fix: raise engine.server.startup_timeout_s, or read "
                          f"{self.log_path}.")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM to the server's process group, SIGKILL to whatever of it is left after ``grace`` seconds (the
        server's engine processes included, also when the server itself already died); idempotent."""
        if self.proc.poll() is None:
            _signal_group(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        deadline = time.monotonic() + 5
        while _signal_group(self.proc.pid, 0) and time.monotonic() < deadline:  # its children end after it
            time.sleep(0.1)
        _signal_group(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        if not self._log.closed:
            log.info("vLLM server pid %d stopped", self.proc.pid)
            self._log.close()


def _signal_group(pgid: int, sig: int) -> bool:
    """Send ``sig`` to a process group; False when no process of it is left."""
    try:
        os.killpg(pgid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def _has_cuda() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:
        return False


@dataclass(frozen=True)
class Endpoint:
    """Where requests for the arm go: an OpenAI-compatible base URL and the model name it serves."""

    base_url: str
    model: str
    server: VLLMServer | None = None


class _Failed(Exception):
    def __init__(self, reason: str, retry: bool, after: float | None = None) -> None:
        super().__init__(reason)
        self.reason, self.retry, self.after = reason, retry, after


class ServerEngine:
    """An arm served over HTTP (module docstring): local vLLM servers, or an existing endpoint."""

    @staticmethod
    def capabilities(arm: ArmConfig) -> Capabilities:
        """Local vLLM servers (one per replica) or an existing endpoint; HTTP clients stay with the driver."""
        url = arm.engine.server.base_url
        return Capabilities(own_replicas=not url, on_ray=False, endpoint=url)

    def __init__(self, arm: ArmConfig) -> None:
        import httpx  # noqa: F401  (a missing client fails here, before any server starts)

        opts, s = arm.engine, arm.engine.server
        self.opts, self.settings = opts, s
        self.checkpoint = arm.checkpoint
        self.max_len = opts.max_model_len or (context_length(arm.checkpoint) if arm.checkpoint else None)
        self.tokenizer: Any = None
        headers = {}
        if s.api_key_env:
            key = os.environ.get(s.api_key_env)
            if not key:
                raise EngineError(f"engine.server.api_key_env names {s.api_key_env}, which is not set. Fix: export "
                                  f"{s.api_key_env}=<key> before the run (the key is never written to the run).")
            headers["Authorization"] = f"Bearer {key}"
        self.headers = headers
        self.endpoints: list[Endpoint] = []
        try:
            if s.base_url:
                self.endpoints = [self._connect(s.base_url.rstrip("/"), s.model)]
            else:
                self.endpoints = self._start_local(arm)
        except BaseException:
            self.close()
            raise
        if arm.checkpoint:  # tokenize as the offline engine does (module docstring)
            self.tokenizer = _tokenizer(arm.checkpoint)
        self.loop = asyncio.new_event_loop()
        self.client: Any = None
        self._next = 0

    def _start_local(self, arm: ArmConfig) -> list[Endpoint]:
        if not arm.checkpoint:
            raise EngineError("the server backend starts a local vLLM server for the arm's checkpoint, and the arm "
                              "has none. Fix: set `checkpoint`, or engine.server.base_url to an existing endpoint.")
        opts = arm.engine
        devices: list[str | None] = list(opts.devices) or [None] * opts.replicas
        run_dir = current_run_dir()  # outside a run (a benchmark without run_logs): a fresh temporary folder
        logs = run_dir if run_dir is not None else Path(tempfile.mkdtemp(prefix="harness-server-logs-"))
        log.info("arm servers log to %s", logs)
        servers = []
        for dev in devices:  # started together, waited for together
            servers.append(VLLMServer(arm.checkpoint, opts, logs, devices=dev,
                                      startup_timeout=arm.engine.server.startup_timeout_s))
            self.endpoints.append(Endpoint(servers[-1].base_url, servers[-1].name, servers[-1]))
        for srv in servers:
            srv.wait_ready()
        return self.endpoints

    def _connect(self, base_url: str, model: str | None) -> Endpoint:
        """Check the endpoint answers ``/v1/models`` and serves ``model`` (the only one it serves when unset)."""
        import httpx

        try:
            r = httpx.get(f"{base_url}/v1/models", headers=self.headers, timeout=self.settings.timeout_s)
        except httpx.HTTPError as e:
            raise EngineError(f"endpoint {base_url} does not answer ({type(e).__name__}: {e}). Fix: check "
                              "engine.server.base_url and that the server is up.") from e
        if r.status_code in (401, 403):
            raise EngineError(f"endpoint {base_url} refused the API key (HTTP {r.status_code}). Fix: check the key "
                              f"in ${self.settings.api_key_env or '(engine.server.api_key_env is unset)'}.")
        if r.status_code != 200:
            raise EngineError(f"endpoint {base_url}/v1/models answered HTTP {r.status_code}. Fix: give the base "
                              "URL of an OpenAI-compatible server (without /v1).")
        served = [m.get("id") for m in r.json().get("data", [])]
        if model is None and len(served) == 1:
            model = served[0]
        if model not in served:
            raise EngineError(f"endpoint {base_url} serves {served}, not {model!r}. Fix: set engine.server.model to "
                              "one of them.")
        return Endpoint(base_url, str(model))

    # --- requests ---------------------------------------------------------------------------------------------

    def generate(self, requests: Sequence[PreparedRequest]) -> list[Generation]:
        """Answer one batch, every request concurrently (``concurrency`` in flight per endpoint)."""
        lengths = ([len(ids) for ids in prompt_ids(self.tokenizer, self.checkpoint, requests)]
                   if self.tokenizer is not None else [None] * len(requests))
        out = self.loop.run_until_complete(self._batch(requests, lengths))
        dead = [e for e in self.endpoints if e.server is not None and not e.server.alive()]
        if dead:
            srv = dead[0].server
            assert srv is not None
            raise EngineError(f"the vLLM server {dead[0].base_url} (pid {srv.proc.pid}) exited during the replay "
                              f"(code {srv.proc.returncode}); the batches committed so far are kept. Fix: read "
                              f"{srv.log_path}, then run the same command again to resume. Its log ends:\n"
                              f"{srv.log_tail()}")
        refused = [g for g in out if g.error and g.error.startswith("connection")]
        if out and len(refused) == len(out):
            raise EngineError(f"endpoint {self.endpoints[0].base_url} refused every request of the batch "
                              f"({refused[0].error}); the batches committed so far are kept. Fix: check the server, "
                              "then run the same command again to resume.")
        return out

    def stream(self, batches: Iterable[Sequence[PreparedRequest]]) -> Iterator[list[Generation]]:
        return batch_by_batch(self, batches)

    async def _batch(self, requests: Sequence[PreparedRequest], lengths: Sequence[int | None]) -> list[Generation]:
        import httpx

        if self.client is None:
            limits = httpx.Limits(max_connections=self.settings.concurrency * len(self.endpoints))
            self.client = httpx.AsyncClient(headers=self.headers, limits=limits,
                                            timeout=httpx.Timeout(self.settings.timeout_s))
        gates = [asyncio.Semaphore(self.settings.concurrency) for _ in self.endpoints]
        jobs = []
        for r, n in zip(requests, lengths, strict=True):
            i = self._next % len(self.endpoints)
            self._next += 1
            jobs.append(self._one(r, n, self.endpoints[i], gates[i]))
        return list(await asyncio.gather(*jobs))

    async def _one(self, r: PreparedRequest, prompt_len: int | None, ep: Endpoint,
                   gate: asyncio.Semaphore) -> Generation:
        max_tokens = r.max_tokens
        if prompt_len is not None and self.max_len is not None:
            room = self.max_len - prompt_len
            if room < 1:
                return Generation(r.request_id, "", prompt_len, 0, None,
                                  f"prompt_too_long: {prompt_len} tokens, max_model_len {self.max_len}")
            max_tokens = min(max_tokens, room)
        path, body = request_body(r, ep.model, max_tokens, self.opts.structured_output)
        attempts = self.settings.retries + 1
        async with gate:
            for attempt in range(attempts):
                try:
                    return await self._stream(r.request_id, f"{ep.base_url}{path}", body, chat=r.messages is not None)
                except _Failed as f:
                    if not f.retry or attempt == attempts - 1:
                        return Generation(r.request_id, "", prompt_len, None, None,
                                          f"{f.reason} (after {attempt + 1} attempts)")
                    delay = f.after if f.after is not None else self.settings.backoff_s * 2 ** attempt
                    await asyncio.sleep(delay * (1 + 0.1 * random.random()))
        raise AssertionError("unreachable")

    async def _stream(self, rid: str, url: str, body: dict[str, Any], chat: bool) -> Generation:
        import httpx

        t0 = time.perf_counter()
        first = last = None
        text: list[str] = []
        finish = usage = None
        try:
            async with self.client.stream("POST", url, json=body) as resp:
                if resp.status_code != 200:
                    detail = (await resp.aread()).decode(errors="replace")[:300]
                    after = resp.headers.get("retry-after")
                    raise _Failed(f"HTTP {resp.status_code}: {detail}", resp.status_code in RETRY_STATUS,
                                  float(after) if after and after.replace(".", "", 1).isdigit() else None)
                async for chunk in stream_chunks(resp):
                    usage = chunk.get("usage") or usage
                    for c in chunk.get("choices") or []:
                        piece = chunk_text(c, chat)
                        if piece:
                            last = time.perf_counter()
                            first = first or last
                            text.append(piece)
                        finish = c.get("finish_reason") or finish
        except httpx.TimeoutException as e:
            raise _Failed(f"timeout after {self.settings.timeout_s:.0f} s ({type(e).__name__})", True) from e
        except (httpx.TransportError, httpx.RemoteProtocolError) as e:
            raise _Failed(f"connection error: {type(e).__name__}: {e}", True) from e
        end = time.perf_counter()
        n_out = (usage or {}).get("completion_tokens")
        itl = (last - first) / (n_out - 1) if first is not None and last is not None and n_out and n_out > 1 else None
        return Generation(rid, "".join(text), (usage or {}).get("prompt_tokens"), n_out, finish,
                          ttft_s=(first - t0) if first is not None else None, itl_s=itl, latency_s=end - t0)

    def close(self) -> None:
        """Close the client and stop the servers this engine started (the endpoint it connected to stays up)."""
        if getattr(self, "client", None) is not None:
            self.loop.run_until_complete(self.client.aclose())
            self.client = None
        if getattr(self, "loop", None) is not None and not self.loop.is_closed():
            pending = asyncio.all_tasks(self.loop)  # the client's connection tasks
            for t in pending:
                t.cancel()
            if pending:
                self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self.loop.close()
        for ep in self.endpoints:
            if ep.server is not None:
                ep.server.stop()


async def stream_chunks(resp: Any) -> AsyncIterator[dict[str, Any]]:
    """The JSON chunks of an OpenAI-compatible server-sent event stream (``data:`` lines), up to ``[DONE]``: read by
    the closed-loop ``ServerEngine`` and the open-loop sender (``harness.engines.open_loop``)."""
    async for line in resp.aiter_lines():
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            break
        yield json.loads(data)


def chunk_text(choice: dict[str, Any], chat: bool) -> str | None:
    """The text one streamed choice adds: ``delta.content`` for chat, ``text`` for completions."""
    return (choice.get("delta") or {}).get("content") if chat else choice.get("text")


def _tokenizer(checkpoint: str) -> Any:
    """The checkpoint's tokenizer, or None (with a warning) when it cannot be loaded here (a remote-only model)."""
    try:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(resolve_checkpoint(checkpoint))
    except (OSError, ValueError, EngineError) as e:
        log.warning("checkpoint %s: no tokenizer here (%s): prompts are not length-checked before sending", checkpoint,
                    e)
        return None


def request_body(r: PreparedRequest, model: str, max_tokens: int, structured: bool) -> tuple[str, dict[str, Any]]:
    body: dict[str, Any] = {"model": model, "max_tokens": max_tokens, "temperature": r.temperature,
                            "top_p": r.top_p, "seed": r.seed, "stream": True,
                            "stream_options": {"include_usage": True}}
    for key in ("presence_penalty", "frequency_penalty"):
        if getattr(r, key) is not None:
            body[key] = getattr(r, key)
    for key in r.unset:  # left to the endpoint's default, as a client that does not set it
        body.pop(key, None)
    if r.stop:
        body["stop"] = list(r.stop)
    if structured and r.response_schema is not None:
        body["response_format"] = {"type": "json_schema",
                                   "json_schema": {"name": "response", "schema": r.response_schema}}
    if r.messages is not None:
        return "/v1/chat/completions", {**body, "messages": list(r.messages)}
    return "/v1/completions", {**body, "prompt": r.prompt}
