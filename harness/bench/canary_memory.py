"""Peak memory of the canary evaluator against the number of log records (issue 25: bounded memory). Not a test.

    python -m harness.bench.canary_memory [--sizes 0,100000,1000000] [--out docs/bench/canary_memory.jsonl]

For each size, synthetic OpenAI JSONL canary logs (95% control, 5% canary, four segments, one 72-hour canary of
hourly windows, written in 24 files) are written to a temporary directory; then a fresh process runs the evaluator
over them exactly as ``python -m harness canary logs=DIR`` would (not following; output statistics only: drift and
the golden replay are off, so the numbers are the log reading and the windows) and reports its peak resident memory
(``ru_maxrss``) and time. Size 0 is the floor: the imports. One JSON line per run goes to ``--out`` with the
machine and the date.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness.bench.record import append, header, machine_line

T0 = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
SEGMENTS = ("faq", "chat", "summarize", "extract")
WINDOWS = 72


def write_logs(directory: Path, n: int, files: int = 24) -> int:
    """``n`` synthetic canary records over 72 hours, as OpenAI JSONL, in ``files`` files; returns bytes written."""
    directory.mkdir(parents=True, exist_ok=True)
    step = WINDOWS * 3600 / max(n, 1)
    size = 0
    handles = [(directory / f"part-{k:03d}.jsonl").open("w", encoding="utf-8") for k in range(files)]
    try:
        for i in range(n):
            arm = "canary" if i % 20 == 0 else "control"
            line = json.dumps({"id": f"r{i}", "timestamp": (T0 + dt.timedelta(seconds=i * step)).isoformat(),
                               "arm": arm, "latency_s": 0.2, "metadata": {"segment": SEGMENTS[i % 4]},
                               "request": {"model": "m", "messages": [{"role": "user", "content": f"Question {i}?"}]},
                               "response": {"choices": [{"message": {"role": "assistant",
                                                                     "content": f"The answer to {i} is yes."},
                                                         "finish_reason": "stop"}],
                                            "usage": {"completion_tokens": 8}}})
            handles[(i * files) // max(n, 1)].write(line + "\n")
            size += len(line) + 1
    finally:
        for h in handles:
            h.close()
    return size


def evaluate(directory: Path, out: Path) -> dict[str, Any]:
    """Run the evaluator once over ``directory`` (this process); its peak RSS and time."""
    from harness.canary.evaluate import CanarySpec, Evaluator
    from harness.canary.sequential import Sequential
    from harness.spec import default_policy

    t0 = time.perf_counter()
    spec = CanarySpec(name="memory", logs=directory, window_s=3600.0, observation_windows=WINDOWS,
                      sequential=Sequential(), policy=default_policy(), output_dir=out, max_windows=WINDOWS,
                      start=T0, run_id="bench")
    ev = Evaluator(spec)
    decision = ev.run()
    return {"seconds": time.perf_counter() - t0, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            / 1024, "windows": len(ev.decisions), "records": ev.logs.counts.records,
            "decision": decision or "none"}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m harness.bench.canary_memory", description=__doc__.split("\n")[0])
    p.add_argument("--sizes", default="0,100000,1000000")
    p.add_argument("--out", type=Path, default=Path("docs/bench/canary_memory.jsonl"))
    p.add_argument("--one", type=Path, default=None, help=argparse.SUPPRESS)  # a child: evaluate this directory
    a = p.parse_args(argv)
    if a.one is not None:
        print(json.dumps(evaluate(a.one, a.one.parent / "runs")))
        return
    rows = []
    for n in (int(x) for x in a.sizes.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            logs = Path(tmp) / "logs"
            size = write_logs(logs, n)
            proc = subprocess.run([sys.executable, "-m", "harness.bench.canary_memory", "--one", str(logs)],
                                  capture_output=True, text=True, check=True)
            result = json.loads(proc.stdout.strip().splitlines()[-1])
        rows.append({"records_written": n, "log_mb": round(size / 1e6, 1), **result})
        print(f"{n:>9} records ({size / 1e6:.0f} MB of logs): peak RSS {result['peak_rss_mb']:.0f} MB, "
              f"{result['seconds']:.1f} s, {result['windows']} windows", flush=True)
    rec = {**header("harness.bench.canary_memory", argv), "bench": "canary_memory", "rows": rows}
    append(a.out, [rec])
    print(machine_line(rec))
    print(f"appended 1 line to {a.out}")


if __name__ == "__main__":
    main()
