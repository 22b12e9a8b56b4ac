"""False rollbacks and detection delay of the canary's sequential statistics, by simulation (docs/canary.md).

    python -m harness.bench.canary_sim [--canaries 1000] [--out docs/bench/canary_sim.json]

Each simulated canary is 72 hourly windows of cumulative data: control and canary arms answer different requests
(unpaired), ``--per-hour`` requests an hour of which ``--share`` go to the canary. Every window is one look. Three
tables, all vectorized in numpy (seconds on 2 cores):

1. one rate metric, A/A (5% vs 5%): share of canaries with a breach at any look, the naive fixed-sample one-sided
   z-test (alpha 0.05 at every look) beside the mSPRT (``harness.canary.sequential``), at 48 and 72 looks;
2. the canary policy, A/A: three signal families like the canary's (stats: 5 rates + the length; drift: one mean;
   golden: 2 rates from a scheduled slice every 6 windows), Holm within each family at each look; a window with
   two or more breached families is a ROLLBACK, one an INVESTIGATE (``harness.gate.decide``);
3. detection: windows until the first breach for a 5% -> 7% refusal shift, and for shifts the size of the zoo
   regressions' offline effects (docs/zoo.md), with the same policy.

Metrics are simulated independent of each other (real ones are correlated, which makes a joint false alarm no more
likely than here for Holm's bound); margins are 0 (the test alone decides).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.canary.sequential import Moments, Sequential, always_valid, naive_z_p, two_sample

DEFAULT_OUT = Path("docs/bench/canary_sim.json")


@dataclass(frozen=True)
class Metric:
    """A simulated metric: ``rate`` (Bernoulli ``control``/``canary`` probabilities) or ``mean`` (lognormal with
    these means and ``sd_log``); ``worse``: +1 higher is worse, -1 lower is worse, 0 either way (divergence)."""

    name: str
    kind: str
    control: float
    canary: float
    worse: int
    sd_log: float = 0.6


def _arm_moments(m: Metric, value: float, n: np.ndarray, shape: tuple[int, int], rng: np.random.Generator
                 ) -> Moments:
    """Cumulative moments over the looks (axis 1) of one arm; ``n`` is requests per window (0 = no data)."""
    n_cum = np.cumsum(np.broadcast_to(n, shape), axis=1).astype(float)
    if m.kind == "rate":
        k = np.cumsum(rng.binomial(np.broadcast_to(n, shape).astype(np.int64), value), axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            p = k / n_cum
        return Moments(n_cum, p, p * (1 - p))
    mu = np.log(value) - m.sd_log ** 2 / 2
    counts = np.broadcast_to(n, shape)
    s1, s2 = np.zeros(shape), np.zeros(shape)
    for w in range(shape[1]):  # one window at a time: (canaries, requests) draws stay small
        nw = int(counts[0, w])
        x = rng.lognormal(mu, m.sd_log, size=(shape[0], nw))
        s1[:, w], s2[:, w] = x.sum(1), (x * x).sum(1)
    s1, s2 = np.cumsum(s1, axis=1), np.cumsum(s2, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s1 / n_cum
        return Moments(n_cum, mean, np.maximum(s2 / n_cum - mean * mean, 0.0))


def _holm(p: np.ndarray) -> np.ndarray:
    """Holm-adjusted p-values along axis 0 (the metrics of one family), vectorized over the other axes."""
    m = p.shape[0]
    order = np.argsort(p, axis=0)
    sorted_p = np.take_along_axis(p, order, axis=0)
    factors = (m - np.arange(m)).reshape((m,) + (1,) * (p.ndim - 1))
    adj = np.minimum(1.0, np.maximum.accumulate(sorted_p * factors, axis=0))
    out = np.empty_like(adj)
    np.put_along_axis(out, order, adj, axis=0)
    return out


def family_breach(metrics: list[Metric], n_control: np.ndarray, n_canary: np.ndarray, shape: tuple[int, int],
                  params: Sequential, rng: np.random.Generator, naive: bool) -> np.ndarray:
    """Boolean (canaries, windows): the family has a breached metric at that look."""
    ps, worse_dirs = [], []
    for m in metrics:
        c = _arm_moments(m, m.control, n_control, shape, rng)
        k = _arm_moments(m, m.canary, n_canary, shape, rng)
        enough = (c.n >= params.min_per_arm) & (k.n >= params.min_per_arm)
        if naive:
            p = naive_z_p(c, k, worse_is_higher=m.worse >= 0)
            p = np.minimum(1.0, 2 * np.minimum(p, 1 - p)) if m.worse == 0 else p
            d = k.mean - c.mean
        else:
            look = two_sample(c, k, params)
            p, d = always_valid(np.where(enough, look.p, 1.0), axis=1), look.delta
        worse = np.nan_to_num(d) != 0 if m.worse == 0 else np.nan_to_num(d) * m.worse > 0
        ps.append(np.where(enough, p, 1.0))
        worse_dirs.append(worse & enough)
    adj = _holm(np.stack(ps))
    return np.any((adj < params.alpha) & np.stack(worse_dirs), axis=0)


@dataclass(frozen=True)
class Scenario:
    """Traffic of one simulated canary: hourly windows, requests an hour, the canary's share, golden schedule."""

    windows: int = 72
    per_hour: int = 2000
    share: float = 0.05
    golden_every: int = 6
    golden_items: int = 40

    def counts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Requests per window: control, canary, and golden items per arm (only on scheduled windows)."""
        canary = round(self.per_hour * self.share)
        golden = np.where((np.arange(self.windows) + 1) % self.golden_every == 0, self.golden_items, 0)
        return np.full(self.windows, self.per_hour - canary), np.full(self.windows, canary), golden


def stats_family(refusal: float = 0.05, hedge: float = 0.08, chars: float = 85.0, json_valid: float = 0.97,
                 structure_ok: float = 0.9) -> list[Metric]:
    """The stats family's simulated metrics with the canary's values (the control's are the defaults)."""
    return [Metric("refusal", "rate", 0.05, refusal, +1), Metric("hedge", "rate", 0.08, hedge, +1),
            Metric("empty", "rate", 0.01, 0.01, +1), Metric("json_valid", "rate", 0.97, json_valid, -1),
            Metric("structure_ok", "rate", 0.9, structure_ok, -1), Metric("chars", "mean", 85.0, chars, 0)]


def canary_policy(fams: dict[str, list[Metric]], sc: Scenario, canaries: int, params: Sequential,
                  rng: np.random.Generator, naive: bool) -> dict[str, np.ndarray]:
    """Per canary: first window with any breach (INVESTIGATE or worse) and first ROLLBACK window (-1: never)."""
    shape = (canaries, sc.windows)
    n_control, n_canary, golden = sc.counts()
    breached = []
    for name, metrics in fams.items():
        nc, nk = (golden, golden) if name == "golden" else (n_control, n_canary)
        breached.append(family_breach(metrics, nc, nk, shape, params, rng, naive))
    count = np.sum(breached, axis=0)
    first = lambda mask: np.where(mask.any(1), mask.argmax(1), -1)  # noqa: E731
    return {"investigate": first(count >= 1), "rollback": first(count >= 2)}


def aa_families() -> dict[str, list[Metric]]:
    return {"stats": stats_family(), "drift": [Metric("drift_similarity", "mean", 0.5, 0.5, 0, 0.3)],
            "golden": [Metric("golden_rouge_l", "rate", 0.9, 0.9, -1), Metric("golden_regex", "rate", 0.9, 0.9, -1)]}


REGRESSIONS: dict[str, Callable[[], dict[str, list[Metric]]]] = {
    "refusal 5% -> 7%": lambda: {**aa_families(), "stats": stats_family(refusal=0.07)},
    # the zoo regressions' offline effects on all traffic (docs/zoo.md, README): terse halves the length and drops
    # list structure; hedging hedges on 15.8% of requests; json_drift breaks JSON on 26% of extract (~8% of traffic)
    "zoo terse (chars 85 -> 43, structure_ok 90% -> 0%)":
        lambda: {**aa_families(), "stats": stats_family(chars=43.0, structure_ok=0.0)},
    "zoo hedging (hedge 8% -> 24%)": lambda: {**aa_families(), "stats": stats_family(hedge=0.238)},
    "zoo json_drift (json_valid 97% -> 89%)": lambda: {**aa_families(), "stats": stats_family(json_valid=0.89)},
}


def _summary(first: np.ndarray, windows: int) -> dict[str, Any]:
    hit = first[first >= 0] + 1
    return {"share": float(np.mean(first >= 0)), "median_windows": float(np.median(hit)) if len(hit) else None,
            "p90_windows": float(np.quantile(hit, 0.9)) if len(hit) else None, "of_windows": windows}


def single_rate_aa(canaries: int, sc: Scenario, params: Sequential, rng: np.random.Generator) -> dict[str, Any]:
    out: dict[str, Any] = {}
    n_control, n_canary, _ = sc.counts()
    for looks in (48, sc.windows):
        shape = (canaries, looks)
        fam = [Metric("refusal", "rate", 0.05, 0.05, +1)]
        for label, naive in (("naive_z", True), ("msprt", False)):
            b = family_breach(fam, n_control[:looks], n_canary[:looks], shape, params, rng, naive)
            out[f"{label}_{looks}_looks"] = float(b.any(1).mean())
    return out


def run(canaries: int = 1000, seed: int = 0, sc: Scenario | None = None, params: Sequential | None = None
        ) -> dict[str, Any]:
    """Every table of the module docstring, as one JSON-ready record."""
    sc, params = sc or Scenario(), params or Sequential()
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    single = single_rate_aa(canaries, sc, params, rng)
    policy = {}
    for label, naive in (("naive_z", True), ("msprt", False)):
        r = canary_policy(aa_families(), sc, canaries, params, rng, naive)
        policy[label] = {"false_rollback": float(np.mean(r["rollback"] >= 0)),
                         "false_investigate": float(np.mean(r["investigate"] >= 0))}
    detection = {}
    for name, fams in REGRESSIONS.items():
        r = canary_policy(fams(), sc, canaries, params, rng, naive=False)
        detection[name] = {"first_breach": _summary(r["investigate"], sc.windows)}
    return {"canaries": canaries, "seed": seed, "scenario": asdict(sc), "sequential": asdict(params),
            "single_rate_aa": single, "policy_aa": policy, "detection": detection,
            "tau_sensitivity": tau_table(max(200, canaries // 4), sc, params, rng),
            "seconds": round(time.perf_counter() - t0, 1)}


TAUS = (0.05, 0.1, 0.25, 0.5)


def tau_table(canaries: int, sc: Scenario, params: Sequential, rng: np.random.Generator) -> dict[str, Any]:
    """For each mixture sd ``tau_sd``: A/A false breach (one 5% rate) and false ROLLBACK, and the median windows to
    detect 5% -> 7% refusal and the terse shift."""
    from dataclasses import replace

    n_control, n_canary, _ = sc.counts()
    out: dict[str, Any] = {"canaries": canaries}
    for tau in TAUS:
        p = replace(params, tau_sd=tau)
        single = family_breach([Metric("refusal", "rate", 0.05, 0.05, +1)], n_control, n_canary,
                               (canaries, sc.windows), p, rng, naive=False).any(1).mean()
        aa = canary_policy(aa_families(), sc, canaries, p, rng, naive=False)
        det = {name: _summary(canary_policy(REGRESSIONS[name](), sc, canaries, p, rng, naive=False)["investigate"],
                              sc.windows)["median_windows"] for name in list(REGRESSIONS)[:2]}
        out[str(tau)] = {"single_rate_false_breach": float(single),
                         "false_rollback": float(np.mean(aa["rollback"] >= 0)), "median_windows": det}
    return out


def tables(r: dict[str, Any]) -> str:
    """The two Markdown tables of docs/canary.md."""
    s, p = r["single_rate_aa"], r["policy_aa"]
    lines = [f"A/A, {r['canaries']} canaries of {r['scenario']['windows']} hourly windows "
             f"({r['scenario']['per_hour']} requests/h, {r['scenario']['share']:.0%} to the canary):", "",
             "| test | 1 rate, 48 looks | 1 rate, 72 looks | policy: false INVESTIGATE | policy: false ROLLBACK |",
             "|---|---|---|---|---|"]
    for label, name in (("naive_z", "naive one-sided z-test, alpha 0.05 per look"), ("msprt", "mSPRT (always valid)")):
        lines.append(f"| {name} | {s[f'{label}_48_looks']:.1%} | {s[f'{label}_72_looks']:.1%} | "
                     f"{p[label]['false_investigate']:.1%} | {p[label]['false_rollback']:.1%} |")
    lines += ["", "| shift (canary vs control) | detected within 72 windows | median windows | p90 windows |",
              "|---|---|---|---|"]
    for name, d in r["detection"].items():
        f = d["first_breach"]
        lines.append(f"| {name} | {f['share']:.0%} | {f['median_windows']:g} | {f['p90_windows']:g} |")
    t = r["tau_sensitivity"]
    names = list(r["detection"])[:2]
    lines += ["", f"tau_sd ({t['canaries']} canaries each):", "",
              f"| tau_sd | A/A: 1 rate, 72 looks | A/A: false ROLLBACK | median windows: {names[0]} | "
              f"median windows: {names[1]} |", "|---|---|---|---|---|"]
    for tau in TAUS:
        row = t[str(tau)]
        lines.append(f"| {tau:g} | {row['single_rate_false_breach']:.1%} | {row['false_rollback']:.1%} | "
                     f"{row['median_windows'][names[0]]:g} | {row['median_windows'][names[1]]:g} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m harness.bench.canary_sim", description=__doc__.splitlines()[0])
    ap.add_argument("--canaries", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    a = ap.parse_args(argv)
    from harness.bench.record import header

    r = {**header("harness.bench.canary_sim", argv), **run(a.canaries, a.seed)}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(r, indent=1) + "\n")
    print(tables(r))
    print(f"written: {a.out} ({r['seconds']} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
