"""The generation cache: what its keys depend on, concurrent writers, error rows, and a replay that hits it.

Pure logic on real Parquet; the engine is an in-process fake that counts what it was asked (the real-engine path
is tests/test_sweep.py).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from helpers import SAMPLE

from harness.config import ArmConfig, EngineConfig, SamplingConfig
from harness.engines.base import Generation, PreparedRequest, batch_by_batch
from harness.replay import prepare
from harness.replay.cache import GenerationCache, arm_inputs, cache_info, clear_cache, request_key
from harness.replay.local import ArmEngine, replay_arm
from harness.store import RunDir
from harness.traffic import load_traffic, open_traffic, write_traffic

FP = "sha256:" + "a" * 64


def _req(rid: str = "r1", **kw: object) -> PreparedRequest:
    base = dict(request_id=rid, messages=({"role": "user", "content": "hi"},), prompt=None, temperature=0.0,
                top_p=1.0, max_tokens=32, seed=7, response_schema=None)
    return PreparedRequest(**{**base, **kw})  # type: ignore[arg-type]


def _gen(p: PreparedRequest, text: str = "out", error: str | None = None) -> Generation:
    return Generation(p.request_id, "" if error else text, 3, None if error else 2, None if error else "stop", error)


def test_request_key_changes_with_sampling_template_and_schema_not_with_the_id() -> None:
    k = request_key(_req())
    assert request_key(_req(rid="other")) == k  # the id enters only through the per-request seed
    for change in ({"temperature": 0.7}, {"top_p": 0.9}, {"max_tokens": 33}, {"seed": 8},
                   {"messages": ({"role": "user", "content": "Be brief. hi"},)},
                   {"messages": ({"role": "system", "content": "s"}, {"role": "user", "content": "hi"})},
                   {"response_schema": {"type": "object"}}, {"messages": None, "prompt": "hi"}):
        assert request_key(_req(**change)) != k, change


def test_prepare_feeds_the_template_and_sampling_into_the_key() -> None:
    r = load_traffic(SAMPLE, limit=1)[0]
    arm = ArmConfig(checkpoint="zoo:baseline")
    k = request_key(prepare(r, arm))
    assert request_key(prepare(r, replace(arm, prompt_template="Q: {prompt}"))) != k
    assert request_key(prepare(r, replace(arm, system_prompt="Be terse."))) != k
    assert request_key(prepare(r, replace(arm, sampling=SamplingConfig(max_tokens=5)))) != k
    assert request_key(prepare(r, replace(arm, sampling=SamplingConfig(seed=1)))) != k
    assert request_key(prepare(r, replace(arm, engine=EngineConfig(batch_size=3)))) == k


def test_arm_key_changes_with_fingerprint_and_output_affecting_engine_options_only() -> None:
    arm = ArmConfig(checkpoint="zoo:baseline")
    key = GenerationCache("c", arm_inputs(arm, FP) or {}, "zoo:baseline").key
    for other in (arm_inputs(arm, "sha256:" + "b" * 64),
                  arm_inputs(replace(arm, engine=EngineConfig(dtype="bfloat16")), FP),
                  arm_inputs(replace(arm, engine=EngineConfig(max_model_len=512)), FP),
                  arm_inputs(replace(arm, engine=EngineConfig(extra={"kv_cache_dtype": "fp8"})), FP),
                  arm_inputs(replace(arm, engine=EngineConfig(structured_output=True)), FP)):
        assert GenerationCache("c", other or {}, "x").key != key
    same = arm_inputs(replace(arm, engine=EngineConfig(batch_size=8, gpu_memory_utilization=0.5)), FP)
    assert GenerationCache("c", same or {}, "x").key == key
    assert arm_inputs(ArmConfig(imported="o.jsonl"), FP) is None  # imported outputs are not cached
    assert arm_inputs(arm, "hub:org/name") is None  # weights not identified by a hub id alone


def test_lookup_hits_only_stored_served_generations(tmp_path: Path) -> None:
    cache = GenerationCache(tmp_path, arm_inputs(ArmConfig(checkpoint="zoo:baseline"), FP) or {}, "zoo:baseline")
    a, b, c = _req("a", seed=1), _req("b", seed=2), _req("c", seed=3)
    assert cache.lookup([a, b]) == {}
    assert cache.add([a, b], [_gen(a, "A"), _gen(b, error="timeout")]) == 1  # the error row is not stored
    hits = cache.lookup([a, b, c])
    assert list(hits) == ["a"] and hits["a"].output_text == "A" and hits["a"].output_tokens == 2
    assert cache.lookup([_req("a", seed=1, max_tokens=9)]) == {}
    info = cache_info(tmp_path)
    assert [(r["checkpoint"], r["entries"], r["files"]) for r in info] == [("zoo:baseline", 1, 1)]
    assert clear_cache(tmp_path) > 0 and cache_info(tmp_path) == [] and cache.lookup([a]) == {}


def _writer(root: str, worker: int, n: int) -> None:
    cache = GenerationCache(root, {"version": 1, "fingerprint": FP}, "zoo:baseline")
    for i in range(n):
        reqs = [_req(f"w{worker}-{i}-{j}", seed=worker * 10_000 + i * 100 + j) for j in range(5)]
        reqs.append(_req("shared", seed=999_999))  # every writer misses and stores this one too
        cache.add(reqs, [_gen(p, p.request_id) for p in reqs])


def test_concurrent_writers_never_clash(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), w, 20)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    cache = GenerationCache(tmp_path, {"version": 1, "fingerprint": FP}, "zoo:baseline")
    files = list(cache.path.glob("part-*.parquet"))
    assert len(files) == 80 and not list(cache.path.glob(".*"))  # one part per writer batch, no temporaries left
    assert sum(pq.read_metadata(f).num_rows for f in files) == 80 * 6
    wanted = [_req(f"w{w}-{i}-{j}", seed=w * 10_000 + i * 100 + j) for w in range(4) for i in range(20)
              for j in range(5)] + [_req("shared", seed=999_999)]
    hits = cache.lookup(wanted)
    assert len(hits) == 401 and hits["w3-19-4"].output_text == "w3-19-4"


class CountingEngine:
    """Answers every request with its id and records how many it was asked."""

    asked: list[int] = []

    def __init__(self, arm: ArmConfig) -> None:
        pass

    def generate(self, requests: Sequence[PreparedRequest]) -> list[Generation]:
        CountingEngine.asked.append(len(requests))
        return [Generation(p.request_id, f"out {p.request_id} {p.max_tokens}", 5, 3, "stop") for p in requests]

    def stream(self, batches: Iterable[Sequence[PreparedRequest]]) -> Iterator[list[Generation]]:
        return batch_by_batch(self, batches)

    def close(self) -> None:
        pass


def test_replay_generates_only_misses_and_starts_no_engine_when_all_hit(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    write_traffic(load_traffic(SAMPLE, limit=10), tmp_path / "t.parquet")
    traffic = open_traffic(tmp_path / "t.parquet")
    monkeypatch.setattr("harness.replay.local.make_engine", CountingEngine)
    CountingEngine.asked = []
    arm = ArmConfig(checkpoint="zoo:baseline", engine=EngineConfig(batch_size=4))
    cache = GenerationCache(tmp_path / "cache", arm_inputs(arm, FP) or {}, "zoo:baseline")
    first = replay_arm("baseline", arm, traffic, RunDir(tmp_path, "e", "r1"), cache=cache)
    assert (first.cache_hits, first.cache_misses, first.engine_started) == (0, 10, True)
    second = replay_arm("baseline", arm, traffic, RunDir(tmp_path, "e", "r2"), ArmEngine(arm), cache=cache)
    assert (second.cache_hits, second.cache_misses, second.engine_started) == (10, 0, False)
    assert CountingEngine.asked == [4, 4, 2]  # the second run asked the engine nothing
    batches = pq.read_table(RunDir(tmp_path, "e", "r2").path / "batches").to_pylist()
    assert {(b["requests"], b["cached"], b["seconds"]) for b in batches} == {(0, 4, 0.0), (0, 2, 0.0)}
    gens = [pq.read_table(RunDir(tmp_path, "e", r).path / "generations").sort_by("request_id") for r in ("r1", "r2")]
    assert gens[0].drop_columns(["arm"]).equals(gens[1].drop_columns(["arm"]))
    shorter = replace(arm, sampling=SamplingConfig(max_tokens=7))  # another request key: all miss
    third = replay_arm("baseline", shorter, traffic, RunDir(tmp_path, "e", "r3"), cache=cache)
    assert (third.cache_hits, third.cache_misses) == (0, 10) and CountingEngine.asked[-3:] == [4, 4, 2]
