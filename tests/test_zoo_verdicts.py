"""Each zoo regression is flagged by the signal it changes; a benign change passes (real vLLM, CPU).

zoo_terse and zoo_aa are covered in test_replay_vllm.py. zoo_improved is run by `make replay
EXPERIMENT=zoo_improved`; its expected HOLD_FOR_SIGNOFF needs quality signals that gate v1 does not have.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import run_harness

pytestmark = pytest.mark.vllm

CASES = {
    "zoo_benign": (set(), {"PASS"}),
    "zoo_hedging": ({"hedge"}, {"INVESTIGATE", "ROLLBACK"}),
    "zoo_json_drift": ({"json_valid", "schema_valid"}, {"ROLLBACK"}),
}


@pytest.mark.parametrize("experiment", sorted(CASES))
def test_zoo_experiment_verdict(experiment: str, zoo: Path, tmp_path: Path) -> None:
    must_breach, verdicts = CASES[experiment]
    proc = run_harness("replay", f"experiment={experiment}", "traffic.limit=400", f"output_dir={tmp_path}",
                       "run_id=t", "drift.aa_perturbation=[]")  # the A/A arm is covered in test_replay_vllm.py
    verdict = json.loads((tmp_path / experiment / "t" / "verdict.json").read_text())
    assert verdict["verdict"] in verdicts, (verdict["verdict"], [b["reason"] for b in verdict["breaches"]])
    assert proc.returncode == verdict["exit_code"], proc.stderr[-2000:]
    assert must_breach <= {b["metric"] for b in verdict["breaches"]}
