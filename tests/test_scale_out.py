"""zoo_terse beyond one process, end to end: through local vLLM servers (SIGTERM while a server starts: none is
left; then the same command to the end) and through the Ray replayer (killed with SIGKILL mid-replay, then resumed).
Both give the verdict of the offline run on the same traffic (the session's ``terse_run``) and leave no process
behind. The A/A arm is the offline run's, imported (``drift.aa_imported``): the same floor, one engine start fewer
per test; and no golden set (the suite's time budget: 1,600 more requests per arm), so the golden family is left
out of the comparison."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import REPO, run_harness

pytestmark = [pytest.mark.e2e, pytest.mark.vllm]


def _same_as_offline(terse_run: tuple[Path, object], run: Path) -> dict:
    offline = json.loads((terse_run[0] / "verdict.json").read_text())
    here = json.loads((run / "verdict.json").read_text())
    assert here["verdict"] == offline["verdict"] == "ROLLBACK"
    assert here["families"] == {f: s for f, s in offline["families"].items() if f != "golden"}
    assert {(b["metric"], b["segment"]) for b in here["breaches"]} == \
        {(b["metric"], b["segment"]) for b in offline["breaches"] if b["family"] != "golden"}
    return here


def _outputs(run: Path) -> dict[tuple[str, str], tuple[str, int]]:
    import duckdb

    rows = duckdb.sql(f"SELECT arm, request_id, output_text, output_tokens FROM read_parquet('{run}/generations/"
                      "*/*.parquet', hive_partitioning = true) WHERE error IS NULL").fetchall()
    return {(a, r): (t, n) for a, r, t, n in rows}


def _start(args: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "harness", "-v", "replay", *args], cwd=REPO, stdout=log.open("w"),
                            stderr=subprocess.STDOUT, env={**os.environ, "HF_HUB_OFFLINE": "1"},
                            start_new_session=True)


def _wait_for_part(proc: subprocess.Popen, run: Path, log: Path, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not list((run / "generations" / "arm=baseline").glob("part-*.parquet")):
        assert proc.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, "no baseline batch was written in time"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie waiting for its parent is gone for our purpose
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def _gone(pids: list[int], timeout: float = 30) -> list[int]:
    deadline = time.monotonic() + timeout
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    return [p for p in pids if _alive(p)]


def test_server_backend_sigterm_stops_every_server_then_the_offline_verdict(terse_run: tuple[Path, object],
                                                                             tmp_path: Path) -> None:
    """SIGTERM while the first server is still starting (its engine processes being spawned: the hardest moment for
    an orphan), then the same command to the end. Resume after a kill is the replayers' shared code (plan, work,
    commit_batch), tested offline (test_resume.py) and on Ray below."""
    traffic = terse_run[0].parents[2] / "traffic.parquet"
    args = ["experiment=zoo_terse", f"traffic.path={traffic}", f"output_dir={tmp_path}", "run_id=srv",
            f"drift.aa_imported={terse_run[0]}:aa", "golden.path=null",
            "cache.enabled=false", "baseline.engine.backend=server", "candidate.engine.backend=server",
            "baseline.engine.batch_size=128", "candidate.engine.batch_size=128"]
    run, log = tmp_path / "zoo_terse" / "srv", tmp_path / "killed.log"
    proc = _start(args, log)
    deadline = time.monotonic() + 120
    while not re.findall(r"starting: pid (\d+)", _read(run / "harness.log")):
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.05)
    time.sleep(3)  # the server's process is importing vLLM
    pids = [int(p) for p in re.findall(r"starting: pid (\d+)", (run / "harness.log").read_text())]
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(60) == 130, log.read_text()[-2000:]
    assert "run the same command (same run_id) to resume" in log.read_text()
    assert _gone(pids) == [], "a vLLM server outlived the harness"

    proc2 = run_harness("replay", *args)
    assert proc2.returncode == 11, proc2.stderr[-3000:]
    assert len(json.loads((run / "manifest.json").read_text())["resumed_at"]) == 1
    _same_as_offline(terse_run, run)
    served = {k: v for k, v in _outputs(run).items() if k[0] != "aa"}  # the traffic, both arms
    offline = {k: v for k, v in _outputs(terse_run[0]).items() if k[0] != "aa"}
    assert served.keys() == offline.keys() and len(served) == 600
    assert [k for k in served if served[k] != offline[k]] == []  # greedy: the same text and token count
    report = (run / "report.md").read_text()
    assert "### Latency" in report and "TTFT p50 / p90 / p99" in report
    assert _gone([int(p) for p in re.findall(r"starting: pid (\d+)", (run / "harness.log").read_text())]) == []


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def _ray_pids() -> list[int]:
    out = subprocess.run(["pgrep", "-f", "ray/core/src/ray|raylet|gcs_server|ray::"], capture_output=True,
                         text=True).stdout
    return [int(p) for p in out.split()]


def test_ray_replay_killed_mid_run_resumes_to_the_offline_verdict(terse_run: tuple[Path, object],
                                                                  tmp_path: Path) -> None:
    traffic = terse_run[0].parents[2] / "traffic.parquet"
    before = set(_ray_pids())
    args = ["experiment=zoo_terse", f"traffic.path={traffic}", f"output_dir={tmp_path}", "run_id=ray",
            f"drift.aa_imported={terse_run[0]}:aa", "golden.path=null",
            "cache.enabled=false", "ray.enabled=true", "ray.num_cpus=2", "baseline.engine.batch_size=128",
            "candidate.engine.batch_size=128"]
    run, log = tmp_path / "zoo_terse" / "ray", tmp_path / "killed.log"
    proc = _start(args, log)
    try:
        _wait_for_part(proc, run, log)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        left = _gone([p for p in _ray_pids() if p not in before])
        assert left == [], f"Ray processes outlived a killed driver: {left}"

        proc2 = run_harness("replay", *args)
        assert proc2.returncode == 11, proc2.stderr[-3000:]
        manifest = json.loads((run / "manifest.json").read_text())
        assert manifest["replay"]["baseline"]["batches_skipped"] >= 1
        here = _same_as_offline(terse_run, run)
        assert here["manifest"]["spec"]["ray"]["enabled"] is True
        assert "engine actors ready" in (run / "harness.log").read_text()
        assert "Ray actors" in (run / "harness.log").read_text()  # the embeddings went through Ray too
        assert _gone([p for p in _ray_pids() if p not in before]) == []
    finally:
        for p in set(_ray_pids()) - before:  # whatever the assertions found, stop it by PID
            os.kill(p, signal.SIGKILL)
