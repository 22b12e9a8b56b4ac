"""Open-loop schedules, cuts and fidelity (harness/engines/schedule.py): pure logic."""

from __future__ import annotations

import datetime as dt
import statistics

import pytest

from harness.engines.schedule import NOT_SENT_COUNT, NOT_SENT_TIME, cut, fidelity, fingerprint, offsets, quantile


def test_timestamps_are_relative_to_the_earliest_and_divided_by_the_speedup() -> None:
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    ts = [t0 + dt.timedelta(seconds=s) for s in (10, 0, 4, 4)]
    assert offsets("timestamps", 4, ts, speedup=2.0) == [5.0, 0.0, 2.0, 2.0]


def test_constant_rate_and_seeded_poisson() -> None:
    assert offsets("constant", 4, rate=2.0) == [0.0, 0.5, 1.0, 1.5]
    a = offsets("poisson", 2000, rate=4.0, seed=3)
    assert a == offsets("poisson", 2000, rate=4.0, seed=3) != offsets("poisson", 2000, rate=4.0, seed=4)
    gaps = [y - x for x, y in zip(a, a[1:], strict=False)]
    assert a[0] == 0.0 and min(gaps) >= 0
    assert statistics.mean(gaps) == pytest.approx(0.25, rel=0.1)  # mean gap 1/rate
    assert statistics.stdev(gaps) == pytest.approx(0.25, rel=0.15)  # exponential: sd = mean


def test_bad_modes_raise() -> None:
    with pytest.raises(ValueError, match="rate"):
        offsets("poisson", 3)
    with pytest.raises(ValueError, match="unknown"):
        offsets("bursty", 3, rate=1.0)


def test_cut_keeps_the_earliest_scheduled_within_count_and_time() -> None:
    why = cut([3.0, 0.0, 1.0, 9.0, 1.0], max_requests=3, max_duration_s=None)
    assert why == [NOT_SENT_COUNT, None, None, NOT_SENT_COUNT, None]
    assert cut([0.0, 5.0, 5.1], None, 5.0) == [None, None, NOT_SENT_TIME]


def test_fingerprint_tells_schedules_apart() -> None:
    ids = ["a", "b"]
    assert fingerprint([0.0, 1.0], ids, [None, None]) == fingerprint([0.0, 1.0], ids, [None, None])
    assert fingerprint([0.0, 1.0], ids, [None, None]) != fingerprint([0.0, 1.5], ids, [None, None])
    assert fingerprint([0.0, 1.0], ids, [None, None]) != fingerprint([0.0, 1.0], ids, [None, NOT_SENT_TIME])


def test_fidelity_lateness_rates_and_bound() -> None:
    scheduled = [i * 0.5 for i in range(101)]
    sent = [s + (0.2 if i == 100 else 0.001) for i, s in enumerate(scheduled)]
    f = fidelity(scheduled, sent, bound_p99_s=0.05)
    assert f.sent == 101 and f.lateness_p50_s == pytest.approx(0.001)
    assert f.lateness_max_s == pytest.approx(0.2) and f.lateness_p99_s == pytest.approx(0.001)
    assert f.scheduled_rate == pytest.approx(2.0) and f.achieved_rate == pytest.approx(100 / 50.199)
    assert f.ok
    late = fidelity(scheduled, [s + 0.1 for s in scheduled], bound_p99_s=0.05)
    assert not late.ok and "BEYOND" in late.describe()
    none = fidelity([0.0, 1.0], [None, None], 0.05)
    assert none.sent == 0 and not none.ok and none.describe() == "no request sent"


def test_quantile_matches_linear_interpolation() -> None:
    assert quantile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert quantile([1.0, 2.0, 3.0, 4.0], 0.99) == pytest.approx(3.97)
    assert quantile([], 0.5) is None
