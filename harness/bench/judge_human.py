"""Judges against humans on LLMBar's shared sets: reproduce the authors' figures, then apply the admission rule.

``python -m harness.bench.judge_human --data ../shared/data`` (no engine) reads every
``<set>/evaluators/<judge>/<strategy>/result.json`` of ``judge_human/LLMBar/Dataset`` (Natural and the Processed
MT-Bench, FairEval, LLMEval^2 sets), writes each judge's verdicts as an **imported judge file** and the human labels
as an **annotation file** (preference rows), reads both back through the harness's own loaders
(``judge_import.load_imported``, ``agreement.load_preferences``) and measures them with
``judge_admission.admit_pairwise``. Beside each row: the authors' ``statistics.json`` and our reimplementation of
their formula, so a reader sees they match. Writes ``docs/bench/judge_human.json`` (``--out``) and prints the tables.

Mapping (``to_pairs``): ``output_1`` is the baseline, ``output_2`` the candidate; ``swap = False`` shows output_1
first (our order AB), ``swap = True`` shows output_2 first (our BA); LLMBar stores both winners in the original
numbering ("1" = output_1), so winner "1" is ``A`` in AB and ``B`` in BA. A winner that did not parse (null) is an
unscored order. Human label 1 -> ``baseline``, 2 -> ``candidate``.

The authors' kappa (LLMEvaluator/evaluate.py) maps a winner "1" to 1 and "2" (or null) to 0 but leaves the human
label as 1 or 2, so a judge's "2" can never match a human "2": their ``kappa_*`` are far below the kappa of their own
verdicts (GPT-4 on Natural: 0.27 published, 0.84 with both sides on the same labels). ``authors_statistics``
reimplements their formula (to show the files are read right); the admission rule uses the corrected kappa.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.bench.record import header
from harness.signals.agreement import cohen_kappa, load_preferences
from harness.signals.judge_admission import Bar, PairJudgment, admit_pairwise
from harness.signals.judge_import import load_imported
from harness.signals.judge_prompts import Criterion, Rubric

ROOT = Path("judge_human/LLMBar/Dataset")
SETS = ("LLMBar/Natural", "Processed/MT-Bench", "Processed/FairEval", "Processed/LLMEval^2")
MAIN = {"LLMBar/Natural": "Vanilla", "Processed/MT-Bench": "Vanilla_NoRules", "Processed/FairEval": "Vanilla_NoRules",
        "Processed/LLMEval^2": "Vanilla_NoRules"}
"""The strategy in the admission table per set: the plain prompt (Natural has rules in it; Processed sets only have
Vanilla_NoRules and Metrics_Reference)."""
DEFAULT_OUT = Path("docs/bench/judge_human.json")
PREF_RUBRIC = Rubric("preference-only", tuple(Criterion(n, "unused", 1, 5) for n in ("a", "b", "c")))
HUMAN = {1: "baseline", 2: "candidate", "1": "baseline", "2": "candidate"}


def request_id(i: int) -> str:
    return f"pair-{i:04d}"


def verdicts(record: dict[str, Any]) -> tuple[str | None, str | None]:
    """(verdict_ab, verdict_ba) of one LLMBar record (module docstring)."""
    res = record["results"][-1]
    first, second = res["swap = False"]["winner"], res["swap = True"]["winner"]
    ab = {"1": "A", "2": "B"}.get(str(first)) if first is not None else None
    ba = {"1": "B", "2": "A"}.get(str(second)) if second is not None else None
    return ab, ba


def write_imported(records: Sequence[dict[str, Any]], path: Path) -> Path:
    """The judge's verdicts as an imported judge file (JSONL, ``judge_import``)."""
    with path.open("w", encoding="utf-8") as fh:
        for i, r in enumerate(records):
            ab, ba = verdicts(r)
            fh.write(json.dumps({"request_id": request_id(i), "verdict_ab": ab, "verdict_ba": ba}) + "\n")
    return path


def write_labels(records: Sequence[dict[str, Any]], path: Path) -> Path:
    """The human labels as an annotation file (CSV, preference rows: ``agreement.load_preferences``)."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["request_id", "arm", "criterion", "label"])
        for i, r in enumerate(records):
            w.writerow([request_id(i), "pair", "preference", HUMAN[r["label"]]])
    return path


def to_pairs(records: Sequence[dict[str, Any]], work: Path, name: str) -> list[PairJudgment]:
    """The records through the harness's import path: files written, read back, joined by request id."""
    imported = load_imported(write_imported(records, work / f"{name}.jsonl"), PREF_RUBRIC)
    labels = load_preferences(write_labels(records, work / f"{name}.csv"))
    out = []
    for i, r in enumerate(records):
        rid = request_id(i)
        v = imported.pairwise[rid]
        out.append(PairJudgment(rid, v["verdict_ab"], v["verdict_ba"], labels.get(rid), len(r["output_1"]),
                                len(r["output_2"]), v["confidence"]))
    return out


def authors_statistics(records: Sequence[dict[str, Any]]) -> dict[str, float]:
    """LLMBar's statistics.json, recomputed with the authors' formula (their label mapping included)."""
    n = len(records)
    cf = ct = cb = eq = 0
    y_f, y_t, gold = [], [], []
    for r in records:
        label = str(r["label"])
        f, t = r["results"][-1]["swap = False"]["winner"], r["results"][-1]["swap = True"]["winner"]
        cf += f == label
        ct += t == label
        cb += f == label and t == label
        eq += f == t
        y_f.append(int(f) if f in ("0", "1") else 0)
        y_t.append(int(t) if t in ("0", "1") else 0)
        gold.append(r["label"])
    cats = sorted(set(y_f) | set(y_t) | set(gold))
    return {"correct_False": cf / n, "correct_True": ct / n, "correct_both": cb / n, "equal": eq / n,
            "kappa_False": cohen_kappa(y_f, gold, cats) or 0.0, "kappa_True": cohen_kappa(y_t, gold, cats) or 0.0,
            "kappa_agreement": cohen_kappa(y_f, y_t, sorted(set(y_f) | set(y_t))) or 0.0}


def published(stats_path: Path) -> dict[str, float]:
    """statistics.json with its "93 / 100 = 93.0%" strings as fractions."""
    raw = json.loads(stats_path.read_text())
    out = {}
    for k, v in raw.items():
        if isinstance(v, str):
            v = v.split("=")[-1].strip().rstrip("%")
            out[k] = float(v) / 100
        else:
            out[k] = float(v)
    return out


def evaluate(data: Path, work: Path, bar: Bar, sets: Sequence[str] = SETS) -> list[dict[str, Any]]:
    """One row per (set, judge, strategy): published vs recomputed statistics, and the admission measurements."""
    rows = []
    for s in sets:
        for result in sorted((data / ROOT / s / "evaluators").glob("*/*/result.json")):
            judge, strategy = result.parent.parent.name, result.parent.name
            records = json.loads(result.read_text())
            pairs = to_pairs(records, work, f"{s.replace('/', '_')}_{judge}_{strategy}")
            stats = result.parent / "statistics.json"
            rows.append({"set": s, "judge": judge, "strategy": strategy, "n": len(records),
                         "published": published(stats) if stats.exists() else None,
                         "recomputed": authors_statistics(records), "admission": admit_pairwise(pairs, bar)})
    return rows


def max_difference(row: dict[str, Any]) -> float:
    """The largest absolute difference between a published statistic and its recomputation."""
    pub, rec = row["published"] or {}, row["recomputed"]
    return max((abs(pub[k] - rec[k]) for k in rec if k in pub), default=0.0)


def _p(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def table(rows: Sequence[dict[str, Any]], main_only: bool = True) -> str:
    """Markdown: per judge and set, accuracy/kappa per order with intervals, position bias, decision."""
    head = ("| set | judge | n | acc AB [95% CI] | acc BA | kappa AB [95% CI] | kappa BA [95% CI] | both-orders acc | "
            "flips | longer preferred (judge / humans) | raw / LC win rate | coverage at target | published "
            "acc F/T, kappa F/T (ours of their formula) | decision |\n" + "|---" * 14 + "|")
    out = [head]
    for r in rows:
        if main_only and r["strategy"] != MAIN[r["set"]]:
            continue
        a = r["admission"]
        ab, ba, both = a["orders"]
        pb, lb, st = a["position_bias"], a["length_bias"], a["selective_trust"]
        pub = r["published"] or {}
        out.append(
            f"| {r['set']} | {r['judge']} | {r['n']} | {_p(ab['accuracy'])} [{_p(ab['accuracy_low'])}, "
            f"{_p(ab['accuracy_high'])}] | {_p(ba['accuracy'])} | {_p(ab['kappa'])} [{_p(ab['kappa_low'])}, "
            f"{_p(ab['kappa_high'])}] | {_p(ba['kappa'])} [{_p(ba['kappa_low'])}, {_p(ba['kappa_high'])}] | "
            f"{_p(both['accuracy'])} | {_p(pb['flip_rate'])} | {_p(lb['judge_longer']['rate'])} / "
            f"{_p(lb['human_longer']['rate'])} | {_p(lb['raw_win_rate'])} / {_p(lb['lc_win_rate'])} | "
            f"{_p(st['coverage'])} | {_p(pub.get('correct_False'))}/{_p(pub.get('correct_True'))}, "
            f"{_p(pub.get('kappa_False'))}/{_p(pub.get('kappa_True'))} (max diff {max_difference(r):.1e}) | "
            f"{'**admitted**' if a['admitted'] else 'advisory'} |")
    return "\n".join(out)


def human_majority(records: Sequence[dict[str, Any]], minority: int = 10) -> list[int]:
    """The scenario "humans clearly prefer the candidate": every pair whose human label is 2 (output_2, the
    candidate) plus the first ``minority`` pairs labelled 1, in file order (indices into ``records``)."""
    twos = [i for i, r in enumerate(records) if str(r["label"]) == "2"]
    ones = [i for i, r in enumerate(records) if str(r["label"]) == "1"][:minority]
    return sorted(twos + ones)


def build_experiment(data: Path, out: Path, judge: str, strategy: str = "Vanilla", pair_set: str = "LLMBar/Natural",
                     subset: str = "human_majority") -> dict[str, Path]:
    """The files of an imported-arms experiment from a shared pair set: traffic (``input`` as a prompt, segment
    ``llmbar``), baseline = output_1, candidate = output_2, the judge's verdicts (imported judge file) and the human
    labels (annotation file), and the judge's verdicts on the whole set as the calibration file (its admission is
    measured on every labelled pair of the set, not only the run's). ``judge`` ``humans`` imports the human labels
    themselves as the verdicts (both orders): the decision the humans' own preferences give at the same margin.
    ``subset``: ``all`` or ``human_majority`` (``human_majority``)."""
    from harness.traffic.schema import Request, write_traffic

    folder = data / ROOT / pair_set
    records = json.loads((folder / "dataset.json").read_text())
    verdict_source = records if judge == "humans" else json.loads(
        (folder / "evaluators" / judge / strategy / "result.json").read_text())
    keep = human_majority(records) if subset == "human_majority" else list(range(len(records)))
    out.mkdir(parents=True, exist_ok=True)
    import datetime as dt

    at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    write_traffic([Request(request_id(i), at, "llmbar", None, records[i]["input"], None, None, None, None, None, None)
                   for i in keep], out / "traffic.parquet")
    for arm, key in (("baseline", "output_1"), ("candidate", "output_2")):
        with (out / f"{arm}.jsonl").open("w", encoding="utf-8") as fh:
            for i in keep:
                fh.write(json.dumps({"request_id": request_id(i), "output": records[i][key],
                                     "finish_reason": "stop"}) + "\n")
    with (out / "judge.jsonl").open("w", encoding="utf-8") as fh:
        for i in keep:
            human: tuple[str | None, str | None] = {"1": ("A", "B"), "2": ("B", "A")}[str(records[i]["label"])]
            ab, ba = human if judge == "humans" else verdicts(verdict_source[i])
            fh.write(json.dumps({"request_id": request_id(i), "verdict_ab": ab, "verdict_ba": ba}) + "\n")
    write_labels(records, out / "labels.csv")
    return {"traffic": out / "traffic.parquet", "baseline": out / "baseline.jsonl",
            "candidate": out / "candidate.jsonl", "judge": out / "judge.jsonl", "labels": out / "labels.csv",
            "calibration": write_imported(verdict_source, out / "calibration.jsonl") if judge != "humans"
            else out / "judge.jsonl"}


NO_JUDGE = "no judge"
"""The experiment's control row: the same arms with the judge family left out (``signals=[stats]``): the verdict an
unadmitted judge must leave unchanged."""


def experiment_command(files: dict[str, Path], output_dir: Path, run_id: str, judge: bool = True) -> list[str]:
    """The ``python -m harness replay`` command of the imported-arms experiment (``configs/experiment/judge_pairs``);
    without ``judge``, the same run with the judge family left out."""
    judged = ([f"judge.imported={files['judge']}", f"judge.annotations={files['labels']}",
               f"judge.calibration={files['calibration']}"] if judge else ["signals=[stats]"])
    return [sys.executable, "-m", "harness", "replay", "experiment=judge_pairs", f"traffic.path={files['traffic']}",
            f"baseline.imported={files['baseline']}", f"candidate.imported={files['candidate']}", *judged,
            f"output_dir={output_dir}", f"run_id={run_id}", "cache.enabled=false"]


def run_experiments(data: Path, work: Path, judges: Sequence[str], subsets: Sequence[str]) -> list[dict[str, Any]]:
    """Each judge x subset through the CLI (first the same arms without a judge: the control), the verdict, direction
    and the judge's admission per run."""
    import subprocess

    rows = []
    for subset in subsets:
        for judge in (NO_JUDGE, *judges):
            files = build_experiment(data, work / f"{subset}-{judge}", "humans" if judge == NO_JUDGE else judge,
                                     subset=subset)
            run_id = f"{subset}-{judge}".replace("/", "_").replace(" ", "_")
            proc = subprocess.run(experiment_command(files, work / "reports", run_id, judge != NO_JUDGE),
                                  capture_output=True, text=True, check=False)
            doc_path = work / "reports" / "judge_pairs" / run_id / "verdict.json"
            if not doc_path.exists():
                raise RuntimeError(f"run {run_id} wrote no verdict (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
            doc = json.loads(doc_path.read_text())
            adm = (doc.get("judge") or {}).get("pairwise_admission") or {"admitted": None, "reason": "no judge"}
            pref = [c for c in doc["checks"] if c["metric"] == "judge_preferred" and c.get("segment") is None]
            rows.append({"subset": subset, "judge": judge, "n": len(files["judge"].read_text().splitlines()),
                         "verdict": doc["verdict"], "direction": doc["direction"], "admitted": adm["admitted"],
                         "reason": adm["reason"], "judge_preferred": pref[0] if pref else None,
                         "exit_code": proc.returncode})
    return rows


def negative_control(data: Path, work: Path, n: int) -> dict[str, Any]:
    """The local real model as the judge (``configs/judge/smollm2.yaml``'s engine, the rubric of
    ``configs/judge/imported.yaml``) on the first ``n`` LLMBar Natural pairs through the vLLM engine, both orders,
    measured against the humans with the same bar; returns the admission and the pass's size and seconds."""
    import time

    from omegaconf import OmegaConf

    from harness import CONFIG_DIR
    from harness.config import JudgeConfig
    from harness.signals.judge import judge_settings, run_judge
    from harness.store import RunDir
    from harness.traffic import load_traffic

    files = build_experiment(data, work / "negative", "humans", subset="all")
    records = json.loads((data / ROOT / "LLMBar/Natural/dataset.json").read_text())[:n]
    requests = {r.request_id: r for r in load_traffic(files["traffic"], limit=n)}
    import pyarrow as pa

    from harness.store import GENERATION_SCHEMA

    rows = [{"request_id": request_id(i), "segment": "llmbar", "batch": 0, "arm": arm, "output_text": r[key],
             "prompt_tokens": None, "output_tokens": None, "finish_reason": "stop", "error": None}
            for i, r in enumerate(records) for arm, key in (("baseline", "output_1"), ("candidate", "output_2"))]
    outputs = pa.Table.from_pylist(rows, schema=GENERATION_SCHEMA.append(pa.field("arm", pa.string())))
    rubric = OmegaConf.load(CONFIG_DIR / "judge" / "imported.yaml").rubric
    cfg = OmegaConf.merge(OmegaConf.structured(JudgeConfig), OmegaConf.load(CONFIG_DIR / "judge" / "smollm2.yaml"),
                          {"rubric": rubric, "annotations": str(files["labels"]), "agreement_min_n": 20})
    settings = judge_settings(OmegaConf.to_object(cfg))  # type: ignore[arg-type]
    t0 = time.perf_counter()
    res = run_judge(RunDir(work, "negative", "smollm2"), requests, outputs, settings)
    seconds = time.perf_counter() - t0
    assert res.admission is not None
    return {"pairs": n, "seconds": round(seconds, 1), "answers": res.info["answers"],
            "unscored": res.info["unscored"], "admission": {k: v for k, v in res.admission.items()
                                                             if k != "disagreements"},
            "advisory_metrics": list(res.advisory_metrics)}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", nargs="?", choices=("agreement", "experiment", "negative"), default="agreement")
    ap.add_argument("--n", type=int, default=40, help="negative: the first N Natural pairs")
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--work", type=Path, default=None, help="where the imported/label files go (a temp dir)")
    args = ap.parse_args(argv)
    if args.what == "experiment":
        return _experiment_main(args, argv)
    if args.what == "negative":
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            found = negative_control(args.data, args.work or Path(tmp), args.n)
        out = args.out or Path("docs/bench/judge_negative.json")
        out.write_text(json.dumps({**header("harness.bench.judge_human", argv), **found}, indent=1) + "\n")
        adm = found["admission"]
        ab, ba, both = adm["orders"]
        print(f"real:smollm2 as judge on {found['pairs']} LLMBar Natural pairs: {found['seconds']} s, "
              f"{found['unscored']} of {found['answers']} answers unscored; accuracy AB {_p(ab['accuracy'])} "
              f"BA {_p(ba['accuracy'])} both {_p(both['accuracy'])}; kappa AB {_p(ab['kappa'])} "
              f"[{_p(ab['kappa_low'])}, {_p(ab['kappa_high'])}] BA {_p(ba['kappa'])} [{_p(ba['kappa_low'])}, "
              f"{_p(ba['kappa_high'])}]; flips {_p(adm['position_bias']['flip_rate'])}, first-shown "
              f"{_p(adm['position_bias']['first_shown_rate'])}; admitted: {adm['admitted']} ({adm['reason']})")
        print(f"written to {out}")
        return 0
    if not (args.data / ROOT).is_dir():
        print(f"{args.data / ROOT} not found. Fix: --data pointing at the shared data folder.", file=sys.stderr)
        return 2
    import tempfile

    bar = Bar()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        rows = evaluate(args.data, work, bar)
    args.out = args.out or DEFAULT_OUT
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({**header("harness.bench.judge_human", argv), "rows": rows}, indent=1) + "\n")
    print(table(rows))
    print(f"\n{len(rows)} judge x strategy x set results; largest published-vs-recomputed difference "
          f"{max(max_difference(r) for r in rows):.2e}; written to {args.out}")
    return 0


def _experiment_main(args: argparse.Namespace, argv: Sequence[str] | None) -> int:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        rows = run_experiments(args.data, work, ("humans", "GPT-4", "PaLM2", "LLaMA2", "Falcon"),
                               ("human_majority", "all"))
    out = args.out or Path("docs/bench/judge_experiment.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({**header("harness.bench.judge_human", argv), "rows": rows}, indent=1) + "\n")
    print("| pairs | judge | admitted | judge_preferred delta [bounds] | status | verdict (direction) |\n"
          "|---|---|---|---|---|---|")
    for r in rows:
        c = r["judge_preferred"] or {}
        admitted = "-" if r["admitted"] is None else "yes" if r["admitted"] else "no: " + r["reason"][:60]
        print(f"| {r['subset']} | {r['judge']} | {admitted} | "
              f"{_p(c.get('delta'))} [{_p(c.get('ci_low'))}, {_p(c.get('ci_high'))}] | {c.get('status')} | "
              f"{r['verdict']} ({r['direction']}) |")
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
