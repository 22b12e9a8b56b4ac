"""The hedge and non-answer classifiers (``harness.signals.evasion``) measured on human-labelled XSTest v2.

    python scripts/measure_evasion.py [--data DIR] [--out docs/bench/evasion.json]

Data: ``$REFUSAL_DATA`` or ``<repo>/../shared/data/refusal``; exits 0 with a "skipped" line when absent. The split is
the refusal classifier's (``scripts/measure_refusal.py``): the rules were written reading only the dev setups
(gpt4, llama2orig, mistralguard); llama2new and mistralinstruct are held out and were measured once, after the rules
were frozen. Three measurements per setup and pooled per split:

- ``deflection`` against the partial refusals: positive = ``3_partial_refusal``, negative = ``1_full_compliance``
  (full refusals left out: they are the refusal classifier's);
- ``evasive`` (refusal, deflection, declined choice or off form) against "declined in any way": positive = full or
  partial refusal, negative = full compliance; beside it the refusal classifier alone (``refusal.declines``) on the
  same definition, so the gain in recall on partial refusals and the cost in false positives are both visible;
- how many prompts offer a choice or ask for a form (``declined_choice`` and ``off_form`` apply): XSTest's prompts
  are open questions, so those two are not measured here (docs/refusal.md says so).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
for p in (REPO, REPO / "scripts"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from measure_refusal import (  # noqa: E402
    COMPLY,
    DEV_SETUPS,
    FULL,
    HELD_OUT_SETUPS,
    PARTIAL,
    data_dir,
    load_xstest,
    publish,
)

from harness.signals import evasion, refusal  # noqa: E402


def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 4) if b else None


def confusion(truth: Sequence[bool | None], flags: Sequence[bool]) -> dict[str, Any]:
    """TP/FP/FN, precision, recall; a None truth is left out."""
    pairs = [(t, f) for t, f in zip(truth, flags, strict=True) if t is not None]
    tp = sum(t and f for t, f in pairs)
    fp = sum((not t) and f for t, f in pairs)
    fn = sum(t and not f for t, f in pairs)
    return {"n": len(pairs), "positives": tp + fn, "tp": tp, "fp": fp, "fn": fn,
            "precision": _ratio(tp, tp + fp), "recall": _ratio(tp, tp + fn)}


def measure_rows(rows: Sequence[dict[str, str]]) -> dict[str, Any]:
    """The three measurements of the module docstring on XSTest rows."""
    texts = [r["completion"] for r in rows]
    labels = [r["final_label"] for r in rows]
    flags: dict[str, Callable[[dict[str, str]], bool]] = {
        "deflection": lambda r: evasion.deflects(r["completion"]),
        "evasive": lambda r: evasion.evasive(r["prompt"], r["completion"]),
        "refusal": lambda r: refusal.declines(r["completion"])}
    f = {name: [fn(r) for r in rows] for name, fn in flags.items()}
    partial_truth = [True if lb == PARTIAL else False if lb == COMPLY else None for lb in labels]
    any_truth = [lb != COMPLY for lb in labels]
    n_partial = labels.count(PARTIAL)
    return {"n": len(rows), "full": labels.count(FULL), "partial": n_partial, "compliance": labels.count(COMPLY),
            "deflection_vs_partial": confusion(partial_truth, f["deflection"]),
            "evasive_vs_any": confusion(any_truth, f["evasive"]),
            "refusal_vs_any": confusion(any_truth, f["refusal"]),
            "partial_flagged": {k: _ratio(sum(x for x, lb in zip(f[k], labels, strict=True) if lb == PARTIAL),
                                          n_partial) for k in ("refusal", "evasive")},
            "choice_prompts": sum(bool(evasion.offered_choices(r["prompt"])) for r in rows),
            "form_prompts": sum(evasion.requested_form(r["prompt"]) is not None for r in rows),
            "texts_sha256": hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]}


def measure(data: Path) -> dict[str, Any]:
    """Per setup and pooled per split."""
    rules = Path(evasion.__file__).read_bytes()
    out: dict[str, Any] = {"data": str(data), "rules_sha256": hashlib.sha256(rules).hexdigest(), "setups": {},
                           "pooled": {}}
    by = {s: load_xstest(data, s) for s in (*DEV_SETUPS, *HELD_OUT_SETUPS)}
    for s, rows in by.items():
        out["setups"][s] = {"split": "dev" if s in DEV_SETUPS else "held_out", **measure_rows(rows)}
    for split, names in (("dev", DEV_SETUPS), ("held_out", HELD_OUT_SETUPS)):
        out["pooled"][split] = {"setups": list(names), **measure_rows([r for s in names for r in by[s]])}
    return out


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def markdown(result: dict[str, Any]) -> str:
    """The table of docs/refusal.md's section on hedges and non-answers."""
    lines = ["| set | split | n | partial | deflection vs partial TP/FP/FN | P | R | refusal vs any P / R | "
             "evasive vs any P / R | partials flagged: refusal → evasive |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    rows = [(f"XSTest {s}", r) for s, r in result["setups"].items()]
    rows += [(f"**XSTest pooled {s}**", r) for s, r in result["pooled"].items()]
    for name, r in rows:
        d, e, f = r["deflection_vs_partial"], r["evasive_vs_any"], r["refusal_vs_any"]
        split = r.get("split", name.split()[-1].rstrip("*"))
        lines.append(f"| {name} | {split} | {r['n']} | {r['partial']} | {d['tp']}/{d['fp']}/{d['fn']} | "
                     f"{_pct(d['precision'])} | {_pct(d['recall'])} | {_pct(f['precision'])} / {_pct(f['recall'])} | "
                     f"{_pct(e['precision'])} / {_pct(e['recall'])} | {_pct(r['partial_flagged']['refusal'])} → "
                     f"{_pct(r['partial_flagged']['evasive'])} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Measure, write the JSON, print the Markdown table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=None, help="data folder (default: $REFUSAL_DATA or shared/...)")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "bench" / "evasion.json")
    args = ap.parse_args(argv)
    data = args.data or data_dir()
    if not (data / "exaggerated-safety").is_dir():
        print(f"skipped: {data}/exaggerated-safety not found (set REFUSAL_DATA or pass --data)")
        return 0
    return publish("measure_evasion.py", argv, measure(data), args.out, markdown)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
