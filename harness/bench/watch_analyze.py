"""The watch's A/A false-CHANGED rate and power per change and samples per prompt, from the probe-run pools that
``python -m harness.bench.watch collect`` stored (no server). Each simulated check draws, per prompt, ``k`` of the
reference session's samples and ``k`` of the other session's (without replacement) and 2 of each session's 4 greedy
passes, and runs the watch's frozen decision rule (``harness.watch.check.compare`` with its defaults: alpha 0.01 per
check, Bonferroni over the tests, hamming kernel, 2,000 within-prompt permutations) on them, with fresh seeds.
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from harness.bench.record import header
from harness.signals.drift import share_bounds

KS = (2, 4, 6, 8, 10, 12)
AA_PAIRS = (("ref", "aa1"), ("ref", "aa2"), ("aa1", "aa2"))
CHANGES = ("bf16", "top_p", "system_prompt", "int8")
GREEDY_DRAW = 2


def _pool(root: Path, session: str) -> tuple[dict[tuple[str, str], list[dict[str, Any]]], dict[str, Any]] | None:
    from harness.store import RunDir
    from harness.watch.sample import read_run

    run = RunDir(root, "sessions", session)
    if not (run.path / "samples.parquet").is_file():
        return None
    pool: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in read_run(run):
        pool[(r["probe_id"], r["pass"])].append(r)
    return pool, run.read_json("run.json")


def _draw(pool: dict[tuple[str, str], list[dict[str, Any]]], k: int, rng: np.random.Generator
          ) -> list[dict[str, Any]]:
    rows = []
    for (_pid, kind), items in pool.items():
        n = k if kind == "sample" else GREEDY_DRAW
        for j, i in enumerate(rng.choice(len(items), size=min(n, len(items)), replace=False)):
            rows.append({**items[i], "index": j})
    return rows


def simulate(ref: Any, new: Any, k: int, checks: int, seed: int, probes: Any, kernel: str = "hamming"
             ) -> dict[str, Any]:
    """``checks`` simulated checks of ``new`` against ``ref`` at ``k`` samples per prompt."""
    from harness.watch.check import CheckSettings, compare

    rng = np.random.default_rng(seed)
    decisions: dict[str, int] = defaultdict(int)
    rejected: dict[str, int] = defaultdict(int)
    p_mmd = []
    for _ in range(checks):
        settings = CheckSettings(kernel=kernel, seed=int(rng.integers(2**31)))
        rec = compare(probes, _draw(ref, k, rng), _draw(new, k, rng), settings)
        decisions[rec["decision"]] += 1
        for name, t in rec["tests"].items():
            rejected[name] += int(t["rejected"])
        p_mmd.append(rec["tests"]["sampled_mmd"]["p_value"])
    p = np.array(p_mmd)
    return {"k": k, "checks": checks, "changed": decisions["CHANGED"] / checks,
            "decisions": dict(decisions), "rejected_by": {n: v / checks for n, v in rejected.items()},
            "sampled_mmd_p_at_most": {str(a): float(np.mean(p <= a)) for a in (0.01, 0.05, 0.1, 0.5)}}


def analyze(root: Path, checks: int, seed: int, out: Path, probes: list[Any], kernel: str = "hamming"
            ) -> dict[str, Any]:
    """Every table the stored sessions allow, written to ``out`` (one JSON record; ``smallest_k_90`` per change).
    ``probes``: the probe set the sessions were collected with."""
    pools = {s: p for s in ("ref", "aa1", "aa2", *CHANGES) if (p := _pool(root, s)) is not None}
    t0 = time.perf_counter()
    ss = np.random.SeedSequence(seed)
    aa: list[dict[str, Any]] = []
    pairs = [p for p in AA_PAIRS if p[0] in pools and p[1] in pools]
    for k in KS:
        per_pair = [simulate(pools[a][0], pools[b][0], k, max(checks // len(pairs), 1), int(ss.spawn(1)[0]
                    .generate_state(1)[0]), probes, kernel) | {"pair": f"{a} vs {b}"} for a, b in pairs]
        n = sum(r["checks"] for r in per_pair)
        changed = round(sum(r["changed"] * r["checks"] for r in per_pair))
        aa.append({"k": k, "checks": n, "changed": changed / n, "changed_upper_95": share_bounds(changed, n, 0.05)[1],
                   "sampled_mmd_p_at_most": {a: float(np.mean([r["sampled_mmd_p_at_most"][a] for r in per_pair]))
                                             for a in per_pair[0]["sampled_mmd_p_at_most"]},
                   "per_pair": per_pair})
    power: dict[str, list[dict[str, Any]]] = {}
    for change in CHANGES:
        if change in pools and "ref" in pools:
            power[change] = [simulate(pools["ref"][0], pools[change][0], k, max(checks // 2, 1),
                                      int(ss.spawn(1)[0].generate_state(1)[0]), probes, kernel) for k in KS]
    smallest = {c: next((r["k"] for r in rows if r["changed"] >= 0.9), None) for c, rows in power.items()}
    sessions = {s: {k: v for k, v in meta.items() if k in ("date", "dtype", "extra", "server_start_s", "generate_s",
                                                          "requests", "output_tokens", "errors", "checkpoint")}
                for s, (_, meta) in pools.items()}
    record = {**header("harness.bench.watch", ["analyze", "--checks", str(checks), "--seed", str(seed),
                                          "--kernel", kernel, "--out", str(out)]),
              "prompts": len(probes), "kernel": kernel, "ks": list(KS), "aa": aa, "power": power,
              "smallest_k_90": smallest,
              "sessions": sessions, "analysis_s": round(time.perf_counter() - t0, 1)}
    import json

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    return record


def tables(record: dict[str, Any]) -> str:
    """The Markdown tables of docs/watch.md from one ``analyze`` record."""
    ks = record["ks"]
    lines = ["| samples per prompt k | " + " | ".join(str(k) for k in ks) + " |", "|---|" + "---|" * len(ks)]
    lines.append("| A/A (restarted server): false CHANGED | " + " | ".join(
        f"{r['changed']:.1%} of {r['checks']} (<= {r['changed_upper_95']:.1%})" for r in record["aa"]) + " |")
    lines.append("| A/A: sampled_mmd p <= 0.05 / <= 0.5 | " + " | ".join(
        f"{r['sampled_mmd_p_at_most']['0.05']:.0%} / {r['sampled_mmd_p_at_most']['0.5']:.0%}" for r in record["aa"])
        + " |")
    for change, rows in record["power"].items():
        lines.append(f"| {change}: power | " + " | ".join(f"{r['changed']:.0%} ({r['checks']})" for r in rows) + " |")
    lines += ["", "| change | test | " + " | ".join(f"k={k}" for k in ks) + " |", "|---|---|" + "---|" * len(ks)]
    for change, rows in [("A/A", record["aa"]), *record["power"].items()]:
        tests = sorted({t for r in rows for t in (r.get("rejected_by") or _pooled(r))})
        for t in tests:
            vals = [(r.get("rejected_by") or _pooled(r)).get(t, 0.0) for r in rows]
            lines.append(f"| {change} | {t} | " + " | ".join(f"{v:.0%}" for v in vals) + " |")
    return "\n".join(lines)


def _pooled(row: dict[str, Any]) -> dict[str, float]:
    """An A/A row's per-test rejection shares pooled over its pairs."""
    out: dict[str, float] = defaultdict(float)
    for p in row.get("per_pair", []):
        for t, v in p["rejected_by"].items():
            out[t] += v * p["checks"] / row["checks"]
    return dict(out)
