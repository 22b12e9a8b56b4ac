"""docs/ci.md's GitHub Actions and GitLab CI jobs run as written (their `run:` / `script:` lines, in bash), on the zoo:
the exit policy decides the job, the summary lands where the job puts it, and a sign-off is recorded and shown."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import REPO

pytestmark = [pytest.mark.vllm, pytest.mark.e2e]


def blocks() -> tuple[dict[str, Any], dict[str, Any]]:
    """The GitHub Actions workflow and the GitLab CI job of docs/ci.md."""
    found = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", (REPO / "docs/ci.md").read_text(), re.S)]
    github = next(b for b in found if "jobs" in b)["jobs"]["gate"]
    gitlab = next(b for b in found if "model-upgrade-gate" in b)["model-upgrade-gate"]
    return github, gitlab


def _bash(command: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def job_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkout as the runner sees it: `.venv/bin/python` (this interpreter, the worktree's package first)."""
    root = tmp_path_factory.mktemp("ci_job")
    (root / ".venv/bin").mkdir(parents=True)
    python = root / ".venv/bin/python"
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    (root / "gate").mkdir()  # GATE_CONFIG_DIR: the zoo's experiments come with the package
    return root


def _env(job: dict[str, Any], variables: dict[str, str], root: Path, cache: Path, run: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", **{k: str(v) for k, v in variables.items()}}
    env.update(GATE_CONFIG_DIR=str(root / "gate"), GATE_EXPERIMENT="zoo_improved", GATE_RUN=run,
               GATE_ARGS=f"traffic.limit=300 drift.aa_perturbation=[] cache.dir={cache}",
               GITHUB_STEP_SUMMARY=str(root / "step_summary.md"))
    return env


def test_both_ci_jobs_run_as_written_and_a_signoff_is_recorded(job_dir: Path, shared_cache: Path) -> None:
    github, gitlab = blocks()
    steps = [s["run"] for s in github["steps"] if "run" in s]
    assert steps[0] == gitlab["script"][0]  # the same gate command in both
    env = _env(github, github["env"], job_dir, shared_cache, "ci-1")
    gate = _bash(steps[0], job_dir, env)
    run = job_dir / "reports/zoo_improved/ci-1"
    verdict = json.loads((run / "verdict.json").read_text())
    # zoo_improved is held for sign-off: not in --fail-on=ROLLBACK,INSUFFICIENT_DATA, so the job passes
    assert verdict["verdict"] == "HOLD_FOR_SIGNOFF", gate.stderr[-3000:]
    assert gate.returncode == 0 and verdict["ci"] == {"fail_on": ["ROLLBACK", "INSUFFICIENT_DATA"], "exit_code": 0,
                                                      "fails_job": False}
    assert "exit code 0 under the exit policy" in gate.stdout
    for step in steps[1:]:
        assert _bash(step, job_dir, env).returncode == 0
    summary = (job_dir / "step_summary.md").read_text()
    assert "Model upgrade gate: **HOLD_FOR_SIGNOFF**" in summary
    assert "exit code 0, the job passes; ci.fail\\_on: ROLLBACK, INSUFFICIENT\\_DATA" in summary

    env = _env(gitlab, gitlab["variables"], job_dir, shared_cache, "ci-1")  # the same run: resumed, nothing replayed
    again = _bash(gitlab["script"][0], job_dir, env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "HOLD_FOR_SIGNOFF" in _bash(gitlab["after_script"][0], job_dir, env).stdout

    py = [sys.executable, "-m", "harness"]
    strict = subprocess.run([*py, "report", str(run), "--fail-on=HOLD_FOR_SIGNOFF"], cwd=job_dir, env=env,
                            capture_output=True, text=True, timeout=600)
    assert strict.returncode == 12, strict.stderr[-2000:]
    note = "golden gain, checked 20 pairs | ok"
    signed = subprocess.run([*py, "signoff", str(run), "--by", "alice <ml-platform>", "--note", note], cwd=job_dir,
                            env=env, capture_output=True, text=True, timeout=600)
    assert signed.returncode == 0, signed.stderr[-2000:]
    assert subprocess.run(
        [*py, "report", str(run), "--fail-on=HOLD_FOR_SIGNOFF"], cwd=job_dir, env=env, capture_output=True,
        text=True, timeout=600).returncode == 0  # signed off: the job passes whatever the policy
    comment = (run / "pr_comment.md").read_text()
    assert "## Sign-off" in comment and "alice \\<ml-platform\\>" in comment and "checked 20 pairs \\| ok" in comment
    assert "Sign-off" in (run / "report.html").read_text() and "## Sign-off" in (run / "report.md").read_text()
    assert json.loads((run / "verdict.json").read_text())["signoffs"][0]["by"] == "alice <ml-platform>"
    history = subprocess.run([*py, "runs", "--output-dir", "reports"], cwd=job_dir, env=env, capture_output=True,
                             text=True, timeout=120)
    assert "HOLD_FOR_SIGNOFF (signed off: alice <ml-platform>)" in history.stdout
    refused = subprocess.run([*py, "signoff", str(run), "--by", "", "--note", "x"], cwd=job_dir, env=env,
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2
