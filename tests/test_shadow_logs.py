"""Real shadow logs (issue: imported arms): eval deltas from the references the traffic carries, an honest A/A
floor, format changes as divergence, and an earlier run as an arm. Through the CLI with imported arms: real
Parquet, DuckDB and the packaged embedding model, no engine."""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import run_harness

from harness.golden.schema import CHECK_TYPE
from harness.traffic import Message, Request, write_traffic

pytestmark = pytest.mark.e2e
N = 200
T0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def _traffic(path: Path, with_references: bool = True) -> list[tuple[int, int]]:
    """N math questions (segment math) with a numeric reference check each; returns the operands."""
    rng = random.Random(7)
    pairs = [(rng.randint(10, 99), rng.randint(10, 99)) for _ in range(N)]
    write_traffic([Request(f"q{i:03d}", T0, "math", (Message("user", f"What is {a} + {b}?"),), None, 0.0, None, 64,
                           None, None, None) for i, (a, b) in enumerate(pairs)], path)
    if with_references:
        table = pq.read_table(path)
        checks = pa.array([[{"metric": "numeric_tolerance", "target": str(a + b)}] for a, b in pairs], CHECK_TYPE)
        pq.write_table(table.append_column("checks", checks), path)
    return pairs


def _outputs(path: Path, pairs: list[tuple[int, int]], right: float, seed: int, fmt: str = "The answer is {}."
             ) -> Path:
    """An imported arm: the right sum for a share ``right`` of the questions, off by 10 for the rest."""
    rng = random.Random(seed)
    with path.open("w") as f:
        for i, (a, b) in enumerate(pairs):
            value = a + b if rng.random() < right else a + b + 10
            f.write(json.dumps({"request_id": f"q{i:03d}", "output": fmt.format(value)}) + "\n")
    return path


def _replay(tmp_path: Path, name: str, *args: str) -> tuple[int, dict[str, Any], str]:
    proc = run_harness("replay", "experiment=default", f"traffic.path={tmp_path / 'traffic.parquet'}",
                       "golden.path=null", f"output_dir={tmp_path / 'reports'}", f"run_id={name}", *args)
    path = tmp_path / "reports" / "default" / name / "verdict.json"
    assert path.exists(), proc.stderr[-3000:]
    return proc.returncode, json.loads(path.read_text()), proc.stderr


@pytest.fixture(scope="module")
def shadow(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[int, int]]]:
    tmp = tmp_path_factory.mktemp("shadow")
    return tmp, _traffic(tmp / "traffic.parquet")


def test_accuracy_falls_on_the_traffics_own_references(shadow: tuple[Path, list[tuple[int, int]]]) -> None:
    tmp, pairs = shadow
    code, v, _ = _replay(tmp, "falls", f"baseline.imported={_outputs(tmp / 'b.jsonl', pairs, 0.9, 1)}",
                         f"candidate.imported={_outputs(tmp / 'c.jsonl', pairs, 0.5, 2)}", "drift.enabled=false")
    breached = {b["metric"]: b for b in v["breaches"]}
    assert "golden_numeric_tolerance" in breached and breached["golden_numeric_tolerance"]["delta"] < -0.3
    assert v["families"]["golden"] == "breached" and v["direction"] == "REGRESSION" and code == v["exit_code"]
    golden = v["manifest"]["records"]["golden"]
    assert golden["path"] is None and golden["references"] == N


def test_accuracy_rises_with_nothing_degraded_holds_for_signoff(shadow: tuple[Path, list[tuple[int, int]]]) -> None:
    tmp, pairs = shadow
    _, v, _ = _replay(tmp, "rises", f"baseline.imported={_outputs(tmp / 'b60.jsonl', pairs, 0.6, 1)}",
                      f"candidate.imported={_outputs(tmp / 'c2.jsonl', pairs, 0.95, 3)}", "drift.enabled=false")
    assert (v["verdict"], v["direction"]) == ("HOLD_FOR_SIGNOFF", "IMPROVEMENT"), v["reasons"]
    assert {c["metric"] for c in v["improvements"]} == {"golden_numeric_tolerance"}


def test_partial_coverage_is_left_out_and_counted(shadow: tuple[Path, list[tuple[int, int]]]) -> None:
    tmp, pairs = shadow
    half = tmp / "half.jsonl"
    half.write_text("".join(line for i, line in enumerate(_outputs(tmp / "c3.jsonl", pairs, 0.9, 1).read_text()
                                                           .splitlines(keepends=True)) if i % 2 == 0))
    _, v, _ = _replay(tmp, "half", f"baseline.imported={tmp / 'b.jsonl'}", f"candidate.imported={half}",
                      "drift.enabled=false")
    check = next(c for c in v["checks"] if c["metric"] == "golden_numeric_tolerance")
    assert check["n"] == N // 2  # paired over what both arms answered; the rest are error rows, not zeros
    assert v["verdict"] != "PASS" and any(c["metric"] == "error" for c in v["breaches"])


def test_imported_baseline_has_no_floor_from_a_copy_and_an_aa_import_gives_one(
        shadow: tuple[Path, list[tuple[int, int]]]) -> None:
    tmp, pairs = shadow
    base, cand = _outputs(tmp / "b.jsonl", pairs, 0.9, 1), _outputs(tmp / "c4.jsonl", pairs, 0.9, 4)
    _, v, _ = _replay(tmp, "no_aa", f"baseline.imported={base}", f"candidate.imported={cand}")
    div = v["divergence"]
    assert div["aa_floor"] is None and "aa" not in v["manifest"]["arms"]
    assert div["floor_source"].startswith("none: the baseline is imported") and "drift" not in v["families"]
    aa = _outputs(tmp / "aa.jsonl", pairs, 0.9, 5)  # a second capture of the baseline version
    _, v, _ = _replay(tmp, "with_aa", f"baseline.imported={base}", f"candidate.imported={cand}",
                      f"drift.aa_imported={aa}")
    div = v["divergence"]
    assert div["aa_floor"] is not None and div["aa_floor"] < 0.9999 and str(aa) in div["floor_source"]
    assert v["families"]["drift"] in ("ok", "breached")


def test_a_format_change_is_divergence_unless_the_route_gives_it_a_direction(
        shadow: tuple[Path, list[tuple[int, int]]]) -> None:
    tmp, pairs = shadow
    base = _outputs(tmp / "b.jsonl", pairs, 0.9, 1)
    fenced = _outputs(tmp / "fenced.jsonl", pairs, 0.9, 1, fmt="```\n{}\n```")  # same answers, in code fences
    args = (f"baseline.imported={base}", f"candidate.imported={fenced}", "drift.enabled=false",
            "+gate.thresholds.chars={relative: 10.0}")  # length: not what this test is about
    _, v, _ = _replay(tmp, "fences", *args)
    assert (v["verdict"], v["direction"]) == ("INVESTIGATE", "DIVERGENCE"), v["reasons"]
    assert {b["metric"] for b in v["breaches"]} == {"fenced_code"} and "What would settle it" in v["reasons"][-1]
    _, v, _ = _replay(tmp, "fences_wrong", *args, "+gate.directions.fenced_code.math=lower_is_better")
    assert (v["verdict"], v["direction"]) == ("INVESTIGATE", "REGRESSION"), v["reasons"]
    assert any(b["metric"] == "fenced_code" and b["segment"] == "math" for b in v["breaches"])


def test_an_earlier_run_is_an_arm(shadow: tuple[Path, list[tuple[int, int]]]) -> None:
    tmp, pairs = shadow
    earlier = tmp / "reports" / "default" / "falls"  # its baseline: b.jsonl
    _, v, _ = _replay(tmp, "again", f"baseline.imported={earlier}", f"candidate.imported={tmp / 'b.jsonl'}",
                      "drift.enabled=false")
    assert v["breaches"] == [] and v["manifest"]["arms"]["baseline"]["fingerprint"].startswith("sha256:")
    golden = next(c for c in v["checks"] if c["metric"] == "golden_numeric_tolerance")
    # the same outputs: no pair changed, so the change is exactly 0, within the margin (docs/gate.md, "identity")
    assert golden["delta"] == 0 and golden["status"] == "ok" and v["verdict"] == "PASS"
    _, v, _ = _replay(tmp, "vs_candidate", f"baseline.imported={earlier}:candidate",
                      f"candidate.imported={tmp / 'b.jsonl'}", "drift.enabled=false")
    assert {c["metric"] for c in v["improvements"]} == {"golden_numeric_tolerance"}


def test_references_that_do_not_fit_their_metric_are_one_line_each(tmp_path: Path) -> None:
    _traffic(tmp_path / "traffic.parquet", with_references=False)
    table = pq.read_table(tmp_path / "traffic.parquet")
    checks = [[{"metric": "numeric_tolerance", "target": "forty"}], [{"metric": "regex", "target": "(unclosed"}]]
    pq.write_table(table.append_column("checks", pa.array(checks + [None] * (N - 2), CHECK_TYPE)),
                   tmp_path / "traffic.parquet")
    out = _outputs(tmp_path / "o.jsonl", [(1, 1)] * N, 1.0, 1)
    proc = run_harness("replay", f"traffic.path={tmp_path / 'traffic.parquet'}", "golden.path=null",
                       f"baseline.imported={out}", f"candidate.imported={out}", f"output_dir={tmp_path / 'r'}")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "row 0 (request_id 'q000'), column checks: expected a valid target" in proc.stderr and "Fix:" in proc.stderr
    assert "row 1 (request_id 'q001'), column checks" in proc.stderr and not (tmp_path / "r").exists()


def test_the_console_at_default_verbosity_is_short_and_the_logs_are_in_the_run(
        shadow: tuple[Path, list[tuple[int, int]]]) -> None:
    tmp, pairs = shadow
    proc = run_harness("replay", "experiment=default", f"traffic.path={tmp / 'traffic.parquet'}", "golden.path=null",
                       f"output_dir={tmp / 'reports'}", "run_id=quiet", f"baseline.imported={tmp / 'b.jsonl'}",
                       f"candidate.imported={tmp / 'c.jsonl'}", verbose=False)
    lines = (proc.stdout + proc.stderr).splitlines()
    run = tmp / "reports" / "default" / "quiet"
    assert proc.returncode in (10, 11), proc.stderr[-2000:]
    assert len(lines) <= 40, "\n".join(lines)
    assert any(line.startswith("replay baseline: 200 req") for line in lines)  # one line per stage (not a tty)
    assert any(line.startswith("embedding: ") for line in lines)
    assert proc.stdout.splitlines()[0].startswith("verdict: ") and proc.stdout.splitlines()[-1].startswith("  ")
    assert f"html:    {run / 'report.html'}" in proc.stdout and "INFO harness" not in proc.stderr
    assert "run directory" in (run / "harness.log").read_text()
