"""Judges against humans on LLMBar's shared sets (../shared/data/judge_human; skipped without it).

1. Every judge's imported verdicts, read through the harness's import path, reproduce the authors' statistics.json
   (their formula, ``authors_statistics``), and the admission rule admits GPT-4 on LLMBar Natural and rejects
   every other judge there on the same bar (docs/judge.md has the whole table and why the kappas differ).
2. The imported-arms experiment (output_1 = baseline, output_2 = candidate, on the pairs where the humans clearly
   prefer the candidate) through the CLI: the admitted GPT-4 gives HOLD_FOR_SIGNOFF (IMPROVEMENT), the humans'
   direction; the unadmitted LLaMA2 leaves the verdict where the same arms without a judge put it, its preference
   advisory.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from harness.bench.judge_human import ROOT, build_experiment, evaluate, experiment_command, max_difference
from harness.signals.judge_admission import Bar

SHARED = Path(os.environ.get("SHARED_DATA") or Path(__file__).resolve().parents[3] / "shared" / "data")
pytestmark = pytest.mark.skipif(not (SHARED / ROOT).is_dir(),
                                reason=f"needs the shared data folder {SHARED / ROOT} (or $SHARED_DATA)")


def test_imported_verdicts_reproduce_the_authors_figures_and_the_bar_separates_the_judges(tmp_path: Path) -> None:
    rows = evaluate(SHARED, tmp_path, Bar())
    assert len(rows) == 89 and all(r["published"] is not None for r in rows)
    assert max(max_difference(r) for r in rows) < 1e-9  # every statistics.json figure, recomputed
    natural = {r["judge"]: r["admission"] for r in rows if r["set"] == "LLMBar/Natural" and r["strategy"] == "Vanilla"}
    assert set(natural) == {"GPT-4", "ChatGPT", "ChatGPT-0301", "PaLM2", "LLaMA2", "Falcon"}
    assert natural["GPT-4"]["admitted"], natural["GPT-4"]["reason"]
    assert not any(a["admitted"] for j, a in natural.items() if j != "GPT-4")
    assert all("lower bound" in a["reason"] for j, a in natural.items() if j != "GPT-4")
    gpt4 = natural["GPT-4"]["orders"]
    assert gpt4[0]["accuracy"] == pytest.approx(0.95) and gpt4[1]["accuracy"] == pytest.approx(0.96)


def _run(tmp_path: Path, judge: str, with_judge: bool = True) -> dict:
    run_id = judge if with_judge else "no_judge"
    files = build_experiment(SHARED, tmp_path / run_id, judge)
    proc = subprocess.run(experiment_command(files, tmp_path / "reports", run_id, with_judge), capture_output=True,
                          text=True, check=False)
    path = tmp_path / "reports" / "judge_pairs" / run_id / "verdict.json"
    assert path.exists(), proc.stderr[-3000:]
    return json.loads(path.read_text())


@pytest.mark.e2e
def test_imported_arms_experiment_admitted_judge_decides_unadmitted_does_not(tmp_path: Path) -> None:
    admitted = _run(tmp_path, "GPT-4")
    assert admitted["judge"]["pairwise_admission"]["admitted"]
    pref = next(c for c in admitted["checks"] if c["metric"] == "judge_preferred" and c["segment"] is None)
    assert pref["status"] == "improved" and not pref["advisory"]
    assert (admitted["verdict"], admitted["direction"]) == ("HOLD_FOR_SIGNOFF", "IMPROVEMENT")
    html = (tmp_path / "reports" / "judge_pairs" / "GPT-4" / "judge.html").read_text()
    assert "Admitted" in html  # and its one false regression (judge: baseline, humans: candidate), linked to the pair
    assert 'href="#pair-pair-0045"' in html and 'id="pair-pair-0045"' in html

    weak = _run(tmp_path, "LLaMA2")
    adm = weak["judge"]["pairwise_admission"]
    assert not adm["admitted"] and "lower bound" in adm["reason"]
    pref = next(c for c in weak["checks"] if c["metric"] == "judge_preferred" and c["segment"] is None)
    assert pref["advisory"] and pref["status"] != "improved"
    assert weak["direction"] != "IMPROVEMENT" and weak["verdict"] != "HOLD_FOR_SIGNOFF"
    assert "judge_preferred" in weak["judge"]["advisory_metrics"]
    control = _run(tmp_path, "LLaMA2", with_judge=False)  # the same arms, no judge at all
    assert "judge" not in control["families"]
    assert (weak["verdict"], weak["direction"]) == (control["verdict"], control["direction"])  # left where it was
