"""``python -m harness serve --run-dir DIR``: the latest canary decision over HTTP, for Argo Rollouts and Flagger.

Endpoints (payloads and controller recipes in docs/canary.md):

- ``GET /decision``: for Argo Rollouts' ``web`` metric provider. 200 with the decision in the JSON body while the
  evaluator is healthy (``successCondition: result == 'CONTINUE' || result == 'PROMOTE'``, ``failureCondition:
  result == 'ROLLBACK'``, INVESTIGATE inconclusive); **503 when it is not** (``state`` PENDING, STALE or BROKEN, with
  the reasons): the newest window ended more than ``stale_windows`` window lengths ago, no window was evaluated
  within ``grace_s`` of the start, the evaluator's heartbeat is older than ``heartbeat_s``, or the run directory
  cannot be read. Argo counts a 503 as a measurement error (``consecutiveErrorLimit`` then fails the analysis);
  nothing here ever answers CONTINUE for a canary nobody is evaluating. A terminal decision (ROLLBACK, PROMOTE) is
  answered as it is, however old;
- ``POST /flagger/pre-rollout``, ``/flagger/rollout``, ``/flagger/confirm-rollout``: 200 = proceed (a healthy
  CONTINUE or PROMOTE), 412 = halt (INVESTIGATE or ROLLBACK), 503 = not healthy (Flagger counts a failed check);
  ``/flagger/confirm-promotion``: 200 only on PROMOTE; ``/flagger/rollback`` (Flagger's ``rollback`` hook): 200 = roll
  back now (the decision is ROLLBACK), else 412;
- ``GET /healthz``: 200 while the evaluator is healthy, else 503 (for a Kubernetes liveness/readiness probe).

Security: binds to 127.0.0.1 unless ``--host`` says otherwise (``--host 0.0.0.0`` in a cluster), and then needs
``--token-env NAME`` (the bearer token's environment variable; Argo sends it as an ``Authorization`` header, Flagger,
whose webhooks carry no headers, as ``metadata.token`` in the body). Every Flagger endpoint can cause a rollback, so
it always needs the token (401 without it; without ``--token-env`` they answer 401 and say how to turn them on). The
token is compared in constant time and never logged.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hmac
import json
import logging
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from harness.errors import BadInput

log = logging.getLogger(__name__)
LOOPBACK = ("127.0.0.1", "::1", "localhost")
PROCEED = ("CONTINUE", "PROMOTE")
FLAGGER_GATES = ("pre-rollout", "rollout", "confirm-rollout")


TERMINAL = ("ROLLBACK", "PROMOTE")
DEFAULT_HEALTH = {"stale_windows": 2.0, "grace_s": None, "heartbeat_s": 60.0}


def latest(run_dir: Path, now: float | None = None) -> dict[str, Any]:
    """The latest decision and whether the evaluator behind it is healthy (``healthy``, ``state``, ``problems``).

    Raises:
        OSError, ValueError: the run directory cannot be read (BROKEN).
    """
    now = time.time() if now is None else now
    if not run_dir.is_dir():
        raise OSError(f"{run_dir}: no such run directory")
    manifest = json.loads((run_dir / "manifest.json").read_text()) if (run_dir / "manifest.json").exists() else {}
    health = {**DEFAULT_HEALTH, **(manifest.get("health") or {})}
    window_s = float(manifest.get("window_s") or 3600.0)
    beat_path = run_dir / "heartbeat.json"
    beat = json.loads(beat_path.read_text()) if beat_path.exists() else None
    problems = []
    if beat is None or now - float(beat["at"]) > health["heartbeat_s"]:
        age = "none" if beat is None else f"{now - float(beat['at']):.0f} s old"
        problems.append(f"the evaluator's heartbeat is {age} (limit {health['heartbeat_s']:g} s): is it running?")
    path = run_dir / "decisions.parquet"
    if not path.exists():
        started = manifest.get("started_at")
        grace = float(health["grace_s"] or 2 * window_s)
        since = now - dt.datetime.fromisoformat(started).timestamp() if started else None
        if since is not None and since > grace:
            problems.append(f"no window evaluated {since:.0f} s after the evaluator started (grace {grace:g} s)")
        return {"decision": None, "window": None, "healthy": False, "state": "STALE" if problems else "PENDING",
                "problems": problems or ["no window evaluated yet"], "reasons": [], "families": {}}
    last = pq.read_table(path).to_pylist()[-1]
    age = now - last["end"].timestamp()
    if age > health["stale_windows"] * window_s:
        problems.append(f"the newest window ended {age:.0f} s ago (limit {health['stale_windows']:g} windows of "
                        f"{window_s:g} s)")
    terminal = last["decision"] in TERMINAL
    healthy = terminal or not problems
    return {"decision": last["decision"], "window": last["window"], "window_end": last["end"].isoformat(),
            "healthy": healthy, "state": "OK" if healthy else "STALE", "problems": [] if terminal else problems,
            "reasons": json.loads(last["reasons"]), "families": json.loads(last["families"]),
            "n_control": last["n_control"], "n_canary": last["n_canary"], "run_id": run_dir.name}


def flagger_status(path: str, decision: str) -> int:
    """HTTP status of a Flagger webhook for ``decision``."""
    hook = path.removeprefix("/flagger/")
    if hook in FLAGGER_GATES:
        return 200 if decision in PROCEED else 412
    if hook == "confirm-promotion":
        return 200 if decision == "PROMOTE" else 412
    if hook == "rollback":
        return 200 if decision == "ROLLBACK" else 412
    return 404


def make_handler(run_dir: Path, token: str | None, token_for_reads: bool) -> type[BaseHTTPRequestHandler]:
    """Handler class; ``token_for_reads``: GETs need the token too (any bind address but loopback)."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "harness-canary"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  (no headers, so no token, in logs)
            log.info("serve %s %s", self.command, self.path.split("?")[0])

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body, default=str).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _authorized(self, body: bytes = b"") -> bool:
            """The bearer token in the Authorization header, or (Flagger's webhooks carry no headers) as
            ``metadata.token`` in the JSON body; compared in constant time."""
            if token is None:
                return False
            given = self.headers.get("Authorization", "")
            if hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                return True
            try:
                meta = json.loads(body or b"{}").get("metadata") or {}
            except (ValueError, AttributeError):
                return False
            return isinstance(meta, dict) and hmac.compare_digest(str(meta.get("token", "")).encode(), token.encode())

        def _decision(self) -> dict[str, Any] | None:
            """The latest decision when the evaluator is healthy; else a 503 has been sent (fail closed)."""
            try:
                doc = latest(run_dir)
            except (OSError, ValueError, KeyError, IndexError) as e:
                self._send(503, {"decision": None, "healthy": False, "state": "BROKEN",
                                 "problems": [f"the harness cannot read its run directory: {type(e).__name__}"]})
                return None
            if not doc["healthy"]:
                self._send(503, doc)
                return None
            return doc

        def do_GET(self) -> None:  # noqa: N802
            path = self.path.split("?")[0]
            if token_for_reads and not self._authorized():
                return self._send(401, {"error": "bearer token required"})
            if path != "/decision" and path != "/healthz":
                return self._send(404, {"error": "unknown path", "paths": ["/decision", "/healthz", "/flagger/*"]})
            doc = self._decision()
            if doc is not None:
                self._send(200, {"ok": True} if path == "/healthz" else doc)

        def do_POST(self) -> None:  # noqa: N802
            path = self.path.split("?")[0]
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(min(length, 1 << 20))  # Flagger's: name, namespace, phase, metadata
            if not self._authorized(body):
                hint = "" if token is not None else " (start serve with --token-env NAME to enable the Flagger hooks)"
                return self._send(401, {"error": "bearer token required" + hint})
            doc = self._decision()
            if doc is None:
                return
            status = flagger_status(path, doc["decision"])
            self._send(status, {**doc, "proceed" if status == 200 else "halt": True, "hook": path})

    return Handler


def make_server(run_dir: Path, host: str = "127.0.0.1", port: int = 0, token_env: str | None = None
                ) -> ThreadingHTTPServer:
    """The HTTP server (not started); ``port=0`` picks a free one (``server.server_address``)."""
    token = os.environ.get(token_env) if token_env else None
    if token_env and not token:
        raise BadInput(f"serve: --token-env {token_env}: the environment variable is empty or unset. Fix: export "
                       f"{token_env}=<token>.")
    if host not in LOOPBACK and token is None:
        raise BadInput(f"serve: --host {host} is not loopback, so a bearer token is required. Fix: export a token "
                       "in an environment variable and pass --token-env NAME.")
    return ThreadingHTTPServer((host, port), make_handler(run_dir, token, host not in LOOPBACK))


def serve_in_thread(server: ThreadingHTTPServer) -> threading.Thread:
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    return t


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m harness serve", description="The latest canary decision over HTTP.")
    p.add_argument("--run-dir", type=Path, required=True, help="the canary's run directory (reports/<name>/<run_id>)")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1; others need --token-env)")
    p.add_argument("--port", type=int, default=8099)
    p.add_argument("--token-env", default=None, help="environment variable holding the bearer token")
    a = p.parse_args(argv)
    server = make_server(a.run_dir, a.host, a.port, a.token_env)
    port = server.server_address[1]
    print(f"serving {a.run_dir} on http://{a.host}:{port}/decision", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
