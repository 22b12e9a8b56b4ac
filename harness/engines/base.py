"""The engine plug-in point: one Protocol, a registry by name, and the rows they exchange."""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from harness.errors import BadInput

if TYPE_CHECKING:
    from harness.config import ArmConfig

DEFAULT_TEMPERATURE = 0.0
DEFAULT_TOP_P = 1.0
DEFAULT_MAX_TOKENS = 128


class EngineError(BadInput, RuntimeError):
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
    stop: tuple[str, ...] | None = None  # captured stop sequences
    presence_penalty: float | None = None  # captured penalties (None: the engine's 0)
    frequency_penalty: float | None = None
    unset: tuple[str, ...] = ()  # sampling fields an endpoint is not sent (its own default applies; server backend)


@dataclass(frozen=True)
class Generation:
    """One engine answer; ``error`` set (and text empty) when the request could not be served."""

    request_id: str
    output_text: str
    prompt_tokens: int | None
    output_tokens: int | None
    finish_reason: str | None
    error: str | None = None
    ttft_s: float | None = None  # streamed (server backend): seconds to the first token
    itl_s: float | None = None  # mean seconds between output tokens after the first
    latency_s: float | None = None  # seconds from sending the request to its last token


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do for an arm. Other modules ask this, never the backend's name."""

    cacheable: bool = True  # its generations may go to (and come from) the generation cache
    own_replicas: bool = False  # runs engine.replicas > 1 engines itself (or needs none); else only Ray can
    on_ray: bool = True  # can be placed in a Ray engine actor (a file or HTTP servers stay with the driver)
    endpoint: str | None = None  # a remote endpoint it sends requests to: the arm is recorded (and cached) by it


class Engine(Protocol):
    """Serves one arm. Built from an ``ArmConfig``; ``close`` releases its memory. Its class also declares
    ``capabilities(arm) -> Capabilities`` (a static method)."""

    def generate(self, requests: Sequence[PreparedRequest]) -> list[Generation]:
        """Answer every request, in order; a request that cannot be served gets an error row."""
        ...

    def stream(self, batches: Iterable[Sequence[PreparedRequest]]) -> Iterator[list[Generation]]:
        """``generate`` for each batch, in order, yielding each batch's answers as soon as they are all in. An
        engine may take the next batch from ``batches`` before the current one is answered (vLLM does, so the
        engine never drains between batches); one that cannot answers batch by batch (``batch_by_batch``)."""
        ...

    def close(self) -> None:
        """Release the engine's memory so the next arm fits."""
        ...


ENGINES: dict[str, str] = {
    "vllm": "harness.engines.vllm_offline:VLLMEngine",
    "imported": "harness.engines.imported:ImportedOutputs",
    "transformers": "harness.engines.hf:TransformersEngine",
    "server": "harness.engines.server:ServerEngine",
}
"""Engine name -> "module:class"; imported lazily so heavy packages load only when used."""


def batch_by_batch(engine: Engine, batches: Iterable[Sequence[PreparedRequest]]) -> Iterator[list[Generation]]:
    """``Engine.stream`` for an engine that answers one batch at a time."""
    for batch in batches:
        yield engine.generate(batch)


def request_seed(base_seed: int, request_id: str) -> int:
    """A per-request sampling seed that does not depend on batching or order."""
    digest = hashlib.sha256(f"{base_seed}:{request_id}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def prompt_ids(tokenizer: Any, checkpoint: str | None, requests: Sequence[PreparedRequest]) -> list[list[int]]:
    """The token ids every engine sends, per request: the chat template applied once to chat messages, else the
    prompt. The texts are tokenized in one call per kind (the fast tokenizer's batch encoding)."""
    chat = [i for i, r in enumerate(requests) if r.messages is not None]
    if chat and not getattr(tokenizer, "chat_template", None):
        raise EngineError(f"checkpoint {checkpoint!r}: its tokenizer has no chat template, but request "
                          f"{requests[chat[0]].request_id} has chat messages. Fix: use a chat/instruct checkpoint or "
                          "add a chat template to its tokenizer, or replay traffic with a plain `prompt`.")
    plain = [i for i, r in enumerate(requests) if r.messages is None]
    out: list[list[int]] = [[] for _ in requests]
    if chat:
        texts = [tokenizer.apply_chat_template(list(requests[i].messages or ()), add_generation_prompt=True,
                                               tokenize=False) for i in chat]
        for i, ids in zip(chat, tokenizer(texts, add_special_tokens=False)["input_ids"], strict=True):
            out[i] = list(ids)
    if plain:
        for i, ids in zip(plain, tokenizer([requests[i].prompt for i in plain])["input_ids"], strict=True):
            out[i] = list(ids)
    return out


def backend_name(arm: ArmConfig) -> str:
    """The registry name serving ``arm``: ``imported`` when outputs come from a file."""
    return "imported" if arm.imported else arm.engine.backend


def engine_class(arm: ArmConfig) -> Any:
    """The engine class named by the arm's config (imported now)."""
    name = backend_name(arm)
    if name not in ENGINES:
        raise EngineError(f"unknown engine backend {name!r}; known: {sorted(ENGINES)}. "
                          "Fix: set engine.backend to one of them.")
    module, cls = ENGINES[name].split(":")
    return getattr(importlib.import_module(module), cls)


def capabilities(arm: ArmConfig) -> Capabilities:
    """What the arm's backend can do (``Capabilities``), without starting it."""
    return engine_class(arm).capabilities(arm)  # type: ignore[no-any-return]


def make_engine(arm: ArmConfig) -> Engine:
    """Instantiate the engine named by the arm's config."""
    return engine_class(arm)(arm)  # type: ignore[no-any-return]
