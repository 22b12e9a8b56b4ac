"""The canary end to end: three real vLLM servers (zoo baseline, terse, benign) behind a real HAProxy at 95/5, the
real packaged embedding model, the real golden set. One test for both scenarios (the suite's time budget)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from harness.canary.demo import DemoSettings, run_demo
from harness.canary.launch import HAPROXY

MAX_WINDOWS_TO_ROLLBACK = 8  # documented in docs/canary.md


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.e2e
@pytest.mark.vllm
@pytest.mark.skipif(not Path(HAPROXY).exists(), reason="needs Debian's haproxy (apt-get install haproxy)")
def test_regression_is_rolled_back_through_haproxy_and_benign_is_promoted(tmp_path: Path) -> None:
    t0 = time.perf_counter()
    summary = run_demo(tmp_path / "demo", DemoSettings())
    regression, benign = summary["scenarios"]
    assert regression["errors"] <= 0.01 * regression["logged"] and benign["errors"] <= 0.01 * benign["logged"]
    assert regression["decision"] == "ROLLBACK"
    assert regression["decision_window"] < MAX_WINDOWS_TO_ROLLBACK
    assert regression["canary_weight_after"] == 0
    assert regression["haproxy_actions"][0]["weight_read_back"] == 0
    assert [r["weight"] for r in regression["show_stat_after"] if r["svname"] == "canary"] == ["0"]
    assert benign["decision"] == "PROMOTE" and benign["canary_weight_after"] == 5
    assert not any(d["decision"] in ("ROLLBACK", "INVESTIGATE") for d in summary["webhook_deliveries"]
                   if d["canary"] == "canary_demo_benign")
    assert all(d["signature_ok"] for d in summary["webhook_deliveries"])
    assert {d["decision"] for d in summary["webhook_deliveries"]} >= {"ROLLBACK", "PROMOTE"}
    assert not any(_alive(pid) for pid in summary["pids"])
    assert summary["admin_socket_mode"] == "0o600"
    assert (tmp_path / "demo" / "demo.md").exists()
    print(f"canary demo: {time.perf_counter() - t0:.0f} s")
