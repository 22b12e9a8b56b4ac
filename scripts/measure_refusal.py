"""The refusal classifier (``harness.signals.refusal``) measured on human-labelled data, beside the old regex.

    python scripts/measure_refusal.py [--data DIR] [--out docs/bench/refusal.json]

Data: ``$REFUSAL_DATA`` or ``<repo>/../shared/data/refusal`` (see its SOURCES.md); exits 0 with a "skipped" line
when it is absent. Datasets:

- XSTest v2: five model setups x 450 prompts, human ``final_label``. Positive = ``2_full_refusal``; precision and
  recall leave the partial refusals out, and the share of partial refusals flagged is reported on its own (plus a
  strict precision that counts a flagged partial as a false positive). The rules were written on the dev setups
  (gpt4, llama2orig, mistralguard); llama2new and mistralinstruct are held out.
- GPTFuzz (gpt-3.5-turbo under jailbreak templates): positive = label 0 ("not jailbroken"), a weak proxy for a
  refusal: a label-0 output can be off-topic, and a label-1 output often opens with a refusal and then complies in a
  second persona. train.csv was dev, evaluate.csv held out.
- latent-jailbreak P1 (mostly Chinese outputs): positive = (safe, not_follow), "refused or ignored the task". The
  rules are English-only; this is an out-of-scope check.

The old classifier is the phrase rule the stats family used before (``refusal.LEGACY_PATTERNS``). Results: the JSON
file and
``docs/refusal.md``.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import hashlib
import json
import os
import shlex
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from harness.signals import refusal  # noqa: E402

REFUSAL_PATTERNS = refusal.LEGACY_PATTERNS

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "refusal"
DEV_SETUPS = ("gpt4", "llama2orig", "mistralguard")
HELD_OUT_SETUPS = ("llama2new", "mistralinstruct")
PAIRS = (("llama2orig", "llama2new"), ("mistralguard", "mistralinstruct"))
FULL, PARTIAL, COMPLY = "2_full_refusal", "3_partial_refusal", "1_full_compliance"


def old_declines(text: str) -> bool:
    """The classifier that ``harness.signals.stats`` used before: one regex anywhere in the text."""
    return bool(REFUSAL_PATTERNS.search(text))


CLASSIFIERS: dict[str, Callable[[str], bool]] = {"new": refusal.declines, "old": old_declines}


def data_dir() -> Path:
    """``$REFUSAL_DATA`` when set, else ``shared/data/refusal`` beside the repository."""
    env = os.environ.get("REFUSAL_DATA")
    return Path(env) if env else DEFAULT_DATA


def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 4) if b else None


def scores(truth: Sequence[bool | None], flags: Sequence[bool]) -> dict[str, Any]:
    """Confusion counts, precision and recall; a ``None`` truth (a partial refusal) is left out and counted apart."""
    tp = sum(1 for t, f in zip(truth, flags, strict=True) if t is True and f)
    fp = sum(1 for t, f in zip(truth, flags, strict=True) if t is False and f)
    fn = sum(1 for t, f in zip(truth, flags, strict=True) if t is True and not f)
    partial = sum(1 for t in truth if t is None)
    partial_flagged = sum(1 for t, f in zip(truth, flags, strict=True) if t is None and f)
    out: dict[str, Any] = {"n": len(truth), "positives": tp + fn, "tp": tp, "fp": fp, "fn": fn,
                           "precision": _ratio(tp, tp + fp), "recall": _ratio(tp, tp + fn),
                           "flag_rate": _ratio(sum(flags), len(flags))}
    if partial:
        out.update(partial=partial, partial_flagged=partial_flagged,
                   partial_flag_share=_ratio(partial_flagged, partial),
                   precision_strict=_ratio(tp, tp + fp + partial_flagged))
    return out


def _both(truth: Sequence[bool | None], texts: Sequence[str]) -> dict[str, Any]:
    out = {name: scores(truth, [f(t) for t in texts]) for name, f in CLASSIFIERS.items()}
    out["new_labels"] = dict(sorted(Counter(refusal.classify(t) for t in texts).items()))
    return out


def _truth(label: str) -> bool | None:
    return True if label == FULL else None if label == PARTIAL else False


def load_xstest(data: Path, setup: str) -> list[dict[str, str]]:
    """The rows of ``xstest_v2_completions_<setup>.csv`` (``completion`` and ``final_label`` checked)."""
    path = data / "exaggerated-safety" / "model_completions" / f"xstest_v2_completions_{setup}.csv"
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    bad = [r.get("id") for r in rows if r.get("final_label") not in (FULL, PARTIAL, COMPLY)]
    if bad or not rows:
        raise SystemExit(f"{path}: {len(bad)} rows with an unknown final_label (first ids {bad[:3]}) or no rows")
    return rows


def measure_xstest(data: Path, setups: Sequence[str] = DEV_SETUPS + HELD_OUT_SETUPS) -> dict[str, Any]:
    """Per setup and pooled per split (dev / held_out), both classifiers; the old/new pairs' refusal rates."""
    per: dict[str, Any] = {}
    rows_by: dict[str, list[dict[str, str]]] = {}
    for setup in setups:
        rows = rows_by[setup] = load_xstest(data, setup)
        labels = Counter(r["final_label"] for r in rows)
        per[setup] = {"split": "dev" if setup in DEV_SETUPS else "held_out", "n": len(rows), "full": labels[FULL],
                      "partial": labels[PARTIAL], "compliance": labels[COMPLY],
                      **_both([_truth(r["final_label"]) for r in rows], [r["completion"] for r in rows])}
    pooled = {}
    for split, names in (("dev", DEV_SETUPS), ("held_out", HELD_OUT_SETUPS)):
        rows = [r for s in names if s in rows_by for r in rows_by[s]]
        if rows:
            pooled[split] = {"setups": [s for s in names if s in rows_by],
                             **_both([_truth(r["final_label"]) for r in rows], [r["completion"] for r in rows])}
    pairs = []
    for old, new in PAIRS:
        if old in rows_by and new in rows_by:
            entry: dict[str, Any] = {"old": old, "new": new}
            for side, name in (("old", old), ("new", new)):
                rows = rows_by[name]
                entry[f"human_full_{side}"] = _ratio(sum(r["final_label"] == FULL for r in rows), len(rows))
                entry[f"human_any_{side}"] = _ratio(sum(r["final_label"] != COMPLY for r in rows), len(rows))
                for cname, f in CLASSIFIERS.items():
                    entry[f"{cname}_{side}"] = _ratio(sum(f(r["completion"]) for r in rows), len(rows))
            for key in ("human_full", "human_any", *CLASSIFIERS):
                entry[f"{key}_shift"] = round(entry[f"{key}_new"] - entry[f"{key}_old"], 4)
            pairs.append(entry)
    return {"setups": per, "pooled": pooled, "pairs": pairs}


def measure_gptfuzz(data: Path) -> dict[str, Any]:
    """train.csv (dev) and evaluate.csv (held out); positive = label 0, not jailbroken."""
    out = {}
    for name, split in (("train", "dev"), ("evaluate", "held_out")):
        path = data / "GPTFuzz" / "datasets" / "responses_labeled" / f"{name}.csv"
        if not path.is_file():
            continue
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        out[name] = {"split": split, **_both([r["label"] == "0" for r in rows], [r["Response"] for r in rows])}
    return out


def measure_latent(data: Path) -> dict[str, Any]:
    """P1 per model and file; positive = (safe, not_follow)."""
    out: dict[str, Any] = {}
    truth_all: list[bool | None] = []
    texts_all: list[str] = []
    for path in sorted((data / "latent-jailbreak" / "data" / "P1").glob("*/P1_*.json")):
        groups = json.loads(path.read_text(encoding="utf-8"))
        records = [r for recs in groups.values() for r in recs]
        truth: list[bool | None] = [r["safety"] == "safe" and r.get("following") == "not_follow" for r in records]
        texts = [r["response"] for r in records]
        out[f"{path.parent.name}/{path.stem}"] = _both(truth, texts)
        truth_all += truth
        texts_all += texts
    if texts_all:
        out["all"] = _both(truth_all, texts_all)
    return out


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def markdown(result: dict[str, Any]) -> str:
    """The tables of ``docs/refusal.md``, from a result dict."""
    lines = ["| set | split | n | pos | new TP/FP/FN | new P | new R | old P | old R | partial flagged (new / old) |",
             "|---|---|---|---|---|---|---|---|---|---|"]

    def row(name: str, split: str, r: dict[str, Any]) -> str:
        new, old = r["new"], r["old"]
        part = (f"{new['partial_flagged']}/{new['partial']} ({_pct(new['partial_flag_share'])}) / "
                f"{old['partial_flagged']}/{old['partial']}" if "partial" in new else "–")
        return (f"| {name} | {split} | {new['n']} | {new['positives']} | {new['tp']}/{new['fp']}/{new['fn']} | "
                f"{_pct(new['precision'])} | {_pct(new['recall'])} | {_pct(old['precision'])} | "
                f"{_pct(old['recall'])} | {part} |")

    xs = result.get("xstest", {})
    for setup, r in xs.get("setups", {}).items():
        lines.append(row(f"XSTest {setup}", r["split"], r))
    for split, r in xs.get("pooled", {}).items():
        lines.append(row(f"**XSTest pooled {split}**", split, r))
    for name, r in result.get("gptfuzz", {}).items():
        lines.append(row(f"GPTFuzz {name} (weak proxy)", r["split"], r))
    for name, r in result.get("latent_jailbreak", {}).items():
        lines.append(row(f"latent-jailbreak {name}", "out of scope", r))
    if xs.get("pairs"):
        lines += ["", "| pair | human full | human full+partial | new classifier | old classifier |",
                  "|---|---|---|---|---|"]
        for p in xs["pairs"]:
            cells = [f"{_pct(p[k + '_old'])} → {_pct(p[k + '_new'])} ({100 * p[k + '_shift']:+.1f} pp)"
                     for k in ("human_full", "human_any", "new", "old")]
            lines.append(f"| {p['old']} → {p['new']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def measure(data: Path) -> dict[str, Any]:
    """Every dataset present under ``data``."""
    rules = Path(refusal.__file__).read_bytes()
    result: dict[str, Any] = {"data": str(data), "rules_sha256": hashlib.sha256(rules).hexdigest()}
    if (data / "exaggerated-safety").is_dir():
        result["xstest"] = measure_xstest(data)
    result["gptfuzz"] = measure_gptfuzz(data)
    result["latent_jailbreak"] = measure_latent(data)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Measure, write the JSON, print the Markdown tables."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=None, help="data folder (default: $REFUSAL_DATA or shared/...)")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "bench" / "refusal.json")
    args = ap.parse_args(argv)
    data = args.data or data_dir()
    if not data.is_dir():
        print(f"skipped: {data} not found (set REFUSAL_DATA or pass --data)")
        return 0
    return publish("measure_refusal.py", argv, measure(data), args.out, markdown)


def publish(script: str, argv: Sequence[str] | None, measured: dict[str, Any], out: Path,
            render: Callable[[dict[str, Any]], str]) -> int:
    """Write the record (date, the command as typed, the numbers) to ``out`` and print its Markdown table."""
    result = {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
              "command": f"python scripts/{script}" + "".join(f" {shlex.quote(a)}" for a in (argv or [])), **measured}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(render(result))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
