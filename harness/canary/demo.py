"""The end-to-end canary demo on a CPU machine (``make canary``; docs/canary.md).

    python -m harness.canary.demo [--out reports/canary_demo] [--rate 30] [--window-s 5]

Three real vLLM OpenAI servers on the zoo checkpoints (baseline, terse, benign; ``harness.engines.server.VLLMServer``,
the server backend's launcher), one real HAProxy on loopback with
backend ``llm``: ``control`` = baseline at weight 95, ``canary`` = terse at weight 5, the serving server's name in
the ``X-Served-By`` response header. A bounded load generator replays the sample traffic through HAProxy and writes
the canary logs (Parquet, one file a second, renamed into place); the evaluator follows them in short windows with
every family (stats, drift against control, the golden set replayed against both versions' endpoints every
``golden_every`` windows), HAProxy and a signed webhook to a local receiver as hooks. Scenario 1 (regression) must
end in ROLLBACK with the canary's weight read back 0; then the ``canary`` server is pointed at the benign checkpoint
through the runtime API (``set server llm/canary addr ...``, weight 5) and scenario 2 must run to PROMOTE.
``demo.md`` has both timelines, HAProxy's ``show stat`` before and after, the webhook deliveries and the times.
Every process started is stopped by its PID, on success and failure.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from harness import REPLAYS_DIR
from harness.canary.client import chat
from harness.canary.evaluate import CanarySpec, Evaluator, WebhookSpec
from harness.canary.hooks import SIGNATURE_HEADER, HAProxy, verify
from harness.canary.launch import Process, start_haproxy
from harness.canary.logs import write_log
from harness.canary.samples import Endpoint, GoldenReplayer
from harness.canary.sequential import Sequential
from harness.engines.server import VLLMServer
from harness.fixtures.zoo.build import DEFAULT_ZOO_DIR
from harness.fixtures.zoo.settings import zoo_engine
from harness.gate import Policy
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
    max_windows: int = 14
    min_per_arm: int = 10  # the production default is 100 (docs/canary.md); the demo's canary sees ~1 request/s
    tau_sd: float = 0.5  # tuned to large effects on small samples (the production default 0.1: small, at 100+/h)
    reference: int = 30
    control_share: float = 0.3
    golden_every: int = 2
    golden_limit: int = 12
    max_tokens: int = 64


class LoadGenerator(threading.Thread):
    """Replays requests through the traffic layer at ``rate``/s and writes canary logs, one file per second."""

    def __init__(self, url: str, requests: list[Request], logs: Path, s: DemoSettings, prefix: str) -> None:
        super().__init__(daemon=True)
        self.url, self.requests, self.logs, self.s, self.prefix = url, requests, logs, s, prefix
        self.stop_event, self.sent = threading.Event(), 0
        self.rows: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.part = 0

    def _one(self, i: int, r: Request) -> None:
        a = chat(self.url, MODEL_NAME, r, self.s.max_tokens, timeout_s=30.0)
        row = {"request_id": f"{self.prefix}-{i}-{r.request_id}",
               "timestamp": dt.datetime.fromtimestamp(a.started, dt.UTC), "segment": r.segment,
               "messages": [{"role": m.role, "content": m.content} for m in r.messages] if r.messages else None,
               "prompt": r.prompt, "max_tokens": r.max_tokens, "response_schema": r.response_schema,
               "response": a.text, "arm": "canary" if a.served_by == "canary" else "control",
               "latency_s": a.latency_s, "finish_reason": a.finish_reason, "output_tokens": a.output_tokens,
               "error": a.error}
        with self.lock:
            self.rows.append(row)

    def _flush(self) -> None:
        with self.lock:
            rows, self.rows = self.rows, []
        if rows:
            write_log(rows, self.logs / f"part-{self.part:05d}.parquet")
            self.part += 1

    def run(self) -> None:
        """Send at most ``rate`` requests a second, at most ``concurrency`` in flight (a slower server lowers the
        rate instead of queueing requests without bound)."""
        slots = threading.Semaphore(self.s.concurrency)
        t0, last_flush = time.perf_counter(), time.perf_counter()
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
                    self._flush()
                    last_flush = time.perf_counter()
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


def scenario(label: str, s: DemoSettings, out: Path, front: str, control: VLLMServer, canary: tuple[str, str],
             hp: HAProxy, receiver: Receiver, secret: bytes, requests: list[Request]) -> dict[str, Any]:
    """One canary: load through HAProxy, the evaluator following the logs until ROLLBACK/PROMOTE."""
    logs = out / f"logs_{label}"
    logs.mkdir(parents=True, exist_ok=True)
    before = show_stat(hp)
    golden = GoldenReplayer(str(REPLAYS_DIR / "golden_zoo.parquet"), s.golden_limit,
                            Endpoint(control.base_url, MODEL_NAME), Endpoint(canary[1], MODEL_NAME),
                            s.max_tokens)
    spec = CanarySpec(name=f"canary_demo_{label}", logs=logs, window_s=s.window_s,
                      observation_windows=s.observation_windows,
                      sequential=Sequential(tau_sd=s.tau_sd, min_per_arm=s.min_per_arm),
                      policy=Policy(), output_dir=out, max_windows=s.max_windows, start=dt.datetime.now(dt.UTC),
                      follow=True, poll_s=0.5, run_id=label,
                      drift=("packaged:all-MiniLM-L6-v2", s.reference, "cpu", s.control_share), golden=golden,
                      golden_every=s.golden_every, haproxy=hp, webhook=WebhookSpec(receiver.url, secret, 3, 0.2))
    evaluator = Evaluator(spec)  # loads the embedding model before the load starts
    gen = LoadGenerator(front, requests, logs, s, label)
    t0 = time.perf_counter()
    gen.start()
    try:
        decision = evaluator.run()
    finally:
        gen.stop()
    decisions = evaluator.decisions
    records = evaluator.logs.refresh()
    actions = [a for d in decisions for a in json.loads(d["actions"])]
    return {"label": label, "canary_checkpoint": canary[0], "decision": decision,
            "windows": len(decisions), "decision_window": decisions[-1]["window"] if decisions else None,
            "seconds": round(time.perf_counter() - t0, 1), "requests_sent": gen.sent,
            "errors": sum(r.error is not None for r in records), "logged": len(records),
            "n_control": decisions[-1]["n_control"] if decisions else 0,
            "n_canary": decisions[-1]["n_canary"] if decisions else 0,
            "canary_weight_after": hp.get_weight(), "haproxy_actions": [a for a in actions
                                                                        if a["action"] == "haproxy_set_weight"],
            "show_stat_before": before, "show_stat_after": show_stat(hp), "run_dir": str(evaluator.path),
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
        opts = zoo_engine()
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
        results = [scenario("regression", s, out, haproxy.url or "", servers["baseline"],
                            ("terse", servers["terse"].base_url), hp, receiver, secret, requests)]
        host, port = addr["benign"].split(":")
        for cmd in (f"set server llm/canary addr {host} port {port}", "set server llm/canary weight 5"):
            answer = hp.command(cmd).strip()
            if answer and "changed" not in answer.lower():
                raise RuntimeError(f"haproxy {cmd!r}: {answer}")
        results.append(scenario("benign", s, out, haproxy.url or "", servers["baseline"],
                                ("benign", servers["benign"].base_url), hp, receiver, secret, requests[::-1]))
    finally:
        if haproxy is not None:
            haproxy.stop()
        for server in servers.values():
            server.stop()
        receiver.close()
    pids = [p.proc.pid for p in servers.values()] + ([haproxy.pid] if haproxy else [])
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
    ok = [r["decision"] for r in summary["scenarios"]] == ["ROLLBACK", "PROMOTE"]
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
