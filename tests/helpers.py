"""Helpers shared by tests: run the CLI as a user does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "replays" / "support_sample.parquet"


def run_harness(*args: str, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    """``python -m harness ARGS`` from the repo root, as a user runs it."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env=env)
