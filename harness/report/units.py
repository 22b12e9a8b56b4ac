"""How the report writes a metric's numbers: one unit per metric, the same significant figures everywhere.

- rates (and golden scores, which live on 0..1 too): values in percent, deltas and margins in points of percent
  (``91.4%``, ``-50.0 pts``);
- judge means: values on the judge's scale, deltas in scale points (``3.42``, ``+0.31 scale pts``);
- lengths: characters or tokens, one decimal (``84.6``, ``-42.5 chars``), with the relative change (``-50%``);
- any other mean: three significant figures.

A metric's kind and family come from the analysis ``summary`` (the metric catalog joined in); a check whose metric
is not in it (embedding drift makes its own checks) is a rate when its test counts 0/1 outcomes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

RATE_TESTS = ("mcnemar", "binomial")
MINUS = "-"


def num(x: float | None) -> str:
    """Three significant figures without exponent (``84.6``, ``114``, ``3.53``, ``0.0412``); thousands separated."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    x = float(x)
    a = abs(x)
    if a >= 100:
        return f"{x:,.0f}"
    if a >= 10:
        return f"{x:.1f}"
    if a >= 1 or a == 0:
        return f"{x:.2f}"
    return f"{x:.3g}"


def signed(x: float, text: str) -> str:
    """``text`` (the magnitude of ``x``, formatted) with an explicit sign; none when it shows as zero."""
    if not any(ch in "123456789" for ch in text):
        return text
    return ("+" if x > 0 else MINUS) + text


def p_value(p: float | None) -> str:
    """A p-value in two significant figures (``< 1e-300`` for an underflowed 0)."""
    if p is None:
        return ""
    return "< 1e-300" if p == 0 else f"{p:.2g}"


@dataclass(frozen=True)
class Unit:
    """How one metric's values and changes are written: ``scale`` multiplies them (100 for percent), ``suffix``
    follows a value, ``delta_suffix`` a change; ``decimals`` None: three significant figures."""

    scale: float = 1.0
    suffix: str = ""
    delta_suffix: str = ""
    decimals: int | None = None
    small_decimals: int | None = None  # decimals below 10 (relative changes: -50%, -4.2%)

    def _n(self, x: float) -> str:
        x = x * self.scale
        if self.small_decimals is not None and abs(x) < 10:
            return f"{x:,.{self.small_decimals}f}"
        return num(x) if self.decimals is None else f"{x:,.{self.decimals}f}"

    def value(self, x: float | None) -> str:
        """A level, e.g. ``91.4%``."""
        return "" if x is None else self._n(x) + self.suffix

    def bare(self, x: float) -> str:
        """A signed change without its unit (inside a CI)."""
        return signed(x, self._n(abs(x)))

    def delta(self, x: float | None) -> str:
        """A signed change with its unit, e.g. ``-50.0 pts``."""
        return "" if x is None else self.bare(x) + self.delta_suffix

    def ci(self, low: float | None, high: float | None) -> str:
        """``[low, high]`` of a change."""
        return "" if low is None or high is None else f"[{self.bare(low)}, {self.bare(high)}]"

    def magnitude(self, x: float) -> str:
        """An unsigned size of change with its unit (``57.3 pts``)."""
        return self._n(abs(x)) + self.delta_suffix


PCT = Unit(100.0, "%", " pts", 1)
SCALE = Unit(1.0, "", " scale pts", 2)
PLAIN = Unit()
RELATIVE = Unit(100.0, "%", "%", 0, 1)


def unit_for(metric: str, kind: str | None, family: str | None) -> Unit:
    """The unit of a metric from its catalog kind and family."""
    if kind == "rate" or family == "golden":
        return PCT
    if family == "judge":
        return SCALE
    if metric == "chars":
        return Unit(delta_suffix=" chars", decimals=1)
    if metric.endswith("tokens"):
        return Unit(delta_suffix=" tokens", decimals=1)
    return PLAIN


class Units:
    """The unit of every metric of a run (``summary`` rows: metric, kind, family)."""

    def __init__(self, summary: Iterable[Mapping[str, Any]]) -> None:
        self._kinds = {r["metric"]: (r.get("kind"), r.get("family")) for r in summary}

    def of(self, check: Any) -> Unit:
        """The unit of a ``Check`` (or anything with ``metric``, ``family`` and ``test``)."""
        kind, family = self._kinds.get(check.metric, (None, check.family))
        if kind is None and check.test in RATE_TESTS:
            kind = "rate"
        return unit_for(check.metric, kind, family)

    def margin(self, check: Any) -> str:
        """The check's margin in its unit: ``2 pts``, ``15%`` (relative), ``0.5 scale pts``."""
        kind, size = margin_of(check)
        if kind == "rel":
            return f"{size * 100:g}%"
        unit = self.of(check)
        return f"{size * unit.scale:g}{unit.delta_suffix}"

    def change(self, check: Any) -> str:
        """The change as read against the margin: ``-50.0 pts``, or ``-42.5 chars (-50%)`` for relative margins."""
        unit = self.of(check)
        text = unit.delta(check.delta)
        if margin_of(check)[0] == "rel" and check.rel_delta is not None:
            text += f" ({RELATIVE.delta(check.rel_delta)})"
        return text

    def change_parts(self, check: Any) -> tuple[str, str, str]:
        """``change`` in three pieces: the signed number, its unit, the relative change in parentheses (or "")."""
        unit = self.of(check)
        rel = f"({RELATIVE.delta(check.rel_delta)})" if margin_of(check)[0] == "rel" and check.rel_delta is not None \
            else ""
        return unit.bare(check.delta), unit.delta_suffix.strip(), rel

    def levels(self, check: Any) -> str:
        """``baseline -> candidate`` in the check's unit."""
        unit = self.of(check)
        return f"{unit.value(check.baseline)} -> {unit.value(check.candidate)}"


def margin_of(check: Any) -> tuple[str, float]:
    """``("abs" | "rel", size)`` from the check's threshold text (``abs 0.02``, ``rel 0.15``)."""
    parts = str(check.threshold).split()
    try:
        return ("rel" if parts[0] == "rel" else "abs"), float(parts[1])
    except (IndexError, ValueError):
        return "abs", 0.0


def severity(check: Any) -> float:
    """How far the change is against the margin (|delta| / margin, relative for relative margins)."""
    kind, size = margin_of(check)
    change = abs(check.rel_delta or 0.0) if kind == "rel" else abs(check.delta)
    return change / size if size > 0 else change
