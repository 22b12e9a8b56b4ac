"""Gate validity benchmark (``make validate-gate``): how often the gate fires on no change, and how often it
catches the zoo's regressions. A benchmark, not a test: it writes tables, it asserts nothing.

**False alarms (A/A).** Both arms are ``zoo:baseline`` sampling at ``--temperature`` (the traffic is replayed
with sampling, so two replays of the same model differ by sampling noise alone). Seed ``i`` compares replay
``2i`` (baseline) with replay ``2i + 1`` (candidate); the A/A floor arm is replay ``2i + 2``. Each replay is
the first ``--aa-requests`` sample requests plus the whole golden set, generated once with its own sampling
seed. Every run is then evaluated by the real pipeline (``harness.run.evaluate``: signals, DuckDB analysis,
embedding drift, the gate).

**Detection power.** Greedy replays of the 2,000 sample requests by ``baseline``, each regression (``terse``,
``hedging``, ``json_drift``) and the A/A floor arm (``baseline`` in bf16). For each size ``n`` and seed ``s``,
``n`` requests are drawn without replacement (seed ``s``) and the gate evaluates that subset, without the
golden set, so detection depends on the traffic sample size alone (the golden set adds detection at every
size). Greedy outputs are a function of the request, so a subset of one replay is exactly what replaying
that subset would give.

    python -m harness.bench.validate_gate [--seeds 20] [--sizes 100,300,1000] [--out docs/bench/validate_gate.json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import platform
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from harness.config import ArmConfig, DriftConfig, GoldenConfig
from harness.engines.base import make_engine
from harness.fixtures.zoo.golden import DEFAULT_GOLDEN
from harness.fixtures.zoo.settings import zoo_arm
from harness.fixtures.zoo.traffic import DEFAULT_SAMPLE
from harness.gate import Policy, policy_to_json
from harness.golden.schema import load_golden
from harness.replay import prepare
from harness.replay.ledger import generation_table
from harness.run import evaluate
from harness.signals.embedding import Embedder, embeddings_table
from harness.signals.golden import GoldenRecord, golden_run
from harness.spec import RunSpec, default_policy, handmade_manifest, write_manifest
from harness.store import BATCH_SCHEMA, RunDir
from harness.traffic import Request, load_traffic, traffic_fingerprint

log = logging.getLogger("harness.bench.validate_gate")
REGRESSIONS = ("terse", "hedging", "json_drift")
EMBED_MODEL = "packaged:all-MiniLM-L6-v2"


def generate(checkpoint: str, requests: list[Request], *, seeds: list[int], temperature: float,
             dtype: str = "float32") -> list[pa.Table]:
    """One generations table per sampling seed, from one engine."""
    arm = zoo_arm(checkpoint)
    arm.engine.dtype = dtype
    arm.sampling.temperature = temperature
    engine = make_engine(arm)
    out = []
    try:
        for s in seeds:
            arm.sampling.seed = s
            t = time.perf_counter()
            gens = engine.generate([prepare(r, arm) for r in requests])
            log.info("%s seed %d: %d generations in %.1f s", checkpoint, s, len(gens), time.perf_counter() - t)
            out.append(generation_table(0, requests, gens))
    finally:
        engine.close()
    return out


def _batch(table: pa.Table) -> pa.Table:
    served = table.filter(pc.is_null(table["error"]))
    return pa.Table.from_pylist([{"batch": 0, "requests": served.num_rows,
                                  "prompt_tokens": pc.sum(served["prompt_tokens"]).as_py() or 0,
                                  "output_tokens": pc.sum(served["output_tokens"]).as_py() or 0,
                                  "seconds": 1.0}], schema=BATCH_SCHEMA)


def _subset(table: pa.Table, ids: set[str]) -> pa.Table:
    return table.filter(pc.is_in(table["request_id"], pa.array(sorted(ids))))


class Embeddings:
    """Embeddings of each replay's outputs, computed once and sliced into every run that uses them."""

    def __init__(self) -> None:
        self.embedder = Embedder(EMBED_MODEL)
        self.cache: dict[int, dict[str, np.ndarray]] = {}

    def of(self, table: pa.Table) -> dict[str, np.ndarray]:
        key = id(table)
        if key not in self.cache:
            served = table.filter(pc.is_null(table["error"]))
            vectors = self.embedder.encode(served["output_text"].to_pylist())
            self.cache[key] = dict(zip(served["request_id"].to_pylist(), vectors, strict=True))
        return self.cache[key]

    def table(self, arms: dict[str, pa.Table], ids: set[str]) -> pa.Table:
        parts = []
        for arm, t in arms.items():
            vecs = self.of(t)
            keep = [i for i in sorted(ids) if i in vecs]
            parts.append(embeddings_table(keep, arm, np.stack([vecs[i] for i in keep])))
        return pa.concat_tables(parts).replace_schema_metadata({"model": EMBED_MODEL})


def write_run(root: Path, name: str, arms: dict[str, pa.Table], ids: set[str], policy: Policy, emb: Embeddings,
              golden: dict[str, pa.Table] | None = None, limit: int | None = None) -> RunDir:
    """A run directory holding ``arms`` restricted to ``ids``, as a replay would have written it."""
    run = RunDir(root, "validate", name)
    for arm, t in arms.items():
        sub = _subset(t, ids)
        run.write_part("generations", arm, 0, sub)
        run.write_part("batches", arm, 0, _batch(sub))
    spec = RunSpec(name="validate", traffic_path=str(DEFAULT_SAMPLE), limit=limit,
                   arms={a: ArmConfig() for a in arms}, signals=("stats", "golden", "drift"), policy=policy,
                   settings={"drift": DriftConfig(model=EMBED_MODEL, n_perm=200),
                             "golden": GoldenConfig(str(DEFAULT_GOLDEN) if golden else None)})
    record = GoldenRecord(str(DEFAULT_GOLDEN), traffic_fingerprint(DEFAULT_GOLDEN)) if golden else None
    for arm, t in (golden or {}).items():
        golden_run(run).write_part("generations", arm, 0, t)
        golden_run(run).write_part("batches", arm, 0, _batch(t))
    write_manifest(run, handmade_manifest(spec, name, limit or 0, {"golden": asdict(record)} if record else None))
    run.write_table("embeddings", emb.table(arms, ids))
    return run


def _outcome(run: RunDir) -> dict[str, Any]:
    v = evaluate(run, report=False)
    return {"verdict": v.verdict, "families": dict(v.families),
            "breaches": sorted({f"{c.family}/{c.metric}" + (f"[{c.segment}]" if c.segment else "")
                                for c in v.breaches})}


def false_alarms(root: Path, seeds: int, n_requests: int, temperature: float, policy: Policy,
                 emb: Embeddings) -> list[dict[str, Any]]:
    """A/A runs (module docstring); one outcome per seed."""
    traffic = load_traffic(DEFAULT_SAMPLE, limit=n_requests)
    golden_traffic, _ = load_golden(DEFAULT_GOLDEN)
    golden_requests = [r for b in golden_traffic.batches(10_000) for r in b.requests or []]
    n_t = len(traffic)
    replays = generate("zoo:baseline", traffic + golden_requests, seeds=list(range(2 * seeds + 1)),
                       temperature=temperature)
    ids = {r.request_id for r in traffic}
    out = []
    for i in range(seeds):
        parts = {a: replays[k] for a, k in (("baseline", 2 * i), ("candidate", 2 * i + 1), ("aa", 2 * i + 2))}
        arms = {a: t.slice(0, n_t) for a, t in parts.items()}
        golden = {a: parts[a].slice(n_t) for a in ("baseline", "candidate")}
        out.append({"seed": i, **_outcome(write_run(root, f"aa-{i:02d}", arms, ids, policy, emb, golden,
                                                    limit=n_requests))})
        log.info("A/A seed %d: %s", i, out[-1])
    return out


def detection(root: Path, seeds: int, sizes: list[int], policy: Policy, emb: Embeddings) -> list[dict[str, Any]]:
    """Subsampled greedy runs of each regression (module docstring); one outcome per (regression, n, seed)."""
    traffic = load_traffic(DEFAULT_SAMPLE)
    replay = {name: generate(f"zoo:{name}", traffic, seeds=[0], temperature=0.0)[0]
              for name in ("baseline", *REGRESSIONS)}
    aa = generate("zoo:baseline", traffic, seeds=[0], temperature=0.0, dtype="bfloat16")[0]
    all_ids = np.array(sorted(r.request_id for r in traffic))
    out = []
    for name in REGRESSIONS:
        for n in sizes:
            for s in range(seeds):
                ids = set(np.random.default_rng(s).choice(all_ids, size=n, replace=False).tolist())
                arms = {"baseline": replay["baseline"], "candidate": replay[name], "aa": aa}
                out.append({"regression": name, "n": n, "seed": s,
                            **_outcome(write_run(root, f"{name}-{n}-{s:02d}", arms, ids, policy, emb))})
                log.info("%s n=%d seed %d: %s", name, n, s, out[-1]["verdict"])
    return out


def summarize(aa: list[dict[str, Any]], power: list[dict[str, Any]]) -> dict[str, Any]:
    """Rates per verdict, per family and per breached signal (A/A); detection rates (power)."""
    n = len(aa)
    summary: dict[str, Any] = {"aa_runs": n}
    if n:
        verdicts = Counter(r["verdict"] for r in aa)
        summary["aa_verdicts"] = {k: v / n for k, v in sorted(verdicts.items())}
        fams = Counter(f for r in aa for f, st in r["families"].items() if st == "breached")
        summary["aa_family_false_alarm"] = {f: fams.get(f, 0) / n for f in ("stats", "golden", "judge", "drift")}
        signals = Counter(b for r in aa for b in r["breaches"])
        summary["aa_signal_false_alarm"] = {k: v / n for k, v in sorted(signals.items())}
    table: dict[str, dict[str, dict[str, float]]] = {}
    for r in power:
        cell = table.setdefault(r["regression"], {}).setdefault(str(r["n"]), {"runs": 0, "caught": 0, "rollback": 0})
        cell["runs"] += 1
        cell["caught"] += r["verdict"] in ("INVESTIGATE", "ROLLBACK")
        cell["rollback"] += r["verdict"] == "ROLLBACK"
    summary["detection"] = table
    return summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m harness.bench.validate_gate", description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, default=20)
    p.add_argument("--sizes", default="100,300,1000")
    p.add_argument("--aa-requests", type=int, default=500)
    p.add_argument("--temperature", type=float, default=0.7)
    p.add_argument("--skip", choices=("aa", "power"), default=None)
    p.add_argument("--out", type=Path, default=Path("docs/bench/validate_gate.json"))
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    policy = default_policy()
    emb = Embeddings()
    root = Path(tempfile.mkdtemp(prefix="validate_gate-"))
    t0 = time.perf_counter()
    try:
        aa = [] if a.skip == "aa" else false_alarms(root, a.seeds, a.aa_requests, a.temperature, policy, emb)
        sizes = [int(x) for x in a.sizes.split(",")]
        power = [] if a.skip == "power" else detection(root, a.seeds, sizes, policy, emb)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    record = {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "command": " ".join(
        ["python -m harness.bench.validate_gate", *(argv if argv is not None else __import__("sys").argv[1:])]),
        "machine": f"{platform.processor() or platform.machine()}, {__import__('os').cpu_count()} CPUs",
        "seconds": round(time.perf_counter() - t0, 1), "seeds": a.seeds, "sizes": sizes,
        "aa_requests": a.aa_requests, "temperature": a.temperature, "policy": policy_to_json(policy),
        "summary": summarize(aa, power), "aa": aa, "power": power}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(record, indent=1, default=str) + "\n")
    print(json.dumps(record["summary"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
