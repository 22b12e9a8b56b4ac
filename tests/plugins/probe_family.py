"""A signal family written the way a user writes one: this module plus one registry line (an entry point in the group
``harness.signals``: ``probe = probe_family:PLUGIN``). It has a setting (``probe.count``, ``probe.text``) and its own
replay job: baseline and candidate each answer ``count`` probe requests with the engine of their traffic replay,
into ``<run>/probe/``; its metric is the share of probes answered with a non-empty output (tests/signals/
test_plugin_cli.py runs it through the CLI)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from harness.replay import ReplayJob
from harness.signals.base import SIGNAL_SCHEMA, Family, MetricSpec, ScoreInputs
from harness.store import RunDir, connect
from harness.traffic import Message, Request, open_traffic, write_traffic


@dataclass
class ProbeConfig:
    """The ``probe:`` group of an experiment."""

    count: int = 3
    text: str = "Say hello."


class ProbeSignal:
    family = "probe"
    metrics = (MetricSpec("probe_answered", "probe", "rate", True, "probes answered with some text",
                          margin_absolute=0.5),)

    def __init__(self, settings: ProbeConfig) -> None:
        self.settings = settings
        self.details: dict[str, Any] | None = None

    def score(self, inputs: ScoreInputs) -> pa.Table:
        con = connect(RunDir(inputs.run.path, "probe", "."))
        rows = con.sql("SELECT request_id, arm, output_text FROM generations ORDER BY arm, request_id").fetchall()
        con.close()
        self.details = {"probe": {"count": self.settings.count, "answered": sum(bool(t) for _, _, t in rows)}}
        return pa.Table.from_pylist([{"request_id": r, "arm": a, "segment": "probe", "metric": "probe_answered",
                                      "value": float(bool(t))} for r, a, t in rows], schema=SIGNAL_SCHEMA)

    def checks(self, policy: Any) -> list[Any]:
        return []


def replay_jobs(spec: Any, run: RunDir, arm: str, record: dict[str, Any] | None) -> list[ReplayJob]:
    if arm not in ("baseline", "candidate"):
        return []
    settings: ProbeConfig = spec.settings["probe"]
    path = run.path / "probe" / "traffic.parquet"
    when = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    write_traffic([Request(f"probe-{i}", when, "probe", (Message("user", settings.text),), None, 0.0, None, 8, None,
                           None, None) for i in range(settings.count)], path)
    return [ReplayJob(open_traffic(path), RunDir(run.path, "probe", "."), f"probe_{arm}")]


PLUGIN = Family(make=lambda spec: ProbeSignal(spec.settings["probe"]), settings=ProbeConfig, replay_jobs=replay_jobs)
