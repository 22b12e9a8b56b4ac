"""The transformers engine: batched ``model.generate`` with left padding, for machines without vLLM.

Tokenization follows ``vllm_offline.py``: the chat template is applied once and tokenized without
extra special tokens (a plain ``prompt`` gets the tokenizer's special tokens); a prompt that does not
fit ``max_model_len`` becomes an error row and the run goes on; ``max_tokens`` is clamped to the room
left. Decoding stops at the end-of-sequence token(s) of the tokenizer and of the checkpoint's
``generation_config`` (``finish_reason`` ``stop``) or after the request's ``max_tokens`` (``length``);
like vLLM, an output's token count includes the end-of-sequence token that stopped it.

A replay batch (``engine.batch_size`` requests) is one ``generate`` call: on the CPU the per-step
overhead dominates a small model, so one call of 256 requests ran 3x faster than four of 64 (zoo,
2 cores). Where memory is short, ``engine.extra.micro_batch_size`` splits it into micro-batches of
requests sorted by prompt length (less padding). Sampling parameters are per
request: ``generate`` runs in greedy mode and a logits processor draws each sampled request's token
itself (temperature, then top-p) from a ``torch.Generator`` seeded with that request's seed. So a
sampled output depends on its own seed only, not on the other requests of its batch or on their
order, up to the floating-point differences that padding and batch shape cause in the logits (the same
caveat vLLM has). The random streams are torch's, not vLLM's: the same seed gives other samples than
vLLM does. ``temperature`` <= 1e-5 is greedy, as in vLLM.

Engine options: ``dtype`` (``float32``, ``bfloat16``, ``float16`` or ``auto``), ``max_model_len`` and
``seed`` are used; ``gpu_memory_utilization`` and ``enforce_eager`` mean nothing here and are ignored;
``quantization`` and ``structured_output`` are refused (use the vLLM backend); other ``extra`` keys are
passed to ``AutoModelForCausalLM.from_pretrained``. The device is CUDA when available, else the CPU.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from harness.engines.base import Capabilities, EngineError, Generation, PreparedRequest, batch_by_batch, prompt_ids
from harness.engines.checkpoints import max_model_len, resolve_checkpoint

if TYPE_CHECKING:
    import torch

    from harness.config import ArmConfig

log = logging.getLogger(__name__)
DTYPES = ("float32", "bfloat16", "float16", "auto")
GREEDY_BELOW = 1e-5


class _PerRequestSampling:
    """Logits processor: rows with a temperature get one token drawn from their own generator.

    ``generate`` runs greedy, so a row whose scores are -inf except at the drawn token takes that token;
    greedy rows are left as they are.
    """

    def __init__(self, requests: Sequence[PreparedRequest], device: torch.device) -> None:
        import torch

        self.rows = [i for i, r in enumerate(requests) if r.temperature > GREEDY_BELOW]
        self.temperature = torch.tensor([requests[i].temperature for i in self.rows], device=device)
        self.top_p = torch.tensor([requests[i].top_p for i in self.rows], device=device)
        self.generators = [torch.Generator(device=device).manual_seed(requests[i].seed) for i in self.rows]

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        import torch

        if not self.rows:
            return scores
        logits = scores[self.rows].float() / self.temperature[:, None]
        probs = torch.softmax(logits, dim=-1)
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        outside = sorted_probs.cumsum(dim=-1) - sorted_probs >= self.top_p[:, None]  # keeps at least the top token
        sorted_probs = sorted_probs.masked_fill(outside, 0.0)
        out = scores.clone()
        for k, row in enumerate(self.rows):
            pick = order[k, torch.multinomial(sorted_probs[k], 1, generator=self.generators[k])]
            out[row] = float("-inf")
            out[row, pick] = 0.0
        return out


class _PerRequestBudget:
    """Stopping criterion: row ``i`` is done after ``budgets[i]`` new tokens."""

    def __init__(self, budgets: list[int], prompt_width: int, device: torch.device) -> None:
        import torch

        self.budgets = torch.tensor(budgets, device=device)
        self.prompt_width = prompt_width

    def __call__(self, input_ids: torch.Tensor, scores: Any, **kwargs: Any) -> torch.Tensor:
        return (input_ids.shape[1] - self.prompt_width) >= self.budgets  # type: ignore[no-any-return]


def _import_torch_transformers() -> tuple[Any, Any]:
    try:
        import torch
        import transformers
    except ImportError as e:
        raise EngineError(f"the transformers backend needs torch and transformers ({e}). Fix: `make setup` "
                          "(extra `cpu`, brings torch), or `pip install -e .` plus a torch build for your "
                          "machine on a GPU box.") from e
    return torch, transformers


class TransformersEngine:
    """One transformers causal LM serving one arm (``engine.backend: transformers``)."""

    @staticmethod
    def capabilities(arm: ArmConfig) -> Capabilities:
        return Capabilities()

    def __init__(self, arm: ArmConfig) -> None:
        torch, transformers = _import_torch_transformers()
        if not arm.checkpoint:
            raise EngineError("arm has no checkpoint. Fix: set `checkpoint` (a local path or hub id) or `imported`.")
        opts = arm.engine
        if opts.dtype not in DTYPES:
            raise EngineError(f"engine.dtype {opts.dtype!r} is not one the transformers backend knows. "
                              f"Fix: use one of {list(DTYPES)}.")
        if opts.quantization or opts.structured_output:
            raise EngineError("the transformers backend does not apply engine.quantization or "
                              "engine.structured_output. Fix: unset them, or use engine.backend=vllm.")
        extra = dict(opts.extra)
        self.micro_batch: int | None = extra.pop("micro_batch_size", None)
        self.max_model_len = max_model_len(arm.checkpoint, opts.max_model_len)
        self.checkpoint = arm.checkpoint
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        path = resolve_checkpoint(arm.checkpoint)
        dtype = opts.dtype if opts.dtype == "auto" else getattr(torch, opts.dtype)
        try:
            self.tokenizer: Any = transformers.AutoTokenizer.from_pretrained(path)
            self.model: Any = transformers.AutoModelForCausalLM.from_pretrained(path, dtype=dtype, **extra)
        except Exception as exc:  # transformers raises many types; keep its message, add the fix
            raise EngineError(f"transformers could not load checkpoint {arm.checkpoint!r}: {exc}. Fix: check "
                              "that it is a causal LM directory (config.json, weights, tokenizer) or a hub id "
                              "in the local hub cache, and engine.extra.") from exc
        self.model.to(self.device).eval()
        torch.manual_seed(opts.seed)
        self.eos_ids = self._eos_ids()
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.eos_ids[0]
        # Only what the request says, as vLLM does with explicit SamplingParams: no repetition penalty,
        # top-k or other defaults from the checkpoint's generation_config.json.
        self.model.generation_config = transformers.GenerationConfig(eos_token_id=self.eos_ids,
                                                                     pad_token_id=self.pad_id)

    def _eos_ids(self) -> list[int]:
        ids = [self.tokenizer.eos_token_id, self.model.generation_config.eos_token_id]
        flat = [i for x in ids if x is not None for i in (x if isinstance(x, list) else [x])]
        if not flat:
            raise EngineError("the checkpoint defines no end-of-sequence token (tokenizer or generation_config). "
                              "Fix: set eos_token in its tokenizer_config.json.")
        return list(dict.fromkeys(flat))

    def generate(self, requests: Sequence[PreparedRequest]) -> list[Generation]:
        """Answer the batch with one ``generate`` call (or micro-batches); unservable requests become error rows."""
        results: list[Generation | None] = [None] * len(requests)
        todo: list[tuple[int, list[int], int]] = []  # (index, prompt ids, max new tokens)
        for i, (r, ids) in enumerate(zip(requests, prompt_ids(self.tokenizer, self.checkpoint, requests), strict=True)):
            room = self.max_model_len - len(ids)
            if room < 1:
                results[i] = Generation(r.request_id, "", len(ids), 0, None,
                                        f"prompt_too_long: {len(ids)} tokens, max_model_len {self.max_model_len}")
            else:
                todo.append((i, ids, min(r.max_tokens, room)))
        todo.sort(key=lambda t: len(t[1]))
        size = int(self.micro_batch or len(todo) or 1)
        for start in range(0, len(todo), size):
            chunk = todo[start: start + size]
            for (i, _, _), gen in zip(chunk, self._generate_chunk(chunk, requests), strict=True):
                results[i] = gen
        return [g for g in results if g is not None]

    def _generate_chunk(self, chunk: list[tuple[int, list[int], int]],
                        requests: Sequence[PreparedRequest]) -> list[Generation]:
        import torch

        width = max(len(ids) for _, ids, _ in chunk)
        input_ids = torch.tensor([[self.pad_id] * (width - len(ids)) + ids for _, ids, _ in chunk], device=self.device)
        mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for _, ids, _ in chunk], device=self.device)
        budgets = [n for _, _, n in chunk]
        chunk_requests = [requests[i] for i, _, _ in chunk]
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=input_ids, attention_mask=mask, do_sample=False, num_beams=1, max_new_tokens=max(budgets),
                logits_processor=[_PerRequestSampling(chunk_requests, self.device)],
                stopping_criteria=[_PerRequestBudget(budgets, width, self.device)])
        return [self._generation(r, len(ids), out[k, width: width + n].tolist())
                for k, (r, (_, ids, n)) in enumerate(zip(chunk_requests, chunk, strict=True))]

    def _generation(self, r: PreparedRequest, prompt_tokens: int, new: list[int]) -> Generation:
        stop = next((k for k, t in enumerate(new) if t in self.eos_ids), None)
        tokens = new if stop is None else new[: stop + 1]
        text = self.tokenizer.decode(tokens, skip_special_tokens=True)
        return Generation(r.request_id, text, prompt_tokens, len(tokens), "length" if stop is None else "stop")

    def stream(self, batches: Iterable[Sequence[PreparedRequest]]) -> Iterator[list[Generation]]:
        return batch_by_batch(self, batches)

    def close(self) -> None:
        """Drop the model (and the CUDA cache) so the next arm gets the memory."""
        import torch

        del self.model
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
