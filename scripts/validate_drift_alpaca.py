"""Embedding drift on real outputs: gpt4_0613 against its concise and verbose variants (AlpacaEval).

    python scripts/validate_drift_alpaca.py [--data /work/shared/data/alpaca_eval] [--threads 1]

The three output sets answer the same 805 instructions in the same order, so each pair is a paired old/new
comparison. For every pair it prints the mean, median and low quantiles of the per-request cosine, the share of
requests below a few illustrative floors (with 95% Wilson intervals), and the MMD paired and unpaired permutation
p-values. There is no A/A replay of gpt4_0613 in this data, so no floor here is A/A-derived: in a real run the floor
comes from replaying the baseline twice (``aa_floor``). The "vs itself" row is the sanity check: cosine 1, no test
fires. Results are recorded in ``docs/embedding_drift.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from harness.signals.drift_stats import mmd_permutation_test, paired_permutation_test, share_below
from harness.signals.embedding import DEFAULT_MODEL, Embedder, cosine_pairs

BASELINE = "gpt4_0613"
CANDIDATES = ("gpt4_0613_concise", "gpt4_0613_verbose", "gpt4_0613")


def load_outputs(data: Path, model: str) -> tuple[list[str], list[str]]:
    """The instructions and outputs of ``results/<model>/model_outputs.json``, in file order."""
    path = data / "results" / model / "model_outputs.json"
    if not path.is_file():
        raise SystemExit(f"{path}: not found; --data must point at an alpaca_eval checkout (results/<model>/...)")
    records = json.loads(path.read_text())
    for i, r in enumerate(records):
        if not isinstance(r.get("output"), str) or not isinstance(r.get("instruction"), str):
            raise SystemExit(f"{path}: record {i} needs string 'instruction' and 'output' fields")
    return [r["instruction"] for r in records], [r["output"] for r in records]


def load_all(data: Path) -> dict[str, list[str]]:
    """Outputs per model, after checking that every file answers the baseline's instructions in the same order."""
    instructions, outputs = load_outputs(data, BASELINE)
    by_model = {BASELINE: outputs}
    for model in sorted(set(CANDIDATES) - {BASELINE}):
        other, by_model[model] = load_outputs(data, model)
        if other != instructions:
            bad = next((i for i, (a, b) in enumerate(zip(instructions, other, strict=False)) if a != b), None)
            raise SystemExit(f"{model}: instructions differ from {BASELINE} (lengths {len(other)} vs "
                             f"{len(instructions)}, first differing record {bad}); the pairs would not be paired")
    return by_model


def embed_all(embedder: Embedder, by_model: dict[str, list[str]]) -> dict[str, np.ndarray]:
    """One encode call over every output (so batching sorts across models), split back per model."""
    names = list(by_model)
    vectors = embedder.encode([t for name in names for t in by_model[name]])
    bounds = np.cumsum([0] + [len(by_model[name]) for name in names])
    return {name: vectors[bounds[i]:bounds[i + 1]] for i, name in enumerate(names)}


def pair_row(old: np.ndarray, new: np.ndarray, floors: list[float], n_perm: int, seed: int) -> dict[str, Any]:
    """The drift numbers of one baseline/candidate pair."""
    cos = cosine_pairs(old, new).astype(np.float64)
    paired = paired_permutation_test(old, new, n_perm=n_perm, seed=seed)
    unpaired = mmd_permutation_test(old, new, n_perm=n_perm, seed=seed)
    return {"n": len(cos), "mean": cos.mean(), "median": float(np.median(cos)), "p05": float(np.quantile(cos, 0.05)),
            "p10": float(np.quantile(cos, 0.10)), "below": {f: share_below(cos, f) for f in floors},
            "mmd2": paired["statistic"], "bandwidth": paired["bandwidth"], "p_paired": paired["p_value"],
            "p_unpaired": unpaired["p_value"]}


def print_report(rows: dict[str, dict[str, Any]], by_model: dict[str, list[str]], floors: list[float]) -> None:
    """One line per pair, then the share-below table."""
    print(f"{'pair':<34} {'n':>4} {'mean':>7} {'median':>7} {'p05':>7} {'p10':>7} {'MMD^2':>9} {'bw':>6} "
          f"{'p paired':>9} {'p unpaired':>10} {'chars new':>9}")
    for name, r in rows.items():
        chars = np.mean([len(t) for t in by_model[name]])
        print(f"{BASELINE + ' vs ' + name:<34} {r['n']:>4} {r['mean']:>7.4f} {r['median']:>7.4f} {r['p05']:>7.4f} "
              f"{r['p10']:>7.4f} {r['mmd2']:>9.5f} {r['bandwidth']:>6.3f} {r['p_paired']:>9.4f} "
              f"{r['p_unpaired']:>10.4f} {chars:>9.0f}")
    print(f"\nshare of requests with cosine < floor (illustrative floors, not A/A-derived), 95% Wilson CI; "
          f"baseline mean chars {np.mean([len(t) for t in by_model[BASELINE]]):.0f}")
    for name, r in rows.items():
        cells = "  ".join(f"<{f}: {s:.3f} [{lo:.3f}, {hi:.3f}]" for f, (s, lo, hi) in r["below"].items())
        print(f"{BASELINE + ' vs ' + name:<34} {cells}")


def main(argv: list[str] | None = None) -> None:
    """Load, embed, compare and print."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=Path("/work/shared/data/alpaca_eval"))
    p.add_argument("--model", default=DEFAULT_MODEL, help="embedding model")
    p.add_argument("--floors", default="0.7,0.8,0.9", help="illustrative cosine floors, comma-separated")
    p.add_argument("--n-perm", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch intra-op CPU threads")
    p.add_argument("--cache", type=Path, default=None, help=".npz of the embeddings: read if present, else written")
    a = p.parse_args(argv)
    floors = [float(f) for f in a.floors.split(",")]
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    by_model = load_all(a.data)
    embedder = Embedder(a.model)
    if a.threads:
        import torch

        torch.set_num_threads(a.threads)
    start, from_cache = time.perf_counter(), a.cache is not None and a.cache.is_file()
    if from_cache:
        with np.load(a.cache) as cached:
            vectors = {name: cached[name] for name in by_model}
    else:
        vectors = embed_all(embedder, by_model)
        if a.cache is not None:
            np.savez(a.cache, **vectors)  # type: ignore[arg-type]
    seconds = time.perf_counter() - start
    n_texts = sum(len(v) for v in by_model.values())
    print(f"{shlex.join(['python', *sys.argv])}\n{time.strftime('%Y-%m-%d')}  {platform.machine()}  "
          f"cpus {os.cpu_count()}  device {embedder.device}/{embedder.dtype}  embedded {n_texts} outputs in "
          f"{seconds:.1f} s{' (read from the cache)' if from_cache else ''}\n")
    rows = {name: pair_row(vectors[BASELINE], vectors[name], floors, a.n_perm, a.seed) for name in CANDIDATES}
    print_report(rows, by_model, floors)


if __name__ == "__main__":
    main()
