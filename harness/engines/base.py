"""The engine plug-in point: one Protocol, a registry by name, and the rows they exchange."""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from harness.config import ArmConfig

DEFAULT_TEMPERATURE = 0.0
DEFAULT_TOP_P = 1.0
DEFAULT_MAX_TOKENS = 128


class EngineError(RuntimeError):
    """An arm cannot be served as configured (missing checkpoint, missing extra, ...)."""


@dataclass(frozen=True)
class PreparedRequest:
    """A traffic request with the arm's prompt changes and effective sampling applied."""

    request_id: str
    messages: tuple[dict[str, str], ...] | None
    prompt: str | None
    temperature: float
    top_p: float
    max_tokens: int
    seed: int
    response_schema: dict[str, Any] | None


@dataclass(frozen=True)
class Generation:
    """One engine answer; ``error`` set (and text empty) when the request could not be served."""

    request_id: str
    output_text: str
    prompt_tokens: int | None
    output_tokens: int | None
    finish_reason: str | None
    error: str | None = None


class Engine(Protocol):
    """Serves one arm. Built from an ``ArmConfig``; ``close`` releases its memory."""

    def generate(self, requests: Sequence[PreparedRequest]) -> list[Generation]:
        """Answer every request, in order; a request that cannot be served gets an error row."""
        ...

    def close(self) -> None:
        """Release the engine's memory so the next arm fits."""
        ...


ENGINES: dict[str, str] = {
    "vllm": "harness.engines.vllm_offline:VLLMEngine",
    "imported": "harness.engines.imported:ImportedOutputs",
    "transformers": "harness.engines.hf:TransformersEngine",
}
"""Engine name -> "module:class"; imported lazily so heavy packages load only when used."""


def request_seed(base_seed: int, request_id: str) -> int:
    """A per-request sampling seed that does not depend on batching or order."""
    digest = hashlib.sha256(f"{base_seed}:{request_id}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def prompt_ids(tokenizer: Any, checkpoint: str | None, r: PreparedRequest) -> list[int]:
    """The token ids every engine sends: the chat template applied once to chat messages, else the prompt."""
    if r.messages is not None:
        if not getattr(tokenizer, "chat_template", None):
            raise EngineError(f"checkpoint {checkpoint!r}: its tokenizer has no chat template, but request "
                              f"{r.request_id} has chat messages. Fix: use a chat/instruct checkpoint or add a "
                              "chat template to its tokenizer, or replay traffic with a plain `prompt`.")
        text = tokenizer.apply_chat_template(list(r.messages), add_generation_prompt=True, tokenize=False)
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])
    return list(tokenizer(r.prompt)["input_ids"])


def backend_name(arm: ArmConfig) -> str:
    """The registry name serving ``arm``: ``imported`` when outputs come from a file."""
    return "imported" if arm.imported else arm.engine.backend


def make_engine(arm: ArmConfig) -> Engine:
    """Instantiate the engine named by the arm's config."""
    name = backend_name(arm)
    if name not in ENGINES:
        raise EngineError(f"unknown engine backend {name!r}; known: {sorted(ENGINES)}. "
                          "Fix: set engine.backend to one of them.")
    module, cls = ENGINES[name].split(":")
    return getattr(importlib.import_module(module), cls)(arm)  # type: ignore[no-any-return]
