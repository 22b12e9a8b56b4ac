"""The sample captured traffic in ``harness/replays/``: requests drawn from the zoo's task mix.

``python -m harness traffic`` writes it; the committed file came from the defaults below. The
metadata keeps each request's facts (``metadata.facts``) so quality can be scored against truth.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from harness import REPLAYS_DIR
from harness.traffic import Message, Request, write_traffic
from harness.zoo import tasks

DEFAULT_SAMPLE = REPLAYS_DIR / "support_sample.parquet"
MAX_TOKENS = {"extract": 96, "faq": 48, "summarize": 96, "chat": 96}
START = dt.datetime(2026, 11, 2, 8, 0, tzinfo=dt.UTC)


def sample_requests(n: int, seed: int) -> list[Request]:
    """``n`` captured requests, one every 7 seconds from ``START``, greedy as captured."""
    out = []
    for i, ex in enumerate(tasks.examples(seed, n)):
        out.append(Request(
            request_id=f"req-{seed}-{i:06d}", timestamp=START + dt.timedelta(seconds=7 * i), segment=ex.segment,
            messages=tuple(Message(r, c) for r, c in ex.messages), prompt=None, temperature=0.0, top_p=1.0,
            max_tokens=MAX_TOKENS[ex.segment], response_schema=ex.response_schema, response=None,
            metadata={"source": "zoo-synthetic", "seed": seed, "facts": ex.facts}))
    return out


def write_sample_traffic(path: Path = DEFAULT_SAMPLE, n: int = 2000, seed: int = 7) -> Path:
    """Write the sample traffic Parquet."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_traffic(sample_requests(n, seed), path)
    return path
