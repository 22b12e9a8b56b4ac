"""The gate on real outputs it did not generate: published model upgrades replayed through the CLI as imports.

    python scripts/validate_real.py [--data DIR] [--only NAME,...] [--keep DIR] [--out docs/bench/validation.json]

For each case it builds, in a temporary directory, a traffic Parquet (``harness.traffic.write_traffic``) and two
imported-outputs JSONL files (``{"request_id", "output"}``, one line per request), runs the gate exactly as a user
would::

    python -m harness replay experiment=default traffic.path=T baseline.imported=B candidate.imported=C \\
        golden.path=null output_dir=D run_id=R name=N

and reads ``verdict.json``. Nothing is tuned: the default policy (``configs/gate/default.yaml``), the default
signals and the packaged embedding model. With an imported baseline and no second capture of it there is no A/A
floor, so drift is reported and not gated (README, "An arm can also be imported").

Cases (data under ``../shared/data``, or ``$SHARED_DATA``, or ``--data``; a case whose files are absent is skipped
with a message):

1. AlpacaEval: four version pairs on the same 805 instructions, segment = the instruction's source dataset, no
   references; the published win rates and average lengths from ``leaderboards/*.csv`` beside each.
2. MT-Bench: vicuna-7b -> 13b -> 33b (v1.3), first turns of the 80 questions, segment = category, no references
   (why: docs/validation.md).
3. XSTest v2: llama2orig -> llama2new and mistralguard -> mistralinstruct (a system prompt removed), 450 prompts,
   segment = prompt type; and the same pairs with segment = safe / unsafe prompt (the type segments have 25
   prompts, under ``gate.min_requests``). The human labels (full refusal, full + partial) beside the gate's
   refusal rate.

Writes ``docs/bench/validation.json`` and prints a Markdown table. Exit code 0 (also when cases are skipped); 1 when
a gate run fails (an exit code other than a verdict's).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from harness.traffic import Message, Request, write_traffic  # noqa: E402

VERDICT_CODES = {0: "PASS", 10: "INVESTIGATE", 11: "ROLLBACK", 12: "HOLD_FOR_SIGNOFF", 13: "INSUFFICIENT_DATA"}
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)  # a fixed capture time: the replays are reproducible


@dataclass
class Case:
    """One old -> new comparison: the traffic, both arms' outputs, what is published about it, what should happen."""

    name: str
    group: str
    baseline: str
    candidate: str
    requests: list[Request]
    outputs: dict[str, dict[str, str]]  # arm -> request_id -> output
    facts: dict[str, Any]
    expected: str  # in words
    matches: Callable[[dict[str, Any]], bool]  # of the verdict.json
    human: dict[str, Any] = field(default_factory=dict)  # labels from the data (XSTest), per arm and segment


# ---- data -------------------------------------------------------------------------------------------------------

def data_dir(arg: Path | None) -> Path:
    """``--data``, else ``$SHARED_DATA``, else ``../shared/data`` beside the repository."""
    if arg is not None:
        return arg
    env = os.environ.get("SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


def chat(text: str) -> tuple[Message, ...]:
    """One user message."""
    return (Message("user", text),)


def request(rid: str, i: int, segment: str, text: str, metadata: dict[str, Any]) -> Request:
    """A traffic row with one user message, captured settings unset (the arms are imported, nothing is sampled)."""
    return Request(request_id=rid, timestamp=T0 + dt.timedelta(seconds=i), segment=segment, messages=chat(text),
                   prompt=None, temperature=None, top_p=None, max_tokens=None, response_schema=None, response=None,
                   metadata=metadata)


def not_flagged_rollback(v: dict[str, Any]) -> bool:
    """Anything but ROLLBACK."""
    return v["verdict"] != "ROLLBACK"


def flagged(v: dict[str, Any]) -> bool:
    """INVESTIGATE or ROLLBACK."""
    return v["verdict"] in ("INVESTIGATE", "ROLLBACK")


def leaderboard_rows(root: Path) -> dict[str, dict[str, dict[str, float]]]:
    """``{board: {model: {win_rate, lc_win_rate, avg_length}}}`` from ``leaderboards/*.csv``."""
    boards: dict[str, dict[str, dict[str, float]]] = {}
    for path in sorted((root / "leaderboards").glob("*.csv")):
        board = path.stem.split("_")[0]  # AlpacaEval1 / AlpacaEval2
        with path.open(newline="") as f:
            rows: dict[str, dict[str, float]] = {}
            for row in csv.DictReader(f):
                model = row.get("") or row.get("name") or ""
                rows[model] = {"win_rate": round(float(row["win_rate"]), 2), "avg_length": int(row["avg_length"])}
                if row.get("length_controlled_winrate"):
                    rows[model]["lc_win_rate"] = round(float(row["length_controlled_winrate"]), 2)
        boards[board] = rows
    return boards


ALPACA_PAIRS = (
    ("gpt-3.5-turbo-0301", "gpt-3.5-turbo-0613", "not ROLLBACK (a published improvement, ~61% longer: length and "
     "drift have no direction, so DIVERGENCE / INVESTIGATE is right)", not_flagged_rollback),
    ("gpt4_0314", "gpt4_0613", "flagged, not PASS (a published regression, 17% shorter)",
     lambda v: v["verdict"] != "PASS"),
    ("gpt4_0613", "gpt4_0613_concise", "flagged, not PASS (the same model steered 45% shorter; win rate down)",
     lambda v: v["verdict"] != "PASS"),
    ("gpt4_0613", "gpt4_0613_verbose", "not ROLLBACK; flagged as a divergence (steered 29% longer; win rate up)",
     not_flagged_rollback),
)


def alpaca_cases(data: Path) -> tuple[list[Case], list[str]]:
    """The AlpacaEval pairs whose files exist; skip messages for the others."""
    root = data / "alpaca_eval"
    if not (root / "results").is_dir():
        return [], [f"alpaca_eval: {root / 'results'} not found, AlpacaEval cases skipped"]
    boards = leaderboard_rows(root) if (root / "leaderboards").is_dir() else {}
    loaded: dict[str, list[dict[str, str]]] = {}
    cases, skipped = [], []
    for old, new, expected, matches in ALPACA_PAIRS:
        missing = [m for m in (old, new) if not (root / "results" / m / "model_outputs.json").is_file()]
        if missing:
            skipped.append(f"alpaca {old} -> {new}: {', '.join(missing)} model_outputs.json not found, skipped")
            continue
        for m in (old, new):
            if m not in loaded:
                loaded[m] = json.loads((root / "results" / m / "model_outputs.json").read_text())
        a, b = loaded[old], loaded[new]
        if [r["instruction"] for r in a] != [r["instruction"] for r in b]:
            raise SystemExit(f"alpaca {old} vs {new}: the instructions differ (order or text); the pairs would not "
                             "be paired")
        requests = [request(f"alpaca-{i:03d}", i, r["dataset"], r["instruction"], {"source": "alpaca_eval"})
                    for i, r in enumerate(a)]
        outputs = {"baseline": {q.request_id: r["output"] for q, r in zip(requests, a, strict=True)},
                   "candidate": {q.request_id: r["output"] for q, r in zip(requests, b, strict=True)}}
        facts: dict[str, Any] = {board: {m: rows[m] for m in (old, new) if m in rows}
                                 for board, rows in boards.items()}
        facts["measured_mean_chars"] = {m: round(sum(len(r["output"]) for r in loaded[m]) / len(loaded[m]), 1)
                                        for m in (old, new)}
        cases.append(Case(f"alpaca: {old} -> {new}", "alpaca_eval", old, new, requests, outputs, facts, expected,
                          matches))
    return cases, skipped


MT_FAMILY = ("vicuna-7b-v1.3", "vicuna-13b-v1.3", "vicuna-33b-v1.3")
MT_PUBLISHED = {"vicuna-13b-v1.3": 6.39}  # /work/shared/data/README.md (MT-Bench, GPT-4 single-answer grading)


def mt_bench_cases(data: Path) -> tuple[list[Case], list[str]]:
    """Successive sizes of vicuna v1.3, first turn only, no references."""
    root = data / "mt_bench"
    if not (root / "question.jsonl").is_file():
        return [], [f"mt_bench: {root / 'question.jsonl'} not found, MT-Bench cases skipped"]
    questions = [json.loads(line) for line in (root / "question.jsonl").read_text().splitlines() if line.strip()]
    answers: dict[str, dict[int, str]] = {}
    skipped: list[str] = []
    for m in MT_FAMILY:
        path = root / "model_answer" / f"{m}.jsonl"
        if path.is_file():
            rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            answers[m] = {r["question_id"]: r["choices"][0]["turns"][0] for r in rows}
    requests = [request(f"mtbench-{q['question_id']}", i, q["category"], q["turns"][0], {"source": "mt_bench"})
                for i, q in enumerate(questions)]
    cases = []
    for old, new in zip(MT_FAMILY, MT_FAMILY[1:], strict=False):
        if old not in answers or new not in answers:
            skipped.append(f"mt_bench {old} -> {new}: model_answer file not found, skipped")
            continue
        lacking = [q["question_id"] for q in questions if q["question_id"] not in answers[old]
                   or q["question_id"] not in answers[new]]
        if lacking:
            raise SystemExit(f"mt_bench {old} -> {new}: no first-turn answer for questions {lacking[:10]}")
        outputs = {arm: {f"mtbench-{q['question_id']}": answers[m][q["question_id"]] for q in questions}
                   for arm, m in (("baseline", old), ("candidate", new))}
        facts: dict[str, Any] = {
            "published": "MT-Bench paper / leaderboard: larger vicuna v1.3 models score higher",
            "mt_bench_score_in_data_dir": {m: MT_PUBLISHED.get(m) for m in (old, new)},
            "measured_mean_chars": {m: round(sum(len(answers[m][q["question_id"]]) for q in questions)
                                             / len(questions), 1) for m in (old, new)}}
        cases.append(Case(f"mt_bench: {old} -> {new}", "mt_bench", old, new, requests, outputs, facts,
                          "not ROLLBACK (larger is reported better; no references, so at most a divergence)",
                          not_flagged_rollback))
    return cases, skipped


XSTEST_PAIRS = (
    ("llama2orig", "llama2new", "Llama-2-70b-chat, original system prompt removed"),
    ("mistralguard", "mistralinstruct", "Mistral-7B-Instruct-v0.1, guardrail system prompt removed"),
)
FULL, PARTIAL = "2_full_refusal", "3_partial_refusal"


def safety(ptype: str) -> str:
    """XSTest: the ``contrast_*`` types are the unsafe prompts."""
    return "unsafe" if ptype.startswith("contrast_") else "safe"


def human_rates(rows: list[dict[str, str]], key: Callable[[dict[str, str]], str]) -> dict[str, dict[str, Any]]:
    """Per segment (and ``*``): n, human full-refusal rate, full + partial rate."""
    groups: dict[str, list[dict[str, str]]] = {"*": rows}
    for r in rows:
        groups.setdefault(key(r), []).append(r)
    out = {}
    for seg, rs in groups.items():
        labels = Counter(r["final_label"] for r in rs)
        out[seg] = {"n": len(rs), "full": round(labels[FULL] / len(rs), 4),
                    "full_or_partial": round((labels[FULL] + labels[PARTIAL]) / len(rs), 4)}
    return out


def xstest_cases(data: Path) -> tuple[list[Case], list[str]]:
    """Each XSTest pair twice: segment = prompt type, and segment = safe / unsafe."""
    root = data / "refusal" / "exaggerated-safety" / "model_completions"
    cases, skipped = [], []
    for old, new, what in XSTEST_PAIRS:
        paths = {m: root / f"xstest_v2_completions_{m}.csv" for m in (old, new)}
        missing = [str(p) for p in paths.values() if not p.is_file()]
        if missing:
            skipped.append(f"xstest {old} -> {new}: {', '.join(missing)} not found, skipped")
            continue
        rows = {}
        for m, p in paths.items():
            with p.open(newline="", encoding="utf-8") as f:
                rows[m] = list(csv.DictReader(f))
        if [(r["id"], r["prompt"]) for r in rows[old]] != [(r["id"], r["prompt"]) for r in rows[new]]:
            raise SystemExit(f"xstest {old} vs {new}: the prompts differ; the pairs would not be paired")
        for seg_name, key in (("type", lambda r: r["type"]), ("safety", lambda r: safety(r["type"]))):
            requests = [request(f"xstest-{r['id']}", i, key(r), r["prompt"],
                                {"source": "xstest_v2", "type": r["type"], "safety": safety(r["type"])})
                        for i, r in enumerate(rows[old])]
            outputs = {arm: {f"xstest-{r['id']}": r["completion"] for r in rows[m]}
                       for arm, m in (("baseline", old), ("candidate", new))}
            human = {m: human_rates(rows[m], key) for m in (old, new)}
            facts = {"change": what, "published": "XSTest v2 human labels: refusals fall when the system prompt is "
                     "removed, on safe prompts (better) and on unsafe contrast_ prompts (a safety regression)",
                     "human_refusal_rate": {m: human[m]["*"] for m in (old, new)}}
            cases.append(Case(f"xstest: {old} -> {new} (segment = {seg_name})", "xstest", old, new, requests,
                              outputs, facts, "refusal falls in the gate's numbers as in the human labels; no "
                              "refusal breach (fewer refusals is the metric's better way)",
                              refusal_fell, human))
    return cases, skipped


def refusal_fell(v: dict[str, Any]) -> bool:
    """The gate's overall refusal rate is lower in the candidate."""
    check = next((c for c in v["checks"] if c["metric"] == "refusal"), None)
    return check is not None and check["delta"] is not None and float(check["delta"]) < 0


# ---- one gate run -----------------------------------------------------------------------------------------------

def slug(name: str) -> str:
    """A file-system name for a case."""
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name).strip("_")


def run_case(case: Case, work: Path) -> tuple[dict[str, Any], list[str], float]:
    """Writes the inputs, runs the CLI, returns the verdict.json, the command and the seconds it took."""
    d = work / slug(case.name)
    d.mkdir(parents=True, exist_ok=True)
    traffic = d / "traffic.parquet"
    write_traffic(case.requests, traffic)
    files = {}
    for arm, outputs in case.outputs.items():
        files[arm] = d / f"{arm}.jsonl"
        with files[arm].open("w", encoding="utf-8") as f:
            for q in case.requests:
                f.write(json.dumps({"request_id": q.request_id, "output": outputs[q.request_id]}) + "\n")
    cmd = [sys.executable, "-m", "harness", "replay", "experiment=default", f"name=validate_{case.group}",
           f"traffic.path={traffic}", f"baseline.imported={files['baseline']}",
           f"candidate.imported={files['candidate']}", "golden.path=null", f"output_dir={d / 'reports'}",
           "run_id=validate"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=os.environ | {"HF_HUB_OFFLINE": "1"})
    seconds = time.perf_counter() - start
    if proc.returncode not in VERDICT_CODES:
        raise RuntimeError(f"{case.name}: the gate exited {proc.returncode}\n{shlex.join(cmd)}\n"
                           f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    found = sorted((d / "reports").glob("*/validate/verdict.json"))
    if not found:
        raise RuntimeError(f"{case.name}: no verdict.json under {d / 'reports'}\n{proc.stdout[-3000:]}")
    verdict = json.loads(found[0].read_text())
    if VERDICT_CODES[proc.returncode] != verdict["verdict"]:
        raise RuntimeError(f"{case.name}: exit code {proc.returncode} but verdict.json says {verdict['verdict']}")
    return verdict, cmd, seconds


# ---- reading a verdict ------------------------------------------------------------------------------------------

def _num(x: Any) -> float | None:
    return None if x is None else round(float(x), 4)


def check_row(c: dict[str, Any]) -> dict[str, Any]:
    """The numbers of one check."""
    return {"metric": c["metric"], "family": c.get("family"), "segment": c.get("segment") or "*", "n": c.get("n"),
            "baseline": _num(c.get("baseline")), "candidate": _num(c.get("candidate")), "delta": _num(c.get("delta")),
            "rel_delta": _num(c.get("rel_delta")), "p_value": _num(c.get("p_value")), "status": c.get("status"),
            "role": c.get("role")}


def breached(verdict: dict[str, Any]) -> list[dict[str, Any]]:
    """Every breached check, overall first, then per segment."""
    rows = [c for c in verdict.get("checks", []) if c.get("status") == "breach"]
    rows += [c for c in verdict.get("segment_checks", []) if c.get("status") == "breach"]
    return [check_row(c) for c in rows]


def metric_rows(verdict: dict[str, Any], metric: str) -> dict[str, dict[str, Any]]:
    """One metric's checks: ``*`` overall and each segment."""
    out = {}
    for c in verdict.get("checks", []):
        if c["metric"] == metric:
            out["*"] = check_row(c)
    out |= {c["segment"]: check_row(c) for c in verdict.get("segment_checks", []) if c["metric"] == metric}
    return out


def drift_rows(verdict: dict[str, Any]) -> dict[str, Any] | None:
    """Mean cosine and the floor's story, or None when drift is off."""
    div = verdict.get("divergence")
    if not div:
        return None
    rows = [r for r in div.get("rows", []) if r.get("arm", "candidate") == "candidate"]
    keep = ("n", "mean_cosine", "p05_cosine", "share_below", "below_ci_low", "below_ci_high")
    mmd = (div.get("mmd_paired") or {}).get("candidate") or {}
    return {"model": div.get("model"), "floor_source": div.get("floor_source"), "aa_floor": div.get("aa_floor"),
            "mmd_paired": {k: _num(mmd.get(k)) for k in ("statistic", "p_value", "n_x", "n_y")} if mmd else None,
            "rows": [{"segment": r.get("segment") or "*"} | {k: (_num(r[k]) if isinstance(r.get(k), float)
                                                                 else r.get(k)) for k in keep if k in r}
                     for r in rows]}


def summarize(case: Case, verdict: dict[str, Any], cmd: list[str], seconds: float) -> dict[str, Any]:
    """The case's entry in validation.json."""
    entry: dict[str, Any] = {
        "case": case.name, "group": case.group, "baseline": case.baseline, "candidate": case.candidate,
        "requests": len(case.requests), "segments": dict(Counter(q.segment for q in case.requests)),
        "verdict": verdict["verdict"], "direction": verdict.get("direction"), "exit_code": verdict.get("exit_code"),
        "families": verdict.get("families"), "reasons": verdict.get("reasons"), "breaches": breached(verdict),
        "chars": metric_rows(verdict, "chars").get("*"), "refusal": metric_rows(verdict, "refusal").get("*"),
        "drift": drift_rows(verdict), "facts": case.facts, "expected": case.expected,
        "matches": bool(case.matches(verdict)), "seconds": round(seconds, 1),
        "command": shlex.join(["python", *cmd[1:]])}
    if case.group == "xstest":
        gate = metric_rows(verdict, "refusal")
        entry["refusal_by_segment"] = {
            seg: {"n": gate[seg]["n"] if seg in gate else None,
                  "gate_baseline": gate[seg]["baseline"] if seg in gate else None,
                  "gate_candidate": gate[seg]["candidate"] if seg in gate else None,
                  "gate_delta": gate[seg]["delta"] if seg in gate else None,
                  "gate_status": gate[seg]["status"] if seg in gate else None,
                  "human_full": [case.human[case.baseline][seg]["full"], case.human[case.candidate][seg]["full"]],
                  "human_full_or_partial": [case.human[case.baseline][seg]["full_or_partial"],
                                            case.human[case.candidate][seg]["full_or_partial"]]}
            for seg in case.human[case.baseline]}
    return entry


# ---- output -----------------------------------------------------------------------------------------------------

def fmt(x: float | None, pct: bool = False) -> str:
    """A number for the table."""
    if x is None:
        return "-"
    return f"{100 * x:.1f}%" if pct else (f"{x:.0f}" if abs(x) >= 100 else f"{x:.3g}")


def signals_cell(e: dict[str, Any], limit: int = 6) -> str:
    """The breached signals with their numbers."""
    parts = []
    for b in e["breaches"][:limit]:
        rate = b["metric"] != "chars" and b["baseline"] is not None and abs(b["baseline"]) <= 1
        where = "" if b["segment"] == "*" else f" [{b['segment']}]"
        parts.append(f"{b['metric']}{where} {fmt(b['baseline'], rate)} -> {fmt(b['candidate'], rate)}")
    if len(e["breaches"]) > limit:
        parts.append(f"+{len(e['breaches']) - limit} more")
    return "; ".join(parts) or "none"


def facts_cell(e: dict[str, Any]) -> str:
    """The published facts, short."""
    f = e["facts"]
    if e["group"] == "alpaca_eval":
        cells = []
        for board in sorted(k for k in f if k.startswith("AlpacaEval")):
            rows = f[board]
            if e["baseline"] in rows and e["candidate"] in rows:
                a, b = rows[e["baseline"]], rows[e["candidate"]]
                cells.append(f"AE{board[-1]} win {a['win_rate']} -> {b['win_rate']}, "
                             f"len {a['avg_length']} -> {b['avg_length']}")
            elif rows:
                cells.append(f"AE{board[-1]}: " + ", ".join(f"{m} win {r['win_rate']} len {r['avg_length']}"
                                                            for m, r in rows.items()))
        return "; ".join(cells)
    if e["group"] == "mt_bench":
        scores = ", ".join(f"{m} {s}" for m, s in f["mt_bench_score_in_data_dir"].items() if s is not None)
        return "larger reported better" + (f" (in data: {scores})" if scores else "")
    h = f["human_refusal_rate"]
    a, b = h[e["baseline"]], h[e["candidate"]]
    return (f"human refusal full {fmt(a['full'], True)} -> {fmt(b['full'], True)}, full+partial "
            f"{fmt(a['full_or_partial'], True)} -> {fmt(b['full_or_partial'], True)}")


def markdown(entries: list[dict[str, Any]]) -> str:
    """The summary table, then per XSTest case the refusal rate per segment."""
    lines = ["| case | verdict | direction | chars (gate) | refusal (gate) | breached signals | published | "
             "expected | matches |", "|---|---|---|---|---|---|---|---|---|"]
    for e in entries:
        c, r = e["chars"] or {}, e["refusal"] or {}
        lines.append(f"| {e['case']} | {e['verdict']} | {e['direction']} | {fmt(c.get('baseline'))} -> "
                     f"{fmt(c.get('candidate'))} | {fmt(r.get('baseline'), True)} -> {fmt(r.get('candidate'), True)} "
                     f"| {signals_cell(e)} | {facts_cell(e)} | {e['expected']} | "
                     f"{'yes' if e['matches'] else 'NO'} |")
    for e in entries:
        if "refusal_by_segment" not in e:
            continue
        lines += ["", f"{e['case']}: refusal per segment, gate (rule classifier) vs human labels",
                  "", "| segment | n | gate | gate status | human full | human full+partial |",
                  "|---|---|---|---|---|---|"]
        for seg, s in e["refusal_by_segment"].items():
            lines.append(f"| {seg} | {s['n']} | {fmt(s['gate_baseline'], True)} -> {fmt(s['gate_candidate'], True)} "
                         f"| {s['gate_status']} | {fmt(s['human_full'][0], True)} -> {fmt(s['human_full'][1], True)} "
                         f"| {fmt(s['human_full_or_partial'][0], True)} -> "
                         f"{fmt(s['human_full_or_partial'][1], True)} |")
    return "\n".join(lines)


def machine() -> str:
    """CPU, cores and whether a GPU is visible."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import torch

        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    except ImportError:
        gpu = "no torch"
    return f"{platform.system()} {platform.machine()}, {cpu}, {os.cpu_count()} cores, {gpu}"


def commit() -> str:
    """The repository's HEAD, with ``+dirty`` when the working tree has changes."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def main(argv: list[str] | None = None) -> int:
    """Builds the cases present, runs each through the CLI, writes the JSON and prints the table."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=None, help="the shared data dir (default $SHARED_DATA or "
                   "../shared/data)")
    p.add_argument("--only", default="", help="comma-separated groups to run: alpaca_eval, mt_bench, xstest")
    p.add_argument("--keep", type=Path, default=None, help="write the inputs and runs here instead of a temp dir")
    p.add_argument("--out", type=Path, default=None, help="where the JSON goes (default docs/bench/validation.json, "
                   "written only when every group ran; with --only, written only when --out is given)")
    a = p.parse_args(argv)
    data = data_dir(a.data)
    only = {g for g in a.only.split(",") if g}
    cases: list[Case] = []
    skipped: list[str] = []
    if not data.is_dir():
        skipped.append(f"{data}: the shared data directory is absent (set SHARED_DATA or --data); every case skipped")
    else:
        for group, build in (("alpaca_eval", alpaca_cases), ("mt_bench", mt_bench_cases), ("xstest", xstest_cases)):
            if only and group not in only:
                continue
            found, missing = build(data)
            cases += found
            skipped += missing
    for message in skipped:
        print(f"skip: {message}", file=sys.stderr)
    if not cases:
        print("no case has its data; nothing run", file=sys.stderr)
        return 0
    entries = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="validate_real_") as tmp:
        work = a.keep or Path(tmp)
        for case in cases:
            print(f"running {case.name} ({len(case.requests)} requests) ...", file=sys.stderr, flush=True)
            try:
                verdict, cmd, seconds = run_case(case, work)
            except RuntimeError as err:
                print(err, file=sys.stderr)
                return 1
            entries.append(summarize(case, verdict, cmd, seconds))
            print(f"  {verdict['verdict']} ({verdict.get('direction')}) in {seconds:.0f} s", file=sys.stderr)
    result = {"date": dt.date.today().isoformat(), "machine": machine(), "harness_commit": commit(),
              "data": str(data),
              "command": shlex.join(["python", "scripts/validate_real.py", *(argv if argv is not None
                                                                              else sys.argv[1:])]),
              "gate_command": "python -m harness replay experiment=default name=validate_<group> "
                              "traffic.path=<traffic.parquet> baseline.imported=<baseline.jsonl> "
                              "candidate.imported=<candidate.jsonl> golden.path=null output_dir=<dir> "
                              "run_id=validate",
              "seconds": round(time.perf_counter() - started, 1), "skipped": skipped, "cases": entries}
    out = a.out or (REPO / "docs" / "bench" / "validation.json"
                    if not only or only >= {"alpaca_eval", "mt_bench", "xstest"} else None)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
        print(f"wrote {out}", file=sys.stderr)
    print(markdown(entries))
    return 0


if __name__ == "__main__":
    sys.exit(main())
