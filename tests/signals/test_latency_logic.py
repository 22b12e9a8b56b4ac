"""The latency family's pure parts: the over-saturation flag, the SLO rule, trust (harness/signals/latency.py)."""

from __future__ import annotations

import random

from harness.config import LoadConfig
from harness.signals.latency import Latency, saturation


def test_saturation_flags_a_rising_ttft_and_not_a_flat_one() -> None:
    rng = random.Random(0)
    sent = [i * 0.5 for i in range(80)]
    flat = [0.2 + rng.uniform(-0.05, 0.05) for _ in sent]
    rising = [0.2 + 0.05 * t + rng.uniform(-0.05, 0.05) for t in sent]
    assert not saturation(sent, flat).flagged
    s = saturation(sent, rising)
    assert s.flagged and s.ratio is not None and s.ratio > 1.5 and s.p_value is not None and s.p_value < 0.01
    bumpy = [0.3 if i == 79 else 0.2 for i in range(80)]  # one late outlier: no trend, no ratio
    assert not saturation(sent, bumpy).flagged
    assert not saturation(sent[:20], rising[:20]).flagged  # too few to say


class _Spec:
    def __init__(self, load: LoadConfig) -> None:
        self.load = load


def _rec(rid: str, sent: float, ttft: float, schedule: str = "s1", late: float = 0.001) -> dict[str, object]:
    return {"request_id": rid, "segment": "qa", "scheduled_s": sent - late, "sent_s": sent, "ttft_s": ttft,
            "tpot_s": 0.05, "latency_s": ttft + 1.0, "done_s": sent + ttft + 1.0, "error": None, "schedule": schedule}


def test_slo_met_needs_every_slo_set_and_trust_needs_fidelity_and_one_schedule() -> None:
    fam = Latency(_Spec(LoadConfig(mode="constant", rate=1.0, slo_ttft_s=0.5, slo_e2e_s=1.4)))  # type: ignore[arg-type]
    assert fam._met(_rec("a", 0.0, 0.3)) and not fam._met(_rec("b", 0.0, 0.45))  # e2e 1.45 > 1.4
    base = [_rec(str(i), float(i), 0.3) for i in range(10)]
    d = fam._details({"baseline": base, "candidate": base})["latency"]
    assert d["trusted"] and all(m.advisory is False for m in fam.metrics)
    assert [m.name for m in fam.metrics] == ["ttft", "tpot", "e2e_latency", "slo_met"]
    other = [_rec(str(i), float(i), 0.3, schedule="s2") for i in range(10)]
    d = fam._details({"baseline": base, "candidate": other})["latency"]
    assert not d["trusted"] and "different schedules" in d["untrusted_because"][0]
    assert all(m.advisory for m in fam.metrics)
    late = [_rec(str(i), float(i), 0.3, late=0.2) for i in range(10)]
    d = fam._details({"baseline": base, "candidate": late})["latency"]
    assert not d["trusted"] and "fidelity broken" in d["untrusted_because"][0]
