"""Helpers shared by tests: run the CLI as a user does."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from harness import REPLAYS_DIR

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPLAYS_DIR / "support_sample.parquet"
CHROMIUM = Path("/usr/bin/chromium")


def run_harness(*args: str, timeout: int = 900, verbose: bool = True) -> subprocess.CompletedProcess[str]:
    """``python -m harness ARGS`` from the repo root, as a user runs it; ``verbose`` (``-v``, the default here):
    every log line on stderr, so tests can assert what happened (e.g. that no engine started)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HARNESS_VERBOSE": "1" if verbose else "0"}
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env=env)


@contextmanager
def loopback_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """``handler`` served on a free loopback port in a thread: yields its base URL (``http://127.0.0.1:PORT``);
    shut down, closed and joined on exit."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Headless Debian Chromium with the flags this closed network needs (else it hangs on lookups)."""
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=True)


def console_errors(stderr: str) -> list[str]:
    """Console messages: script errors, CSP refusals (Chromium 156 says "violates ... Content Security Policy")."""
    return [line for line in stderr.splitlines()
            if ":CONSOLE" in line or "Uncaught" in line or "Refused to" in line or "Content Security Policy" in line]


def report_input(*, name: str = "e", run_id: str = "r", verdict: Any = None, summary: list[dict[str, Any]] = (),
                 throughput: list[dict[str, Any]] = (), pairs: list[dict[str, Any]] = (),
                 prompts: dict[str, str] | None = None, sources: tuple[str, str] = ("a", "b"),
                 max_chars: int = 500, redact: bool = False, text: str = "x") -> Any:
    """A ``ReportInput`` from plain values (report tests): every untrusted field of the manifest holds ``text``."""
    from types import SimpleNamespace

    import pyarrow as pa

    from harness.config import ArmConfig, ReportConfig
    from harness.gate import Policy, Verdict
    from harness.report import ReportInput
    from harness.spec import ArmRecord, Manifest, RunSpec, TrafficRecord

    spec = RunSpec(name=name, traffic_path=text, limit=None,
                   arms={a: ArmConfig(checkpoint=text) for a in ("baseline", "candidate")}, signals=("stats",),
                   policy=Policy(), report=ReportConfig(top_pairs=10, max_chars=max_chars,
                                                                             redact=redact))
    manifest = Manifest(spec=spec, run_id=run_id, created_at="2025-01-01T00:00:00+00:00",
                        traffic=TrafficRecord(text, "ab" * 32, 40, None),
                        arms={a: ArmRecord(s, "vllm", "cd" * 32)
                              for a, s in zip(("baseline", "candidate"), sources, strict=True)},
                        records={}, versions={"python": "3.11.9", "duckdb": text}, determinism={}, config={})
    requests = {k: SimpleNamespace(messages=None, prompt=v) for k, v in (prompts or {}).items()}
    tables = {"summary": pa.Table.from_pylist(list(summary)), "throughput": pa.Table.from_pylist(list(throughput)),
              "changed_pairs": pa.Table.from_pylist(list(pairs))}
    return ReportInput(manifest, verdict or Verdict("PASS", "NONE", (), ()), tables, requests, {})


def canary_run_dir(tmp_path: Path, decision: str, age_s: float = 0.0, beat_age_s: float = 0.0) -> Path:
    """A canary run directory as the evaluator leaves it: manifest (window 60 s), a heartbeat ``beat_age_s`` old and
    a newest window that ended ``age_s`` ago with ``decision``."""
    run = tmp_path / "run"
    run.mkdir(exist_ok=True)
    now = time.time()
    t = dt.datetime.fromtimestamp(now - age_s, dt.UTC)
    (run / "manifest.json").write_text(json.dumps({"window_s": 60.0, "started_at": t.isoformat(),
                                                   "health": {"stale_windows": 2.0, "grace_s": 120.0,
                                                              "heartbeat_s": 30.0}}))
    (run / "heartbeat.json").write_text(json.dumps({"at": now - beat_age_s, "pid": 1}))
    pq.write_table(pa.Table.from_pylist([{"window": 4, "start": t, "end": t, "decision": decision,
                                          "n_control": 10, "n_canary": 2, "families": json.dumps({"stats": "ok"}),
                                          "reasons": json.dumps(["r"]), "actions": "[]"}]), run / "decisions.parquet")
    return run
