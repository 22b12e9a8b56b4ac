"""The vLLM offline engine (``vllm.LLM``): the CPU build on dev machines, upstream vLLM on GPU boxes.

Prompts are tokenized here (chat template applied once) so that prompt length is checked before the
engine sees a request: a prompt that does not fit ``max_model_len`` becomes an error row and the run
goes on, and ``max_tokens`` is clamped to the room left.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from harness.engines.base import EngineError, Generation, PreparedRequest, prompt_ids
from harness.engines.checkpoints import resolve_checkpoint

if TYPE_CHECKING:
    from harness.config import ArmConfig

log = logging.getLogger(__name__)


CPU_MAX_NUM_SEQS = 256
"""vLLM's default ``max_num_seqs`` on the CPU backend."""


def _on_cpu() -> bool:
    from vllm.platforms import current_platform

    return bool(current_platform.is_cpu())


class VLLMEngine:
    """One ``vllm.LLM`` serving one arm."""

    def __init__(self, arm: ArmConfig) -> None:
        try:
            from vllm import LLM
        except ImportError as e:
            raise EngineError("vLLM is not installed. Fix: `make setup` (CPU build, extra `cpu`) or "
                              "`make setup GPU=1` (extra `gpu`) on a GPU box.") from e
        if not arm.checkpoint:
            raise EngineError("arm has no checkpoint. Fix: set `checkpoint` (a local path or hub id) or `imported`.")
        opts = arm.engine
        self.max_model_len = opts.max_model_len
        self.structured_output = opts.structured_output
        kwargs: dict[str, Any] = dict(
            model=resolve_checkpoint(arm.checkpoint), dtype=opts.dtype, max_model_len=opts.max_model_len,
            enforce_eager=opts.enforce_eager, gpu_memory_utilization=opts.gpu_memory_utilization, seed=opts.seed)
        if opts.quantization:
            kwargs["quantization"] = opts.quantization
        kwargs.update(opts.extra)
        if _on_cpu() and "max_num_batched_tokens" not in kwargs:
            # vLLM 0.32 on CPU crashes ("CPU Generator does not use offset") when a request with a sampling seed
            # has its prefill split across steps; a step budget that fits every sequence's prompt avoids splits.
            kwargs["max_num_batched_tokens"] = opts.max_model_len * kwargs.get("max_num_seqs", CPU_MAX_NUM_SEQS)
        try:
            self.llm = LLM(**kwargs)
        except Exception as exc:  # vLLM raises many types; keep its message, add the fix
            raise EngineError(f"vLLM could not load checkpoint {arm.checkpoint!r}: {exc}. Fix: check that it is "
                              "a causal LM directory (config.json, weights, tokenizer) or a reachable hub id, "
                              "and the engine options.") from exc
        runner = getattr(self.llm.model_config, "runner_type", "generate")
        if runner != "generate":  # a backstop: resolve_checkpoint refuses the encoders it can tell from config.json
            self.close()
            raise EngineError(f"vLLM loaded checkpoint {arm.checkpoint!r} as a {runner} model, not a generative one. "
                              "Fix: point `checkpoint` at a causal LM.")
        self.checkpoint = arm.checkpoint
        self.tokenizer: Any = self.llm.get_tokenizer()

    def _prompt_ids(self, r: PreparedRequest) -> list[int]:
        return prompt_ids(self.tokenizer, self.checkpoint, r)

    def _sampling(self, r: PreparedRequest, room: int) -> Any:
        from vllm import SamplingParams

        extra: dict[str, Any] = {}
        if self.structured_output and r.response_schema is not None:
            from vllm.sampling_params import StructuredOutputsParams

            extra["structured_outputs"] = StructuredOutputsParams(json=r.response_schema)
        return SamplingParams(temperature=r.temperature, top_p=r.top_p, max_tokens=min(r.max_tokens, room),
                              seed=r.seed, **extra)

    def generate(self, requests: Sequence[PreparedRequest]) -> list[Generation]:
        """Answer the batch with one ``LLM.generate`` call; unservable requests become error rows."""
        from vllm import TokensPrompt

        results: list[Generation | None] = [None] * len(requests)
        prompts, params, index = [], [], []
        for i, r in enumerate(requests):
            ids = self._prompt_ids(r)
            room = self.max_model_len - len(ids)
            if room < 1:
                results[i] = Generation(r.request_id, "", len(ids), 0, None,
                                        f"prompt_too_long: {len(ids)} tokens, max_model_len {self.max_model_len}")
                continue
            prompts.append(TokensPrompt(prompt_token_ids=ids))
            params.append(self._sampling(r, room))
            index.append(i)
        if prompts:
            outs = self.llm.generate(prompts, params, use_tqdm=False)
            for i, out in zip(index, outs, strict=True):
                c = out.outputs[0]
                results[i] = Generation(requests[i].request_id, c.text, len(out.prompt_token_ids or []),
                                        len(c.token_ids), c.finish_reason)
        return [g for g in results if g is not None]

    def close(self) -> None:
        """Shut the engine core down and drop the model so the next arm gets the memory."""
        try:
            self.llm.llm_engine.engine_core.shutdown()
        except Exception as exc:  # best effort: the process may already be gone
            log.debug("engine shutdown: %s", exc)
        del self.llm
        gc.collect()
