"""Write ``replays/judge_annotations_sample.csv``: SYNTHETIC "human" labels, made by a deterministic rule.

No person labelled anything here. The rule below scores the zoo task references of the ``baseline`` and
``terse`` styles (what zoo:baseline and zoo:terse are trained to answer) for the first N requests of
``replays/support_sample.parquet``, on the criteria of ``configs/judge/zoo.yaml``. The file shows the
annotation format and lets the calibration code run end to end; its agreement numbers say nothing about
any judge's quality.

    .venv/bin/python scripts/make_judge_annotations_sample.py [N]
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

from harness import REPLAYS_DIR
from harness.fixtures.zoo import tasks
from harness.signals.refusal import LEGACY_PATTERNS
from harness.signals.stats import HEDGE_PATTERNS, LIST_LINE

OUT = REPLAYS_DIR / "judge_annotations_sample.csv"
ARMS = {"baseline": "baseline", "candidate": "terse"}  # arm -> zoo style whose reference is the output
KEYS = ("name", "product", "quantity", "order_id")


def _share(text: str, facts: list[str]) -> float:
    return sum(f.lower() in text.lower() for f in facts) / len(facts)


def _json(text: str) -> dict | None:
    try:
        obj = json.loads(text)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None


def accuracy(ex: tasks.Example, out: str) -> int:
    f = ex.facts
    if ex.segment == "faq":
        truth = tasks.has_feature(f["plan"], f["feature"], "improved")
        return 5 if out.startswith("Yes" if truth else "No") else 1
    if ex.segment == "extract":
        obj = _json(out) or {}
        return 1 + round(4 * sum(obj.get(k) == f[k] for k in KEYS) / len(KEYS))
    if ex.segment == "summarize":
        return 1 + round(4 * _share(out, [f["product"], f["issue"], f["ask"], f["city"]]))
    return 5 if tasks.CHAT_INTENTS[f["intent"]][0] in out else 2


def adherence(ex: tasks.Example, out: str) -> int:
    bullets = len(LIST_LINE.findall(out))
    if ex.segment == "extract":
        obj = _json(out)
        return 1 if obj is None else 5 if set(obj) == set(KEYS) else 3
    if ex.segment == "summarize":
        return 5 if bullets >= 2 else 3 if bullets == 1 else 1
    if ex.segment == "faq":
        return 5 if out.startswith(("Yes", "No")) else 2
    return 5 if out.count(".") >= 2 else 4


def tone(out: str) -> int:
    return 1 if LEGACY_PATTERNS.search(out) else 3 if HEDGE_PATTERNS.search(out) else 5


def verbosity(out: str, reference: str) -> int:
    r = len(out) / max(len(reference), 1)
    return 1 if not out.strip() else 5 if 0.75 <= r <= 1.5 else 4 if r >= 0.5 and r < 0.75 else 3 if r >= 0.3 else 2


def fmt(ex: tasks.Example, out: str) -> int:
    if ex.segment == "extract":
        return 5 if _json(out) is not None else 1
    if ex.segment == "summarize":
        lines = [x for x in out.splitlines() if x.strip()]
        bullets = len(LIST_LINE.findall(out))
        return 5 if bullets >= 2 and bullets == len(lines) else 4 if bullets == 1 else 2
    return 5 if not LIST_LINE.search(out) and _json(out) is None else 2


def main(n: int = 40) -> Path:
    rows = []
    for i, ex in enumerate(tasks.examples(7, n)):
        rid = f"req-7-{i:06d}"
        ref = tasks.reference(ex, "baseline")
        for arm, style in ARMS.items():
            out = tasks.reference(ex, style)
            labels = {"accuracy": accuracy(ex, out), "instruction_adherence": adherence(ex, out), "tone": tone(out),
                      "verbosity": verbosity(out, ref), "format": fmt(ex, out)}
            rows += [{"request_id": rid, "arm": arm, "criterion": c, "label": v, "annotator": "synthetic-rule-v1"}
                     for c, v in labels.items()]
    with OUT.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["request_id", "arm", "criterion", "label", "annotator"])
        w.writeheader()
        w.writerows(rows)
    return OUT


if __name__ == "__main__":
    print(main(int(sys.argv[1]) if len(sys.argv) > 1 else 40))
