"""Peak memory of reading a large traffic file (a benchmark, not a test; numbers in docs/reliability.md).

    python -m harness.bench.traffic_memory write /tmp/big.parquet --rows 2000000
    python -m harness.bench.traffic_memory validate /tmp/big.parquet     # open_traffic: the streamed pass
    python -m harness.bench.traffic_memory replay-read /tmp/big.parquet  # + every request read back in batches
    python -m harness.bench.traffic_memory load /tmp/big.parquet         # load_traffic: every request in memory

Each mode runs in its own process, so the peak resident set size (``ru_maxrss``) is that mode's alone.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import resource
import time
from collections.abc import Iterator
from pathlib import Path

from harness.traffic import Message, Request, load_traffic, open_traffic, write_traffic

WORDS = ("order", "refund", "shipping", "account", "password", "invoice", "delivery", "address", "warranty",
         "subscription", "cancel", "upgrade", "payment", "card", "store", "return", "exchange", "tracking")


def synthetic(rows: int, seed: int = 0) -> Iterator[Request]:
    """Chat requests of about 1 KB each (system + user message, a response, metadata); ids unique."""
    rng = random.Random(seed)
    t0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    for i in range(rows):
        user = " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 80)))
        yield Request(
            request_id=f"big-{i:09d}", timestamp=t0 + dt.timedelta(seconds=i), segment=rng.choice(WORDS[:4]),
            messages=(Message("system", "You are a support assistant. Answer briefly."), Message("user", user)),
            prompt=None, temperature=0.0, top_p=1.0, max_tokens=128, response_schema=None,
            response=" ".join(rng.choice(WORDS) for _ in range(40)), metadata={"n": i, "tier": rng.choice("abc")})


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m harness.bench.traffic_memory", description=__doc__.split("\n")[0])
    p.add_argument("mode", choices=["write", "validate", "replay-read", "load"])
    p.add_argument("path", type=Path)
    p.add_argument("--rows", type=int, default=2_000_000)
    p.add_argument("--limit", type=int, default=None, help="read only the first N rows (validate, replay-read, load)")
    p.add_argument("--batch-size", type=int, default=256, help="replay batch size (replay-read)")
    a = p.parse_args(argv)
    before = _peak_mib()
    t = time.perf_counter()
    if a.mode == "write":
        count = write_traffic(synthetic(a.rows), a.path)
        detail = f"{count} rows, {a.path.stat().st_size / 2**20:.0f} MiB on disk"
    elif a.mode == "validate":
        detail = f"{open_traffic(a.path, a.limit).requests} rows valid"
    elif a.mode == "replay-read":
        traffic = open_traffic(a.path, a.limit)
        count = sum(len(b.requests or []) for b in traffic.batches(a.batch_size))
        detail = f"{count} requests read back in batches of {a.batch_size}"
    else:
        detail = f"{len(load_traffic(a.path, a.limit))} requests in memory"
    seconds = time.perf_counter() - t
    print(json.dumps({"mode": a.mode, "detail": detail, "seconds": round(seconds, 1),
                      "peak_rss_mib_after_imports": round(before), "peak_rss_mib": round(_peak_mib())}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
