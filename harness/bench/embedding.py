"""Benchmark of ``Embedder.encode`` end to end (tokenization included), not a test.

    python -m harness.bench.embedding [--n 4096] [--tokens 64] [--out docs/bench/embedding.json]

Times each encode path (``st``: sentence-transformers; ``fast``: the threaded-tokenizer path) after a warm-up, on
``n`` synthetic texts of about ``tokens`` tokens, appends one JSON line per path to ``--out`` and prints a table.
When both paths run it also reports the smallest cosine between their vectors (they must agree). On a GPU, use
``--n 65536``: at tens of thousands of sentences/s, 4,096 texts finish too fast to time well.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from harness.signals.embedding import DEFAULT_MODEL, Embedder, cosine_pairs

WORDS = (
    "the model answer request user system output customer order price service support account team report data "
    "time year day week people product market quality result change value number system process review policy "
    "please thanks help need want make find give take show tell write read check send update create delete list "
    "good new first last long great little own other old right big high different small large next early young "
    "important few public bad same able because about after before while during under between through without "
    "city country world school company family group problem question example information history music water food"
).split()


def synthetic_texts(n: int, tokens: int, seed: int = 0) -> list[str]:
    """``n`` texts of common words, each about ``tokens`` word pieces long (special tokens included), +-25%."""
    rng = random.Random(seed)
    words = max(1, tokens - 2)
    return [" ".join(rng.choices(WORDS, k=rng.randint(max(1, words * 3 // 4), words * 5 // 4))) for _ in range(n)]


def mean_tokens(embedder: Embedder, texts: list[str]) -> float:
    """Mean token count (after truncation) of up to 1,024 of ``texts``."""
    enc = embedder._st.tokenizer(texts[:1024], truncation=True, max_length=embedder._st.max_seq_length)
    return float(np.mean([len(ids) for ids in enc["input_ids"]]))


def time_path(embedder: Embedder, texts: list[str], fast: bool, repeats: int) -> tuple[list[float], np.ndarray]:
    """Seconds of each of ``repeats`` timed ``encode`` calls after one warm-up, and the last vectors."""
    embedder.fast = fast
    embedder.encode(texts[: min(len(texts), 2 * embedder.batch_size)])
    seconds, vectors = [], np.zeros((0, embedder.dim), dtype=np.float32)
    for _ in range(repeats):
        start = time.perf_counter()
        vectors = embedder.encode(texts)
        seconds.append(time.perf_counter() - start)
    return seconds, vectors


def environment(embedder: Embedder) -> dict[str, Any]:
    """Versions, device and machine facts recorded with every measurement."""
    import sentence_transformers
    import torch
    import transformers

    gpu = torch.cuda.get_device_name(0) if embedder.device.startswith("cuda") else None
    return {"device": embedder.device, "dtype": embedder.dtype, "batch_size": embedder.batch_size,
            "tokenize_workers": embedder.tokenize_workers, "torch": torch.__version__,
            "transformers": transformers.__version__, "sentence_transformers": sentence_transformers.__version__,
            "gpu": gpu, "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads()}


def run(n: int, tokens: int, paths: list[str], model: str, device: str | None, batch_size: int | None,
        workers: int | None, repeats: int) -> list[dict[str, Any]]:
    """Benchmark ``paths`` and return one record per path."""
    embedder = Embedder(model, device=device, batch_size=batch_size, tokenize_workers=workers)
    texts = synthetic_texts(n, tokens)
    common = {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
              "command": shlex.join(["python", "-m", "harness.bench.embedding", *sys.argv[1:]]),
              "model": model, "n": n, "tokens_target": tokens, "tokens_mean": mean_tokens(embedder, texts),
              "repeats": repeats, **environment(embedder)}
    records, vectors = [], {}
    for path in paths:
        seconds, vectors[path] = time_path(embedder, texts, fast=path == "fast", repeats=repeats)
        records.append({**common, "path": path, "seconds": seconds, "sentences_per_s": n / min(seconds)})
    if {"st", "fast"} <= vectors.keys():
        agreement = float(cosine_pairs(vectors["st"], vectors["fast"]).min())
        for r in records:
            r["min_cos_fast_vs_st"] = agreement
    return records


def print_table(records: list[dict[str, Any]]) -> None:
    """A short human-readable summary of ``records``."""
    first = records[0]
    print(f"{first['date']}  {first['gpu'] or 'CPU'}  {first['device']}/{first['dtype']}  torch {first['torch']} "
          f"({first['torch_threads']} threads)  cpus {first['cpu_count']}  n={first['n']}  "
          f"tokens~{first['tokens_mean']:.0f}")
    print(f"{'path':<6} {'batch':>6} {'workers':>8} {'best s':>8} {'sentences/s':>12}")
    for r in records:
        print(f"{r['path']:<6} {r['batch_size']:>6} {r['tokenize_workers']:>8} {min(r['seconds']):>8.3f} "
              f"{r['sentences_per_s']:>12,.0f}")
    if "min_cos_fast_vs_st" in first:
        print(f"min cosine fast vs st: {first['min_cos_fast_vs_st']:.6f}")


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, benchmark, append JSON lines to ``--out`` and print the table."""
    p = argparse.ArgumentParser(prog="python -m harness.bench.embedding", description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=4096, help="number of texts")
    p.add_argument("--tokens", type=int, default=64, help="approximate tokens per text")
    p.add_argument("--out", type=Path, default=Path("docs/bench/embedding.json"), help="JSON-lines file to append")
    p.add_argument("--paths", default="st,fast", help="comma-separated encode paths: st, fast")
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    p.add_argument("--batch-size", type=int, default=None, help="default: 512 on cuda, 64 on cpu")
    p.add_argument("--workers", type=int, default=None, help="tokenizer threads of the fast path")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per path; the best one is reported")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op CPU threads (default: torch's)")
    a = p.parse_args(argv)
    paths = [s.strip() for s in a.paths.split(",") if s.strip()]
    if not paths or set(paths) - {"st", "fast"}:
        p.error(f"--paths takes st and/or fast; got {a.paths!r}")
    if a.n < 1 or a.tokens < 3 or a.repeats < 1:
        p.error("--n and --repeats must be >= 1 and --tokens >= 3")
    if a.threads:
        import torch

        torch.set_num_threads(a.threads)
    records = run(a.n, a.tokens, paths, a.model, a.device, a.batch_size, a.workers, a.repeats)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    with a.out.open("a") as f:
        f.writelines(json.dumps(r) + "\n" for r in records)
    print_table(records)
    print(f"appended {len(records)} line(s) to {a.out}")


if __name__ == "__main__":
    main()
