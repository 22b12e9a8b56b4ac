"""A family with a setting and its own replay job, added as one module (tests/plugins/probe_family.py) plus one
registry line (an entry point, as an installed package declares it), runs through the CLI with its setting overridden:
``run.py``, ``spec.py`` and ``cli.py`` name no family, and still replay its job, record its settings and gate it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO

pytestmark = [pytest.mark.vllm, pytest.mark.e2e]


def test_a_plugin_family_with_settings_and_a_replay_job_runs_through_the_cli(tmp_path: Path,
                                                                           shared_cache: Path) -> None:
    dist = tmp_path / "site" / "probe_plugin-0.1.dist-info"  # what `pip install` of a plug-in package leaves
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: probe-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[harness.signals]\nprobe = probe_family:PLUGIN\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), str(REPO / "tests" / "plugins")])}
    out = tmp_path / "reports"
    proc = subprocess.run([sys.executable, "-m", "harness", "replay", "experiment=zoo_terse", "traffic.limit=30",
                           "signals=[stats,probe]", "probe.count=5", "probe.text=Say hi.", f"output_dir={out}",
                           f"cache.dir={shared_cache}", "run_id=probe"], cwd=REPO, capture_output=True, text=True,
                          timeout=600, env=env)
    run = out / "zoo_terse" / "probe"
    assert (run / "verdict.json").exists(), proc.stderr[-3000:]
    verdict = json.loads((run / "verdict.json").read_text())
    assert proc.returncode == verdict["exit_code"], proc.stderr[-3000:]
    assert verdict["manifest"]["spec"]["settings"]["probe"] == {"count": 5, "text": "Say hi."}
    assert verdict["probe"]["count"] == 5 and verdict["families"]["probe"] == "ok"
    assert set(verdict["manifest"]["replay"]) == {"baseline", "candidate", "probe_baseline", "probe_candidate"}
    assert "drift" not in verdict["manifest"]["spec"]["settings"] and "aa" not in verdict["manifest"]["arms"]
    metrics = [c["metric"] for c in verdict["checks"]]
    assert "probe_answered" in metrics, metrics
    # a typo in the plug-in's own group fails like any other key: exit 2, before any engine starts
    bad = subprocess.run([sys.executable, "-m", "harness", "replay", "experiment=zoo_terse", "probe.cnt=5",
                          f"output_dir={out}"], cwd=REPO, capture_output=True, text=True, timeout=120, env=env)
    assert bad.returncode == 2 and "cnt" in bad.stderr, bad.stderr[-2000:]
