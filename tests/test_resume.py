"""kill -9 in the middle of a real replay, then the same command again: it resumes, and ends where an uninterrupted
run of the same command ends.

No completed request is generated again (the parts written before the kill keep their inode and mtime), none is lost
or duplicated (every request id exactly once per arm), and the run ends with a verdict. An uninterrupted run of the same
command (another run id; both with ``cache.enabled=false``, so both generate) gives the same generation table, all
columns, and the same verdict.json apart from the run id, timestamps and timings: greedy decoding on one machine, engine
build, checkpoint and batch size is reproducible, across a kill too; the manifest records what decides determinism.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest
from helpers import REPO, SAMPLE, run_harness

from harness import store
from harness.config import ArmConfig, EngineConfig
from harness.fixtures.zoo.settings import zoo_arm
from harness.gate import Policy
from harness.replay import ResumeError, check_resume
from harness.replay.local import replay_arm
from harness.spec import ArmRecord, Manifest, RunSpec, TrafficRecord
from harness.store import RunDir
from harness.traffic import load_traffic, open_traffic, write_traffic

N, BATCH = 96, 8  # 12 batches per arm


VARYING = {"run_id", "created_at", "resumed_at", "load_seconds", "replay"}  # of the manifest: ids, times, resume counts


def _command(tmp_path: Path, run_id: str = "killed") -> list[str]:
    """The baseline is replayed by vLLM (and killed); the candidate is imported, to spare engine starts."""
    return ["replay", "experiment=zoo_benign", f"traffic.path={tmp_path / 'traffic.parquet'}", "drift.enabled=false",
            "golden.path=null", f"output_dir={tmp_path / 'reports'}", f"run_id={run_id}", "cache.enabled=false",
            f"baseline.engine.batch_size={BATCH}", f"candidate.imported={tmp_path / 'candidate.jsonl'}",
            f"candidate.engine.batch_size={BATCH}"]


def _generations(run: Path) -> list[tuple[Any, ...]]:
    return duckdb.sql(f"SELECT * FROM read_parquet('{run}/generations/*/*.parquet', hive_partitioning=true) "
                      "ORDER BY arm, request_id").fetchall()


def _without_varying(verdict: dict[str, Any]) -> dict[str, Any]:
    manifest = {k: v for k, v in verdict["manifest"].items() if k not in VARYING}
    manifest["config"] = {k: v for k, v in manifest["config"].items() if k != "run_id"}
    manifest["spec"] = {k: v for k, v in manifest["spec"].items() if k != "run_id"}
    return {**verdict, "manifest": manifest}


def _parts(run: Path) -> dict[Path, tuple[int, int]]:
    return {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in sorted(run.glob("*/arm=*/part-*.parquet"))}


def _start_and_kill(tmp_path: Path, run: Path, after: int) -> None:
    """Starts the replay in its own process group and SIGKILLs the group once `after` baseline batches are done."""
    log = (tmp_path / "killed.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "harness", *_command(tmp_path)], cwd=REPO, stdout=log,
                            stderr=subprocess.STDOUT, env={**os.environ, "HF_HUB_OFFLINE": "1"},
                            start_new_session=True)
    deadline = time.monotonic() + 240
    done = run / "generations" / "arm=baseline"
    while len(list(done.glob("part-*.parquet"))) < after:
        assert proc.poll() is None, (tmp_path / "killed.log").read_text()[-3000:]
        assert time.monotonic() < deadline, "no replay batch was written in time"
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # the whole group: vLLM's engine core is a child process
    proc.wait()
    for _ in range(100):  # the engine core is gone too (reaped by init once killed)
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    raise AssertionError("a process of the killed replay is still alive")


@pytest.mark.vllm
def test_kill_9_mid_replay_then_resume_ends_as_an_uninterrupted_run(zoo: Path, tmp_path: Path) -> None:
    requests = load_traffic(SAMPLE, limit=N)
    write_traffic(requests, tmp_path / "traffic.parquet")
    (tmp_path / "candidate.jsonl").write_text("".join(json.dumps({"request_id": r.request_id,
                                                                  "output": f"Answer for {r.segment}."}) + "\n"
                                                      for r in requests))
    whole = run_harness(*_command(tmp_path, "whole"))
    assert whole.returncode in (0, 10, 11, 13), whole.stderr[-3000:]
    run = tmp_path / "reports" / "zoo_benign" / "killed"
    _start_and_kill(tmp_path, run, after=3)
    before = _parts(run)
    baseline_done = [p for p in before if p.parent.name == "arm=baseline" and p.parent.parent.name == "generations"]
    assert 3 <= len(baseline_done) < N // BATCH and not (run / "verdict.json").exists()

    proc = run_harness(*_command(tmp_path))
    assert proc.returncode in (0, 10, 11, 13), proc.stderr[-3000:]
    skipped = len(baseline_done)
    assert f"arm baseline: resuming: {skipped} of 12 batches already replayed, skipped; {12 - skipped} to replay" \
        in proc.stderr
    after = _parts(run)
    committed = {p: v for p, v in before.items() if (run / "generations" / p.parent.name / p.name) in before}
    # nothing a committed batch wrote before the kill was written again (a batch whose generations part, its commit
    # record, was not written yet when the kill came may have left its batches part: it is replayed and rewritten)
    assert {p: after[p] for p in committed} == committed and len(committed) >= 2 * len(baseline_done)
    assert not list(run.glob("*/arm=*/.*.tmp"))
    counts = duckdb.sql(f"SELECT arm, request_id, count(*) AS n FROM read_parquet('{run}/generations/*/*.parquet', "
                        "hive_partitioning=true) GROUP BY ALL").fetchall()
    ids = {r.request_id for r in requests}
    for arm in ("baseline", "candidate"):
        assert {rid: n for a, rid, n in counts if a == arm} == dict.fromkeys(ids, 1)
    manifest = (run / "manifest.json").read_text()
    assert '"batches_skipped": ' + str(skipped) in manifest and '"resumed_at"' in manifest

    uninterrupted = tmp_path / "reports" / "zoo_benign" / "whole"
    assert _generations(run) == _generations(uninterrupted)
    assert sum(1 for row in _generations(run) if row[-1] == "baseline" and row[3]) == N  # the baseline generated text
    verdicts = [json.loads((r / "verdict.json").read_text()) for r in (uninterrupted, run)]
    assert _without_varying(verdicts[0]) == _without_varying(verdicts[1])
    determinism = verdicts[0]["manifest"]["determinism"]
    assert determinism["VLLM_BATCH_INVARIANT"] in ("0", "1")
    assert determinism["arms"]["baseline"] == {
        "backend": "vllm", "engine_seed": 0, "sampling_seed": 0, "batch_size": BATCH, "dtype": "float32",
        "quantization": None, "max_model_len": 256, "enforce_eager": True, "temperature": 0.0, "extra": {}}


def test_atomic_write_is_durable_and_leaves_nothing_half_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                                 ) -> None:
    synced: list[str] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(os.readlink(f"/proc/self/fd/{fd}")) or real_fsync(fd))
    run = RunDir(tmp_path, "exp", "r")
    run.write_json("manifest.json", {"a": 1})
    assert synced[0].startswith(str(run.path / ".manifest.json.")) and synced[1] == str(run.path)
    assert [p.name for p in run.path.iterdir()] == ["manifest.json"]

    def crash(tmp: str) -> None:
        Path(tmp).write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        store._atomic_write(run.path / "manifest.json", crash)
    assert run.read_json("manifest.json") == {"a": 1} and len(list(run.path.iterdir())) == 1
    stale = run.path / "generations" / "arm=baseline" / f".part-00000.parquet.x{store.TMP_SUFFIX}"
    stale.parent.mkdir(parents=True)
    stale.write_text("left by kill -9")
    assert run.remove_stale_temporaries("baseline") == 1 and not stale.exists()


def test_a_resume_with_other_settings_is_refused(tmp_path: Path) -> None:
    requests = load_traffic(SAMPLE, limit=10)
    write_traffic(requests, tmp_path / "traffic.parquet")
    outputs = tmp_path / "o.jsonl"
    outputs.write_text("".join(json.dumps({"request_id": r.request_id, "output": "x"}) + "\n" for r in requests))
    run = RunDir(tmp_path, "exp", "r")
    traffic = open_traffic(tmp_path / "traffic.parquet")
    replay_arm("baseline", ArmConfig(imported=str(outputs), engine=EngineConfig(batch_size=4)), traffic, run)
    again = replay_arm("baseline", ArmConfig(imported=str(outputs), engine=EngineConfig(batch_size=4)), traffic, run)
    assert (again.batches_run, again.batches_skipped) == (0, 3)
    with pytest.raises(ResumeError) as info:  # another batch size: batch 0 would be other requests
        replay_arm("baseline", ArmConfig(imported=str(outputs), engine=EngineConfig(batch_size=3)), traffic, run)
    ids = [r.request_id for r in requests]
    assert str(info.value) == (
        f"{run.part_path('generations', 'baseline', 0)}: expected the 3 requests of traffic batch 0 ({ids[0]} .. "
        f"{ids[2]}), found 4 ({ids[0]} .. {ids[3]}): the run was replayed with other traffic, limit or "
        "engine.batch_size. Fix: resume with the settings in its manifest.json, or use a new run_id.")
    spec = RunSpec(name="e", traffic_path="t.parquet", limit=10,
                   arms={"baseline": zoo_arm("zoo:baseline")}, signals=("stats",), policy=Policy(),)
    arms = {"baseline": ArmRecord("zoo:baseline", "vllm", "sha256:1")}
    previous = Manifest(spec, "r", "", TrafficRecord("t.parquet", "abc", 10, 10), arms, None, {}, {}, {})
    changed = dataclasses.replace(previous, traffic=TrafficRecord("t.parquet", "def", 10, 10))
    with pytest.raises(ResumeError, match="^run r replayed traffic with sha256 abc, this command has def. Fix: run "
                                          "the same command again"):
        check_resume(previous, changed, {"baseline"})
    bf16 = zoo_arm("zoo:baseline", dtype="bfloat16")
    other_dtype = dataclasses.replace(previous, spec=dataclasses.replace(spec, arms={"baseline": bf16}))
    with pytest.raises(ResumeError, match="^run r: arm baseline was replayed with config.engine.dtype = 'float32', "
                                          "this command has 'bfloat16'. Fix: "):
        check_resume(previous, other_dtype, {"baseline"})
    check_resume(previous, other_dtype, set())  # an arm with no parts yet may change
