"""The tests against a margin and their confidence bounds (harness.analysis.margin), on hand-checkable values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import optimize, stats

from harness.analysis.margin import Paired, t_bounds, tango_bounds, tango_z


def restricted_mle(up: int, down: int, n: int, d0: float) -> float:
    """The 1 -> 0 share maximizing the multinomial likelihood under delta = d0, by numerical search."""
    same = n - up - down

    def nll(q: float) -> float:
        return -(up * math.log(q + d0) + down * math.log(q) + same * math.log(1 - 2 * q - d0))

    lo, hi = max(0.0, -d0) + 1e-12, (1 - d0) / 2 - 1e-12
    return float(optimize.minimize_scalar(nll, bounds=(lo, hi), method="bounded", options={"xatol": 1e-13}).x)


@pytest.mark.parametrize(("up", "down", "n", "d0"), [(10, 30, 400, -0.02), (30, 10, 400, 0.02), (12, 3, 100, 0.05),
                                                     (5, 5, 200, -0.03)])
def test_tango_uses_the_restricted_mle(up: int, down: int, n: int, d0: float) -> None:
    q = restricted_mle(up, down, n, d0)
    want = (up - down - n * d0) / math.sqrt(n * (2 * q + d0 * (1 - d0)))
    assert float(tango_z(down, up, n, d0)) == pytest.approx(want, rel=1e-6)


def test_tango_at_zero_is_mcnemar_and_no_change_still_has_width() -> None:
    assert float(tango_z(10, 2, 400, 0.0)) == pytest.approx((2 - 10) / math.sqrt(12))
    z = stats.norm.isf(0.05 / 13)
    lo, hi = tango_bounds(0, 0, 400, 0.05 / 13)
    assert float(hi) == pytest.approx(z * z / (400 + z * z), rel=1e-6) and float(lo) == pytest.approx(-float(hi))


def test_bounds_invert_the_test() -> None:
    p = Paired("tango", 500, -0.03, 0.0, down=40, up=25)
    lo, hi = p.bounds(0.01)
    assert float(p.p(float(lo), True)) == pytest.approx(0.01, rel=1e-4)  # H0 delta <= lo: rejected just at 0.01
    assert float(p.p(float(hi), False)) == pytest.approx(0.01, rel=1e-4)
    assert float(lo) < -0.03 < float(hi)


def test_t_bounds_are_the_one_sided_t_interval() -> None:
    rng = np.random.default_rng(0)
    d = rng.normal(0.1, 1.0, 50)
    lo, hi = t_bounds(50, d.mean(), d.std(ddof=1), 0.025)
    want = stats.t.interval(0.95, 49, loc=d.mean(), scale=stats.sem(d))
    assert (float(lo), float(hi)) == pytest.approx(want)
    assert t_bounds(30, 0.0, 0.0, 0.001) == (0.0, 0.0)  # identical outputs: zero width
