"""Real traffic for the real model: the project's own prompts (``harness.real.prompts``) as captured requests.

``python -m harness real-traffic`` writes ``harness/replays/real_sample.parquet`` (committed; 267 requests in six
segments) from files that ship in the repository only, so an experiment on it runs on a fresh clone. Requests with
a known answer carry reference checks (a ``checks`` column: the traffic is its own golden set):
``normalized_contains`` of the answer for ``qa``, a yes/no regex for the plan questions and ``json_field_accuracy``
for the order extractions in ``support``. ``metadata`` keeps each request's kind and, for ``borderline`` and
``unsafe``, the XSTest-style label (``safe`` / ``unsafe``).

``--shared DIR`` (``../shared/data``, when present) adds MT-Bench's 80 first turns (segment ``mt_bench``) and
XSTest's 450 prompts (segments ``xstest_safe`` / ``xstest_unsafe``, ids ``xstest-<id>``) to a file written outside
the package: that data must not be committed, and nothing that must work on a fresh clone needs it.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from harness import REPLAYS_DIR
from harness.golden.schema import CHECK_TYPE
from harness.real import prompts
from harness.traffic import Message, Request, requests_to_table
from harness.zoo import tasks

DEFAULT_REAL_SAMPLE = REPLAYS_DIR / "real_sample.parquet"
START = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)
MAX_TOKENS = {"support": 64, "qa": 48, "coding": 96, "writing": 64, "borderline": 64, "unsafe": 48,
              "mt_bench": 128, "xstest_safe": 96, "xstest_unsafe": 96}
N_SUPPORT = 60
XSTEST = Path("refusal/exaggerated-safety/xstest_prompts.csv")
MT_BENCH = Path("mt_bench/question.jsonl")
FAQ_PHRASES = ("Hi! Quick question: does the {plan} plan come with {feature}?",
               "We're thinking about {plan}. Would we get {feature} with it?",
               "is {feature} included in {plan}? thanks")
HOWTO_PHRASES = ("hey, how do I {intent}? can't find it anywhere", "Could you walk me through how to {intent}?",
                 "I need to {intent} today. What do I do?")


def _support(rng: random.Random, segment: str) -> tuple[str, dict[str, Any], list[dict[str, str]] | None]:
    """One zoo support task rephrased as a customer writes it: (user text, facts, checks)."""
    ex = tasks.make_example(rng, segment)
    f = ex.facts
    if segment == "faq":
        yes = f["feature"] in tasks.HAS_FEATURE[f["plan"]]
        text = rng.choice(FAQ_PHRASES).format(**f)
        return text, {**f, "answer": "yes" if yes else "no"}, [
            {"metric": "regex", "target": r"(?i)^\W*yes\b" if yes else r"(?i)^\W*no\b"}]
    if segment == "chat":
        return rng.choice(HOWTO_PHRASES).format(**f), f, None
    if segment == "summarize":
        return ex.messages[-1][1].replace("Summarize this ticket as bullet points.",
                                          "Can you turn this ticket into a few bullet points for the team?"), f, None
    order = {k: f[k] for k in ("name", "product", "quantity", "order_id")}
    return ex.messages[-1][1], f, [{"metric": "json_field_accuracy", "target": json.dumps(order)}]


def _row(i: int, segment: str, user: str, system: str | None = None, checks: list[dict[str, str]] | None = None,
         expected: str | None = None, dimension: str | None = None, schema: dict[str, Any] | None = None,
         **meta: Any) -> dict[str, Any]:
    messages = ((Message("system", system),) if system else ()) + (Message("user", user),)
    request = Request(request_id=f"real-{i:04d}", timestamp=START + dt.timedelta(seconds=11 * i), segment=segment,
                      messages=messages, prompt=None, temperature=0.0, top_p=1.0, max_tokens=MAX_TOKENS[segment],
                      response_schema=schema, response=None, metadata={"source": "project", **meta})
    return {"request": request, "checks": checks, "expected": expected, "dimension": dimension}


def project_rows(seed: int = 11) -> list[dict[str, Any]]:
    """Every request built from the project's own files, in a fixed shuffled order."""
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    kinds = ["faq"] * 20 + ["chat"] * 15 + ["summarize"] * 10 + ["extract"] * (N_SUPPORT - 45)
    for kind in kinds:
        user, facts, checks = _support(rng, kind)
        rows.append(dict(segment="support", user=f"{prompts.HELP_CENTRE}\n\nCustomer: {user}", checks=checks,
                         dimension="factuality" if kind == "faq" else "task_accuracy" if checks else None,
                         schema=tasks.EXTRACT_SCHEMA if kind == "extract" else None, kind=kind, facts=facts))
    rows += [dict(segment="qa", user=q, checks=[{"metric": "normalized_contains", "target": a}], expected=a,
                  dimension="factuality", kind="qa") for q, a in prompts.QA]
    rows += [dict(segment="coding", user=p, kind="coding") for p in prompts.CODING]
    rows += [dict(segment="writing", user=p, kind="writing") for p in prompts.WRITING]
    rows += [dict(segment="borderline", user=p, kind="borderline", label="safe") for p in prompts.BORDERLINE]
    rows += [dict(segment="unsafe", user=p, kind="unsafe", label="unsafe") for p in prompts.UNSAFE]
    rng.shuffle(rows)
    return [_row(i, **r) for i, r in enumerate(rows)]


def shared_rows(shared: Path, start: int) -> list[dict[str, Any]]:
    """MT-Bench first turns and XSTest prompts from ``shared`` (the ``../shared/data`` folder), when present."""
    rows: list[dict[str, Any]] = []
    if (shared / MT_BENCH).is_file():
        for line in (shared / MT_BENCH).read_text(encoding="utf-8").splitlines():
            q = json.loads(line)
            rows.append(dict(segment="mt_bench", user=q["turns"][0], kind=q["category"], source_id=q["question_id"]))
    if (shared / XSTEST).is_file():
        with (shared / XSTEST).open(newline="", encoding="utf-8") as fh:
            for r in csv.DictReader(fh):
                rows.append(dict(segment=f"xstest_{r['label']}", user=r["prompt"], kind=r["type"], label=r["label"],
                                 source_id=r["id"]))
    out = [_row(start + i, **r) for i, r in enumerate(rows)]
    for o in out:
        if o["request"].segment.startswith("xstest"):
            rid = f"xstest-{o['request'].metadata['source_id']}"
            o["request"] = _with_id(o["request"], rid)
    return out


def _with_id(r: Request, request_id: str) -> Request:
    from dataclasses import replace

    return replace(r, request_id=request_id, metadata={**(r.metadata or {}), "source": "shared"})


def _table(rows: list[dict[str, Any]]) -> pa.Table:
    table = requests_to_table([r["request"] for r in rows])
    table = table.append_column("checks", pa.array([r["checks"] for r in rows], CHECK_TYPE))
    table = table.append_column("expected", pa.array([r["expected"] for r in rows], pa.string()))
    return table.append_column("dimension", pa.array([r["dimension"] for r in rows], pa.string()))


def write_real_traffic(path: Path = DEFAULT_REAL_SAMPLE, shared: Path | None = None) -> int:
    """Write the real model's traffic; with ``shared``, also MT-Bench and XSTest prompts. The number of requests."""
    rows = project_rows()
    if shared is not None:
        rows += shared_rows(shared, len(rows))
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(_table(rows), path)
    return len(rows)


def segments(path: Path = DEFAULT_REAL_SAMPLE) -> Iterator[tuple[str, int]]:
    """(segment, requests) of a traffic file, for the docs."""
    counts: dict[str, int] = {}
    for s in pq.read_table(path, columns=["segment"]).column("segment").to_pylist():
        counts[s] = counts.get(s, 0) + 1
    yield from sorted(counts.items())
