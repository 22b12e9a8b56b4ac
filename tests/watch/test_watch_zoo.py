"""The watch on a local checkpoint with the real vLLM engine (CPU build) on the zoo: the reference and an A/A run
through the session's shared ``zoo_vllm`` engine (fp32) are SAME; the same checkpoint served in bfloat16 (a new
engine) is CHANGED, found by the tests on its completions. About 15 s beside the shared engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness import data_dir
from harness.fixtures.zoo.settings import zoo_arm
from harness.watch.check import CheckSettings
from harness.watch.run import REFERENCE, WatchSpec, run_watch
from harness.watch.sample import Settings

pytestmark = pytest.mark.vllm


def _spec(tmp_path: Path, run_id: str, alpha: float = 0.01, **engine: Any) -> WatchSpec:
    return WatchSpec("zoo", zoo_arm("zoo:baseline", **engine), str(data_dir("replays") / "support_sample.parquet"),
                     None, 6, 0, Settings(6, 2, 0.7, None, 32), CheckSettings(alpha=alpha), tmp_path, run_id)


def test_local_checkpoint_same_then_changed_dtype(zoo_vllm: Any, tmp_path: Path) -> None:
    assert run_watch(_spec(tmp_path, "ref"), zoo_vllm)[0] == REFERENCE
    decision, _, record = run_watch(_spec(tmp_path, "aa", alpha=0.001), zoo_vllm)
    assert decision == "SAME", record["reasons"]  # alpha 0.001: a false CHANGED here is 1 in 1,000
    decision, run, record = run_watch(_spec(tmp_path, "bf16", dtype="bfloat16"))
    assert decision == "CHANGED", record["tests"]  # at the default alpha, 0.01
    assert record["run"]["target"].endswith("(vllm, dtype bfloat16)") and record["warnings"]
    assert (run.path / "samples.parquet").is_file()
