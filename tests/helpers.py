"""Helpers shared by tests: run the CLI as a user does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "replays" / "support_sample.parquet"
CHROMIUM = Path("/usr/bin/chromium")


def run_harness(*args: str, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    """``python -m harness ARGS`` from the repo root, as a user runs it."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env=env)


def chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Headless Debian Chromium with the flags this closed network needs (else it hangs on lookups)."""
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=True)


def console_errors(stderr: str) -> list[str]:
    """Console messages: script errors, CSP refusals (Chromium 156 says "violates ... Content Security Policy")."""
    return [line for line in stderr.splitlines()
            if ":CONSOLE" in line or "Uncaught" in line or "Refused to" in line or "Content Security Policy" in line]
