"""``python -m harness serve --run-dir DIR``: the latest canary decision over HTTP, for Argo Rollouts and Flagger.

Endpoints (payloads in docs/canary.md):

- ``GET /decision``: for Argo Rollouts' ``web`` metric provider. Always 200 with the decision in the JSON body
  (``successCondition: result.decision != 'ROLLBACK'``); 503 only when the harness itself is broken (the run
  directory cannot be read);
- ``POST /flagger/pre-rollout``, ``/flagger/rollout``, ``/flagger/confirm-rollout``: 200 = proceed (the decision
  is CONTINUE or PROMOTE), 412 = halt (INVESTIGATE or ROLLBACK); ``/flagger/confirm-promotion``: 200 only on
  PROMOTE; ``/flagger/rollback`` (Flagger's ``rollback`` hook): 200 = roll back now (the decision is ROLLBACK),
  else 412;
- ``GET /healthz``: 200.

Security: binds to 127.0.0.1 unless ``--host`` says otherwise, and then needs ``--token-env NAME`` (the bearer
token's environment variable). Every Flagger endpoint can cause a rollback, so it always needs the bearer token
(401 without it; without ``--token-env`` they answer 401 and say how to turn them on). The token is compared in
constant time and never logged.
"""

from __future__ import annotations

import argparse
import hmac
import json
import logging
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from harness.errors import BadInput

log = logging.getLogger(__name__)
LOOPBACK = ("127.0.0.1", "::1", "localhost")
PROCEED = ("CONTINUE", "PROMOTE")
FLAGGER_GATES = ("pre-rollout", "rollout", "confirm-rollout")


def latest(run_dir: Path) -> dict[str, Any]:
    """The latest window's decision document (raises OSError/ValueError when the run cannot be read)."""
    path = run_dir / "decisions.parquet"
    if not run_dir.is_dir():
        raise OSError(f"{run_dir}: no such run directory")
    if not path.exists():
        return {"decision": "CONTINUE", "window": None, "reasons": ["no window evaluated yet"], "families": {}}
    last = pq.read_table(path).to_pylist()[-1]
    return {"decision": last["decision"], "window": last["window"], "window_end": last["end"].isoformat(),
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

        def _authorized(self) -> bool:
            given = self.headers.get("Authorization", "")
            return token is not None and hmac.compare_digest(given.encode(), f"Bearer {token}".encode())

        def _decision(self) -> dict[str, Any] | None:
            try:
                return latest(run_dir)
            except (OSError, ValueError, KeyError, IndexError) as e:
                self._send(503, {"error": f"the harness cannot read its run directory: {type(e).__name__}"})
                return None

        def do_GET(self) -> None:  # noqa: N802
            path = self.path.split("?")[0]
            if token_for_reads and not self._authorized():
                return self._send(401, {"error": "bearer token required"})
            if path == "/healthz":
                return self._send(200, {"ok": True})
            if path != "/decision":
                return self._send(404, {"error": "unknown path", "paths": ["/decision", "/healthz", "/flagger/*"]})
            doc = self._decision()
            if doc is not None:
                self._send(200, doc)

        def do_POST(self) -> None:  # noqa: N802
            path = self.path.split("?")[0]
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(min(length, 1 << 20))  # Flagger's body (name, namespace, phase) is not needed
            if not self._authorized():
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
