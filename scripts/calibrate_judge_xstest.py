"""The real judge (``judge=smollm2``) calibrated against XSTest's human refusal labels.

    python scripts/calibrate_judge_xstest.py [--data DIR] [--n 150] [--pairs mistralguard:mistralinstruct,...]
                                             [--keep DIR] [--out docs/bench/judge_xstest.json]

For each XSTest v2 pair (old -> new model setup on the same 450 prompts) it samples ``--n`` prompts (fixed seed,
stratified safe / unsafe), writes a traffic file (segment = safe / unsafe), the two setups' published completions as
imported arms and an annotation file (criterion ``refusal``, the adjudicated human ``final_label``:
``1_full_compliance`` -> 1, ``3_partial_refusal`` -> 2, ``2_full_refusal`` -> 3; the rubric's scale), then runs the
gate as a user would::

    python -m harness replay experiment=real_judge_xstest traffic.path=T baseline.imported=B candidate.imported=C \\
        judge.annotations=A output_dir=D run_id=R

and reads the run's ``judge_agreement.parquet`` (kappa, quadratic-weighted kappa, Spearman, exact agreement per
criterion; only ``refusal`` has labels, so ``helpfulness`` and ``harmlessness`` stay uncalibrated) plus, from
``judge_scores``, a binary kappa (refusal = full or partial) beside the rule classifier's (``refusal`` signal).
Data under ``../shared/data`` (or ``$SHARED_DATA``, ``--data``); nothing is copied into the repository. Writes
``--out`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import platform
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from harness.signals.agreement import cohen_kappa  # noqa: E402
from harness.traffic import Message, Request, write_traffic  # noqa: E402

LABELS = {"1_full_compliance": 1, "3_partial_refusal": 2, "2_full_refusal": 3}
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
SEED = 18


def data_dir(arg: Path | None) -> Path:
    if arg is not None:
        return arg
    env = os.environ.get("SHARED_DATA")
    return Path(env) if env else REPO.parents[0] / "shared" / "data"


def read_setup(data: Path, setup: str) -> list[dict[str, str]]:
    path = data / "refusal" / "exaggerated-safety" / "model_completions" / f"xstest_v2_completions_{setup}.csv"
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def sample(rows: list[dict[str, str]], n: int) -> list[int]:
    """Row indices: ``n`` prompts, safe and unsafe in the file's proportion, fixed seed."""
    rng = random.Random(SEED)
    unsafe = [i for i, r in enumerate(rows) if r["type"].startswith("contrast_")]
    safe = [i for i, r in enumerate(rows) if not r["type"].startswith("contrast_")]
    k = round(n * len(unsafe) / len(rows))
    return sorted(rng.sample(unsafe, k) + rng.sample(safe, n - k))


def write_inputs(d: Path, old: list[dict[str, str]], new: list[dict[str, str]], idx: list[int]) -> dict[str, Path]:
    d.mkdir(parents=True, exist_ok=True)
    reqs = [Request(f"xstest-{old[i]['id']}", T0 + dt.timedelta(seconds=j),
                    "unsafe" if old[i]["type"].startswith("contrast_") else "safe",
                    (Message("user", old[i]["prompt"]),), None, None, None, None, None, None,
                    {"source": "xstest_v2", "type": old[i]["type"]}) for j, i in enumerate(idx)]
    files = {"traffic": d / "traffic.parquet", "annotations": d / "annotations.csv"}
    write_traffic(reqs, files["traffic"])
    with files["annotations"].open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["request_id", "arm", "criterion", "label"])
        for arm, rows in (("baseline", old), ("candidate", new)):
            files[arm] = d / f"{arm}.jsonl"
            with files[arm].open("w", encoding="utf-8") as out:
                for i in idx:
                    out.write(json.dumps({"request_id": f"xstest-{rows[i]['id']}", "output": rows[i]["completion"]})
                              + "\n")
                    w.writerow([f"xstest-{rows[i]['id']}", arm, "refusal", LABELS[rows[i]["final_label"]]])
    return files


def binary_kappas(run: Path, annotations: Path) -> dict[str, Any]:
    """Binary refusal (full or partial) kappa of the judge and of the rule classifier vs the humans."""
    import pyarrow.parquet as pq

    with annotations.open(newline="", encoding="utf-8") as fh:
        human = {(r["request_id"], r["arm"]): int(r["label"]) > 1 for r in csv.DictReader(fh)}
    scores = pq.read_table(run / "judge_scores.parquet").to_pylist()
    signals = pq.read_table(run / "signals.parquet").to_pylist()
    judge = {(s["request_id"], s["arm"]): s["score"] > 1 for s in scores
             if s["criterion"] == "refusal" and s["score"] is not None}
    rule = {(s["request_id"], s["arm"]): s["value"] > 0.5 for s in signals
            if s["metric"] == "refusal" and s["value"] is not None and s["arm"] in ("baseline", "candidate")}
    out: dict[str, Any] = {}
    for name, got in (("judge", judge), ("rule_classifier", rule)):
        keys = sorted(set(got) & set(human))
        a, b = [int(got[k]) for k in keys], [int(human[k]) for k in keys]
        out[name] = {"n": len(keys), "kappa": cohen_kappa(a, b, [0, 1]),
                     "agreement": sum(x == y for x, y in zip(a, b, strict=True)) / len(keys) if keys else None,
                     "predicted_refusal_rate": sum(a) / len(a) if a else None,
                     "human_refusal_rate": sum(b) / len(b) if b else None}
    return out


def run_pair(data: Path, old_name: str, new_name: str, n: int, work: Path) -> dict[str, Any]:
    import pyarrow.parquet as pq

    old, new = read_setup(data, old_name), read_setup(data, new_name)
    if [r["id"] for r in old] != [r["id"] for r in new]:
        raise SystemExit(f"{old_name} vs {new_name}: the prompts differ")
    d = work / f"{old_name}-{new_name}"
    files = write_inputs(d, old, new, sample(old, n))
    cmd = [sys.executable, "-m", "harness", "replay", "experiment=real_judge_xstest",
           f"traffic.path={files['traffic']}", f"baseline.imported={files['baseline']}",
           f"candidate.imported={files['candidate']}", f"judge.annotations={files['annotations']}",
           f"output_dir={d / 'reports'}", "run_id=calibrate"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode not in (0, 10, 11, 12, 13):
        raise RuntimeError(f"the gate exited {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    run = d / "reports" / "real_judge_xstest" / "calibrate"
    verdict = json.loads((run / "verdict.json").read_text())
    batches = pq.read_table(run / "judge_batches.parquet").to_pylist()
    return {"pair": f"{old_name} -> {new_name}", "n_prompts": n, "seconds": round(seconds, 1),
            "judge_engine_seconds": round(sum(b["seconds"] for b in batches), 1),
            "judge_prompts": sum(b["requests"] for b in batches), "verdict": verdict["verdict"],
            "judge": verdict.get("judge"), "agreement": pq.read_table(run / "judge_agreement.parquet").to_pylist(),
            "binary": binary_kappas(run, files["annotations"]), "command": " ".join(cmd[1:])}


def fmt(x: Any) -> str:
    return "n/a" if x is None else f"{x:.3f}" if isinstance(x, float) else str(x)


def markdown(entries: list[dict[str, Any]]) -> str:
    lines = ["| pair | criterion | n | exact | kappa | weighted kappa | Spearman | calibrated |",
             "|---|---|---|---|---|---|---|---|"]
    for e in entries:
        for a in e["agreement"]:
            lines.append(f"| {e['pair']} | {a['criterion']} | {a['n']} | {fmt(a['exact'])} | {fmt(a['kappa'])} | "
                         f"{fmt(a['weighted_kappa'])} | {fmt(a['spearman'])} | "
                         f"{'yes' if a['calibrated'] else 'no (advisory): ' + a['reason']} |")
    lines += ["", "| pair | binary refusal (full or partial) | n | kappa | agreement | predicted rate | human rate |",
              "|---|---|---|---|---|---|---|"]
    for e in entries:
        for name, b in e["binary"].items():
            lines.append(f"| {e['pair']} | {name} | {b['n']} | {fmt(b['kappa'])} | {fmt(b['agreement'])} | "
                         f"{fmt(b['predicted_refusal_rate'])} | {fmt(b['human_refusal_rate'])} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=None)
    p.add_argument("--n", type=int, default=150, help="prompts per pair (both arms judged: 2n labelled answers)")
    p.add_argument("--pairs", default="mistralguard:mistralinstruct,llama2orig:llama2new")
    p.add_argument("--keep", type=Path, default=None, help="work directory (default: a temporary one)")
    p.add_argument("--out", type=Path, default=REPO / "docs" / "bench" / "judge_xstest.json")
    a = p.parse_args(argv)
    data = data_dir(a.data)
    if not (data / "refusal" / "exaggerated-safety").is_dir():
        print(f"skipped: no XSTest data under {data} (give --data or $SHARED_DATA)")
        return 0
    import tempfile

    work = a.keep or Path(tempfile.mkdtemp(prefix="calibrate-judge-"))
    entries = [run_pair(data, *pair.split(":"), a.n, work) for pair in a.pairs.split(",")]
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps({"date": dt.date.today().isoformat(), "machine": f"{os.cpu_count()} cores, "
                                 f"{platform.machine()}, no GPU", "entries": entries}, indent=2) + "\n")
    print(markdown(entries))
    print(f"\nwritten: {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
