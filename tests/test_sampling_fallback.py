"""Sampling as production served it: override > captured > the arm's default > the checkpoint's generation config >
greedy / 1.0 / up to max_model_len, and the counts the report shows."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

from harness.config import ArmConfig, EngineConfig, SamplingConfig
from harness.replay import prepare
from harness.replay.ledger import sampling_counts, sampling_sources
from harness.traffic import Message, Request


def _checkpoint(tmp_path: Path, generation: dict[str, object] | None) -> str:
    d = tmp_path / "ckpt"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"], "model_type": "llama",
                                               "max_position_embeddings": 4096}))
    if generation is not None:
        (d / "generation_config.json").write_text(json.dumps(generation))
    return str(d)


def _req(rid: str, **sampling: float | int | None) -> Request:
    fields = {"temperature": None, "top_p": None, "max_tokens": None, **sampling}
    return Request(rid, dt.datetime(2026, 12, 1, tzinfo=dt.UTC), "chat", (Message("user", "hi"),), None,
                   fields["temperature"], fields["top_p"], fields["max_tokens"], None, None, None)


def test_uncaptured_parameters_fall_back_to_the_generation_config(tmp_path: Path) -> None:
    arm = ArmConfig(checkpoint=_checkpoint(tmp_path, {"do_sample": True, "temperature": 0.6, "top_p": 0.9}))
    p = prepare(_req("a"), arm)
    assert (p.temperature, p.top_p, p.max_tokens) == (0.6, 0.9, 4096)  # no max_new_tokens: up to the context
    captured = prepare(_req("b", temperature=0.2, top_p=0.5, max_tokens=64), arm)
    assert (captured.temperature, captured.top_p, captured.max_tokens) == (0.2, 0.5, 64)
    assert {k: v[1] for k, v in sampling_sources(_req("a"), arm).items()} == {
        "temperature": "generation_config", "top_p": "generation_config", "max_tokens": "harness default"}


def test_default_when_not_captured_is_separate_from_override(tmp_path: Path) -> None:
    base = ArmConfig(checkpoint=_checkpoint(tmp_path, {"do_sample": True, "temperature": 0.6}),
                     engine=EngineConfig(max_model_len=1024))
    arm = dataclasses.replace(base, sampling=SamplingConfig(default_temperature=0.0, default_max_tokens=256))
    assert prepare(_req("a"), arm).temperature == 0.0 and prepare(_req("a"), arm).max_tokens == 256
    assert prepare(_req("b", temperature=0.7, max_tokens=32), arm).temperature == 0.7  # captured wins over default
    override = dataclasses.replace(base, sampling=SamplingConfig(temperature=0.0, max_tokens=16))
    assert prepare(_req("b", temperature=0.7, max_tokens=32), override).max_tokens == 16  # override wins over all
    counts = sampling_counts([_req("a"), _req("b", temperature=0.7, top_p=1.0, max_tokens=32)], arm)
    assert counts["requests"] == 2 and counts["fallback"] == 1
    assert counts["params"]["temperature"] == {"arm default": 1, "captured": 1}
    assert counts["params"]["top_p"] == {"harness default": 1, "captured": 1}


def test_greedy_generation_config_and_a_missing_one(tmp_path: Path) -> None:
    greedy = ArmConfig(checkpoint=_checkpoint(tmp_path, {"do_sample": False, "temperature": 0.6,
                                                         "max_new_tokens": 200}))
    p = prepare(_req("a"), greedy)
    assert (p.temperature, p.top_p, p.max_tokens) == (0.0, 1.0, 200)
    none = ArmConfig(checkpoint="org/not-here")  # a hub id: no generation config readable, no context length
    p = prepare(_req("a"), none)
    assert (p.temperature, p.top_p, p.max_tokens) == (0.0, 1.0, 128)
