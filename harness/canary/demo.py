"""The end-to-end canary demo on a CPU machine (``make canary``; docs/canary.md).

    python -m harness.canary.demo [--out reports/canary_demo] [--rate 30] [--window-s 5]

Three real vLLM OpenAI servers on the zoo checkpoints (baseline, terse, benign; ``harness.engines.server.VLLMServer``,
the server backend's launcher), one real HAProxy on loopback with
backend ``llm``: ``control`` = baseline at weight 95, ``canary`` = terse at weight 5, the serving server's name in
the ``X-Served-By`` response header, a unique id per request (``X-Request-ID``) and its own JSON access log
(request id, server). A bounded load generator replays the sample traffic through HAProxy and writes the
application's log (OpenAI JSONL keyed by the proxy's request id, no arm: the arm comes from HAProxy's access log,
joined by request id) and, for comparison, pre-labelled Parquet logs (the arm from ``X-Served-By``). The evaluator
is the CLI a user runs (``python -m harness canary ... join.logs=... follow=true``, a subprocess) with every family
(stats, drift against control, the golden set replayed against both versions' endpoints every ``golden_every``
windows), HAProxy and a signed webhook to a local receiver as hooks; ``serve`` answers beside it.

Scenario 1 (regression) is also the chaos test: garbage and half-written lines go into the live application log,
the evaluator is killed (SIGKILL) after its first window and ``serve`` must turn not-healthy (503) within the
heartbeat limit, then the evaluator is restarted with the same run id, resumes, and ``serve`` recovers; it must end
in ROLLBACK with the canary's weight read back 0. Then the ``canary`` server is pointed at the benign checkpoint
through the runtime API (``set server llm/canary addr ...``, weight 50) and scenario 2 must raise no alarm
(CONTINUE, or PROMOTE when its sample allows it). After scenario 1 its joined logs and the pre-labelled ones are
evaluated again offline: the gate's verdict of every window must be the same. ``demo.md`` has both timelines, the
quarantine counts, HAProxy's ``show stat`` before and after, the webhook deliveries and the times. Every process
started is stopped by its PID, on success and failure.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from harness import REPLAYS_DIR
from harness.canary.client import chat
from harness.canary.evaluate import CanarySpec, Evaluator
from harness.canary.hooks import SIGNATURE_HEADER, HAProxy, verify
from harness.canary.launch import Process, start, start_haproxy
from harness.canary.logs import JoinSpec, LogMapping, write_log
from harness.canary.sequential import Sequential
from harness.canary.serve import make_server, serve_in_thread
from harness.engines.server import VLLMServer
from harness.fixtures.zoo.build import DEFAULT_ZOO_DIR
from harness.fixtures.zoo.settings import zoo_engine
from harness.spec import default_policy
from harness.traffic import Request, load_traffic

ZOO = DEFAULT_ZOO_DIR
MODEL_NAME = "support"
STAT_COLUMNS = ("pxname", "svname", "status", "weight", "stot", "addr")


@dataclass(frozen=True)
class DemoSettings:
    """The demo's knobs: load, windows, the sequential test's minimum sample, drift and golden sizes."""

    rate: float = 20.0  # at most this many requests per second through HAProxy (fewer when the servers are slower)
    concurrency: int = 8
    window_s: float = 5.0
    observation_windows: int = 6
    max_windows: int = 18
    benign_windows: int = 4  # the benign canary: no false alarm in 4 windows (PROMOTE needs more samples: docs)
    min_per_arm: int = 10  # the production default is 100 (docs/canary.md); the demo's canary sees ~1 request/s
    min_events: float = 1.0  # the production default is 10 expected events; the demo's shifts are near-total
    tau_sd: float = 0.5  # tuned to large effects on small samples (the production default 0.1: small, at 100+/h)
    reference: int = 30
    control_share: float = 0.3
    golden_every: int = 2
    golden_limit: int = 12
    max_tokens: int = 64
    heartbeat_s: float = 4.0  # `serve` turns not-healthy when the evaluator is silent this long (production: 60)
    stale_windows: float = 6.0  # ... or its newest window is this many (5 s) windows old (production: 2 one-hour ones)
    golden_margin: float = 0.3  # the golden set's margin here: 12 items a slice cannot show 2 points (production 0.02)
    benign_weight: int = 50  # the benign canary's HAProxy weight: non-inferiority needs canary samples (PROMOTE)
    garbage_every_s: float = 3.0  # chaos (regression scenario): a garbage line and a half-written one this often


class LoadGenerator(threading.Thread):
    """Replays requests through the traffic layer at ``rate``/s and writes canary logs, one file per second."""

    def __init__(self, url: str, requests: list[Request], logs: Path, app: Path, s: DemoSettings, prefix: str,
                 chaos: bool = False) -> None:
        super().__init__(daemon=True)
        self.url, self.requests, self.logs, self.app, self.s, self.prefix = url, requests, logs, app, s, prefix
        self.chaos, self.stop_event, self.sent = chaos, threading.Event(), 0
        self.rows: list[dict[str, Any]] = []
        self.lines: list[str] = []
        self.lock = threading.Lock()
        self.part, self.garbage, self.half, self.logged, self.errors, self.lost = 0, 0, 0, 0, 0, 0

    def _one(self, i: int, r: Request) -> None:
        a = chat(self.url, MODEL_NAME, r, self.s.max_tokens, timeout_s=30.0)
        rid = a.request_id or f"{self.prefix}-{i}-{r.request_id}"
        started = dt.datetime.fromtimestamp(a.started, dt.UTC)
        messages = [{"role": m.role, "content": m.content} for m in r.messages] if r.messages else None
        row = {"request_id": rid, "timestamp": started, "segment": r.segment, "messages": messages,
               "prompt": r.prompt, "max_tokens": r.max_tokens, "response_schema": r.response_schema,
               "response": a.text, "arm": "canary" if a.served_by == "canary" else "control",
               "latency_s": a.latency_s, "finish_reason": a.finish_reason, "output_tokens": a.output_tokens,
               "error": a.error}
        line = {"id": rid, "timestamp": started.isoformat(), "metadata": {"segment": r.segment},
                "request": {"model": MODEL_NAME, "messages": messages or [{"role": "user", "content": r.prompt or ""}],
                            "max_tokens": r.max_tokens},
                "response": None if a.text is None else {
                    "choices": [{"message": {"role": "assistant", "content": a.text},
                                 "finish_reason": a.finish_reason}], "usage": {"completion_tokens": a.output_tokens}},
                "latency_s": a.latency_s, "error": a.error}
        with self.lock:
            if a.request_id is None:  # HAProxy never answered: nothing to join, nothing logged
                self.lost += 1
                return
            self.rows.append(row)
            self.lines.append(json.dumps(line))
            self.logged += 1
            self.errors += a.error is not None

    def _flush(self, chaos: bool = False) -> None:
        with self.lock:
            rows, self.rows, lines, self.lines = self.rows, [], self.lines, []
        if rows:
            write_log(rows, self.logs / f"part-{self.part:05d}.parquet")
            self.part += 1
        with (self.app / "app.jsonl").open("a", encoding="utf-8") as f:
            if chaos and lines:  # a line the logger is still writing: half now, the rest a moment later
                head, tail = lines[0][: len(lines[0]) // 2], lines[0][len(lines[0]) // 2:]
                f.write(head)
                f.flush()
                time.sleep(0.3)
                f.write(tail + "\n")
                lines, self.half = lines[1:], self.half + 1
            if chaos:
                f.write('{"id": "garbage", "request": {"messages": [tr\n')
                self.garbage += 1
            f.write("".join(x + "\n" for x in lines))

    def run(self) -> None:
        """Send at most ``rate`` requests a second, at most ``concurrency`` in flight (a slower server lowers the
        rate instead of queueing requests without bound)."""
        slots = threading.Semaphore(self.s.concurrency)
        t0, last_flush, last_chaos = time.perf_counter(), time.perf_counter(), time.perf_counter()
        pool = ThreadPoolExecutor(self.s.concurrency)

        def one(i: int, r: Request) -> None:
            try:
                self._one(i, r)
            finally:
                slots.release()

        try:
            while not self.stop_event.is_set():
                if self.sent < int((time.perf_counter() - t0) * self.s.rate) and slots.acquire(timeout=0.05):
                    pool.submit(one, self.sent, self.requests[self.sent % len(self.requests)])
                    self.sent += 1
                else:
                    time.sleep(0.01)
                if time.perf_counter() - last_flush >= 1.0:
                    chaos = self.chaos and time.perf_counter() - last_chaos >= self.s.garbage_every_s
                    self._flush(chaos)
                    last_flush = time.perf_counter()
                    last_chaos = time.perf_counter() if chaos else last_chaos
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            self._flush()

    def stop(self) -> None:
        self.stop_event.set()
        self.join(60)


class Receiver:
    """A local webhook receiver that checks every delivery's signature."""

    def __init__(self, secret: bytes) -> None:
        self.deliveries: list[dict[str, Any]] = []
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                ok = verify(secret, body, self.headers.get(SIGNATURE_HEADER))
                outer.deliveries.append({"signature_ok": ok, **json.loads(body)})
                self.send_response(204 if ok else 401)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/canary-alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def show_stat(hp: HAProxy) -> list[dict[str, str]]:
    """``show stat`` rows of backend ``llm``'s servers, a few columns."""
    text = hp.show_stat().lstrip("# ")
    rows = list(csv.DictReader(io.StringIO(text)))
    return [{k: r.get(k, "") for k in STAT_COLUMNS} for r in rows if r.get("pxname") == "llm"]


def evaluator_argv(label: str, s: DemoSettings, out: Path, app: Path, proxy: Path, start_at: dt.datetime,
                   golden: tuple[str, str], sock: Path, webhook_url: str, max_windows: int) -> list[str]:
    """The evaluator as a user runs it: ``python -m harness canary`` following the application's log, the arm joined
    from HAProxy's access log by request id."""
    return [sys.executable, "-m", "harness", "canary", f"logs={app}", f"join.logs={proxy}", "join.wait_s=3",
            f"name=canary_demo_{label}", f"window_s={s.window_s}", f"observation_windows={s.observation_windows}",
            f"max_windows={max_windows}", f"start='{start_at.isoformat()}'", "follow=true", "poll_s=0.5",
            f"run_id={label}", f"output_dir={out}", f"sequential.tau_sd={s.tau_sd}",
            f"sequential.min_per_arm={s.min_per_arm}", f"sequential.min_events={s.min_events}",
            f"drift.reference={s.reference}",
            f"drift.control_share={s.control_share}", "drift.device=cpu",
            f"golden.path={REPLAYS_DIR / 'golden_zoo.parquet'}", f"golden.every={s.golden_every}",
            f"golden.limit={s.golden_limit}", f"golden.control_url={golden[0]}", f"golden.canary_url={golden[1]}",
            f"golden.model={MODEL_NAME}", f"golden.max_tokens={s.max_tokens}", "hooks=haproxy",
            f"hooks.haproxy.socket={sock}", f"hooks.webhook.url={webhook_url}", "hooks.webhook.attempts=3",
            "hooks.webhook.backoff_s=0.2", f"health.heartbeat_s={s.heartbeat_s}",
            f"health.stale_windows={s.stale_windows}", f"+gate.margins.golden={s.golden_margin}"]


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:  # noqa: S310 (loopback)
            return int(r.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


def _wait(what: str, ok: Callable[[], bool], timeout_s: float) -> float:
    t0 = time.perf_counter()
    while not ok():
        if time.perf_counter() - t0 > timeout_s:
            raise RuntimeError(f"canary demo: {what} did not happen within {timeout_s:g} s")
        time.sleep(0.2)
    return time.perf_counter() - t0


def _decisions(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "decisions.parquet"
    return pq.read_table(path).to_pylist() if path.exists() else []


def offline_verdicts(s: DemoSettings, out: Path, name: str, logs: Path, join: Path | None, t0: dt.datetime
                     ) -> list[tuple[int, str, str]]:
    """Every window's gate verdict (and families) from the finished logs, evaluated again without following (no
    golden replay, no hooks): the joined logs and the pre-labelled ones must agree."""
    policy = default_policy()
    spec = CanarySpec(name=name, logs=logs, window_s=s.window_s, observation_windows=s.observation_windows,
                      sequential=Sequential(tau_sd=s.tau_sd, min_per_arm=s.min_per_arm, min_events=s.min_events),
                      policy=replace(policy, margins={**policy.margins, "golden": s.golden_margin}),
                      output_dir=out / "offline", max_windows=s.max_windows, start=t0, run_id=name,
                      drift=("packaged:all-MiniLM-L6-v2", s.reference, "cpu", s.control_share),
                      mapping=LogMapping(), join=JoinSpec(join) if join else None, max_bad_share=1.0)
    ev = Evaluator(spec)
    ev.run()
    return [(d["window"], d["gate_verdict"], d["families"]) for d in ev.decisions]


def scenario(label: str, s: DemoSettings, out: Path, front: str, golden: tuple[str, str], canary: str, hp: HAProxy,
             sock: Path, receiver: Receiver, secret: bytes, requests: list[Request], chaos: bool) -> dict[str, Any]:
    """One canary: load through HAProxy, the CLI evaluator following the joined logs until ROLLBACK/PROMOTE, `serve`
    beside it; with ``chaos``, garbage in the log and the evaluator killed and restarted."""
    logs, app = out / f"logs_{label}", out / f"app_{label}"
    logs.mkdir(parents=True, exist_ok=True)
    app.mkdir(parents=True, exist_ok=True)
    run_dir = out / f"canary_demo_{label}" / label
    run_dir.mkdir(parents=True, exist_ok=True)
    before = show_stat(hp)
    server = make_server(run_dir)
    serve_in_thread(server)
    decision_url = f"http://127.0.0.1:{server.server_address[1]}/decision"
    t0 = dt.datetime.now(dt.UTC)
    argv = evaluator_argv(label, s, out, app, out / "proxy_logs", t0, golden, sock, receiver.url,
                          s.max_windows if chaos else s.benign_windows)
    env = {"CANARY_WEBHOOK_SECRET": secret.decode(), "HF_HUB_OFFLINE": "1"}
    evaluator = Process("evaluator", start(argv, out / f"evaluator_{label}.log", env), out / f"evaluator_{label}.log")
    gen = LoadGenerator(front, requests, logs, app, s, label, chaos)
    started = time.perf_counter()
    gen.start()
    chaos_record: dict[str, Any] = {}
    pids = [evaluator.pid]
    try:
        if chaos:
            _wait("the first window", lambda: len(_decisions(run_dir)) >= 1 or evaluator.proc.poll() is not None, 240)
            _wait("serve healthy", lambda: _status(decision_url) == 200 or evaluator.proc.poll() is not None, 60)
            os.killpg(evaluator.pid, signal.SIGKILL)  # the evaluator dies mid-canary
            evaluator.proc.wait(10)
            killed_at_window = len(_decisions(run_dir))
            unhealthy = _wait("serve turning not-healthy", lambda: _status(decision_url) == 503, 60)
            evaluator = Process("evaluator", start(argv, out / f"evaluator_{label}.log", env),
                                out / f"evaluator_{label}.log")
            pids.append(evaluator.pid)
            recovered = _wait("serve recovering", lambda: _status(decision_url) == 200, 240)
            chaos_record = {"killed_after_windows": killed_at_window, "unhealthy_after_s": round(unhealthy, 1),
                            "heartbeat_s": s.heartbeat_s, "recovered_after_restart_s": round(recovered, 1)}
        evaluator.proc.wait(600)
    finally:
        gen.stop()
        evaluator.stop()
        server.shutdown()
        server.server_close()
    decisions = _decisions(run_dir)
    last = decisions[-1] if decisions else {}
    actions = [a for d in decisions for a in json.loads(d["actions"])]
    same = None  # the regression's logs (the chaos included) evaluated again: joined vs pre-labelled
    if chaos:
        joined = offline_verdicts(s, out, f"offline_{label}_joined", app, out / "proxy_logs", t0)
        same = (joined == offline_verdicts(s, out, f"offline_{label}_labelled", logs, None, t0), len(joined))
    return {"label": label, "canary_checkpoint": canary, "decision": last.get("decision"),
            "windows": len(decisions), "decision_window": last.get("window"),
            "seconds": round(time.perf_counter() - started, 1), "requests_sent": gen.sent,
            "errors": gen.errors, "logged": gen.logged, "n_control": last.get("n_control", 0),
            "n_canary": last.get("n_canary", 0), "evaluator_pids": pids,
            "quarantined": last.get("bad_records", 0), "unmatched": last.get("unmatched", 0),
            "garbage_lines": gen.garbage, "half_written_lines": gen.half, "chaos": chaos_record,
            "offline_same_verdicts": same[0] if same else None, "offline_windows": same[1] if same else None,
            "canary_weight_after": hp.get_weight(), "haproxy_actions": [a for a in actions
                                                                        if a["action"] == "haproxy_set_weight"],
            "show_stat_before": before, "show_stat_after": show_stat(hp), "run_dir": str(run_dir),
            "timeline": [(d["window"], d["decision"], d["n_control"], d["n_canary"]) for d in decisions]}


def run_demo(out: Path, s: DemoSettings | None = None) -> dict[str, Any]:
    """Both scenarios on one set of servers and one HAProxy; every process is stopped before returning."""
    s = s or DemoSettings()
    out.mkdir(parents=True, exist_ok=True)
    haproxy: Process | None = None
    servers: dict[str, VLLMServer] = {}
    receiver = Receiver(secret := b"demo-secret-not-for-production")
    t_all = time.perf_counter()
    try:
        opts = zoo_engine(gpu_memory_utilization=0.06)  # 1.4 GB each (0.8 the worker): plenty for 256-token requests
        for n in ("baseline", "terse", "benign"):  # one served model name: HAProxy may send a request to either
            servers[n] = VLLMServer(str(ZOO / n), opts, out, name=MODEL_NAME, startup_timeout=240.0)
        t_start = time.perf_counter()
        for server in servers.values():
            server.wait_ready()
        startup = time.perf_counter() - t_start
        addr = {n: p.base_url.removeprefix("http://") for n, p in servers.items()}
        haproxy, sock = start_haproxy(out, addr["baseline"], addr["terse"])
        hp = HAProxy(str(sock), "llm", "canary")
        socket_mode = oct(sock.stat().st_mode & 0o777)
        requests = load_traffic(REPLAYS_DIR / "support_sample.parquet")
        results = [scenario("regression", s, out, haproxy.url or "", (servers["baseline"].base_url,
                            servers["terse"].base_url), "terse", hp, sock, receiver, secret, requests, chaos=True)]
        host, port = addr["benign"].split(":")
        for cmd in (f"set server llm/canary addr {host} port {port}",
                    f"set server llm/canary weight {s.benign_weight}"):
            answer = hp.command(cmd).strip()
            if answer and "changed" not in answer.lower():
                raise RuntimeError(f"haproxy {cmd!r}: {answer}")
        results.append(scenario("benign", s, out, haproxy.url or "", (servers["baseline"].base_url,
                                servers["benign"].base_url), "benign", hp, sock, receiver, secret, requests[::-1],
                                chaos=False))
    finally:
        if haproxy is not None:
            haproxy.stop()
        for server in servers.values():
            server.stop()
        receiver.close()
    pids = [p.proc.pid for p in servers.values()] + ([haproxy.pid] if haproxy else [])
    pids += [pid for r in results for pid in r["evaluator_pids"]]
    summary = {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "settings": asdict(s),
               "server_startup_s": round(startup, 1), "seconds": round(time.perf_counter() - t_all, 1),
               "pids": pids, "admin_socket_mode": socket_mode, "scenarios": results,
               "webhook_deliveries": receiver.deliveries}
    (out / "demo.json").write_text(json.dumps(summary, indent=1, default=str) + "\n")
    write_demo_report(out, summary)
    return summary


def _stat_table(rows: list[dict[str, str]]) -> list[str]:
    lines = ["| " + " | ".join(STAT_COLUMNS) + " |", "|" + "---|" * len(STAT_COLUMNS)]
    return lines + ["| " + " | ".join(r[k] for k in STAT_COLUMNS) + " |" for r in rows]


def write_demo_report(out: Path, summary: dict[str, Any]) -> Path:
    lines = ["# Canary demo: real vLLM servers behind real HAProxy", "",
             f"{summary['date']}; servers healthy after {summary['server_startup_s']} s; "
             f"{summary['seconds']} s in all.",
             f"Settings: `{json.dumps(summary['settings'])}`", ""]
    for r in summary["scenarios"]:
        rel = Path(r["run_dir"]).relative_to(out)
        lines += [f"## {r['label']}: canary = zoo `{r['canary_checkpoint']}` -> {r['decision']} at window "
                  f"{r['decision_window']} ({r['seconds']} s, {r['requests_sent']} requests; control "
                  f"{r['n_control']}, canary {r['n_canary']})", "", f"![timeline]({rel}/timeline.png)", "",
                  f"Run: [{rel}/report.md]({rel}/report.md). HAProxy actions: `{json.dumps(r['haproxy_actions'])}`;"
                  f" canary weight read back after: {r['canary_weight_after']}.", "",
                  f"The arm came from HAProxy's access log joined by request id: {r['unmatched']} application "
                  f"records unmatched; {r['quarantined']} records quarantined ({r['garbage_lines']} garbage lines "
                  f"and {r['half_written_lines']} half-written ones were written into the live log). Evaluated "
                  f"again offline, the joined and the pre-labelled logs gave "
                  f"{'the same' if r['offline_same_verdicts'] else 'DIFFERENT'} gate verdicts in all "
                  f"{r['offline_windows']} windows.", "",
                  *([f"Chaos: the evaluator was killed (SIGKILL) after {r['chaos']['killed_after_windows']} "
                     f"window(s); `serve` answered 503 {r['chaos']['unhealthy_after_s']} s later (heartbeat limit "
                     f"{r['chaos']['heartbeat_s']} s); restarted with the same run id, it resumed and `serve` "
                     f"answered 200 again {r['chaos']['recovered_after_restart_s']} s after the restart.", ""]
                    if r["chaos"] else []),
                  "`show stat` before:", "", *_stat_table(r["show_stat_before"]), "", "`show stat` after:", "",
                  *_stat_table(r["show_stat_after"]), ""]
    lines += ["## Webhook deliveries (signature checked by the receiver)", ""]
    lines += [f"- window {d['window']} of {d['canary']}: {d['decision']}, signature ok: {d['signature_ok']}"
              for d in summary["webhook_deliveries"]]
    (out / "demo.md").write_text("\n".join(lines) + "\n")
    return out / "demo.md"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m harness.canary.demo", description="The canary demo (make canary).")
    ap.add_argument("--out", type=Path, default=Path("reports/canary_demo") / time.strftime("%Y%m%dT%H%M%S"))
    ap.add_argument("--rate", type=float, default=DemoSettings.rate)
    ap.add_argument("--window-s", type=float, default=DemoSettings.window_s)
    a = ap.parse_args(argv)
    summary = run_demo(a.out, DemoSettings(rate=a.rate, window_s=a.window_s))
    for r in summary["scenarios"]:
        print(f"{r['label']} ({r['canary_checkpoint']}): {r['decision']} at window {r['decision_window']}, "
              f"canary weight {r['canary_weight_after']}")
    print(f"report: {a.out / 'demo.md'}")
    regression, benign = summary["scenarios"]
    ok = (regression["decision"] == "ROLLBACK" and benign["decision"] in ("CONTINUE", "PROMOTE")
          and regression["offline_same_verdicts"] is True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
