"""The judge's prompts through the replayer: cached, resumable and batched like an arm's generation.

The judge is an arm (``judge.arm``): a local vLLM engine (``engine.backend: vllm``), any OpenAI-compatible endpoint
(``engine.backend: server`` with ``engine.server.base_url``, ``engine.server.model``, the API key in the environment
variable named by ``engine.server.api_key_env``: the name is recorded, never the key), or the transformers backend.
Each kind of prompt (``pointwise``, ``pairwise``) is written as a traffic file under ``<run>/judge/`` and replayed
into that directory with ``harness.replay.local.replay_arm``, so:

- **batched** by ``judge.arm.engine.batch_size``; one engine for both kinds (started only if a prompt is left);
- **resumable**: each committed batch is a ``generations`` part under ``<run>/judge/``; the same command resumes an
  interrupted judge pass (``judge/key.json`` holds the pass's key; another key clears the folder first, so a part
  is never reused for other prompts);
- **cached** in the generation cache (``cache.dir``): a checkpoint judge by its weights' fingerprint and engine
  options (``harness.replay.cache.arm_inputs``), an endpoint named without a checkpoint by its URL and model name
  (what the endpoint serves under that name is taken to be fixed: change ``engine.server.model`` or clear the cache
  when it is not).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds

from harness.config import ArmConfig
from harness.engines.base import Generation, capabilities
from harness.replay import ArmTiming
from harness.replay.cache import CACHE_VERSION, GenerationCache, arm_inputs
from harness.replay.local import ArmEngine, replay_arm
from harness.store import RunDir
from harness.traffic import Request
from harness.traffic.reader import open_traffic
from harness.traffic.schema import Message, write_traffic

EPOCH = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
JUDGE_MAX_TOKENS = 128


def judge_cache(arm: ArmConfig, fingerprint: str, root: str | None) -> GenerationCache | None:
    """The judge arm's generation cache under ``root`` (module docstring), or None (no root, not cacheable)."""
    if not root:
        return None
    inputs = arm_inputs(arm, fingerprint)
    endpoint = capabilities(arm).endpoint
    if inputs is None and endpoint and not arm.checkpoint:
        e = arm.engine
        inputs = {"version": CACHE_VERSION, "backend": e.backend, "endpoint": [endpoint, e.server.model],
                  "structured_output": e.structured_output, "seed": e.seed, "extra": dict(e.extra)}
    if inputs is None:
        return None
    return GenerationCache(root, inputs, arm.checkpoint or f"{endpoint} {arm.engine.server.model}")


def prompt_request(key: str, segment: str, messages: Sequence[dict[str, str]], schema: dict[str, Any],
                   arm: ArmConfig) -> Request:
    """One judge prompt as a traffic request: greedy, ``JUDGE_MAX_TOKENS`` unless the judge arm's sampling overrides
    them (``replay.prepare``: override > captured), the answer schema as its response schema."""
    s = arm.sampling
    return Request(request_id=key, timestamp=EPOCH, segment=segment,
                   messages=tuple(Message(m["role"], m["content"]) for m in messages), prompt=None,
                   temperature=0.0 if s.default_temperature is None else s.default_temperature,
                   top_p=1.0 if s.default_top_p is None else s.default_top_p,
                   max_tokens=s.default_max_tokens or JUDGE_MAX_TOKENS, response_schema=schema, response=None,
                   metadata=None)


def _generations(run: RunDir, kind: str) -> dict[str, Generation]:
    folder = run.path / "generations" / f"arm={kind}"
    files = sorted(str(f) for f in folder.glob("part-*.parquet"))
    if not files:
        return {}
    rows = ds.dataset(files, format="parquet").to_table().to_pylist()
    return {r["request_id"]: Generation(r["request_id"], r["output_text"] or "", r["prompt_tokens"],
                                        r["output_tokens"], r["finish_reason"], r["error"]) for r in rows}


def _fresh(folder: Path, key: str) -> None:
    """Clear ``folder`` when it holds another pass's parts (``key.json``), then record ``key``."""
    marker = folder / "key.json"
    if folder.exists() and (not marker.exists() or json.loads(marker.read_text()).get("key") != key):
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"key": key}) + "\n")


def answer(run: RunDir, arm: ArmConfig, jobs: Sequence[tuple[str, Sequence[Request]]], key: str,
           cache: GenerationCache | None) -> tuple[dict[str, Generation], list[ArmTiming]]:
    """Replay each kind's prompts through the judge arm into ``<run>/judge/`` (module docstring).

    Returns every prompt's generation by request id (an error row where the engine could not serve it) and the
    replay's timing per kind. Raises what the replay raises (``EngineError``: committed batches are kept).
    """
    folder = run.path / "judge"
    _fresh(folder, key)
    judge_run = RunDir.at(folder)
    out: dict[str, Generation] = {}
    timings = []
    with ArmEngine(arm) as engine:
        for kind, requests in jobs:
            if not requests:
                continue
            path = folder / f"prompts-{kind}.parquet"
            if not path.exists():  # written whole, then renamed: a killed pass never leaves half a file
                write_traffic(requests, folder / f".prompts-{kind}.tmp.parquet")
                (folder / f".prompts-{kind}.tmp.parquet").replace(path)
            timings.append(replay_arm(kind, arm, open_traffic(path), judge_run, engine, cache, stage=f"judge {kind}"))
            out |= _generations(judge_run, kind)
    return out, timings
