"""Does the decision rule mean what it says? Breach, inconclusive and false-improvement rates by simulation, with the
gate's own functions (docs/gate.md, "Validity of the rule"). A benchmark: it writes tables, it asserts nothing.

    python -m harness.bench.validate_rule [--seed 2412] [--binary-reps 20000] [--graded-reps 5000]
        [--aa-run RUN_DIR] [--benign-run RUN_DIR] [--resamples 200] [--out docs/bench/validate_rule.json]

1. **Offline operating characteristics.** One gated check (a family of one: level = alpha = 0.05 each side), margin
   ``m`` = 0.02, true drops 0, m/2, m, 1.5m, 2m, at ``n_required`` (the rule's own ``required_n`` at the level and
   power 0.8, from the true sd under no change) and 4x. A **paired binary** metric (10% of pairs change under no
   change, half each way; a drop moves the split) read with Tango's score bounds, and a **graded** one whose
   differences are skewed like "a few items break" (85%: N(+0.03, 0.12), 15%: N(-0.17, 0.30), mean 0, shifted by
   the drop) read with the paired t. Each replicate goes through ``harness.analysis.margin.Paired.bounds`` and
   ``harness.gate.zone``.
2. **A few items break**: 90% of items gain 0.01, 10% collapse by 0.5 (mean -4.1 points); the smallest ``n`` at
   which ``harness.gate.metric_checks`` reads it as a breach, and its reading at every ``n`` (never ``ok``).
3. **Real outputs, resampled** (optional; stored runs of ``experiment=zoo_aa`` and ``zoo_benign``): requests drawn
   with replacement, the paired summary recomputed, gated by ``metric_checks`` (+ ``drift_checks`` for the benign
   run, its per-request cosines against the A/A floor of the resample) and ``decide``. A/A: the baseline against
   the A/A arm (baseline in bf16) with each request's two arms swapped at random (exchangeable under A/A). Benign:
   the baseline against the benign candidate as served ("different but not worse").
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from harness.analysis.margin import Paired
from harness.analysis.paired import required_n
from harness.gate import Policy, decide, metric_checks, zone

MARGIN = 0.02
EFFECTS = (0.0, 0.5, 1.0, 1.5, 2.0)  # true drops, in margins
DISCORDANT = 0.10  # binary: share of pairs that change under no change
GRADED = ((0.85, 0.03, 0.12), (0.15, -0.17, 0.30))  # (weight, mean, sd) of the difference under no change
DEFAULT_OUT = Path("docs/bench/validate_rule.json")


def graded_sd() -> float:
    mean = sum(w * mu for w, mu, _ in GRADED)
    return float(np.sqrt(sum(w * (s * s + (mu - mean) ** 2) for w, mu, s in GRADED)))


def _zones(lower: np.ndarray, upper: np.ndarray) -> dict[str, float]:
    z = np.frompyfunc(lambda lo, hi: zone(lo, hi, MARGIN, True), 2, 1)(lower, upper)
    return {k: float(np.mean(z == k)) for k in ("breach", "inconclusive", "ok", "improved")}


def binary_cell(n: int, drop: float, reps: int, level: float, rng: np.random.Generator) -> dict[str, float]:
    p_down, p_up = (DISCORDANT + drop) / 2, (DISCORDANT - drop) / 2
    counts = rng.multinomial(n, [p_down, p_up, 1 - p_down - p_up], size=reps)
    down, up = counts[:, 0].astype(float), counts[:, 1].astype(float)
    return _zones(*Paired("tango", n, (up - down) / n, 0.0, down, up).bounds(level))


def graded_cell(n: int, drop: float, reps: int, level: float, rng: np.random.Generator) -> dict[str, float]:
    means, sds = np.empty(reps), np.empty(reps)
    chunk = max(1, 2_000_000 // n)
    w = np.array([g[0] for g in GRADED])
    mu = np.array([g[1] for g in GRADED])
    sd = np.array([g[2] for g in GRADED])
    for a in range(0, reps, chunk):
        k = min(chunk, reps - a)
        part = rng.choice(len(GRADED), size=(k, n), p=w)
        d = rng.normal(mu[part], sd[part]) - drop
        means[a:a + k], sds[a:a + k] = d.mean(1), d.std(1, ddof=1)
    return _zones(*Paired("paired_t", n, means, sds).bounds(level))


def offline_table(binary_reps: int, graded_reps: int, rng: np.random.Generator, alpha: float = 0.05,
                  power: float = 0.8) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind, sd0, cell, reps in (("binary", float(np.sqrt(DISCORDANT)), binary_cell, binary_reps),
                                  ("graded", graded_sd(), graded_cell, graded_reps)):
        n_req = required_n(MARGIN, sd0, alpha, power)
        rows = {}
        for label, n in (("n_required", n_req), ("4x", 4 * n_req)):
            rows[label] = {"n": n, "effects": {f"{e:g}m": cell(n, e * MARGIN, reps, alpha, rng) for e in EFFECTS}}
        out[kind] = {"sd_no_change": sd0, "reps": reps, "level": alpha, **rows}
    return out


def few_items_break(alpha: float = 0.05) -> dict[str, Any]:
    """The 90% +0.01 / 10% -0.5 case through the gate: its status per n and the first n that breaches."""
    from harness.analysis.paired import Differences, paired_test

    def status(n: int) -> str:
        base = np.full(n, 0.7)
        cand = base + np.where(np.arange(n) % 10 == 0, -0.5, 0.01)
        t = paired_test(Differences.of(base, cand))
        row = {"metric": "golden_rouge_l", "family": "golden", "segment": None, "n": n, "baseline": 0.7,
               "candidate": float(cand.mean()), "delta": float((cand - base).mean()), "rel_delta": None,
               "higher_is_better": True, "role": "eval", "advisory": False, "margin_absolute": MARGIN,
               "margin_relative": None, **t}
        return metric_checks([row], Policy(alpha=alpha))[0].status

    statuses = {n: status(n) for n in (30, 50, 100, 150, 200, 400, 1000, 4000)}
    first = next(n for n in range(30, 1001, 10) if status(n) == "breach")
    return {"statuses": statuses, "first_breach_n": first, "never_ok": all(s != "ok" for s in statuses.values())}


def _summary_rows(pairs: dict[tuple[str, str], dict[str, np.ndarray]], weights: np.ndarray, swap: np.ndarray | None,
                  catalog: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """``summary.sql`` rows from per-request pairs, each request counted ``weights[request]`` times (a bootstrap
    draw); ``swap``: per request, the two arms exchanged."""
    rows = []
    for (metric, seg), p in pairs.items():
        w = weights[p["req"]]
        n = int(w.sum())
        if n == 0:
            continue
        b, c = p["base"], p["cand"]
        if swap is not None:
            s = swap[p["req"]]
            b, c = np.where(s, c, b), np.where(s, b, c)
        d = c - b
        mean = float(w @ d) / n
        sd = float(np.sqrt(max(float(w @ (d - mean) ** 2) / (n - 1), 0.0))) if n > 1 else 0.0
        binary = bool(np.all((b == 0) | (b == 1)) and np.all((c == 0) | (c == 1)))
        base = float(w @ b) / n
        rows.append({**catalog[metric], "metric": metric, "segment": None if seg == "*" else seg, "n": n,
                     "baseline": base, "candidate": float(w @ c) / n, "delta": mean,
                     "rel_delta": mean / abs(base) if base else None, "sd_diff": sd,
                     "test": "tango" if binary else "paired_t", "down": int(w @ ((b == 1) & (c == 0))),
                     "up": int(w @ ((b == 0) & (c == 1))), "ci_low": mean, "ci_high": mean, "n_nonfinite": 0})
    return rows


def _load_pairs(run: Path, candidate_arm: str) -> tuple[dict[tuple[str, str], dict[str, np.ndarray]],
                                                        dict[str, dict[str, Any]], list[str]]:
    import pyarrow.parquet as pq

    sig = pq.read_table(run / "signals.parquet").to_pandas()
    sig = sig[sig["value"].notna() & np.isfinite(sig["value"])]
    keys = ("family", "higher_is_better", "role", "advisory", "margin_absolute", "margin_relative")
    cat = {r["name"]: {k: r[k] for k in keys} for r in pq.read_table(run / "metrics.parquet").to_pylist()}
    base = sig[sig["arm"] == "baseline"]
    cand = sig[sig["arm"] == candidate_arm][["request_id", "metric", "value"]]
    joined = base.merge(cand, on=["request_id", "metric"], suffixes=("", "_cand"))
    ids = sorted(set(joined["request_id"]))
    index = {r: i for i, r in enumerate(ids)}
    pairs: dict[tuple[str, str], dict[str, np.ndarray]] = {}
    for (metric, seg), g in joined.groupby(["metric", "segment"]):
        if metric not in cat:
            continue
        part = {"req": g["request_id"].map(index).to_numpy(), "base": g["value"].to_numpy(float),
                "cand": g["value_cand"].to_numpy(float)}
        pairs[(metric, seg)] = part
        whole = pairs.setdefault((metric, "*"), {"req": np.empty(0, int), "base": np.empty(0), "cand": np.empty(0)})
        for k in part:
            whole[k] = np.concatenate([whole[k], part[k]])
    return pairs, cat, ids


def _load_drift(run: Path, ids: list[str]) -> dict[str, np.ndarray]:
    import pyarrow.parquet as pq

    d = pq.read_table(run / "drift.parquet").to_pandas()
    index = {r: i for i, r in enumerate(ids)}
    d = d[d["request_id"].isin(index)]
    return {"req": d["request_id"].map(index).to_numpy(), "arm": d["arm"].to_numpy(),
            "segment": d["segment"].to_numpy(), "cosine": d["cosine"].to_numpy()}


def _drift_rows(d: dict[str, np.ndarray], weights: np.ndarray, quantile: float) -> list[dict[str, Any]]:
    """Drift summary rows of one resample: the floor is the resample's A/A quantile of cosine, at most the practical
    floor (``harness.signals.drift.PRACTICAL_FLOOR``), as the drift family sets it."""
    from harness.signals.drift import PRACTICAL_FLOOR

    w_all = weights[d["req"]]
    aa = d["arm"] == "aa"
    cos = d["cosine"]
    floor = min(float(np.quantile(np.repeat(cos[aa], w_all[aa]), quantile)), PRACTICAL_FLOOR)
    rows = []
    below_aa = {int(r): c < floor for r, c in zip(d["req"][aa], cos[aa], strict=True)}
    for arm in ("aa", "candidate"):
        for seg in (None, *sorted(set(d["segment"]))):
            m = (d["arm"] == arm) & ((d["segment"] == seg) if seg else True)
            n, k = int(w_all[m].sum()), int(w_all[m] @ (cos[m] < floor))
            row = {"arm": arm, "segment": seg, "n": n, "n_below": k, "share_below": k / n if n else None}
            if arm == "candidate":  # paired with the A/A arm on the same requests (drift_pairs.sql)
                has = np.array([int(r) in below_aa for r in d["req"][m]], bool)
                a = np.array([below_aa.get(int(r), False) for r in d["req"][m]], bool)
                c, w = (cos[m] < floor), w_all[m]
                row |= {"n_pairs": int(w[has].sum()), "up": int(w[has] @ (c[has] & ~a[has])),
                        "down": int(w[has] @ (a[has] & ~c[has])), "aa_below": int(w[has] @ a[has])}
            rows.append(row)
    return rows


def resampled(run: Path, candidate_arm: str, swap: bool, resamples: int, rng: np.random.Generator,
              drift: bool) -> dict[str, Any]:
    from harness.signals.drift import drift_checks

    pairs, cat, ids = _load_pairs(run, candidate_arm)
    drift_table = _load_drift(run, ids) if drift else None
    verdicts: Counter[str] = Counter()
    families: Counter[str] = Counter()
    policy = Policy()
    for _ in range(resamples):
        weights = rng.multinomial(len(ids), np.full(len(ids), 1 / len(ids)))
        flips = rng.random(len(ids)) < 0.5 if swap else None
        checks = metric_checks(_summary_rows(pairs, weights, flips, cat), policy)
        if drift_table is not None:
            checks += drift_checks(_drift_rows(drift_table, weights, 0.05), 0.05, policy)
        v = decide(checks)
        verdicts[v.verdict] += 1
        families.update(f for f, s in v.families.items() if s == "breached")
    return {"run": str(run), "candidate_arm": candidate_arm, "arms_swapped_at_random": swap, "resamples": resamples,
            "requests": len(ids), "verdicts": dict(verdicts), "families_breached": dict(families)}


def tables(r: dict[str, Any]) -> str:
    lines = []
    for kind in ("binary", "graded"):
        k = r["offline"][kind]
        lines += ["", f"{kind} (sd of d under no change {k['sd_no_change']:.3f}, {k['reps']} replicates per cell):", "",
                  "| n | true drop | breach | inconclusive | ok | improved |", "|---|---|---|---|---|---|"]
        for label in ("n_required", "4x"):
            for eff, z in k[label]["effects"].items():
                lines.append(f"| {k[label]['n']:,} ({label}) | {eff} | {z['breach']:.1%} | {z['inconclusive']:.1%} | "
                             f"{z['ok']:.1%} | {z['improved']:.2%} |")
    f = r["few_items_break"]
    lines += ["", f"few items break: {f['statuses']}; first breach at n = {f['first_breach_n']}"]
    for name in ("aa", "benign"):
        if name in r:
            lines.append(f"{name}: {r[name]['verdicts']} (families breached {r[name]['families_breached']})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m harness.bench.validate_rule", description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=2418)
    ap.add_argument("--binary-reps", type=int, default=20000)
    ap.add_argument("--graded-reps", type=int, default=5000)
    ap.add_argument("--aa-run", type=Path, default=None)
    ap.add_argument("--benign-run", type=Path, default=None)
    ap.add_argument("--resamples", type=int, default=200)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    a = ap.parse_args(argv)
    from harness.bench.record import header

    rng = np.random.default_rng(a.seed)
    t0 = time.perf_counter()
    r: dict[str, Any] = {**header("harness.bench.validate_rule", argv), "seed": a.seed,
                         "offline": offline_table(a.binary_reps, a.graded_reps, rng),
                         "few_items_break": few_items_break()}
    if a.aa_run:
        r["aa"] = resampled(a.aa_run, "aa", True, a.resamples, rng, drift=False)
    if a.benign_run:
        r["benign"] = resampled(a.benign_run, "candidate", False, a.resamples, rng, drift=True)
    r["seconds"] = round(time.perf_counter() - t0, 1)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(r, indent=1, default=str) + "\n")
    print(tables(r))
    print(f"written: {a.out} ({r['seconds']} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
