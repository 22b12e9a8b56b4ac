"""Scale-out ratios in one run, not a test: engines outside this process, and the Ray replayer.

    python -m harness.bench.scale [--n 600] [--checkpoint zoo:baseline] [--out docs/bench/scale.jsonl]

1. **Backends** on the same greedy requests, through the Engine Protocol in replay batches: the offline engine
   (``vllm.LLM`` in this process), one local vLLM OpenAI server (``server``), two local servers (``server``,
   ``replicas=2``, requests split between them). Start seconds, best of two passes, requests/s, output tokens/s,
   requests whose outputs are identical to the offline engine's.
2. **Replayers** on the same traffic into fresh run directories: ``LocalReplayer`` vs ``RayReplayer`` with one and
   with two engine actors (a local Ray started here). Wall seconds, the engine start inside it, and the overhead
   beyond start-up (wall - start - the local replayer's generation time).
3. **Scaling model** for N GPUs: written out in docs/scale.md from the measured per-engine rate (section 1) and the
   two-engine ratio (on 2 CPU cores two engines share the cores, so the ratio there measures overhead, not GPUs).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from harness.bench.engines import arm_for, time_engine
from harness.bench.record import append, header, machine_line
from harness.console import run_logs
from harness.fixtures.zoo.traffic import DEFAULT_SAMPLE


def backends(n: int, checkpoint: str, traffic: Path) -> dict[str, Any]:
    from harness.engines.base import make_engine
    from harness.replay import prepare
    from harness.traffic import load_traffic

    base = arm_for("vllm", checkpoint, "float32", 256)
    prepared = [prepare(r, base) for r in load_traffic(traffic, limit=n)]
    arms = {"vllm offline": base, "server x1": arm_for("server", checkpoint, "float32", 256)}
    two = arm_for("server", checkpoint, "float32", 256)
    arms["server x2"] = replace(two, engine=replace(two.engine, replicas=2))
    out: dict[str, Any] = {}
    reference = None
    for name, arm in arms.items():
        t0 = time.perf_counter()
        engine = make_engine(arm)
        load = time.perf_counter() - t0
        try:
            engine.generate(prepared[:32])  # warm-up
            runs = [time_engine(engine, prepared, 256) for _ in range(2)]
        finally:
            engine.close()
        best, gens = min(runs, key=lambda r: r[0])
        served = [g for g in gens if g.error is None]
        reference = reference or gens
        out[name] = {"load_s": load, "best_s": best, "requests": len(served),
                     "requests_per_s": len(served) / best,
                     "output_tokens_per_s": sum(g.output_tokens or 0 for g in served) / best,
                     "identical_to_offline": sum(a.output_text == b.output_text for a, b in zip(gens, reference,
                                                                                               strict=True))}
        print(f"{name}: load {load:.1f} s, best {best:.2f} s, {out[name]['requests_per_s']:.0f} req/s", flush=True)
    return out


def replayers(n: int, checkpoint: str, traffic: Path) -> dict[str, Any]:
    from harness.config import RayConfig
    from harness.ray_session import ray_session
    from harness.replay.local import LocalReplayer, ReplayJob
    from harness.replay.ray import RayReplayer
    from harness.store import RunDir
    from harness.traffic import open_traffic

    t = open_traffic(str(traffic), limit=n)
    arm = arm_for("vllm", checkpoint, "float32", 100)
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        def timed(name: str, replayer: Any, a: Any) -> None:
            run = RunDir(tmp, name.replace(" ", "_"), "r")
            t0 = time.perf_counter()
            [timing] = replayer.replay("baseline", a, [ReplayJob(t, run, "baseline")], None)
            wall = time.perf_counter() - t0
            out[name] = {"wall_s": wall, "start_s": timing.load_seconds, "batches": timing.batches_run}
            print(f"{name}: {wall:.1f} s wall, engine start {timing.load_seconds:.1f} s", flush=True)

        timed("local", LocalReplayer(), arm)
        settings = RayConfig(enabled=True, num_cpus=2)
        t0 = time.perf_counter()
        with ray_session(settings):
            out["ray_init_s"] = time.perf_counter() - t0
            timed("ray x1", RayReplayer(settings), arm)
            timed("ray x2", RayReplayer(settings), replace(arm, engine=replace(arm.engine, replicas=2)))
    local_gen = out["local"]["wall_s"] - out["local"]["start_s"]
    for k in ("ray x1", "ray x2"):
        out[k]["overhead_beyond_start_s"] = out[k]["wall_s"] - out[k]["start_s"] - local_gen
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m harness.bench.scale", description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=600, help="requests from the traffic file")
    p.add_argument("--checkpoint", default="zoo:baseline")
    p.add_argument("--traffic", type=Path, default=DEFAULT_SAMPLE)
    p.add_argument("--out", type=Path, default=Path("docs/bench/scale.jsonl"))
    p.add_argument("--logs", type=Path, default=Path("reports/bench/scale"),
                   help="where the harness, engine and server logs go (default reports/bench/scale)")
    a = p.parse_args(argv)
    with run_logs(a.logs):
        rec = {**header("harness.bench.scale", argv), "bench": "scale", "checkpoint": a.checkpoint, "n": a.n,
               "backends": backends(a.n, a.checkpoint, a.traffic),
               "replayers": replayers(a.n, a.checkpoint, a.traffic)}
    b = rec["backends"]
    rec["ratios"] = {"server_x1_over_offline_requests_per_s": b["server x1"]["requests_per_s"]
                     / b["vllm offline"]["requests_per_s"],
                     "server_x2_over_x1_requests_per_s": b["server x2"]["requests_per_s"]
                     / b["server x1"]["requests_per_s"]}
    append(a.out, [rec])
    print(machine_line(rec))
    print(rec["ratios"])
    print(f"appended 1 line to {a.out}")


if __name__ == "__main__":
    main()
