"""The canary evaluator: windows over a growing log directory, persisted, resumable, wired to the traffic layer.

Reads top to bottom: open (or resume) the run directory, then per loop: read new logs, score them, evaluate every
window that has ended (``harness.canary.windows``), persist it, call the hooks; stop at ROLLBACK, PROMOTE, the last
window, or (not following) when the data runs out. The run directory ``<output_dir>/<name>/<run_id>/`` holds
``manifest.json`` (no secrets), ``decisions.parquet`` (one row per window), ``windows.parquet`` (one row per window
and check), ``golden_samples.parquet``, ``actions.jsonl`` (HAProxy changes, webhook deliveries), the webhook outbox,
``report.md`` and ``timeline.png``. Given the same ``run_id`` a restarted evaluator continues after its last window.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from harness.canary.hooks import HAProxy, Webhook, public_url
from harness.canary.logs import CanaryLogs, JoinSpec, LogMapping, LogRecord
from harness.canary.samples import DRIFT_METRIC, STATS_CATALOG, DriftScorer, GoldenReplayer, stats_samples
from harness.canary.sequential import Sequential
from harness.canary.windows import TERMINAL, Sample, Tally, WindowResult, checks_from_stats, decide_window
from harness.gate import Policy, policy_to_json
from harness.store import write_parquet_atomic

log = logging.getLogger(__name__)
EXIT_CODES = {"PROMOTE": 0, "INVESTIGATE": 10, "ROLLBACK": 11, "CONTINUE": 14}
"""Exit code of ``python -m harness canary`` per last decision (2: bad input, 1: unexpected failure)."""
READ_CHUNK = 20_000  # log records read, scored and dropped at a time
WINDOW_COLUMNS = ("window", "family", "metric", "segment", "status", "role", "n_control", "n_canary", "control",
                  "canary", "delta", "half_width", "margin", "p_look", "p_running", "p_adjusted", "reason",
                  "var", "tau2", "level", "p_breach", "paired")


@dataclass(frozen=True)
class WebhookSpec:
    url: str
    secret: bytes = field(repr=False)
    attempts: int = 5
    backoff_s: float = 0.5
    timeout_s: float = 5.0


@dataclass(frozen=True)
class CanarySpec:
    """Everything the evaluator needs, as plain values (``harness.cli`` builds it from ``CanaryConfig``)."""

    name: str
    logs: Path
    window_s: float
    observation_windows: int
    sequential: Sequential
    policy: Policy
    output_dir: Path
    max_windows: int | None = None
    start: dt.datetime | None = None
    follow: bool = False
    poll_s: float = 5.0
    run_id: str | None = None
    drift: tuple[str, int, str | None, float] | None = None  # model, reference size, device, control share
    golden: GoldenReplayer | None = field(default=None, repr=False)
    golden_every: int = 6
    haproxy: HAProxy | None = None
    webhook: WebhookSpec | None = field(default=None, repr=False)
    mapping: LogMapping = field(default_factory=LogMapping)
    join: JoinSpec | None = None
    max_bad_share: float = 0.01  # records the canary could not use (quarantined, unmatched) above this: INVESTIGATE
    health: dict[str, float] = field(default_factory=dict)  # what `serve` reads: stale_windows, grace_s, heartbeat_s

    def manifest(self) -> dict[str, Any]:
        """What the manifest records: no secret, URLs without credentials or query."""
        return {"name": self.name, "logs": str(self.logs), "window_s": self.window_s,
                "observation_windows": self.observation_windows, "max_windows": self.windows_limit,
                "sequential": asdict(self.sequential), "policy": policy_to_json(self.policy),
                "drift": None if self.drift is None else {"model": self.drift[0], "reference": self.drift[1]},
                "golden": None if self.golden is None else {
                    "every": self.golden_every, "limit": self.golden.limit,
                    "endpoints": {a: public_url(e.url) for a, e in self.golden.endpoints.items()}},
                "haproxy": None if self.haproxy is None else asdict(self.haproxy),
                "webhook": None if self.webhook is None else {"url": public_url(self.webhook.url),
                                                              "attempts": self.webhook.attempts},
                "mapping": {**asdict(self.mapping), "arm_values": dict(self.mapping.arm_values)},
                "join": None if self.join is None else {**asdict(self.join), "logs": str(self.join.logs)},
                "max_bad_share": self.max_bad_share, "poll_s": self.poll_s, "follow": self.follow,
                "health": dict(self.health)}

    @property
    def windows_limit(self) -> int:
        return self.max_windows or 3 * self.observation_windows


def _utc(s: str) -> dt.datetime:
    t = dt.datetime.fromisoformat(s)
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


class Evaluator:
    """One canary run: its directory, its state, and the loop."""

    def __init__(self, spec: CanarySpec, clock: Callable[[], float] = time.time) -> None:
        self.spec, self.clock = spec, clock
        run_id = spec.run_id or dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ-") + secrets.token_hex(2)
        self.path = spec.output_dir / spec.name / run_id
        self.path.mkdir(parents=True, exist_ok=True)
        self.logs = CanaryLogs(spec.logs, spec.mapping, spec.join, self.path / "quarantine.jsonl", spec.follow, clock)
        self.tally: Tally | None = None  # per window bucket: the windows' statistics (no record is kept)
        self.latest: dt.datetime | None = None  # the newest record's time (not following: "now")
        self.drift = DriftScorer(*spec.drift) if spec.drift else None
        self.webhook = None if spec.webhook is None else Webhook(
            spec.webhook.url, spec.webhook.secret, self.path / "webhook_outbox.jsonl", spec.webhook.attempts,
            spec.webhook.backoff_s, spec.webhook.timeout_s)
        self.catalog = (*STATS_CATALOG, DRIFT_METRIC, *(spec.golden.catalog() if spec.golden else ()))
        self.decisions: list[dict[str, Any]] = self._read("decisions.parquet")
        self.window_rows: list[dict[str, Any]] = self._read("windows.parquet")
        self.golden_samples = [Sample(**r) for r in self._read("golden_samples.parquet")]  # a few per window
        manifest = self.path / "manifest.json"
        recorded = json.loads(manifest.read_text()) if manifest.exists() else {}
        self.t0 = _utc(recorded["t0"]) if recorded.get("t0") else spec.start
        self.started_at = recorded.get("started_at") or dt.datetime.now(dt.UTC).isoformat()
        self._write_manifest()
        self.results: list[WindowResult] = []

    def _read(self, name: str) -> list[dict[str, Any]]:
        p = self.path / name
        return pq.read_table(p).to_pylist() if p.exists() else []

    @property
    def next_window(self) -> int:
        return len(self.decisions)

    @property
    def last_decision(self) -> str | None:
        return self.decisions[-1]["decision"] if self.decisions else None

    def _write_manifest(self) -> None:
        doc = {**self.spec.manifest(), "run_id": self.path.name, "t0": self.t0.isoformat() if self.t0 else None,
               "started_at": self.started_at}
        (self.path / "manifest.json").write_text(json.dumps(doc, indent=1, default=str) + "\n")

    def _action(self, record: dict[str, Any]) -> None:
        with (self.path / "actions.jsonl").open("a") as f:
            f.write(json.dumps(record, default=str) + "\n")

    def run(self) -> str | None:
        """Evaluate windows until a terminal decision or the end; returns the last decision (None: no window).
        A heartbeat thread writes ``heartbeat.json`` every quarter of ``health.heartbeat_s`` while this runs (a long
        window evaluation is not silence; a hung one shows in the newest window's age instead)."""
        stop = threading.Event()
        beat = threading.Thread(target=self._beat, args=(stop,), daemon=True)
        beat.start()
        try:
            return self._loop()
        finally:
            stop.set()
            beat.join(5)

    def _beat(self, stop: threading.Event) -> None:
        interval = max(0.2, float(self.spec.health.get("heartbeat_s", 60.0)) / 4)
        while not stop.wait(interval):
            self.heartbeat()

    def _loop(self) -> str | None:
        while self.last_decision not in TERMINAL and self.next_window < self.spec.windows_limit:
            self._ingest(self.logs.refresh(limit=READ_CHUNK))  # a chunk at a time: memory is bounded by it
            if self.logs.more and not self.spec.follow:
                continue  # not following: every record there is counts before a window is decided
            done = self._evaluate_ready()
            if self.webhook is not None:
                self.webhook.flush()
            if not self.spec.follow and not done:
                break
            if not done and not self.logs.more:
                time.sleep(self.spec.poll_s)
        self.heartbeat()
        self.write_report()
        return self.last_decision

    def _ingest(self, new: Sequence[LogRecord]) -> None:
        """Score the records that arrived (output statistics; drift once its reference is complete) into the
        window buckets; the records themselves are dropped."""
        if not new:
            return
        if self.t0 is None:
            self.t0 = new[0].timestamp
            self._write_manifest()
        if self.tally is None:
            self.tally = Tally(self.t0, self.spec.window_s, self.spec.windows_limit)
            self.tally.add_samples(self.golden_samples)  # a resumed run's golden replays
        self.latest = max(self.latest or new[-1].timestamp, new[-1].timestamp)
        for r in new:
            self.tally.add_record(r.arm, r.timestamp)
        self.tally.add_samples(stats_samples(new))
        if self.drift is not None:
            self.tally.add_samples(self.drift.samples(new))

    def heartbeat(self) -> None:
        """``heartbeat.json``: this evaluator is alive (``serve`` turns not-healthy when it goes quiet)."""
        doc = {"at": self.clock(), "pid": os.getpid(), "next_window": self.next_window,
               "last_decision": self.last_decision, "counts": asdict(self.logs.counts)}
        tmp = self.path / f".heartbeat.{threading.get_ident()}.tmp"
        tmp.write_text(json.dumps(doc) + "\n")
        tmp.replace(self.path / "heartbeat.json")

    def _now(self) -> dt.datetime | None:
        if self.spec.follow:
            return dt.datetime.fromtimestamp(self.clock(), dt.UTC)
        return self.latest

    def _evaluate_ready(self) -> int:
        now, done = self._now(), 0
        if self.t0 is None or now is None or self.tally is None:
            return 0
        width = dt.timedelta(seconds=self.spec.window_s)
        while (self.last_decision not in TERMINAL and self.next_window < self.spec.windows_limit
               and self.t0 + (self.next_window + 1) * width <= now):
            w = self.next_window
            start, end = self.t0 + w * width, self.t0 + (w + 1) * width
            self._golden(w, end)
            self.evaluate_window(w, start, end)
            done += 1
        return done

    def _golden(self, w: int, end: dt.datetime) -> None:
        if self.spec.golden is None or (w + 1) % self.spec.golden_every:
            return
        k = (w + 1) // self.spec.golden_every - 1
        replayed = self.spec.golden.replay(k, end - dt.timedelta(microseconds=1))
        self.golden_samples += replayed
        if self.tally is not None:
            self.tally.add_samples(replayed)
        write_parquet_atomic(self.path / "golden_samples.parquet",
                             pa.Table.from_pylist([asdict(s) for s in self.golden_samples]))

    def evaluate_window(self, w: int, start: dt.datetime, end: dt.datetime) -> WindowResult:
        """Checks (on the buckets up to ``w``), decision, persistence and hooks of window ``w``."""
        assert self.tally is not None
        state = {(r["metric"], r["segment"]): r["p_running"] for r in self.window_rows if r["window"] == w - 1}
        checks = checks_from_stats(self.tally.upto(w), self.catalog, self.spec.policy, self.spec.sequential, state,
                                   history(self.window_rows, w))
        breached = any(d["decision"] in ("INVESTIGATE", "ROLLBACK") for d in self.decisions)
        result = decide_window(w, start, end, checks, self.spec.observation_windows, breached,
                               self.tally.records(w, "control"), self.tally.records(w, "canary"))
        result = self._data_quality(result)
        self.window_rows += [{"window": w, "family": c.check.family, "metric": c.check.metric,
                              "segment": c.check.segment, "status": c.check.status, "role": c.check.role,
                              "n_control": c.n_control, "n_canary": c.n_canary, "control": c.check.baseline,
                              "canary": c.check.candidate, "delta": c.check.delta, "half_width": c.half_width,
                              "margin": c.margin, "p_look": c.p_look, "p_running": c.p_running,
                              "p_adjusted": c.check.p_value, "reason": c.check.reason, "var": c.var,
                              "tau2": c.tau2, "level": c.check.level, "p_breach": c.p_breach,
                              "paired": c.paired} for c in checks]
        actions = self._hooks(result)
        counts = self.logs.counts
        self.decisions.append({"window": w, "start": start, "end": end, "decision": result.decision,
                               "gate_verdict": result.verdict.verdict, "n_control": result.n_control,
                               "n_canary": result.n_canary, "families": json.dumps(dict(result.verdict.families)),
                               "reasons": json.dumps(list(result.reasons)), "actions": json.dumps(actions),
                               "records": counts.records, "bad_records": counts.bad,
                               "unmatched": counts.unmatched, "proxy_unmatched": counts.proxy_unmatched,
                               "evaluated_at": dt.datetime.now(dt.UTC)})
        write_parquet_atomic(self.path / "windows.parquet", pa.Table.from_pylist(self.window_rows))
        write_parquet_atomic(self.path / "decisions.parquet", pa.Table.from_pylist(self.decisions))
        log.info("canary %s window %d [%s, %s): %s (control %d, canary %d)", self.spec.name, w, start.time(),
                 end.time(), result.decision, result.n_control, result.n_canary)
        print(f"window {w}: {result.decision} (control {result.n_control}, canary {result.n_canary})"
              + "".join(f"\n  - {r}" for r in result.reasons[:3]), flush=True)
        self.results.append(result)
        return result

    def _data_quality(self, result: WindowResult) -> WindowResult:
        """Records the canary could not use (quarantined or unmatched) above ``max_bad_share``: never CONTINUE or
        PROMOTE on them, INVESTIGATE (the data, not the candidate, is in question)."""
        c = self.logs.counts
        share = c.share_bad()
        if share <= self.spec.max_bad_share or result.decision not in ("CONTINUE", "PROMOTE"):
            return result
        reason = (f"data quality: {share:.1%} of {c.seen} log records could not be used ({c.bad} quarantined, "
                  f"{c.unmatched} without a proxy record; max_bad_share {self.spec.max_bad_share:.1%}); see "
                  f"{self.path / 'quarantine.jsonl'}")
        return replace(result, decision="INVESTIGATE", reasons=(*result.reasons, reason))

    def _hooks(self, result: WindowResult) -> list[dict[str, Any]]:
        actions: list[dict[str, Any]] = []
        if result.decision == "ROLLBACK" and self.spec.haproxy is not None:
            try:
                actions.append(self.spec.haproxy.rollback())
            except (OSError, RuntimeError) as e:
                actions.append({"action": "haproxy_set_weight", "error": str(e), "at": time.time()})
                log.error("canary %s: ROLLBACK, but HAProxy did not take it: %s", self.spec.name, e)
        if self.webhook is not None and (result.decision != self.last_decision or result.decision in TERMINAL):
            payload = webhook_payload(self.spec.name, self.path, result, actions)
            ok = self.webhook.deliver(payload)
            actions.append({"action": "webhook", "delivery_id": payload.get("delivery_id"), "delivered": ok,
                            "at": time.time()})
        for a in actions:
            self._action({"window": result.window, **a})
        return actions

    def write_report(self) -> Path | None:
        if not self.decisions:
            return None
        from harness.canary.report import write_report

        return write_report(self.path, self.spec.name, self.decisions, self.window_rows)


def history(rows: Sequence[dict[str, Any]], window: int
            ) -> dict[tuple[str, str | None], list[tuple[float, float, float, float]]]:
    """The gated looks before ``window`` per (metric, segment), oldest first (``harness.canary.windows.History``);
    rows of a run written before the variances were kept have none (the worse side then reads from this look on)."""
    out: dict[tuple[str, str | None], list[tuple[float, float, float, float]]] = {}
    for r in sorted(rows, key=lambda r: r["window"]):
        if r["window"] < window and r["status"] != "too_few" and r.get("var") is not None:
            out.setdefault((r["metric"], r["segment"]), []).append((r["delta"], r["var"], r["tau2"], r["level"]))
    return out


def webhook_payload(name: str, run_path: Path, result: WindowResult, actions: list[dict[str, Any]]
                    ) -> dict[str, Any]:
    """The webhook's JSON body (docs/canary.md)."""
    return {"schema_version": 1, "canary": name, "run_id": run_path.name, "decision": result.decision,
            "window": result.window, "window_start": result.start.isoformat(), "window_end": result.end.isoformat(),
            "reasons": list(result.reasons), "families": dict(result.verdict.families),
            "n_control": result.n_control, "n_canary": result.n_canary, "actions": actions,
            "links": {"run_dir": str(run_path), "report": str(run_path / "report.md"),
                      "decisions": str(run_path / "decisions.parquet")},
            "sent_at": dt.datetime.now(dt.UTC).isoformat()}
