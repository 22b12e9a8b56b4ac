"""The vLLM offline engine (``vllm.LLM``): the CPU build on dev machines, upstream vLLM on GPU boxes.

Prompts are tokenized here (chat template applied once) so that prompt length is checked before the
engine sees a request: a prompt that does not fit ``max_model_len`` becomes an error row and the run
goes on, and ``max_tokens`` is clamped to the room left.

Batches are streamed (``stream``): whenever fewer than twice ``max_num_seqs`` requests are unfinished in the
engine, the next batch is tokenized and added, so the engine always has requests waiting for the slots that free
up: its continuous batching never drains at a batch boundary. Each batch's answers are handed back as soon as its
last request finishes, in batch order.

On a GPU the engine core runs in its own process (vLLM's default: tokenization overlaps generation). On the CPU build
it runs in this process (``VLLM_ENABLE_V1_MULTIPROCESSING=0`` unless set): the spawned core re-imports torch and
vLLM, and an engine started in 25 s that way starts in 3.3 s in-process, with the same generation time (the zoo
baseline, 64 prompts x 32 tokens, 2-core dev machine, 2026-12-01; docs/testing.md). In-process, vLLM's CPU worker
would size the KV cache as ``gpu_memory_utilization`` x node memory minus this whole process's memory (the harness,
other arms' models), so it is given explicitly (``cpu_kv_cache_bytes``).
"""

from __future__ import annotations

import gc
import itertools
import logging
import os
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.console import engine_output
from harness.engines.base import Capabilities, EngineError, Generation, PreparedRequest, prompt_ids
from harness.engines.checkpoints import max_model_len, resolve_checkpoint

if TYPE_CHECKING:
    from harness.config import ArmConfig

log = logging.getLogger(__name__)


CPU_NON_KV_BYTES = 700 << 20
"""What a vLLM CPU worker uses besides its KV cache on the zoo (0.69 GiB measured in its own process)."""
CPU_MAX_NUM_SEQS = 256
"""vLLM's default ``max_num_seqs`` on the CPU backend."""
MAX_INFLIGHT_BATCHES = 8
"""At most this many batches are held in the engine (a slow request at the head holds back the batches after it)."""


@dataclass
class _InFlight:
    """One batch inside the engine: its answers so far, by position, and how many are still generating."""

    requests: Sequence[PreparedRequest]
    results: list[Generation | None]
    waiting: int


def cpu_kv_cache_bytes(share: float) -> int:
    """The KV cache vLLM's CPU worker gives itself in its own process: ``share`` of the memory node, less what the
    worker uses besides the cache (``CPU_NON_KV_BYTES``), at least 256 MiB."""
    from vllm.utils.cpu_resource_utils import get_allowed_cpu_list, get_memory_node_info

    total = get_memory_node_info(get_allowed_cpu_list()[0].numa_node).total_memory
    return max(int(share * total) - CPU_NON_KV_BYTES, 256 << 20)


def _on_cpu() -> bool:
    from vllm.platforms import current_platform

    return bool(current_platform.is_cpu())


class VLLMEngine:
    """One ``vllm.LLM`` serving one arm."""

    @staticmethod
    def capabilities(arm: ArmConfig) -> Capabilities:
        return Capabilities()

    def __init__(self, arm: ArmConfig) -> None:
        if not arm.checkpoint:
            raise EngineError("arm has no checkpoint. Fix: set `checkpoint` (a local path or hub id) or `imported`.")
        opts = arm.engine
        self.max_model_len = max_model_len(arm.checkpoint, opts.max_model_len)
        self.structured_output = opts.structured_output
        kwargs: dict[str, Any] = dict(
            model=resolve_checkpoint(arm.checkpoint), dtype=opts.dtype, max_model_len=opts.max_model_len,
            enforce_eager=opts.enforce_eager, gpu_memory_utilization=opts.gpu_memory_utilization, seed=opts.seed)
        if opts.quantization:
            kwargs["quantization"] = opts.quantization
        if opts.tensor_parallel_size != 1:
            kwargs["tensor_parallel_size"] = opts.tensor_parallel_size
        kwargs.update(opts.extra)
        with engine_output() as engine_log:  # vLLM's import and start-up output, and its processes', to engine.log
            try:
                from vllm import LLM
            except ImportError as e:
                raise EngineError("vLLM is not installed. Fix: `make setup` (CPU build, extra `cpu`) or "
                                  "`make setup GPU=1` (extra `gpu`) on a GPU box.") from e
            if _on_cpu():
                os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # module docstring
                if os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] == "0":
                    kwargs.setdefault("kv_cache_memory_bytes", cpu_kv_cache_bytes(opts.gpu_memory_utilization))
            if _on_cpu() and "max_num_batched_tokens" not in kwargs:
                # vLLM 0.32 on CPU crashes ("CPU Generator does not use offset") when a request with a sampling
                # seed has its prefill split across steps; a step budget that fits every prompt avoids splits.
                kwargs["max_num_batched_tokens"] = self.max_model_len * kwargs.get("max_num_seqs", CPU_MAX_NUM_SEQS)
            try:
                self.llm = LLM(**kwargs)
            except Exception as exc:  # vLLM raises many types; keep its message, add the fix
                where = f" (engine log: {engine_log})" if engine_log else ""
                raise EngineError(f"vLLM could not load checkpoint {arm.checkpoint!r}: {exc}{where}. Fix: check that "
                                  "it is a causal LM directory (config.json, weights, tokenizer) or a reachable hub "
                                  "id, and the engine options.") from exc
        runner = getattr(self.llm.model_config, "runner_type", "generate")
        if runner != "generate":  # a backstop: resolve_checkpoint refuses the encoders it can tell from config.json
            self.close()
            raise EngineError(f"vLLM loaded checkpoint {arm.checkpoint!r} as a {runner} model, not a generative one. "
                              "Fix: point `checkpoint` at a causal LM.")
        self.checkpoint = arm.checkpoint
        self.tokenizer: Any = self.llm.get_tokenizer()
        self.feed_below = 2 * self.llm.llm_engine.vllm_config.scheduler_config.max_num_seqs
        self._ids = itertools.count()

    def _sampling(self, r: PreparedRequest, room: int) -> Any:
        from vllm import SamplingParams

        extra: dict[str, Any] = {}
        if self.structured_output and r.response_schema is not None:
            from vllm.sampling_params import StructuredOutputsParams

            extra["structured_outputs"] = StructuredOutputsParams(json=r.response_schema)
        for key in ("presence_penalty", "frequency_penalty"):
            if getattr(r, key) is not None:
                extra[key] = getattr(r, key)
        if r.stop:
            extra["stop"] = list(r.stop)
        return SamplingParams(temperature=r.temperature, top_p=r.top_p, max_tokens=min(r.max_tokens, room),
                              seed=r.seed, **extra)

    def generate(self, requests: Sequence[PreparedRequest]) -> list[Generation]:
        """Answer one batch; unservable requests become error rows."""
        return next(self.stream([requests]))

    def stream(self, batches: Iterable[Sequence[PreparedRequest]]) -> Iterator[list[Generation]]:
        """Answer each batch, in order, adding the next ones while the engine has room (module docstring)."""
        source = iter(batches)
        inflight: deque[_InFlight] = deque()
        owner: dict[str, tuple[_InFlight, int]] = {}  # our request id in vLLM -> its batch and position
        engine = self.llm.llm_engine
        try:
            while True:
                while (len(owner) < self.feed_below and len(inflight) < MAX_INFLIGHT_BATCHES
                       and (batch := next(source, None)) is not None):
                    inflight.append(self._add(batch, owner))
                if not inflight:
                    return
                head = inflight[0]
                if head.waiting == 0:
                    inflight.popleft()
                    yield [g for g in head.results if g is not None]
                    continue
                if not engine.has_unfinished_requests():
                    raise EngineError(f"vLLM has no request left but {head.waiting} of the batch are unanswered "
                                      "(a bug in the engine loop).")
                for out in engine.step():
                    if out.finished:
                        state, i = owner.pop(out.request_id)
                        c = out.outputs[0]  # type: ignore[index]  # a generative model: RequestOutput
                        state.results[i] = Generation(state.requests[i].request_id, c.text,
                                                      len(out.prompt_token_ids or []), len(c.token_ids),
                                                      c.finish_reason)
                        state.waiting -= 1
        finally:  # stopped early (an error, or the caller stopped reading): leave nothing in the engine
            if owner:
                engine.abort_request(list(owner))

    def _add(self, requests: Sequence[PreparedRequest], owner: dict[str, tuple[_InFlight, int]]) -> _InFlight:
        """Tokenize a batch and add its servable requests to the engine; the others get their error row now."""
        from vllm.sampling_params import RequestOutputKind

        state = _InFlight(requests, [None] * len(requests), 0)
        engine = self.llm.llm_engine
        for i, (r, ids) in enumerate(zip(requests, prompt_ids(self.tokenizer, self.checkpoint, requests),
                                         strict=True)):
            room = self.max_model_len - len(ids)
            if room < 1:
                state.results[i] = Generation(r.request_id, "", len(ids), 0, None,
                                              f"prompt_too_long: {len(ids)} tokens, max_model_len {self.max_model_len}")
                continue
            params = self._sampling(r, room)
            params.output_kind = RequestOutputKind.FINAL_ONLY  # one output per request, when it finishes
            rid = f"harness-{next(self._ids)}"
            engine.add_request(rid, {"prompt_token_ids": ids}, params)
            owner[rid] = (state, i)
            state.waiting += 1
        return state

    def close(self) -> None:
        """Shut the engine core down and drop the model so the next arm gets the memory."""
        try:
            self.llm.llm_engine.engine_core.shutdown()
        except Exception as exc:  # best effort: the process may already be gone
            log.debug("engine shutdown: %s", exc)
        del self.llm
        gc.collect()
