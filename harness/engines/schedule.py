"""Open-loop schedules and their fidelity: pure functions, no I/O (docs/load.md).

A schedule gives each request its send time, in seconds after the replay's start: the captured timestamps divided by a
speed-up factor, or a target rate (constant gaps, or Poisson: exponential gaps from a seed). The sender never waits
for earlier responses; how late each send actually was (``sent - scheduled``) is the schedule's fidelity.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

NOT_SENT_COUNT = "not_sent: beyond replay.load.max_requests"
NOT_SENT_TIME = "not_sent: scheduled after replay.load.max_duration_s"


def offsets(mode: str, n: int, timestamps: Sequence[dt.datetime] | None = None, speedup: float = 1.0,
            rate: float | None = None, seed: int = 0) -> list[float]:
    """Each request's send time, seconds after the start, in traffic order.

    Args:
        mode: ``timestamps`` (captured time minus the earliest, divided by ``speedup``), ``constant`` (``i / rate``)
            or ``poisson`` (cumulated exponential gaps of mean ``1 / rate``, the first request at 0).
        n: the number of requests.
        timestamps: the captured timestamps (mode ``timestamps``).
        speedup: > 1 replays faster than captured.
        rate: requests per second (``constant``, ``poisson``).
        seed: the Poisson gaps' seed: the same seed gives every arm the same schedule.

    Raises:
        ValueError: an unknown mode, or a missing rate / timestamps.
    """
    if mode == "timestamps":
        if timestamps is None or len(timestamps) != n:
            raise ValueError("mode timestamps needs one timestamp per request")
        t0 = min(timestamps) if n else None
        return [(t - t0).total_seconds() / speedup for t in timestamps] if t0 is not None else []
    if not rate or rate <= 0:
        raise ValueError(f"mode {mode} needs a rate > 0, got {rate}")
    if mode == "constant":
        return [i / rate for i in range(n)]
    if mode == "poisson":
        rng = random.Random(seed)
        out, t = [], 0.0
        for i in range(n):
            if i:
                t += rng.expovariate(rate)
            out.append(t)
        return out
    raise ValueError(f"unknown schedule mode {mode!r}")


def cut(scheduled: Sequence[float], max_requests: int | None, max_duration_s: float | None) -> list[str | None]:
    """Per request, None when it is sent, else why not: the ``max_requests`` earliest scheduled ones are sent (ties
    in traffic order), and none scheduled after ``max_duration_s``."""
    order = sorted(range(len(scheduled)), key=lambda i: (scheduled[i], i))
    out: list[str | None] = [None] * len(scheduled)
    for rank, i in enumerate(order):
        if max_requests is not None and rank >= max_requests:
            out[i] = NOT_SENT_COUNT
        elif max_duration_s is not None and scheduled[i] > max_duration_s:
            out[i] = NOT_SENT_TIME
    return out


def fingerprint(scheduled: Sequence[float], request_ids: Sequence[str], sent: Sequence[str | None]) -> str:
    """A short hash of the schedule (request ids, send times to the microsecond, what was cut): two arms with the
    same fingerprint saw the same schedule, so their latencies pair by request."""
    h = hashlib.sha256()
    for rid, t, why in zip(request_ids, scheduled, sent, strict=True):
        h.update(f"{rid}\t{round(t, 6)}\t{why or ''}\n".encode())
    return h.hexdigest()[:16]


def quantile(values: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile with linear interpolation (DuckDB's ``quantile_cont``); None when empty."""
    xs = sorted(values)
    if not xs:
        return None
    pos = q * (len(xs) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


@dataclass(frozen=True)
class Fidelity:
    """How well the sends kept the schedule: lateness (``sent - scheduled``) percentiles, and the achieved rate
    against the scheduled one (requests over the span from the first to the last send)."""

    sent: int
    lateness_p50_s: float | None
    lateness_p99_s: float | None
    lateness_max_s: float | None
    scheduled_rate: float | None
    achieved_rate: float | None
    bound_p99_s: float
    ok: bool

    def describe(self) -> str:
        if self.lateness_p99_s is None or self.lateness_p50_s is None:
            return "no request sent"
        rates = (f"; {self.achieved_rate:.3g} req/s achieved vs {self.scheduled_rate:.3g} scheduled"
                 if self.achieved_rate is not None and self.scheduled_rate is not None else "")
        verdict = "within" if self.ok else "BEYOND"
        return (f"send lateness p50 {self.lateness_p50_s * 1e3:.1f} ms, p99 {self.lateness_p99_s * 1e3:.1f} ms "
                f"({verdict} the {self.bound_p99_s * 1e3:.0f} ms bound){rates}")


def _rate(times: Sequence[float]) -> float | None:
    span = max(times) - min(times) if len(times) > 1 else 0.0
    return (len(times) - 1) / span if span > 0 else None


def fidelity(scheduled: Sequence[float], sent: Sequence[float | None], bound_p99_s: float) -> Fidelity:
    """The schedule's fidelity over the requests that were sent (``sent`` None: not sent). The rate counts the gaps
    between sends (n - 1 over the span), so an evenly kept constant schedule of rate r reads exactly r."""
    pairs = [(s, a) for s, a in zip(scheduled, sent, strict=True) if a is not None]
    late = [a - s for s, a in pairs]
    p99 = quantile(late, 0.99)
    return Fidelity(len(pairs), quantile(late, 0.5), p99, max(late) if late else None,
                    _rate([s for s, _ in pairs]), _rate([a for _, a in pairs]), bound_p99_s,
                    p99 is not None and p99 <= bound_p99_s)
