"""The generation cache: served generations reused across runs and sweep jobs, so only misses reach an engine.

Layout of ``<cache dir>/generations/<arm key>/`` (default ``reports/.cache``)::

    arm.json               what the arm key was made of (checkpoint, fingerprint, engine options), for people
    part-<uuid>.parquet    one file per writer batch: key, output_text, prompt_tokens, output_tokens, finish_reason

The **arm key** hashes what decides an arm's outputs apart from the request: the backend, the checkpoint
fingerprint (sha256 of its weights, ``harness.engines.checkpoints.fingerprint``) and the engine options that change
outputs (dtype, quantization, max_model_len, structured_output, seed, extra, tensor_parallel_size when not 1, and
an existing endpoint's URL and model name). Batch size, memory share and eager mode
are left out. The **request key** hashes the prepared request (``harness.replay.prepare``): messages or prompt after
the arm's system prompt and template, temperature, top_p, max_tokens, the per-request seed (derived from the request
id) and the response schema.

Concurrency: no file is ever rewritten. Each writer batch is a new uniquely named part written atomically
(``harness.store.write_parquet_atomic``) and readers glob the parts, so concurrent sweeps never clash: at worst two
jobs generate the same request and both store it; a reader takes either. Only served generations are stored, never
error rows. Arms that cannot be keyed by their weights (imported outputs, hub ids without a local snapshot) are not
cached.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from harness.config import ArmConfig
from harness.engines.base import Generation, PreparedRequest, capabilities
from harness.store import write_parquet_atomic

CACHE_VERSION = 1  # bump when the key or the stored columns change: older entries are then never read
CACHE_SCHEMA = pa.schema([
    ("key", pa.string()),
    ("output_text", pa.string()),
    ("prompt_tokens", pa.int64()),
    ("output_tokens", pa.int64()),
    ("finish_reason", pa.string()),
])


def _sha256(obj: Any) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def arm_inputs(arm: ArmConfig, fingerprint: str) -> dict[str, Any] | None:
    """What the arm key is made of; None when the arm is not cacheable (imported, or weights not identifiable)."""
    can = capabilities(arm)
    if not can.cacheable or not arm.checkpoint or not fingerprint.startswith("sha256:"):
        return None
    e = arm.engine
    return {"version": CACHE_VERSION, "backend": e.backend, "fingerprint": fingerprint, "dtype": e.dtype,
            "quantization": e.quantization, "max_model_len": e.max_model_len,
            "structured_output": e.structured_output, "seed": e.seed, "extra": dict(e.extra),
            **({"tensor_parallel_size": e.tensor_parallel_size} if e.tensor_parallel_size != 1 else {}),
            # an endpoint named with a checkpoint: its answers are that endpoint's, not the weights' alone
            **({"endpoint": [can.endpoint, e.server.model]} if can.endpoint else {})}


def request_key(p: PreparedRequest) -> str:
    """sha256 of the prepared request's content (its id enters only through the per-request seed)."""
    content = asdict(p)
    content.pop("request_id")
    for key in ("stop", "presence_penalty", "frequency_penalty"):  # unset: the key of a request before they existed
        if content[key] is None:
            content.pop(key)
    return _sha256(content)


class GenerationCache:
    """One arm's entries: look up a batch of prepared requests, add the batch's served generations."""

    def __init__(self, root: str | Path, inputs: dict[str, Any], source: str) -> None:
        self.key = _sha256(inputs)[:32]
        self.path = Path(root) / "generations" / self.key
        self.inputs = {**inputs, "checkpoint": source}

    def lookup(self, requests: Sequence[PreparedRequest]) -> dict[str, Generation]:
        """The cached generation of each request that has one, by request id."""
        files = sorted(str(f) for f in self.path.glob("part-*.parquet"))
        if not files or not requests:
            return {}
        keys = {request_key(p): p.request_id for p in requests}
        found = ds.dataset(files, schema=CACHE_SCHEMA, format="parquet").to_table(
            filter=pc.field("key").isin(pa.array(list(keys), pa.string()))).to_pylist()
        by_key = {row["key"]: row for row in found}  # duplicates (two writers, same miss): any one will do
        out = {}
        for p in requests:
            row = by_key.get(request_key(p))
            if row is not None:
                out[p.request_id] = Generation(p.request_id, row["output_text"], row["prompt_tokens"],
                                               row["output_tokens"], row["finish_reason"])
        return out

    def add(self, requests: Sequence[PreparedRequest], generations: Sequence[Generation]) -> int:
        """Store the served generations (error rows are skipped) as one new part; returns how many were stored."""
        rows = {request_key(p): {"key": request_key(p), "output_text": g.output_text,
                                 "prompt_tokens": g.prompt_tokens, "output_tokens": g.output_tokens,
                                 "finish_reason": g.finish_reason}
                for p, g in zip(requests, generations, strict=True) if g.error is None}
        if not rows:
            return 0
        if not (self.path / "arm.json").exists():
            self.path.mkdir(parents=True, exist_ok=True)
            text = json.dumps(self.inputs, indent=2, sort_keys=True, default=str) + "\n"
            tmp = self.path / f".arm.{uuid.uuid4().hex}.json"  # each writer its own; the rename is atomic
            tmp.write_text(text)
            tmp.replace(self.path / "arm.json")
        table = pa.Table.from_pylist(list(rows.values()), schema=CACHE_SCHEMA)
        write_parquet_atomic(self.path / f"part-{uuid.uuid4().hex}.parquet", table)
        return len(rows)


def cache_info(root: str | Path) -> list[dict[str, Any]]:
    """One row per cached arm: key, checkpoint, dtype, entries (rows, duplicates included), files, bytes."""
    out = []
    for arm_dir in sorted((Path(root) / "generations").glob("*/")):
        files = list(arm_dir.glob("part-*.parquet"))
        inputs = json.loads((arm_dir / "arm.json").read_text()) if (arm_dir / "arm.json").exists() else {}
        entries = ds.dataset([str(f) for f in files], format="parquet").count_rows() if files else 0
        out.append({"key": arm_dir.name, "checkpoint": inputs.get("checkpoint"), "dtype": inputs.get("dtype"),
                    "entries": entries, "files": len(files), "bytes": sum(f.stat().st_size for f in files)})
    return out


def clear_cache(root: str | Path) -> int:
    """Delete every cached generation under ``root``; returns the bytes freed."""
    path = Path(root) / "generations"
    if not path.exists():
        return 0
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    shutil.rmtree(path)
    return size
