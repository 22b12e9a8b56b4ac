"""Open-loop timed replay of a bursty trace against the shared real:smollm2 server (``real_server``): every request
is sent at its schedule without waiting for earlier answers, each gets a load row (schedule, lateness, TTFT, ITL,
TPOT, e2e), and the run's latency tables, signals and verdict section come out (docs/load.md). Speed numbers are the
benchmark's (harness/bench/load.py), not asserted here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

pytestmark = [pytest.mark.vllm, pytest.mark.e2e]


def test_bursty_trace_is_replayed_open_loop_with_latency_signals(real_server: Any, tmp_path: Path) -> None:
    from harness.bench.load import _endpoint, bursty_trace, run
    from harness.fixtures.real.traffic import DEFAULT_REAL_SAMPLE

    trace = bursty_trace(DEFAULT_REAL_SAMPLE, tmp_path / "bursty.parquet", 24, burst=8, gap_s=2.0)
    d = run(["experiment=real_load", f"traffic.path={trace}", "traffic.limit=null", "replay.load.mode=timestamps",
             "replay.load.max_requests=20", "signals=[stats,latency]", "baseline.sampling.max_tokens=40",
             "candidate.sampling.max_tokens=40", "replay.load.max_lateness_p99_s=1.0", f"output_dir={tmp_path}",
             *_endpoint(("baseline", "candidate"), real_server.base_url)])
    rows = pq.read_table(d / "load" / "arm=candidate").to_pylist()
    assert len(rows) == 24 and len({r["schedule"] for r in rows}) == 1
    sent = [r for r in rows if r["sent_s"] is not None]
    assert len(sent) == 20 and all(r["error"].startswith("not_sent") for r in rows if r["sent_s"] is None)
    assert all(r["ttft_s"] is not None and 0 < r["ttft_s"] <= r["latency_s"] and r["error"] is None for r in sent)
    assert all(r["lateness_s"] >= 0 for r in sent)
    # open loop: within a burst, a request goes out before the one sent just before it is answered (a closed loop of
    # one never does). 40 tokens take over a second to stream; on 2 busy cores a send can still be a few hundred ms
    # late (the client starved), so 5 of the 7 consecutive pairs, not all
    burst = sorted(sorted(sent, key=lambda r: r["scheduled_s"])[:8], key=lambda r: r["sent_s"])
    assert sum(b["sent_s"] < a["done_s"] for a, b in zip(burst, burst[1:], strict=False)) >= 5
    assert sorted(sent, key=lambda r: r["sent_s"]) == sorted(sent, key=lambda r: r["scheduled_s"])
    with_gaps = [r for r in sent if r["output_tokens"] and r["output_tokens"] > 2]
    assert with_gaps and all(len(r["itl_s"]) >= 1 and r["tpot_s"] > 0 for r in with_gaps)
    load = {r["arm"]: r for r in pq.read_table(d / "load.parquet").to_pylist()}
    assert load["baseline"]["schedule"] == load["candidate"]["schedule"] and load["candidate"]["sent"] == 20
    assert load["candidate"]["lateness_p99_s"] is not None and load["candidate"]["achieved_rps"] > 0
    latency = pq.read_table(d / "latency.parquet").to_pylist()
    overall = [r for r in latency if r["arm"] == "candidate" and r["segment"] is None]
    assert overall[0]["measured"] == 20 and overall[0]["itl_p99_s"] is not None
    assert {r["segment"] for r in latency} - {None}  # per segment too
    verdict = json.loads((d / "verdict.json").read_text())
    section = verdict["latency"]
    assert section["arms"]["candidate"]["fidelity"]["sent"] == 20 and "saturation" in section["arms"]["candidate"]
    checks = {c["metric"] for c in verdict["checks"] if c["family"] == "latency"}
    assert checks == {"ttft", "tpot", "e2e_latency", "slo_met"}
