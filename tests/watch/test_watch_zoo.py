"""The watch on a local checkpoint with the real vLLM engine (CPU build) on the zoo: the reference and an A/A run
through one zoo engine (fp32) are SAME; other weights behind the same watch (``zoo:terse``,
a fine-tune that drifted: shorter answers) are CHANGED, in the segments where it answers differently. (The same
checkpoint served in bfloat16 was SAME when tried: greedy outputs identical on 24 of 24 probe prompts, sampled MMD
p = 0.94; a dtype change the zoo's probe set does not show.) The test starts its own engine: the session's
``zoo_vllm`` is unusable by the time this file runs when an in-process engine closed before (closing one tears down
vLLM's process-wide parallel state; seen in the full suite, stop 15)."""

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


def _spec(tmp_path: Path, run_id: str, alpha: float = 0.01, checkpoint: str = "zoo:baseline") -> WatchSpec:
    return WatchSpec("zoo", zoo_arm(checkpoint), str(data_dir("replays") / "support_sample.parquet"),
                     None, 6, 0, Settings(6, 2, 0.7, None, 32), CheckSettings(alpha=alpha), tmp_path, run_id)


@pytest.fixture
def zoo_engine(zoo: Path) -> Any:
    from harness.engines.base import make_engine

    engine = make_engine(zoo_arm("zoo:baseline"))
    yield engine
    engine.close()


def test_local_checkpoint_same_then_a_drifted_fine_tune_is_changed(zoo_engine: Any, tmp_path: Path) -> None:
    assert run_watch(_spec(tmp_path, "ref"), zoo_engine)[0] == REFERENCE
    decision, _, record = run_watch(_spec(tmp_path, "aa", alpha=0.001), zoo_engine)
    assert decision == "SAME", record["reasons"]  # alpha 0.001: a false CHANGED here is 1 in 1,000
    decision, run, record = run_watch(_spec(tmp_path, "terse", checkpoint="zoo:terse"))
    assert decision == "CHANGED", record["tests"]  # at the default alpha, 0.01
    assert record["run"]["target"].startswith("zoo:terse") and record["warnings"]  # the target moved
    assert any(s["changed"] for s in record["changed_segments"]) and len(record["moved"]) == 5
    assert record["mean_tokens"]["new_greedy"] < record["mean_tokens"]["reference_greedy"]  # terse: shorter
