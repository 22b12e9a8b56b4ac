"""The installed package works: ``pip install .`` (not editable) into a fresh venv, then ``python -m harness replay``
from another directory runs the default experiment with the configs, SQL, zoo and sample traffic it ships.

The fresh venv borrows the dependencies of this one (a ``.pth`` line naming its site-packages, which does not load
this venv's editable install of the project), so only the project itself is installed: seconds, not the 4 GB of
vLLM. The replay reads the session's generation cache and runs after test_replay_vllm.py's zoo_terse run (the
``terse_run`` fixture in conftest.py: the same arms on the same first sample requests), so no engine needs to start.
"""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import REPO

pytestmark = [pytest.mark.vllm, pytest.mark.e2e]


def test_installed_package_runs_the_default_experiment_elsewhere(tmp_path: Path, shared_cache: Path,
                                                                terse_run: Any) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    Path(purelib, "borrowed_deps.pth").write_text(site.getsitepackages()[0] + "\n")
    install = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                              str(REPO)], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr[-2000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": ""}
    where = subprocess.run([str(python), "-c", "import harness; print(harness.__file__)"], cwd=elsewhere,
                           capture_output=True, text=True, env=env, check=True).stdout.strip()
    assert where.startswith(purelib), where  # the installed copy, not the source tree
    proc = subprocess.run([str(python), "-m", "harness", "replay", "traffic.limit=60", "golden.path=null",
                           f"cache.dir={shared_cache}", "run_id=installed"], cwd=elsewhere, capture_output=True,
                          text=True, env=env, timeout=900)
    run = elsewhere / "reports" / "default" / "installed"
    assert (run / "verdict.json").exists(), proc.stderr[-3000:]
    verdict = json.loads((run / "verdict.json").read_text())
    assert proc.returncode == verdict["exit_code"], proc.stderr[-3000:]
    # 60 requests, no golden set: terse's shorter answers (length: a divergence) and drift, maybe structure
    assert verdict["verdict"] in ("INVESTIGATE", "ROLLBACK") and (run / "report.html").exists()
    assert verdict["manifest"]["traffic"]["path"].startswith(str(Path(purelib) / "harness" / "replays"))
