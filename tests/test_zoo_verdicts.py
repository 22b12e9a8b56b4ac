"""Each zoo regression is flagged by the signals it changes, the improvement is held for sign-off, a benign
change passes (real vLLM, CPU; the golden set is replayed in every run).

The four experiments run as one Hydra multirun (one process) over the session's generation cache, so the
baseline (traffic and golden set) is generated at most once (and not at all after test_replay_vllm.py, whose
zoo_terse run replays the same first 300 sample requests and the golden set). zoo_terse and zoo_aa are covered in
test_replay_vllm.py. These runs have no A/A arm (drift is not gated here; the drift breach is covered in
test_replay_vllm.py).
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from urllib.parse import unquote

import pytest
from helpers import CHROMIUM, run_harness
from layout import VIEWPORTS, assert_layout, measure

pytestmark = [pytest.mark.vllm, pytest.mark.e2e]

CASES = {  # experiment: (metrics that must breach, metrics that must improve, verdict)
    "zoo_benign": (set(), set(), "PASS"),
    "zoo_hedging": ({"hedge", "golden_exact_match"}, set(), "ROLLBACK"),
    "zoo_json_drift": ({"json_valid", "schema_valid", "golden_json_schema_valid"}, set(), "ROLLBACK"),
    "zoo_improved": (set(), {"golden_regex"}, "HOLD_FOR_SIGNOFF"),
}


@pytest.fixture(scope="module")
def verdicts(zoo: Path, shared_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    out = tmp_path_factory.mktemp("zoo_verdicts")
    proc = run_harness("replay", "-m", f"experiment={','.join(sorted(CASES))}", "traffic.limit=300",
                       f"output_dir={out}", f"cache.dir={shared_cache}",
                       "drift.aa_perturbation=[]")  # the A/A arm is covered in test_replay_vllm.py
    assert proc.returncode == 0, proc.stderr[-3000:]  # a sweep exits 0 when every job ran
    found = {p.parent.parent.name: json.loads(p.read_text()) for p in out.glob("*/*/verdict.json")}
    assert set(found) == set(CASES), proc.stderr[-3000:]
    return found


@pytest.mark.parametrize("experiment", sorted(CASES))
def test_zoo_experiment_verdict(experiment: str, verdicts: dict[str, dict]) -> None:
    must_breach, must_improve, expected = CASES[experiment]
    verdict = verdicts[experiment]
    assert verdict["verdict"] == expected, (verdict["verdict"], verdict["reasons"])
    assert verdict["exit_code"] == {"PASS": 0, "ROLLBACK": 11, "HOLD_FOR_SIGNOFF": 12}[expected]
    assert must_breach <= {b["metric"] for b in verdict["breaches"]}, verdict["reasons"]
    assert must_improve <= {c["metric"] for c in verdict["improvements"]}, verdict["reasons"]


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium: apt-get install -y chromium")
def test_the_improved_run_reads_at_a_glance_and_the_index_lists_the_runs(verdicts: dict[str, dict],
                                                                       tmp_path: Path) -> None:
    out = Path(next(iter(verdicts.values()))["manifest"]["spec"]["output_dir"])
    improved = next(out.glob("zoo_improved/*/report.html"))
    for width, height in VIEWPORTS:
        assert_layout(measure(improved.read_text(), tmp_path, width, height), width, height)
    index = (out / "index.html").read_text()  # written after every run and after the sweep
    links = re.findall(r'href="([^"]+)"', index)
    assert sum(link.endswith("report.html") for link in links) == len(CASES) and "<script" not in index
    for link in links:
        assert (out / unquote(html.unescape(link))).exists(), link
