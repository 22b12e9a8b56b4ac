"""The zoo's golden set: requests of the zoo task mix with their TRUE answers and the checks that score them.

``python -m harness golden build`` writes ``harness/replays/golden_zoo.parquet`` (committed). Items are drawn with a
seed used nowhere else (not the training seed 1234, the sample traffic seed 7 or the quality seed 99), an
equal number per segment, and the expected answers use the true plan facts (the baseline's five wrong facts
are corrected), so ``golden_regex`` on faq measures factuality.

| segment | dimension | checks |
|---|---|---|
| extract | task_accuracy | ``json_schema_valid`` (the order schema), ``json_field_accuracy`` (the true order) |
| faq | factuality | ``regex`` ``^Yes\\b`` / ``^No\\b`` (the true answer first), ``rouge_l`` |
| summarize | format | ``regex`` three bullet lines, ``rouge_l`` |
| chat | instruction_adherence | ``exact_match``, ``rouge_l`` |
"""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path

from harness import REPLAYS_DIR
from harness.golden.schema import GoldenItem, write_golden
from harness.traffic import Message, Request
from harness.zoo import tasks
from harness.zoo.traffic import MAX_TOKENS

DEFAULT_GOLDEN = REPLAYS_DIR / "golden_zoo.parquet"
SEED = 2026
ADDED_AT = dt.datetime(2026, 11, 26, tzinfo=dt.UTC)
THREE_BULLETS = r"\A- [^\n]+\n- [^\n]+\n- [^\n]+\Z"
DIMENSION = {"extract": "task_accuracy", "faq": "factuality", "summarize": "format", "chat": "instruction_adherence"}


def _checks(ex: tasks.Example, expected: str) -> tuple[tuple[str, str], ...]:
    if ex.segment == "extract":
        return (("json_schema_valid", json.dumps(tasks.EXTRACT_SCHEMA, sort_keys=True)),
                ("json_field_accuracy", expected))
    if ex.segment == "faq":
        return (("regex", r"\AYes\b" if expected.startswith("Yes") else r"\ANo\b"), ("rouge_l", expected))
    if ex.segment == "summarize":
        return (("regex", THREE_BULLETS), ("rouge_l", expected))
    return (("exact_match", expected), ("rouge_l", expected))


def golden_items(n: int = 1600, seed: int = SEED) -> tuple[list[Request], list[GoldenItem]]:
    """``n`` golden requests (``n / 4`` per segment, interleaved) and their items."""
    rng = random.Random(seed)
    requests, items = [], []
    for i in range(n):
        ex = tasks.make_example(rng, tasks.SEGMENTS[i % len(tasks.SEGMENTS)])
        rid = f"golden-{seed}-{i:05d}"
        expected = tasks.reference(ex, "improved")
        requests.append(Request(
            request_id=rid, timestamp=ADDED_AT, segment=ex.segment,
            messages=tuple(Message(r, c) for r, c in ex.messages), prompt=None, temperature=0.0, top_p=1.0,
            max_tokens=MAX_TOKENS[ex.segment], response_schema=ex.response_schema, response=None,
            metadata={"source": "zoo-golden", "seed": seed, "facts": ex.facts}))
        items.append(GoldenItem(rid, ex.segment, expected, _checks(ex, expected), DIMENSION[ex.segment], ADDED_AT,
                                f"zoo:seed={seed}"))
    return requests, items


def write_zoo_golden(path: Path = DEFAULT_GOLDEN, n: int = 1600, seed: int = SEED) -> Path:
    """Write the zoo golden set."""
    return write_golden(*golden_items(n, seed), path)
