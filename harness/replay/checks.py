"""What is checked before any engine starts (``preflight``) and before a run resumes (``check_resume``), and what the
manifest records about determinism."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from harness.config import ArmConfig
from harness.engines.base import ENGINES, EngineError, backend_name, capabilities
from harness.engines.checkpoints import has_chat_template
from harness.replay.ledger import ResumeError
from harness.traffic import Traffic

if TYPE_CHECKING:
    from harness.spec import Manifest

__all__ = ["ResumeError", "check_resume", "determinism", "preflight"]


def check_resume(previous: Manifest, current: Manifest, replayed: set[str]) -> None:
    """Refuses to resume a run whose traffic or replayed arms were set up differently.

    Args:
        previous: the run's manifest as written by the interrupted invocation.
        current: the manifest this invocation would write.
        replayed: the arms that already have generations parts.

    Raises:
        ResumeError: naming the first difference and the fix.
    """
    fix = "Fix: run the same command again (see the run's manifest.json), or use a new run_id."
    for key in ("sha256", "limit"):
        was, now = getattr(previous.traffic, key), getattr(current.traffic, key)
        if was != now:
            raise ResumeError(f"run {current.run_id} replayed traffic with {key} {was}, this command has {now}. "
                              + fix)
    for arm in sorted(replayed & set(current.arms)):
        was_settings = previous.arm_settings(arm) if arm in previous.arms else {}
        now_settings = current.arm_settings(arm)
        if was_settings != now_settings:
            diff = _first_difference(was_settings, now_settings)
            raise ResumeError(f"run {current.run_id}: arm {arm} was replayed with {diff[0]} = {diff[1]!r}, this "
                              f"command has {diff[2]!r}. " + fix)


def _first_difference(was: dict[str, Any], now: dict[str, Any], prefix: str = "") -> tuple[str, Any, Any]:
    for key in sorted(set(was) | set(now)):
        a, b = was.get(key), now.get(key)
        if isinstance(a, dict) and isinstance(b, dict) and a != b:
            return _first_difference(a, b, f"{prefix}{key}.")
        if a != b:
            return f"{prefix}{key}", a, b
    return prefix.rstrip(".") or "(nothing)", was, now


def preflight(arms: Mapping[str, ArmConfig], traffic: Traffic, ray: bool = False) -> None:
    """What can be checked before any engine starts: a known backend, engines per arm that the replayer can run,
    a chat template for chat traffic.

    Raises:
        EngineError: naming the arm, the setting or checkpoint, the first chat request and the fix.
    """
    for name, arm in arms.items():
        if backend_name(arm) not in ENGINES:
            raise EngineError(f"arm {name}: unknown engine backend {backend_name(arm)!r}; known: {sorted(ENGINES)}. "
                              f"Fix: set {name}.engine.backend to one of them.")
        _check_replicas(name, arm, ray)
    for name, arm in arms.items():
        if not traffic.chat_requests or arm.imported or not arm.checkpoint \
                or has_chat_template(arm.checkpoint) is not False:
            continue
        raise EngineError(
            f"arm {name}: checkpoint {arm.checkpoint!r} has no chat template (no chat_template.jinja, no "
            f"chat_template in tokenizer_config.json), but {traffic.chat_requests} of the {traffic.requests} requests "
            f"in {traffic.path} are chat messages (the first: request_id={traffic.first_chat}). Fix: use a chat/"
            "instruct checkpoint or add a chat template to its tokenizer, or replay traffic with a plain `prompt`.")


def _check_replicas(name: str, arm: ArmConfig, ray: bool) -> None:
    e = arm.engine
    if e.replicas < 1 or e.tensor_parallel_size < 1:
        raise EngineError(f"arm {name}: engine.replicas and engine.tensor_parallel_size must be at least 1, found "
                          f"{e.replicas} and {e.tensor_parallel_size}.")
    if e.devices and len(e.devices) != e.replicas:
        raise EngineError(f"arm {name}: engine.devices has {len(e.devices)} entries and engine.replicas is "
                          f"{e.replicas}. Fix: one CUDA_VISIBLE_DEVICES value per replica, e.g. "
                          f"{name}.engine.replicas={len(e.devices)}.")
    can = capabilities(arm)
    if e.replicas > 1 and can.endpoint:
        raise EngineError(f"arm {name}: engine.replicas={e.replicas} starts local servers, but the arm is the "
                          f"endpoint {can.endpoint}. Fix: replicas=1 (the endpoint balances its own replicas).")
    if e.replicas > 1 and not can.own_replicas and not ray:
        raise EngineError(f"arm {name}: engine.replicas={e.replicas} needs engines outside this process. Fix: "
                          f"{name}.engine.backend=server (one local vLLM server per replica) or ray.enabled=true "
                          "(one Ray engine actor per replica).")


def determinism(arms: Mapping[str, ArmConfig]) -> dict[str, Any]:
    """What decides whether replaying again gives the same generations, per arm, for the manifest.

    Greedy decoding with the same checkpoint, dtype, batch size, seeds and engine build gives identical outputs on
    one machine (tests/test_resume.py). ``VLLM_BATCH_INVARIANT=1`` makes vLLM's kernels independent of the
    batch composition on supported GPUs (NVIDIA compute capability >= 9.0 per vLLM 0.32's envs.py); on the CPU
    build it changes no kernel.
    """
    out: dict[str, Any] = {"VLLM_BATCH_INVARIANT": os.environ.get("VLLM_BATCH_INVARIANT", "0"),
                           "CUBLAS_WORKSPACE_CONFIG": os.environ.get("CUBLAS_WORKSPACE_CONFIG"), "arms": {}}
    for name, arm in arms.items():
        e, s = arm.engine, arm.sampling
        out["arms"][name] = {
            "backend": backend_name(arm), "engine_seed": e.seed, "sampling_seed": s.seed,
            "batch_size": e.batch_size, "dtype": e.dtype, "quantization": e.quantization,
            "max_model_len": e.max_model_len, "enforce_eager": e.enforce_eager,
            "temperature": "as captured" if s.temperature is None else s.temperature,
            "extra": dict(e.extra)}
    return out


def check_prompt_lengths(arms: Mapping[str, ArmConfig], traffic: Traffic, max_share: float,
                         batch: int = 1024) -> dict[str, int]:
    """Count the requests whose prompt (the arm's system prompt and template applied, the chat template too) leaves
    no room for one output token within the arm's ``max_model_len``: each would be an error row on that arm.

    Arms served from a file or an endpoint without a checkpoint are skipped; arms with the same checkpoint, length
    limit and prompt changes are counted once. Returns arm -> over-long requests.

    Raises:
        EngineError: an arm's share above ``max_share`` (``traffic.max_too_long_share``), before any generation,
            with the count, the longest prompt and the fix.
    """
    import logging

    from harness.engines.base import prompt_ids
    from harness.engines.checkpoints import max_model_len, resolve_checkpoint
    from harness.replay.ledger import prepare

    log = logging.getLogger(__name__)
    counted: dict[tuple[Any, ...], int] = {}
    out: dict[str, int] = {}
    for name, arm in arms.items():
        if arm.imported or not arm.checkpoint:
            continue
        limit = max_model_len(arm.checkpoint, arm.engine.max_model_len)
        key = (arm.checkpoint, limit, arm.system_prompt, arm.prompt_template)
        if key not in counted:
            try:
                from transformers import AutoTokenizer

                tokenizer = AutoTokenizer.from_pretrained(resolve_checkpoint(arm.checkpoint))
            except Exception as e:  # noqa: BLE001  a tokenizer that does not load here is the engine's to report
                log.warning("arm %s: prompt lengths not checked before the replay (tokenizer: %s)", name, e)
                continue
            too_long, longest = 0, 0
            for b in traffic.batches(batch):
                sent = [prepare(r, arm) for r in b.requests or [] if r.tools is None]  # tool calling: not sent
                lengths = [len(ids) for ids in prompt_ids(tokenizer, arm.checkpoint, sent)]
                too_long += sum(n >= limit for n in lengths)
                longest = max([longest, *lengths])
            counted[key] = too_long
            share = too_long / max(traffic.requests, 1)
            if share > max_share:
                raise EngineError(
                    f"arm {name}: {too_long} of {traffic.requests} requests in {traffic.path} ({share:.1%}) have "
                    f"prompts of {limit} tokens or more (the longest: {longest}), the arm's max_model_len: each would "
                    f"be an error row on both arms, above traffic.max_too_long_share ({max_share:.1%}). Fix: raise "
                    f"{name}.engine.max_model_len (null: the checkpoint's context length), or leave those requests "
                    "out of the traffic, or raise traffic.max_too_long_share to accept them as errors.")
            if too_long:
                log.warning("arm %s: %d of %d requests (%.2f%%) have prompts of max_model_len (%d) tokens or more: "
                            "error rows on that arm", name, too_long, traffic.requests, 100 * share, limit)
        out[name] = counted[key]
    return out
