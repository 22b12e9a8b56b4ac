"""The canary end to end: three real vLLM servers (zoo baseline, terse, benign) behind a real HAProxy at 95/5, the
real packaged embedding model, the real golden set. One test for both scenarios (the suite's time budget), run as the
README tells a user: `make canary` from the repository root, writing under the default, relative
reports/canary_demo/<time>/ (a relative admin-socket path once broke HAProxy's config there)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from helpers import REPO

from harness.canary.launch import HAPROXY

MAX_WINDOWS_TO_ROLLBACK = 18  # documented in docs/canary.md (the breach needs the sequence wholly past the margin)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.e2e
@pytest.mark.vllm
@pytest.mark.skipif(not Path(HAPROXY).exists(), reason="needs Debian's haproxy (apt-get install haproxy)")
def test_regression_is_rolled_back_through_haproxy_and_benign_is_promoted() -> None:
    t0 = time.perf_counter()
    root = REPO / "reports" / "canary_demo"
    before = set(root.glob("*")) if root.is_dir() else set()
    proc = subprocess.run(["make", "canary"], cwd=REPO, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    [out] = set(root.glob("*")) - before
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    summary = json.loads((out / "demo.json").read_text())
    regression, benign = summary["scenarios"]
    assert regression["errors"] <= 0.01 * regression["logged"] and benign["errors"] <= 0.01 * benign["logged"]
    assert regression["decision"] == "ROLLBACK"
    chaos = regression["chaos"]  # killed mid-canary: 503 within the heartbeat limit (+ one poll), then it recovered
    assert chaos["unhealthy_after_s"] <= chaos["heartbeat_s"] + 2 and chaos["recovered_after_restart_s"] > 0
    assert regression["garbage_lines"] >= 1 and regression["quarantined"] >= 1  # counted, shown in its report
    assert "quarantined" in (REPO / regression["run_dir"] / "report.md").read_text()
    assert regression["offline_same_verdicts"] is True  # the arm joined from HAProxy's log == pre-labelled
    assert regression["unmatched"] <= 0.01 * regression["logged"]
    assert regression["decision_window"] <= MAX_WINDOWS_TO_ROLLBACK
    assert regression["canary_weight_after"] == 0
    assert regression["haproxy_actions"][0]["weight_read_back"] == 0
    assert [r["weight"] for r in regression["show_stat_after"] if r["svname"] == "canary"] == ["0"]
    assert benign["decision"] in ("CONTINUE", "PROMOTE") and benign["canary_weight_after"] == 50  # no false alarm
    assert not any(d["decision"] in ("ROLLBACK", "INVESTIGATE") for d in summary["webhook_deliveries"]
                   if d["canary"] == "canary_demo_benign")
    assert all(d["signature_ok"] for d in summary["webhook_deliveries"])
    assert "ROLLBACK" in {d["decision"] for d in summary["webhook_deliveries"]}
    assert not any(_alive(pid) for pid in summary["pids"])
    assert summary["admin_socket_mode"] == "0o600"
    assert (out / "demo.md").exists() and f"report: {out.relative_to(REPO) / 'demo.md'}" in proc.stdout
    print(f"canary demo: {time.perf_counter() - t0:.0f} s")
    shutil.rmtree(out)
