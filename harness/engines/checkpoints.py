"""Where a checkpoint lives and what it is: ``zoo:NAME`` shorthands, local paths, hub ids, fingerprints."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from harness.engines.base import EngineError

ZOO_PREFIX = "zoo:"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def resolve_checkpoint(checkpoint: str) -> str:
    """A path or hub id vLLM can load: ``zoo:NAME`` becomes the zoo's directory (built when missing).

    Raises:
        EngineError: a local path that does not exist, or a string that is neither path nor hub id.
    """
    if checkpoint.startswith(ZOO_PREFIX):
        from harness.zoo.build import DEFAULT_ZOO_DIR, build_zoo, is_built

        if not is_built(DEFAULT_ZOO_DIR):
            build_zoo(DEFAULT_ZOO_DIR)
        path = DEFAULT_ZOO_DIR / checkpoint[len(ZOO_PREFIX):]
        if not path.is_dir():
            raise EngineError(f"no zoo checkpoint {checkpoint!r} in {DEFAULT_ZOO_DIR}. "
                              "Fix: use one of zoo:baseline, zoo:benign, zoo:terse, zoo:hedging, zoo:json_drift, "
                              "zoo:improved.")
        return str(path)
    path = Path(checkpoint).expanduser()
    if path.exists():
        if not (path / "config.json").exists():
            raise EngineError(f"checkpoint {checkpoint!r} has no config.json: it is not a Hugging Face model "
                              "directory. Fix: point `checkpoint` at the directory holding config.json and weights.")
        return str(path)
    if _HUB_ID.match(checkpoint) and not checkpoint.startswith((".", "/", "~")):
        return checkpoint  # a hub id: vLLM resolves it (from the local hub cache when offline)
    raise EngineError(f"checkpoint path {checkpoint!r} does not exist. Fix: give an existing model directory, "
                      "a hub id like org/name, or zoo:NAME.")


def _sha256(files: list[Path]) -> str:
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode())
        with f.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return f"sha256:{h.hexdigest()}"


def fingerprint(source: str) -> str:
    """sha256 of what an arm serves: a checkpoint's config and weight files, or an imported outputs file.

    A hub id is fingerprinted by its name only (``hub:org/name``): pin a revision or use a local path
    when the fingerprint must identify the weights.
    """
    if Path(source).is_file():
        return _sha256([Path(source)])
    path = Path(resolve_checkpoint(source))
    if not path.is_dir():
        return f"hub:{source}"
    return _sha256([f for f in sorted(path.iterdir())
                    if f.suffix in {".safetensors", ".bin", ".json"} and f.name != "zoo.json"])
