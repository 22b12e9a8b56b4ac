"""Engine ratio: the vLLM engine vs the transformers engine on the same checkpoint and requests, not a test.

    python -m harness.bench.engines [--n 2000] [--repeats 2] [--backends vllm,transformers] \
        [--checkpoint zoo:baseline] [--out docs/bench/engines.jsonl]

Every backend's engine is built first (load seconds recorded, not timed with the rest); then each repetition
answers the same greedy requests with each engine through the Engine Protocol (``Engine.stream``), in batches of
``engine.batch_size`` as a replay does, backends in alternating order. Requests/s and output tokens/s come from
the best repetition of each backend; the record also counts requests whose outputs are identical across
backends. On a machine without vLLM (the lent GPU box) use ``--backends transformers``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.bench.record import append, header, machine_line
from harness.config import ArmConfig, SamplingConfig
from harness.engines.base import Engine, Generation, PreparedRequest
from harness.fixtures.zoo.settings import zoo_engine
from harness.fixtures.zoo.traffic import DEFAULT_SAMPLE


def arm_for(backend: str, checkpoint: str, dtype: str, batch_size: int) -> ArmConfig:
    """A greedy arm served by ``backend``."""
    return ArmConfig(checkpoint=checkpoint, engine=zoo_engine(backend=backend, dtype=dtype, batch_size=batch_size),
                     sampling=SamplingConfig(temperature=0.0))


def time_engine(engine: Engine, prepared: Sequence[PreparedRequest], batch: int) -> tuple[float, list[Generation]]:
    """Seconds ``engine.stream`` takes to answer ``prepared`` in batches of ``batch`` (as a replay hands them over),
    and the generations."""
    start = time.perf_counter()
    gens = [g for answers in engine.stream(prepared[i: i + batch] for i in range(0, len(prepared), batch))
            for g in answers]
    return time.perf_counter() - start, gens


def run(n: int, repeats: int, backends: list[str], checkpoint: str, dtype: str, batch: int,
        traffic_path: Path) -> dict[str, Any]:
    """Measure and return one record with one entry per backend."""
    from harness.engines.base import make_engine
    from harness.replay import prepare
    from harness.traffic import load_traffic

    prepared = [prepare(r, arm_for(backends[0], checkpoint, dtype, batch)) for r in load_traffic(traffic_path, limit=n)]
    engines: dict[str, Engine] = {}
    result: dict[str, dict[str, Any]] = {}
    outputs: dict[str, list[Generation]] = {}
    try:
        for b in backends:
            start = time.perf_counter()
            engines[b] = make_engine(arm_for(b, checkpoint, dtype, batch))
            result[b] = {"load_s": time.perf_counter() - start, "seconds": []}
            engines[b].generate(prepared[:32])  # warm-up
        for rep in range(repeats):
            for b in backends if rep % 2 == 0 else backends[::-1]:
                seconds, outputs[b] = time_engine(engines[b], prepared, batch)
                result[b]["seconds"].append(seconds)
                print(f"rep {rep}: {b} {seconds:.2f} s", flush=True)
    finally:
        for e in engines.values():
            e.close()
    for b in backends:
        served = [g for g in outputs[b] if g.error is None]
        best = min(result[b]["seconds"])
        result[b].update(requests=len(served), output_tokens=sum(g.output_tokens or 0 for g in served),
                         prompt_tokens=sum(g.prompt_tokens or 0 for g in served), best_s=best,
                         requests_per_s=len(served) / best,
                         output_tokens_per_s=sum(g.output_tokens or 0 for g in served) / best)
    rec: dict[str, Any] = {"bench": "engines", "checkpoint": checkpoint, "dtype": dtype, "n": n, "batch_size": batch,
                           "repeats": repeats, "backends": result}
    if len(backends) == 2:
        first, second = (outputs[x] for x in backends)
        rec["identical_outputs"] = sum(x.output_text == y.output_text for x, y in zip(first, second, strict=True))
        rec["ratio_requests_per_s"] = result[backends[0]]["requests_per_s"] / result[backends[1]]["requests_per_s"]
    return rec


def print_table(rec: dict[str, Any]) -> None:
    """One row per backend, and the ratio."""
    print(machine_line(rec))
    print(f"{'backend':<13} {'load s':>7} {'best s':>8} {'requests':>9} {'requests/s':>11} {'out tok/s':>10}")
    for name, r in rec["backends"].items():
        print(f"{name:<13} {r['load_s']:>7.1f} {r['best_s']:>8.2f} {r['requests']:>9} {r['requests_per_s']:>11.1f} "
              f"{r['output_tokens_per_s']:>10.0f}")
    if "ratio_requests_per_s" in rec:
        first, second = rec["backends"]
        print(f"{first} / {second}: {rec['ratio_requests_per_s']:.2f}x requests/s; identical outputs "
              f"{rec['identical_outputs']}/{rec['n']}")


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, measure, append one JSON line to ``--out`` and print the table."""
    p = argparse.ArgumentParser(prog="python -m harness.bench.engines", description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=2000, help="requests from the traffic file")
    p.add_argument("--repeats", type=int, default=2, help="timed passes per backend, order alternating")
    p.add_argument("--backends", default="vllm,transformers", help="comma-separated engine names")
    p.add_argument("--checkpoint", default="zoo:baseline")
    p.add_argument("--dtype", default="float32")
    p.add_argument("--batch-size", type=int, default=256, help="requests per batch (engine.batch_size)")
    p.add_argument("--traffic", type=Path, default=DEFAULT_SAMPLE)
    p.add_argument("--out", type=Path, default=Path("docs/bench/engines.jsonl"), help="JSON-lines file to append")
    a = p.parse_args(argv)
    backends = [s.strip() for s in a.backends.split(",") if s.strip()]
    if not backends or a.n < 1 or a.repeats < 1 or a.batch_size < 1:
        p.error("--backends must name at least one engine; --n, --repeats and --batch-size must be >= 1")
    rec = {**header("harness.bench.engines", argv),
           **run(a.n, a.repeats, backends, a.checkpoint, a.dtype, a.batch_size, a.traffic)}
    append(a.out, [rec])
    print_table(rec)
    print(f"appended 1 line to {a.out}")


if __name__ == "__main__":
    main()
