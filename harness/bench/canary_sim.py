"""False rollbacks and detection delay of the canary's decision rule, by simulation (docs/canary.md).

    python -m harness.bench.canary_sim [--canaries 1000] [--seed 2419] [--out docs/bench/canary_sim.json]

Each simulated canary is 72 hourly windows of cumulative data: control and canary arms answer different requests
(unpaired), ``--per-hour`` requests an hour of which ``--share`` go to the canary. Every window is one look. The
rule is the canary's (``harness.canary.windows``): per metric the mSPRT's always-valid confidence sequence at alpha
split over the family's metrics (``harness.gate.family_levels``), a breach only when it lies wholly beyond the
metric's margin the worse way; the margins are the catalog's (``harness.signals.stats.METRICS``, the golden
family's 2 points, the canary's drift_similarity 0.02); rates need ``min_events`` expected events. Tables, all
vectorized in numpy (seconds on 2 cores):

1. one refusal check: A/A with the naive fixed-sample z-test and the mSPRT against no change (the tests alone,
   margin 0), and the rule on A/A and on a 5% -> 7% shift (within the 3-point margin), at 48 and 72 looks;
2. the canary policy, A/A: three families (stats: 6 rates + the length; drift: one mean; golden: 2 rates from a
   scheduled slice every 6 windows); a window with two or more breached families is a ROLLBACK, one an
   INVESTIGATE (``harness.gate.decide``);
3. a rare rate (0.05-0.2%) on A/A against a zero margin, with and without the expected-events guard;
4. detection: windows until the first breach (and the first ROLLBACK) for refusal 5% -> 7% and 5% -> 12%, a new
   failure mode (errors 0.1% -> 5%), and shifts the size of the zoo regressions' offline effects (docs/zoo.md);
   tables 2-4 on a hand-picked family (7 stats metrics, overall only, golden unpaired);
5. the same questions on the real catalogue, its margins and segments (``harness.bench.canary_traffic``: every
   gated stats metric, drift similarity and the zoo golden set's metrics, overall and per segment, golden slices
   paired): A/A, refusal 5% -> 7% and 5% -> 12%, a new failure mode, the three zoo regressions (stats and golden
   effects), and golden_regex 5 points worse read paired against unpaired.

Metrics are simulated independent of each other.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from harness.bench.canary_traffic import Shift, Traffic, simulate
from harness.canary.sequential import Moments, Sequential, always_valid, naive_z_p, running_bounds, two_sample
from harness.gate import family_levels

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
    margin: float = 0.0  # the catalog's margin: absolute points, or (``relative``) a share of the control mean
    relative: bool = False


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
                  params: Sequential, rng: np.random.Generator, naive: bool, checks: int | None = None) -> np.ndarray:
    """Boolean (canaries, windows): the family has a breached metric at that look (``checks``: how many checks the
    family's alpha is split over; default the metrics given).

    ``naive``: the fixed-sample z-test at every look, Holm within the family, margin ignored (the test alone). Else
    the canary's rule (``harness.canary.windows``): the always-valid confidence sequence at alpha split over the
    family's metrics (``harness.gate.family_levels``) wholly beyond the metric's margin the worse way
    (``harness.gate.zone``), with the minimum sample and, for rates, minimum expected events."""
    if naive:
        return _naive_breach(metrics, n_control, n_canary, shape, params, rng)
    n_checks = checks or len(metrics)
    level = family_levels([True] * n_checks, [True] * n_checks, params.alpha)[0]
    out = np.zeros(shape, bool)
    for m in metrics:
        c = _arm_moments(m, m.control, n_control, shape, rng)
        k = _arm_moments(m, m.canary, n_canary, shape, rng)
        enough = (c.n >= params.min_per_arm) & (k.n >= params.min_per_arm)
        if m.kind == "rate":
            high, low = np.maximum(c.mean, k.mean), np.minimum(c.mean, k.mean)
            enough &= np.nan_to_num(np.minimum(high, 1 - low) * np.minimum(c.n, k.n)) >= params.min_events
        look = two_sample(c, k, params)
        d = np.nan_to_num(look.delta)
        # the worse side(s): the running intersection of the one-sided sequence over the gated looks
        lower, upper = running_bounds(d, np.where(enough, look.var, np.nan), np.nan_to_num(look.tau2), level, axis=1)
        margin = m.margin * np.abs(np.nan_to_num(c.mean)) if m.relative else m.margin
        if m.worse == 0:
            beyond = (lower > margin) | (upper < -margin)
        else:
            beyond = lower > margin if m.worse > 0 else upper < -margin
        out |= beyond & enough
    return out


def _naive_breach(metrics: list[Metric], n_control: np.ndarray, n_canary: np.ndarray, shape: tuple[int, int],
                  params: Sequential, rng: np.random.Generator) -> np.ndarray:
    ps, worse_dirs = [], []
    for m in metrics:
        c = _arm_moments(m, m.control, n_control, shape, rng)
        k = _arm_moments(m, m.canary, n_canary, shape, rng)
        enough = (c.n >= params.min_per_arm) & (k.n >= params.min_per_arm)
        p = naive_z_p(c, k, worse_is_higher=m.worse >= 0)
        p = np.minimum(1.0, 2 * np.minimum(p, 1 - p)) if m.worse == 0 else p
        d = k.mean - c.mean
        worse = np.nan_to_num(d) != 0 if m.worse == 0 else np.nan_to_num(d) * m.worse > 0
        ps.append(np.where(enough, p, 1.0))
        worse_dirs.append(worse & enough)
    adj = _holm(np.stack(ps))
    return np.any((adj < params.alpha) & np.stack(worse_dirs), axis=0)


def msprt_test_alone(metric: Metric, n_control: np.ndarray, n_canary: np.ndarray, shape: tuple[int, int],
                     params: Sequential, rng: np.random.Generator) -> np.ndarray:
    """The mSPRT against no change (margin 0, running minimum p), one metric: the test alone, for the table that
    compares it with the naive test."""
    c = _arm_moments(metric, metric.control, n_control, shape, rng)
    k = _arm_moments(metric, metric.canary, n_canary, shape, rng)
    enough = (c.n >= params.min_per_arm) & (k.n >= params.min_per_arm)
    look = two_sample(c, k, params)
    p = always_valid(np.where(enough, look.p, 1.0), axis=1)
    return (p < params.alpha) & (np.nan_to_num(look.delta) * metric.worse > 0) & enough


def _margin(name: str) -> tuple[float, bool]:
    """The catalog's default margin of a stats metric (``harness.signals.stats.METRICS``): (value, relative)."""
    from harness.signals.stats import METRICS

    spec = next(m for m in METRICS if m.name == name)
    return (spec.margin_relative or 0.0, True) if spec.margin_absolute is None else (spec.margin_absolute, False)


def stats_family(refusal: float = 0.05, hedge: float = 0.08, chars: float = 85.0, json_valid: float = 0.97,
                 structure_ok: float = 0.9, error: float = 0.001) -> list[Metric]:
    """The stats family's simulated metrics with the canary's values (the control's are the defaults) and the
    catalog's margins; ``error`` is a rare event (0.1%)."""
    specs = [("refusal", "rate", 0.05, refusal, +1), ("hedge", "rate", 0.08, hedge, +1),
             ("empty", "rate", 0.01, 0.01, +1), ("json_valid", "rate", 0.97, json_valid, -1),
             ("structure_ok", "rate", 0.9, structure_ok, -1), ("error", "rate", 0.001, error, +1),
             ("chars", "mean", 85.0, chars, 0)]
    return [Metric(n, kind, c, k, w, margin=_margin(n)[0], relative=_margin(n)[1])
            for n, kind, c, k, w in specs]


def canary_policy(fams: dict[str, list[Metric]], sc: Traffic, canaries: int, params: Sequential,
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
    """Three families with the catalog's margins: stats (above), drift (the canary's drift_similarity, margin 0.02
    of cosine) and golden (two rates, margin 2 points)."""
    from harness.canary.samples import DRIFT_METRIC
    from harness.signals.golden import DEFAULT_MARGIN

    return {"stats": stats_family(),
            "drift": [Metric("drift_similarity", "mean", 0.5, 0.5, 0, 0.3, margin=DRIFT_METRIC.margin_absolute or 0)],
            "golden": [Metric("golden_rouge_l", "rate", 0.9, 0.9, -1, margin=DEFAULT_MARGIN),
                       Metric("golden_regex", "rate", 0.9, 0.9, -1, margin=DEFAULT_MARGIN)]}


REGRESSIONS: dict[str, Callable[[], dict[str, list[Metric]]]] = {
    "refusal 5% -> 7% (below the 3-point margin)": lambda: {**aa_families(), "stats": stats_family(refusal=0.07)},
    "refusal 5% -> 12%": lambda: {**aa_families(), "stats": stats_family(refusal=0.12)},
    "error 0.1% -> 5% (a new failure mode)": lambda: {**aa_families(), "stats": stats_family(error=0.05)},
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


def single_rate(canaries: int, sc: Traffic, params: Sequential, rng: np.random.Generator) -> dict[str, Any]:
    """One refusal check: the naive z-test and the mSPRT against no change (the tests alone, margin 0) on A/A, and
    the canary's rule (the confidence sequence against the 3-point margin, at the stats family's level: alpha over
    its 7 metrics) on A/A and on 5% -> 7%."""
    out: dict[str, Any] = {}
    n_control, n_canary, _ = sc.counts()
    aa = Metric("refusal", "rate", 0.05, 0.05, +1, margin=_margin("refusal")[0])
    shift = replace(aa, canary=0.07)
    for looks in (48, sc.windows):
        shape = (canaries, looks)
        nc, nk = n_control[:looks], n_canary[:looks]
        out[f"naive_z_{looks}_looks"] = float(_naive_breach([aa], nc, nk, shape, params, rng).any(1).mean())
        out[f"msprt_vs_0_{looks}_looks"] = float(msprt_test_alone(aa, nc, nk, shape, params, rng).any(1).mean())
        for label, m in (("rule_aa", aa), ("rule_5_to_7", shift)):
            hit = family_breach([m], nc, nk, shape, params, rng, naive=False, checks=7).any(1)
            out[f"{label}_{looks}_looks"] = float(hit.mean())
    return out


def rare_event_aa(canaries: int, sc: Traffic, params: Sequential, rng: np.random.Generator) -> dict[str, Any]:
    """A/A false breaches of one rare rate (0.05%-0.2%) against a zero margin: the test alone, with and without the
    minimum-expected-events guard."""
    n_control, n_canary, _ = sc.counts()
    out: dict[str, Any] = {}
    for rate in (0.0005, 0.001, 0.002):
        m = Metric("error", "rate", rate, rate, +1, margin=0.0)
        shape = (canaries, sc.windows)
        for label, p in (("guard", params), ("no_guard", replace(params, min_events=0.0))):
            hit = family_breach([m], n_control, n_canary, shape, p, rng, False)
            out[f"{rate:g}_{label}"] = float(hit.any(1).mean())
    return out


CATALOG_SHIFTS: dict[str, Shift] = {
    "A/A": Shift(),
    "refusal 5% -> 7% (below the 3-point margin)": Shift(rates={"refusal": 0.07}),
    "refusal 5% -> 12%": Shift(rates={"refusal": 0.12}),
    "error 0.1% -> 5% (a new failure mode)": Shift(rates={"error": 0.05}),
    # the zoo regressions' offline effects (docs/gate.md "Zoo verdicts"): stats and golden; drift left unshifted
    # (its canary metric, the mean similarity to held-out control outputs, has no offline measurement)
    "zoo terse (chars 85 -> 43, no list structure, golden rouge_l -0.57, regex -0.5, exact_match -0.5)":
        Shift(rates={"structure_ok": 0.0, "bullet_list": 0.0}, means={"chars": 43.0},
              golden={"golden_rouge_l": 0.57, "golden_regex": 0.5, "golden_exact_match": 0.5}),
    "zoo hedging (hedge 8% -> 24%, golden rouge_l -0.11, regex -0.23)":
        Shift(rates={"hedge": 0.238}, golden={"golden_rouge_l": 0.11, "golden_regex": 0.23}),
    "zoo json_drift (extract: json_valid 97% -> 71%, schema_valid 95% -> 50%, golden schema -0.5, fields -0.15)":
        Shift(rates={"json_valid": 0.71, "schema_valid": 0.50},
              golden={"golden_json_schema_valid": 0.5, "golden_json_field_accuracy": 0.15}),
}
GOLDEN_SHIFT = Shift(golden={"golden_regex": 0.15})
"""Paired against unpaired golden slices: golden_regex 15 points worse on faq and summarize (40 items a slice every 6
windows give 240 regex pairs in 72 windows: a 5-point drop against the 2-point margin is out of reach either way)."""


def catalog_tables(canaries: int, params: Sequential, rng: np.random.Generator) -> dict[str, Any]:
    """The canary's rule on the real catalogue, margins and segments (``harness.bench.canary_traffic``): A/A and
    each shift, and golden slices paired against unpaired."""
    tr = Traffic()
    out: dict[str, Any] = {}
    for name, shift in CATALOG_SHIFTS.items():
        r = simulate(shift, canaries, tr, params, rng)
        out[name] = {k: _summary(v, tr.windows) for k, v in r.items()}
    for label, is_paired in (("paired", True), ("unpaired", False)):
        r = simulate(GOLDEN_SHIFT, canaries, tr, params, rng, paired_golden=is_paired)
        out[f"golden_regex -15 points, {label}"] = {k: _summary(v, tr.windows) for k, v in r.items()}
    return out


def run(canaries: int = 1000, seed: int = 0, sc: Traffic | None = None, params: Sequential | None = None
        ) -> dict[str, Any]:
    """Every table of the module docstring, as one JSON-ready record."""
    sc, params = sc or Traffic(), params or Sequential()
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    single = single_rate(canaries, sc, params, rng)
    policy = {}
    for label, naive in (("naive_z", True), ("rule", False)):
        r = canary_policy(aa_families(), sc, canaries, params, rng, naive)
        policy[label] = {"false_rollback": float(np.mean(r["rollback"] >= 0)),
                         "false_investigate": float(np.mean(r["investigate"] >= 0))}
    detection = {}
    for name, fams in REGRESSIONS.items():
        r = canary_policy(fams(), sc, canaries, params, rng, naive=False)
        detection[name] = {"first_breach": _summary(r["investigate"], sc.windows),
                           "rollback": _summary(r["rollback"], sc.windows)}
    return {"canaries": canaries, "seed": seed, "scenario": asdict(sc), "sequential": asdict(params),
            "single_rate": single, "rare_event_aa": rare_event_aa(canaries, sc, params, rng), "policy_aa": policy,
            "detection": detection, "catalog": catalog_tables(canaries, params, rng),
            "seconds": round(time.perf_counter() - t0, 1)}


def _w(x: float | None) -> str:
    return "-" if x is None else f"{x:g}"


def tables(r: dict[str, Any]) -> str:
    """The Markdown tables of docs/canary.md."""
    s, p, e = r["single_rate"], r["policy_aa"], r["rare_event_aa"]
    lines = [f"{r['canaries']} canaries of {r['scenario']['windows']} hourly windows "
             f"({r['scenario']['per_hour']} requests/h, {r['scenario']['share']:.0%} to the canary), seed {r['seed']}:",
             "", "| one refusal check (5% control) | 48 looks | 72 looks |", "|---|---|---|",
             f"| A/A, naive one-sided z-test at 0.05 per look, margin 0 | {s['naive_z_48_looks']:.1%} | "
             f"{s['naive_z_72_looks']:.1%} |",
             f"| A/A, mSPRT against no change (running minimum p), margin 0 | {s['msprt_vs_0_48_looks']:.1%} | "
             f"{s['msprt_vs_0_72_looks']:.1%} |",
             f"| A/A, the rule (CS beyond the 3-point margin, level 0.05/7) | {s['rule_aa_48_looks']:.1%} | "
             f"{s['rule_aa_72_looks']:.1%} |",
             f"| 5% -> 7% (within the margin), the rule | {s['rule_5_to_7_48_looks']:.1%} | "
             f"{s['rule_5_to_7_72_looks']:.1%} |",
             "", "| A/A, three families, catalog margins | false INVESTIGATE | false ROLLBACK |", "|---|---|---|",
             f"| naive z-test, Holm, margin 0 | {p['naive_z']['false_investigate']:.1%} | "
             f"{p['naive_z']['false_rollback']:.1%} |",
             f"| the rule | {p['rule']['false_investigate']:.1%} | {p['rule']['false_rollback']:.1%} |",
             "", "| rare event, A/A, margin 0 | with the event guard | without |", "|---|---|---|"]
    for rate in ("0.0005", "0.001", "0.002"):
        lines.append(f"| {float(rate):.2%} | {e[f'{rate}_guard']:.1%} | {e[f'{rate}_no_guard']:.1%} |")
    lines += ["", "| shift (canary vs control) | first breach within 72 windows | median | p90 | ROLLBACK within 72 | "
              "median |", "|---|---|---|---|---|---|"]
    for name, d in r["detection"].items():
        f, rb = d["first_breach"], d["rollback"]
        lines.append(f"| {name} | {f['share']:.1%} | {_w(f['median_windows'])} | {_w(f['p90_windows'])} | "
                     f"{rb['share']:.1%} | {_w(rb['median_windows'])} |")
    lines += ["", "The real catalogue, margins and segments (harness.bench.canary_traffic; overall and per "
              "segment, golden slices paired):", "",
              "| canary | any breach (INVESTIGATE+) | median | p90 | ROLLBACK | median | stats | drift | golden |",
              "|---|---|---|---|---|---|---|---|---|"]
    for name, d in r["catalog"].items():
        f, rb = d["investigate"], d["rollback"]
        fams = " | ".join(f"{d[f'family_{x}']['share']:.1%}" for x in ("stats", "drift", "golden"))
        lines.append(f"| {name} | {f['share']:.1%} | {_w(f['median_windows'])} | {_w(f['p90_windows'])} | "
                     f"{rb['share']:.1%} | {_w(rb['median_windows'])} | {fams} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m harness.bench.canary_sim", description=__doc__.splitlines()[0])
    ap.add_argument("--canaries", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=2419)
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
