"""Admission of the pairwise preference by measured agreement with humans, and the judge's biases.

Pure functions over one row per judged pair (``PairJudgment``): the judge's verdict in each order (``verdict_ab``:
baseline shown as A; ``verdict_ba``: candidate shown as A; ``A``, ``B``, ``tie`` or None when unscored), the
human's preference (``baseline``, ``candidate``, ``tie`` or None), both outputs' lengths in characters and an
optional confidence. ``admit_pairwise`` measures and decides:

- **Agreement, per order**: accuracy (the order's verdict, as an arm, equals the human's; an unscored order counts as
  a disagreement) with a Wilson interval, Cohen's kappa (categories baseline/candidate/tie, plus ``unscored``) with
  a percentile bootstrap interval whose lower bound is also capped by the kappa the accuracy's Wilson lower bound
  gives at the observed marginals (the bootstrap alone collapses to a point when every pair agrees); **both
  orders**: accuracy of the combined preference (it counts only when both orders name the same arm,
  ``judge_prompts.combine_orders``), and the kappa between the two orders.
- **Admission**: the preference counts in the verdict only when, in BOTH orders, the kappa's lower bound is at least
  ``Bar.kappa`` and the accuracy's lower bound at least ``Bar.accuracy``, on at least ``Bar.min_n`` labelled pairs,
  and a confidence threshold reaches ``Bar.target`` (below). Otherwise it is advisory and ``reason`` says why.
- **Position bias**: the share of pairs whose two orders disagree, and the share of decisive per-order verdicts
  that chose the answer shown first (0.5 = none), with Wilson intervals.
- **Length bias**: the share of decisive combined preferences that went to the longer output, for the judge and
  for the humans on the same pairs; a **length-controlled preference** beside the raw one: as AlpacaEval's
  length-controlled win rate, a logistic regression of the judge's outcome (candidate 1, baseline 0, tie or
  inconsistent 0.5) on ``tanh(length difference / its standard deviation)``; the win rate with the length term set
  to 0 is ``sigmoid(intercept)``.
- **Selective trust**: the lowest confidence threshold whose admitted judgments (confidence at least it, combined
  preference not inconsistent) agree with the humans with a Wilson lower bound at least ``Bar.target`` on at least
  ``Bar.min_n`` pairs; coverage = their share of the labelled pairs; the rest are abstentions. The confidence is the
  imported one when given, else the agreement of the two orders (1 both agree, 0.5 one says tie, 0 otherwise).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.signals.agreement import cohen_kappa, kappa_interval, wilson
from harness.signals.judge_prompts import combine_orders

ARM_OF = {"AB": {"A": "baseline", "B": "candidate", "tie": "tie"},
          "BA": {"A": "candidate", "B": "baseline", "tie": "tie"}}
CATEGORIES = ("baseline", "candidate", "tie", "unscored")


@dataclass(frozen=True)
class PairJudgment:
    """One judged pair (module docstring)."""

    request_id: str
    verdict_ab: str | None
    verdict_ba: str | None
    human: str | None = None
    len_baseline: int = 0
    len_candidate: int = 0
    confidence: float | None = None

    @property
    def preference(self) -> str:
        return combine_orders(self.verdict_ab, self.verdict_ba)


@dataclass(frozen=True)
class Bar:
    """The admission bar (``judge.agreement_bar``, ``judge.accuracy_bar``, ``judge.agreement_min_n``, ...)."""

    kappa: float = 0.6
    accuracy: float = 0.75
    min_n: int = 20
    level: float = 0.95
    target: float = 0.8


def as_arm(order: str, verdict: str | None) -> str:
    """An order's verdict as the arm it names (``ARM_OF``), ``unscored`` when None."""
    return "unscored" if verdict is None else ARM_OF[order][verdict]


def consistency(p: PairJudgment) -> float:
    """The confidence of a pair without an imported one: 1 both orders agree, 0.5 one says tie, else 0."""
    a, b = as_arm("AB", p.verdict_ab), as_arm("BA", p.verdict_ba)
    if "unscored" in (a, b):
        return 0.0
    return 1.0 if a == b else 0.5 if "tie" in (a, b) else 0.0


def order_agreement(pairs: Sequence[PairJudgment], order: str, level: float) -> dict[str, Any]:
    """Accuracy and Cohen's kappa of one order's verdicts against the humans, with intervals."""
    judged = [as_arm(order, p.verdict_ab if order == "AB" else p.verdict_ba) for p in pairs]
    human = [str(p.human) for p in pairs]
    n = len(pairs)
    hits = sum(j == h for j, h in zip(judged, human, strict=True))
    lo, hi = wilson(hits, n, level)
    k = cohen_kappa(judged, human, CATEGORIES) if n else None
    klo, khi = kappa_interval(judged, human, CATEGORIES, level) if n else (None, None)
    if klo is not None and lo is not None:  # the bootstrap collapses to a point at perfect agreement: also bound
        pe = sum(judged.count(c) * human.count(c) for c in CATEGORIES) / n ** 2  # kappa by the accuracy's bound
        if pe < 1:
            klo = min(klo, (lo - pe) / (1 - pe))
    return {"order": order, "n": n, "accuracy": hits / n if n else None, "accuracy_low": lo, "accuracy_high": hi,
            "kappa": k, "kappa_low": klo, "kappa_high": khi}


def both_orders(pairs: Sequence[PairJudgment], level: float) -> dict[str, Any]:
    """The combined preference against the humans (both orders must agree), and the kappa between the orders."""
    n = len(pairs)
    hits = sum(p.preference == p.human for p in pairs)
    lo, hi = wilson(hits, n, level)
    ab = [as_arm("AB", p.verdict_ab) for p in pairs]
    ba = [as_arm("BA", p.verdict_ba) for p in pairs]
    return {"order": "both", "n": n, "accuracy": hits / n if n else None, "accuracy_low": lo, "accuracy_high": hi,
            "kappa": cohen_kappa(ab, ba, CATEGORIES) if n else None, "kappa_low": None, "kappa_high": None}


def position_bias(pairs: Sequence[PairJudgment], level: float) -> dict[str, Any]:
    """Order flips and the first-shown answer's share of decisive per-order verdicts."""
    scored = [p for p in pairs if p.verdict_ab is not None and p.verdict_ba is not None]
    flips = sum(as_arm("AB", p.verdict_ab) != as_arm("BA", p.verdict_ba) for p in scored)
    decisive = [v for p in scored for v in (p.verdict_ab, p.verdict_ba) if v in ("A", "B")]
    first = sum(v == "A" for v in decisive)
    return {"n": len(scored), "flip_rate": flips / len(scored) if scored else None,
            "flip_ci": wilson(flips, len(scored), level),
            "first_shown_rate": first / len(decisive) if decisive else None,
            "first_shown_ci": wilson(first, len(decisive), level), "decisive_verdicts": len(decisive)}


def _longer_rate(pairs: Sequence[PairJudgment], pick: str, level: float) -> dict[str, Any]:
    rows = [(getattr(p, pick) if pick == "human" else p.preference, p) for p in pairs]
    decisive = [(v, p) for v, p in rows if v in ("baseline", "candidate") and p.len_baseline != p.len_candidate]
    longer = sum((v == "candidate") == (p.len_candidate > p.len_baseline) for v, p in decisive)
    return {"n": len(decisive), "rate": longer / len(decisive) if decisive else None,
            "ci": wilson(longer, len(decisive), level)}


def outcome(preference: str) -> float | None:
    """The AlpacaEval outcome of a combined preference: candidate 1, baseline 0, tie or inconsistent 0.5."""
    return {"candidate": 1.0, "baseline": 0.0, "tie": 0.5, "inconsistent": 0.5}.get(preference)


def length_controlled(y: Sequence[float], diff: Sequence[float]) -> dict[str, Any]:
    """Raw win rate ``mean(y)`` and the length-controlled one: ``sigmoid(b0)`` of the logistic fit
    ``y ~ b0 + b1 * tanh(diff / sd(diff))`` (IRLS, fractional outcomes allowed), with ``b1`` and its standard error."""
    import numpy as np

    n = len(y)
    if n < 3:
        return {"n": n, "raw_win_rate": sum(y) / n if n else None, "lc_win_rate": None, "slope": None,
                "slope_se": None}
    yy, d = np.asarray(y, float), np.asarray(diff, float)
    sd = d.std() or 1.0
    x = np.column_stack([np.ones(n), np.tanh(d / sd)])
    beta = np.zeros(2)
    for _ in range(50):
        mu = 1 / (1 + np.exp(-x @ beta))
        w = np.clip(mu * (1 - mu), 1e-9, None)
        hess = x.T @ (x * w[:, None]) + 1e-6 * np.eye(2)  # a tiny ridge: separable data stays finite
        step = np.linalg.solve(hess, x.T @ (yy - mu))
        beta += step
        if np.abs(step).max() < 1e-10:
            break
    cov = np.linalg.inv(hess)
    return {"n": n, "raw_win_rate": float(yy.mean()), "lc_win_rate": float(1 / (1 + math.exp(-beta[0]))),
            "slope": float(beta[1]), "slope_se": float(math.sqrt(cov[1, 1]))}


def length_bias(pairs: Sequence[PairJudgment], level: float) -> dict[str, Any]:
    """The longer output's share of decisive preferences (judge, humans) and the length-controlled preference."""
    scored = [p for p in pairs if outcome(p.preference) is not None]
    lc = length_controlled([outcome(p.preference) or 0.0 for p in scored],
                           [p.len_candidate - p.len_baseline for p in scored])
    return {"judge_longer": _longer_rate(pairs, "judge", level),
            "human_longer": _longer_rate([p for p in pairs if p.human is not None], "human", level), **lc}


def selective_trust(pairs: Sequence[PairJudgment], bar: Bar) -> dict[str, Any]:
    """The lowest confidence threshold reaching ``bar.target`` (module docstring); ``threshold`` None if none does."""
    conf = [(p.confidence if p.confidence is not None else consistency(p), p) for p in pairs]
    for t in sorted({c for c, _ in conf}):
        kept = [p for c, p in conf if c >= t and p.preference not in ("inconsistent", "unscored")]
        hits = sum(p.preference == p.human for p in kept)
        lo, hi = wilson(hits, len(kept), bar.level)
        if len(kept) >= bar.min_n and lo is not None and lo >= bar.target:
            return {"threshold": t, "admitted": len(kept), "coverage": len(kept) / len(pairs),
                    "agreement": hits / len(kept), "agreement_low": lo, "agreement_high": hi,
                    "abstentions": len(pairs) - len(kept), "target": bar.target}
    return {"threshold": None, "admitted": 0, "coverage": 0.0, "agreement": None, "agreement_low": None,
            "agreement_high": None, "abstentions": len(pairs), "target": bar.target}


def admit_pairwise(pairs: Sequence[PairJudgment], bar: Bar) -> dict[str, Any]:
    """Every measurement of the module docstring on the pairs with a human label, and the admission decision.

    Returns a JSON-ready dict: ``admitted``, ``reason``, ``orders`` (AB, BA, both), ``position_bias``,
    ``length_bias`` (over all pairs, labelled or not), ``selective_trust``.
    """
    labelled = [p for p in pairs if p.human is not None]
    orders = [order_agreement(labelled, "AB", bar.level), order_agreement(labelled, "BA", bar.level),
              both_orders(labelled, bar.level)]
    trust = selective_trust(labelled, bar)
    reasons = []
    if len(labelled) < bar.min_n:
        reasons.append(f"only {len(labelled)} pairs with a human preference (< {bar.min_n})")
    else:
        for o in orders[:2]:
            if o["kappa_low"] is None or o["kappa_low"] < bar.kappa:
                reasons.append(f"order {o['order']}: kappa {_f(o['kappa'])}, lower bound {_f(o['kappa_low'])} "
                               f"< {bar.kappa}")
            if o["accuracy_low"] is None or o["accuracy_low"] < bar.accuracy:
                reasons.append(f"order {o['order']}: accuracy {_f(o['accuracy'])}, lower bound "
                               f"{_f(o['accuracy_low'])} < {bar.accuracy}")
        if trust["threshold"] is None:
            reasons.append(f"no confidence threshold reaches agreement {bar.target} (lower bound) on {bar.min_n}+ "
                           "pairs")
    return {"admitted": not reasons, "reason": "; ".join(reasons), "labelled": len(labelled), "judged": len(pairs),
            "bar": {"kappa": bar.kappa, "accuracy": bar.accuracy, "min_n": bar.min_n, "level": bar.level,
                    "target": bar.target},
            "orders": orders, "position_bias": position_bias(pairs, bar.level),
            "length_bias": length_bias(pairs, bar.level), "selective_trust": trust}


def _f(x: float | None) -> str:
    return "undefined" if x is None else f"{x:.3f}"
