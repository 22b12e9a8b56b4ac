"""Each zoo regression is flagged by the signals it changes, the improvement is held for sign-off, a benign
change passes (real vLLM, CPU; the golden set is replayed in every run).

zoo_terse and zoo_aa are covered in test_replay_vllm.py. These runs have no A/A arm (drift is not gated here;
the drift breach is covered in test_replay_vllm.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import run_harness

pytestmark = pytest.mark.vllm

CASES = {  # experiment: (metrics that must breach, metrics that must improve, verdict)
    "zoo_benign": (set(), set(), "PASS"),
    "zoo_hedging": ({"hedge", "golden_exact_match"}, set(), "ROLLBACK"),
    "zoo_json_drift": ({"json_valid", "schema_valid", "golden_json_schema_valid"}, set(), "ROLLBACK"),
    "zoo_improved": (set(), {"golden_regex"}, "HOLD_FOR_SIGNOFF"),
}


@pytest.mark.parametrize("experiment", sorted(CASES))
def test_zoo_experiment_verdict(experiment: str, zoo: Path, tmp_path: Path) -> None:
    must_breach, must_improve, expected = CASES[experiment]
    proc = run_harness("replay", f"experiment={experiment}", "traffic.limit=400", f"output_dir={tmp_path}",
                       "run_id=t", "drift.aa_perturbation=[]")  # the A/A arm is covered in test_replay_vllm.py
    verdict = json.loads((tmp_path / experiment / "t" / "verdict.json").read_text())
    assert verdict["verdict"] == expected, (verdict["verdict"], verdict["reasons"])
    assert proc.returncode == verdict["exit_code"], proc.stderr[-2000:]
    assert must_breach <= {b["metric"] for b in verdict["breaches"]}, verdict["reasons"]
    assert must_improve <= {c["metric"] for c in verdict["improvements"]}, verdict["reasons"]
