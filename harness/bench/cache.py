"""Generation cache: the same experiment run twice, as a user runs it, not a test.

    python -m harness.bench.cache [--experiment zoo_terse] [--limit 500] [--out docs/bench/cache.jsonl] \
        [OVERRIDE ...]

Runs ``python -m harness replay experiment=<name> traffic.limit=<limit>`` twice (run ids ``first`` and
``second``) into a fresh temporary output directory with its own empty cache, everything else as configured
(golden set, A/A arm and drift on, as ``make replay`` runs them; trailing Hydra overrides change that). Timed:
each whole command, engine start-up included, since that is what the cache saves. Recorded per run: seconds, exit
code, verdict, and per arm the requests taken from the cache and generated and whether an engine started
(``manifest.replay``). The two runs must give the same verdict.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness.bench.record import append, header, machine_line

REPO = Path(__file__).resolve().parents[2]


def run_twice(experiment: str, limit: int, out_dir: Path, overrides: list[str]) -> list[dict[str, Any]]:
    """Run the experiment twice with one cache; per run its seconds, exit code, verdict and cache counts."""
    runs = []
    for run_id in ("first", "second"):
        cmd = [sys.executable, "-m", "harness", "replay", f"experiment={experiment}", f"traffic.limit={limit}",
               f"output_dir={out_dir}", f"cache.dir={out_dir / 'cache'}", f"run_id={run_id}", *overrides]
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        seconds = time.perf_counter() - start
        verdict_path = next(out_dir.glob(f"*/{run_id}/verdict.json"), None)
        if verdict_path is None:
            raise RuntimeError(f"run {run_id} wrote no verdict.json (exit {proc.returncode}): {proc.stderr[-2000:]}")
        verdict = json.loads(verdict_path.read_text())
        runs.append({"run_id": run_id, "seconds": seconds, "exit_code": proc.returncode,
                     "verdict": verdict["verdict"], "replay": verdict["manifest"]["replay"]})
        print(f"{run_id}: {seconds:.1f} s, {verdict['verdict']}", flush=True)
    return runs


def print_table(rec: dict[str, Any]) -> None:
    """Both runs, per arm the cache counts, and the ratio."""
    print(machine_line(rec))
    for r in rec["runs"]:
        arms = ", ".join(f"{a} {v['cache_hits']} cached / {v['cache_misses']} generated"
                         f"{' (engine started)' if v['engine_started'] else ''}" for a, v in r["replay"].items())
        print(f"{r['run_id']:>6}: {r['seconds']:8.1f} s  {r['verdict']:<17} {arms}")
    print(f"second / first: {rec['ratio']:.3f}; same verdict: {rec['same_verdict']}")


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, measure, append one JSON line to ``--out`` and print the table."""
    p = argparse.ArgumentParser(prog="python -m harness.bench.cache", description=__doc__.split("\n")[0])
    p.add_argument("--experiment", default="zoo_terse", help="configs/experiment/<name>.yaml")
    p.add_argument("--limit", type=int, default=500, help="traffic.limit: requests replayed per arm")
    p.add_argument("--out", type=Path, default=Path("docs/bench/cache.jsonl"), help="JSON-lines file to append")
    p.add_argument("overrides", nargs="*", help="more Hydra overrides for both runs, e.g. golden.path=null")
    a = p.parse_args(argv)
    if a.limit < 1:
        p.error("--limit must be >= 1")
    rec = header("harness.bench.cache", argv)
    with tempfile.TemporaryDirectory(prefix="bench_cache_") as tmp:
        runs = run_twice(a.experiment, a.limit, Path(tmp), a.overrides)
    rec.update({"bench": "cache", "experiment": a.experiment, "limit": a.limit, "overrides": a.overrides, "runs": runs,
                "ratio": runs[1]["seconds"] / runs[0]["seconds"],
                "same_verdict": runs[0]["verdict"] == runs[1]["verdict"]})
    append(a.out, [rec])
    print_table(rec)
    print(f"appended 1 line to {a.out}")


if __name__ == "__main__":
    main()
