"""A signal family is one module + one registry line: a toy family registered here changes the verdict through
``evaluate``, on a hand-made run directory (real Parquet, real DuckDB, no engine)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from helpers import SAMPLE

from harness.config import ArmConfig
from harness.gate import Check, Policy
from harness.run import evaluate
from harness.signals import base
from harness.signals.base import SIGNAL_SCHEMA, MetricSpec, ScoreInputs
from harness.spec import RunSpec, handmade_manifest, read_manifest, write_manifest
from harness.store import BATCH_SCHEMA, GENERATION_SCHEMA, RunDir
from harness.traffic import load_traffic

N = 60


class ToyFamily:
    """Flags every candidate output that contains the word "toy" (a stand-in for any new signal)."""

    family = "toy"
    details: dict[str, Any] | None = None
    metrics = (MetricSpec("toy_flag", "toy", "rate", False, "output mentions a toy", role="degradation",
                          margin_absolute=0.05),)

    def score(self, inputs: ScoreInputs) -> pa.Table:
        self.details = {"toy": {"scored": inputs.generations.num_rows}}
        return pa.Table.from_pylist([
            {"request_id": g["request_id"], "arm": g["arm"], "segment": g["segment"], "metric": "toy_flag",
             "value": float("toy" in (g["output_text"] or ""))} for g in inputs.generations.to_pylist()],
            schema=SIGNAL_SCHEMA)

    def checks(self, policy: Policy) -> list[Check]:
        return []


@pytest.fixture
def toy_registered() -> Any:
    base.register("toy", lambda spec: ToyFamily())
    yield
    del base.SIGNALS["toy"]


def _run(tmp_path: Path, signals: tuple[str, ...], candidate: str) -> RunDir:
    """Both arms answer every request with one text: the baseline "answer", the candidate ``candidate``."""
    requests = load_traffic(SAMPLE, limit=N)
    run = RunDir(tmp_path, "toy", "-".join(signals))
    for arm, text in (("baseline", "answer"), ("candidate", candidate)):
        rows = [{"request_id": r.request_id, "segment": r.segment, "batch": 0, "output_text": text,
                 "prompt_tokens": 5, "output_tokens": 2, "finish_reason": "stop", "error": None} for r in requests]
        run.write_part("batches", arm, 0, pa.Table.from_pylist([{"batch": 0, "requests": N, "prompt_tokens": 5 * N,
                                                                 "output_tokens": 2 * N, "seconds": 1.0, "cached": 0}],
                                                               schema=BATCH_SCHEMA))
        run.write_part("generations", arm, 0, pa.Table.from_pylist(rows, schema=GENERATION_SCHEMA))
    spec = RunSpec(name="toy", traffic_path=str(SAMPLE), limit=N, arms={"baseline": ArmConfig(),
                   "candidate": ArmConfig()}, signals=signals, policy=Policy())
    write_manifest(run, handmade_manifest(spec, run.run_id, N))
    return run


def test_a_toy_family_breach_changes_the_verdict(tmp_path: Path, toy_registered: Any) -> None:
    same_length = _run(tmp_path, ("stats",), "a toy!")
    assert evaluate(same_length, report=False).verdict == "PASS"  # the stats family sees nothing
    run = _run(tmp_path, ("stats", "toy"), "a toy!")
    v = evaluate(run)
    assert (v.verdict, v.direction) == ("INVESTIGATE", "REGRESSION"), v.reasons
    assert v.families["toy"] == "breached" and [b.metric for b in v.breaches] == ["toy_flag"]
    assert "toy/toy_flag" in v.reasons[0] and "margin abs 0.05" in v.reasons[0]
    assert (run.path / "report.html").exists()
    catalog = run.read_table("metrics").to_pylist()
    assert {"name": "toy_flag", "family": "toy", "role": "degradation"}.items() <= catalog[-1].items()


def test_the_family_role_and_margin_are_data(tmp_path: Path, toy_registered: Any) -> None:
    run = _run(tmp_path, ("stats", "toy"), "a toy!")
    manifest = read_manifest(run)
    looser = replace(manifest.spec, policy=Policy(margins={"toy": 1.0}))  # a 100-point margin: never breached
    write_manifest(run, replace(manifest, spec=looser))
    loose = evaluate(run, report=False)  # every request flagged: a change of exactly the 100-point margin
    assert loose.verdict == "INSUFFICIENT_DATA" and not loose.breaches  # the boundary itself is inconclusive
    ToyFamily.metrics = (replace(ToyFamily.metrics[0], role="divergence"),)
    try:
        write_manifest(run, manifest)
        v = evaluate(run, report=False)
        assert (v.verdict, v.direction) == ("INVESTIGATE", "DIVERGENCE")
    finally:
        ToyFamily.metrics = (replace(ToyFamily.metrics[0], role="degradation"),)


def test_an_unknown_family_is_bad_input(tmp_path: Path) -> None:
    from harness.errors import BadInput

    with pytest.raises(BadInput, match="unknown signal family 'nope'.*Fix"):
        evaluate(_run(tmp_path, ("stats", "nope"), "answer"), report=False)
