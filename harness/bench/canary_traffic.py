"""Simulated canary traffic with the real metric catalogue, its margins and segments, read by the canary's rule.

Used by ``harness.bench.canary_sim`` (docs/canary.md). What is real: the metrics and their directions, roles and
margins are the catalogue's (``harness.signals.stats.METRICS`` with ``Policy().threshold``, the canary's
``drift_similarity``, the golden family's metrics from the zoo's golden set, ``golden_metrics``); the segments are the
zoo sample traffic's four (chat, extract, faq, summarize, in its proportions), with the metrics that apply only to
some of them (JSON validity on extract, list structure on summarize); every check is read overall and per segment,
with alpha split over each family's checks that can fire at that look (``harness.gate.family_levels``), the one-sided
confidence sequences and the worse side's running intersection (``harness.canary.sequential.running_bounds``), the
minimum sample and expected-events guard, the margin zones (``harness.gate.zone``) and the policy (one breached family
INVESTIGATE, two ROLLBACK, ``harness.gate.decide``). What is simulated: the values. Rates are Bernoulli at stated
control levels (``RATES``; the zoo's own greedy outputs have almost no refusals or hedges, which would make the A/A
trivially quiet); lengths lognormal (per-window sums from their bivariate normal approximation); drift similarity
normal; metrics independent of each other. Golden slices: ``golden_items`` items every ``golden_every`` windows,
spread over the segments, both versions answering the same items: 10% of binary items change under no change (half
each way) and graded items differ by N(0, 0.15), so the paired analysis (per-item differences) and, for comparison,
the unpaired one read the same draws.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache

import numpy as np

from harness.canary.sequential import Moments, Sequential, one_sided_half_width, paired, running_bounds, two_sample
from harness.gate import Policy, zone
from harness.signals.base import MetricSpec

SEGMENTS = {"chat": 483, "extract": 615, "faq": 493, "summarize": 409}
"""Requests per segment in the zoo's sample traffic (2,000 requests)."""
ONLY = {"json_valid": ("extract",), "schema_valid": ("extract",), "structure_ok": ("summarize",),
        "golden_json_schema_valid": ("extract",), "golden_json_field_accuracy": ("extract",),
        "golden_exact_match": ("chat",), "golden_regex": ("faq", "summarize"),
        "golden_rouge_l": ("chat", "faq", "summarize"), "declined_choice": (), "off_form": ()}
"""Segments a metric applies to (the zoo traffic's schemas and list requests; the golden set's checks)."""
RATES: dict[str, float] = {
    "json_valid": 0.97, "schema_valid": 0.95, "refusal": 0.05, "hedge": 0.08, "structure_ok": 0.90,
    "truncated": 0.02, "empty": 0.01, "error": 0.001, "fenced_code": 0.01, "heading": 0.02, "table": 0.01,
    "bullet_list": 0.10, "numbered_list": 0.05, "starts_with_json": 0.25, "script_latin": 0.99, "script_cjk": 0.004,
    "script_cyrillic": 0.002, "script_arabic": 0.001, "script_other": 0.003,
    "golden_json_schema_valid": 0.95, "golden_exact_match": 0.85, "golden_regex": 0.85,
    "deflection": 0.01, "evasive": 0.06, "declined_choice": 0.05, "off_form": 0.05}
"""Control rates (every segment the metric applies to)."""
MEANS: dict[str, tuple[float, float]] = {"chars": (85.0, 0.6), "drift_similarity": (0.5, 0.3),
                                         "golden_json_field_accuracy": (0.75, 0.2), "golden_rouge_l": (0.8, 0.2)}
"""Means: chars lognormal (mean, sd of the log); drift similarity normal (mean, sd); graded golden (mean, sd)."""
GOLDEN_CHANGE = 0.10  # binary golden items that change under no change, half each way
GOLDEN_SD = 0.15  # sd of a graded golden item's difference under no change


@dataclass(frozen=True)
class Traffic:
    """Hourly windows, requests an hour, the canary's share, the golden schedule."""

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


@dataclass(frozen=True)
class Shift:
    """A change in the canary: ``rates``/``means`` set the canary's value of a metric (every segment, or only
    ``segments``); ``golden`` drops a golden metric's per-item value by this much (paired)."""

    rates: Mapping[str, float] = field(default_factory=dict)
    means: Mapping[str, float] = field(default_factory=dict)
    golden: Mapping[str, float] = field(default_factory=dict)
    segments: tuple[str, ...] | None = None


@cache
def catalog() -> dict[str, list[MetricSpec]]:
    """The gated metrics of the three families, as the canary gates them (those with a margin)."""
    from harness.canary.samples import DRIFT_METRIC, STATS_CATALOG
    from harness.fixtures.zoo.golden import DEFAULT_GOLDEN
    from harness.golden.schema import load_golden
    from harness.signals.golden import golden_metrics

    policy = Policy()
    gated = [m for m in STATS_CATALOG if policy.threshold(_row(m)) is not None]
    golden = [m for m in golden_metrics(load_golden(str(DEFAULT_GOLDEN))[1]) if policy.threshold(_row(m))]
    return {"stats": gated, "drift": [DRIFT_METRIC], "golden": golden}


def _row(m: MetricSpec) -> dict[str, object]:
    return {"name": m.name, "family": m.family, "margin_absolute": m.margin_absolute,
            "margin_relative": m.margin_relative}


def _counts(tr: Traffic) -> dict[str, tuple[int, int]]:
    """Requests per window and segment: (control, canary)."""
    total = sum(SEGMENTS.values())
    canary = round(tr.per_hour * tr.share)
    return {s: (round((tr.per_hour - canary) * n / total), round(canary * n / total)) for s, n in SEGMENTS.items()}


def _cum(x: np.ndarray) -> np.ndarray:
    return np.cumsum(x, axis=1)


def _rate(n: int, p: float, shape: tuple[int, int], rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    k = rng.binomial(n, p, size=shape).astype(float)
    return np.full(shape, float(n)), k, k  # count, sum, sum of squares (0/1 values)


def _lognormal(n: int, mean: float, sd_log: float, shape: tuple[int, int], rng: np.random.Generator
               ) -> tuple[np.ndarray, ...]:
    """Per-window sum and sum of squares of ``n`` lognormal values (bivariate normal approximation of the sums)."""
    mu = np.log(mean) - sd_log ** 2 / 2
    m1, m2, m3, m4 = (np.exp(k * mu + k * k * sd_log ** 2 / 2) for k in (1, 2, 3, 4))
    cov = n * np.array([[m2 - m1 ** 2, m3 - m1 * m2], [m3 - m1 * m2, m4 - m2 ** 2]])
    draws = rng.multivariate_normal(n * np.array([m1, m2]), cov, size=shape)
    return np.full(shape, float(n)), draws[..., 0], np.maximum(draws[..., 1], 0.0)


def _normal(n: int, mean: float, sd: float, shape: tuple[int, int], rng: np.random.Generator
            ) -> tuple[np.ndarray, ...]:
    """Per-window sum and sum of squares of ``n`` normal values (exact: the sum and an independent chi-square)."""
    total = rng.normal(n * mean, sd * np.sqrt(n), size=shape)
    within = sd * sd * rng.chisquare(max(n - 1, 1), size=shape)
    return np.full(shape, float(n)), total, within + total * total / n


def _moments(n: np.ndarray, s1: np.ndarray, s2: np.ndarray) -> Moments:
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s1 / n
        return Moments(n, mean, np.maximum(s2 / n - mean * mean, 0.0))


Sums = dict[tuple[str | None, str], tuple[np.ndarray, ...]]  # (segment or None, arm) -> cumulative n, s1, s2


def _unpaired(spec: MetricSpec, shift: Shift, tr: Traffic, shape: tuple[int, int], rng: np.random.Generator
              ) -> Sums:
    """Cumulative sums per segment and arm of one live-traffic metric."""
    out: Sums = {}
    for seg, (nc, nk) in _counts(tr).items():
        if seg not in ONLY.get(spec.name, (seg,)):
            continue
        hit = shift.segments is None or seg in shift.segments
        for arm, n in (("control", nc), ("canary", nk)):
            if spec.name in RATES:
                p = shift.rates.get(spec.name, RATES[spec.name]) if arm == "canary" and hit else RATES[spec.name]
                sums = _rate(n, p, shape, rng)
            else:
                mean, sd = MEANS[spec.name]
                mean = shift.means.get(spec.name, mean) if arm == "canary" and hit else mean
                draw = _lognormal if spec.name == "chars" else _normal
                sums = draw(n, mean, sd, shape, rng)
            out[(seg, arm)] = tuple(_cum(x) for x in sums)
    return _with_overall(out)


def _with_overall(out: Sums) -> Sums:
    for arm in ("control", "canary", "paired"):
        parts = [v for (seg, a), v in out.items() if a == arm and seg is not None]
        if parts:
            out[(None, arm)] = tuple(np.sum([p[i] for p in parts], axis=0) for i in range(3))
    return out


def _golden(spec: MetricSpec, shift: Shift, tr: Traffic, shape: tuple[int, int], rng: np.random.Generator) -> Sums:
    """Cumulative sums per segment of one golden metric: each arm, and the per-item differences (``paired``)."""
    segs = ONLY[spec.name]
    per = tr.golden_items // len(SEGMENTS)  # items per slice and segment
    scheduled = (np.arange(tr.windows) + 1) % tr.golden_every == 0
    out: Sums = {}
    drop = shift.golden.get(spec.name, 0.0)
    for seg in segs:
        x = np.zeros(shape + (per,))
        if spec.name in RATES:
            p = RATES[spec.name]
            control = np.asarray(rng.random(x.shape) < p, float)
            u = rng.random(x.shape)  # down share (c + drop) / 2, up share (c - drop) / 2, of all items
            down = (control == 1) & (u < (GOLDEN_CHANGE + drop) / 2 / p)
            up = (control == 0) & (u < (GOLDEN_CHANGE - drop) / 2 / (1 - p))
            canary = control - down + up
        else:
            mean, sd = MEANS[spec.name]
            control = np.asarray(rng.normal(mean, sd, x.shape), float)
            canary = control + rng.normal(-drop, GOLDEN_SD, x.shape)
        for arm, v in (("control", control), ("canary", canary), ("paired", canary - control)):
            v = np.where(scheduled[None, :, None], v, 0.0)
            n = np.where(scheduled, float(per), 0.0)[None, :] * np.ones(shape)
            out[(seg, arm)] = (_cum(n), _cum(v.sum(-1)), _cum((v * v).sum(-1)))
    return _with_overall(out)


@dataclass
class Reading:
    """One check's looks (canaries x windows): the estimate, variance, mixture variance, whether it is gated."""

    spec: MetricSpec
    segment: str | None
    delta: np.ndarray
    var: np.ndarray
    tau2: np.ndarray
    gated: np.ndarray
    margin: np.ndarray


def readings(spec: MetricSpec, sums: Sums, params: Sequential, paired_golden: bool, min_pairs: int
             ) -> list[Reading]:
    """Each check of one metric (overall and per segment), as the canary's windows read it
    (``harness.canary.windows``: two-sample or paired look, minimum sample, expected-events guard)."""
    t = Policy().threshold(_row(spec))
    assert t is not None
    out = []
    for seg in sorted({s for s, _ in sums}, key=lambda s: s or ""):
        c, k = _moments(*sums[(seg, "control")]), _moments(*sums[(seg, "canary")])
        if paired_golden and (seg, "paired") in sums:
            diff = _moments(*sums[(seg, "paired")])
            look, gated = paired(diff, params), diff.n >= min_pairs
        else:
            look = two_sample(c, k, params)
            gated = (c.n >= params.min_per_arm) & (k.n >= params.min_per_arm)
            if spec.kind == "rate" and spec.name in RATES:
                high, low = np.maximum(c.mean, k.mean), np.minimum(c.mean, k.mean)
                gated &= np.nan_to_num(np.minimum(high, 1 - low) * np.minimum(c.n, k.n)) >= params.min_events
        margin = (np.full(c.n.shape, t.absolute) if t.absolute is not None
                  else np.abs(np.nan_to_num(c.mean)) * (t.relative or 0.0))
        out.append(Reading(spec, seg, np.nan_to_num(look.delta), np.where(gated, look.var, np.nan),
                           np.nan_to_num(look.tau2), gated, margin))
    return out


def family_breached(reads: list[Reading], alpha: float) -> np.ndarray:
    """(canaries, windows): the family has a breached check at that look. Alpha is split over the checks gated at
    each look (half to the overall checks, half to the segment checks when both have one); each check's worse side
    is the running intersection of its one-sided confidence sequence, each look at its own level
    (``harness.canary.windows.read_bounds``); a check breaches when that bound is beyond its margin (``zone``)."""
    overall = np.array([r.segment is None for r in reads])
    gated = np.stack([r.gated for r in reads])
    k_o = gated[overall].sum(0)
    k_s = gated[~overall].sum(0)
    share = np.where((k_o > 0) & (k_s > 0), 0.5, 1.0)
    out = np.zeros(gated.shape[1:], bool)
    for i, r in enumerate(reads):
        level = alpha * share / np.maximum(k_o if overall[i] else k_s, 1)
        lo, hi = running_bounds(r.delta, r.var, r.tau2, level, axis=1)
        hib = r.spec.higher_is_better
        if hib is not None:  # the better side reads the present look (it cannot make a breach)
            w = one_sided_half_width(np.nan_to_num(r.var, nan=np.inf), r.tau2, level)
            lo, hi = (r.delta - w, hi) if hib else (lo, r.delta + w)
        breach = _zone_breach(lo, hi, r.margin, hib) & r.gated
        out |= breach
    return out


def _zone_breach(lo: np.ndarray, hi: np.ndarray, m: np.ndarray, hib: bool | None) -> np.ndarray:
    """``harness.gate.zone(...) == "breach"``, vectorized (checked against it in tests/canary/test_sequential.py)."""
    if hib is None:
        return (lo > m) | (hi < -m)
    return hi < -m if hib else lo > m


def zone_agrees(lo: float, hi: float, m: float, hib: bool | None) -> bool:
    """Whether the vectorized breach reading agrees with ``harness.gate.zone`` at one point."""
    return bool(_zone_breach(np.array(lo), np.array(hi), np.array(m), hib)) == (zone(lo, hi, m, hib) == "breach")


def simulate(shift: Shift, canaries: int, tr: Traffic, params: Sequential, rng: np.random.Generator,
             paired_golden: bool = True) -> dict[str, np.ndarray]:
    """Per canary: the first window with a breach (INVESTIGATE or worse) and the first ROLLBACK (-1: never), and
    per family the first breached window."""
    shape = (canaries, tr.windows)
    min_pairs = min(Policy().min_requests, params.min_per_arm)
    breached = {}
    for family, specs in catalog().items():
        reads: list[Reading] = []
        for spec in specs:
            sums = (_golden if family == "golden" else _unpaired)(spec, shift, tr, shape, rng)
            reads += readings(spec, sums, params, paired_golden, min_pairs)
        breached[family] = family_breached(reads, params.alpha)
    count = np.sum(list(breached.values()), axis=0)
    out = {"investigate": _first(count >= 1), "rollback": _first(count >= 2)}
    return out | {f"family_{f}": _first(b) for f, b in breached.items()}


def _first(mask: np.ndarray) -> np.ndarray:
    return np.where(mask.any(1), mask.argmax(1), -1)
