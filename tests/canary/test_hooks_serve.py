"""Webhook (signature, retries, outbox) and serve (Argo web metric, Flagger hooks, auth) against local receivers."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from helpers import canary_run_dir

from harness.canary.hooks import SIGNATURE_HEADER, Webhook, public_url, verify
from harness.canary.serve import make_server, serve_in_thread
from harness.errors import BadInput

SECRET = b"s3cret-for-tests"


class Receiver:
    """A local HTTP receiver that fails the first ``fail`` POSTs with 503 and records the rest."""

    def __init__(self, fail: int = 0) -> None:
        self.fail, self.received = fail, []  # type: ignore[var-annotated]
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if outer.fail > 0:
                    outer.fail -= 1
                    self.send_response(503)
                    self.end_headers()
                    return
                outer.received.append((body, dict(self.headers)))
                self.send_response(204)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook?token=abc"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_webhook_is_signed_and_retried(tmp_path: Path) -> None:
    rx = Receiver(fail=2)
    try:
        hook = Webhook(rx.url, SECRET, tmp_path / "outbox.jsonl", attempts=3, backoff_s=0.01)
        assert hook.deliver({"decision": "ROLLBACK", "window": 3, "reasons": ["x"]})
        body, headers = rx.received[0]
        assert verify(SECRET, body, headers[SIGNATURE_HEADER])
        assert not verify(b"other", body, headers[SIGNATURE_HEADER])
        assert json.loads(body)["decision"] == "ROLLBACK" and headers["X-Harness-Delivery"]
        assert "s3cret" not in repr(hook)
    finally:
        rx.close()


def test_failed_delivery_is_queued_logged_and_sent_later(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rx = Receiver(fail=2)
    try:
        hook = Webhook(rx.url, SECRET, tmp_path / "outbox.jsonl", attempts=2, backoff_s=0.01)
        assert not hook.deliver({"decision": "INVESTIGATE", "window": 1})
        assert len(hook.pending()) == 1 and "failed after 2 attempts" in caplog.text
        assert "token=abc" not in caplog.text and "s3cret" not in caplog.text
        assert hook.deliver({"decision": "ROLLBACK", "window": 2})  # the queued one goes first
        assert [json.loads(b)["window"] for b, _ in rx.received] == [1, 2] and hook.pending() == []
    finally:
        rx.close()


def test_public_url_drops_credentials_and_query() -> None:
    assert public_url("https://user:pw@alerts.example:8443/canary?token=x#f") == "https://alerts.example:8443/canary"


def _run_dir_without_windows(run: Path, started_s_ago: float) -> None:
    started = dt.datetime.fromtimestamp(time.time() - started_s_ago, dt.UTC).isoformat()
    (run / "manifest.json").write_text(json.dumps({"window_s": 60.0, "started_at": started}))
    (run / "heartbeat.json").write_text(json.dumps({"at": time.time(), "pid": 1}))
    (run / "decisions.parquet").unlink(missing_ok=True)


def _call(url: str, method: str = "GET", token: str | None = None) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(url, method=method, data=b"{}" if method == "POST" else None)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_serve_argo_and_flagger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CANARY_TOKEN", "tok-123")
    run = canary_run_dir(tmp_path, "ROLLBACK")
    server = make_server(run, "127.0.0.1", 0, "CANARY_TOKEN")
    serve_in_thread(server)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        assert _call(base + "/decision") == (200, _call(base + "/decision")[1])
        assert _call(base + "/decision")[1]["decision"] == "ROLLBACK"  # Argo: 200, the decision in the body
        assert _call(base + "/flagger/rollback", "POST")[0] == 401  # could trigger a rollback: authenticated
        assert _call(base + "/flagger/rollback", "POST", "wrong")[0] == 401
        assert _call(base + "/flagger/rollback", "POST", "tok-123")[0] == 200  # 2xx = roll back now
        assert _call(base + "/flagger/rollout", "POST", "tok-123")[0] == 412  # halt
        canary_run_dir(tmp_path, "CONTINUE")
        assert _call(base + "/flagger/rollout", "POST", "tok-123")[0] == 200  # proceed
        assert _call(base + "/flagger/rollback", "POST", "tok-123")[0] == 412
        assert _call(base + "/flagger/confirm-promotion", "POST", "tok-123")[0] == 412
        canary_run_dir(tmp_path, "CONTINUE", beat_age_s=45)  # the evaluator went quiet: never a stale CONTINUE
        status, body = _call(base + "/decision")
        assert (status, body["healthy"], body["state"]) == (503, False, "STALE") and "heartbeat" in body["problems"][0]
        assert _call(base + "/flagger/rollout", "POST", "tok-123")[0] == 503
        assert _call(base + "/healthz")[0] == 503
        canary_run_dir(tmp_path, "CONTINUE", age_s=150)  # the newest window is older than 2 windows
        assert _call(base + "/decision")[0] == 503
        canary_run_dir(tmp_path, "ROLLBACK", age_s=900, beat_age_s=900)  # a terminal decision stands however old
        assert _call(base + "/decision")[:1] == (200,) and _call(base + "/decision")[1]["decision"] == "ROLLBACK"
        (run / "decisions.parquet").unlink()  # started, no window yet: PENDING, within the grace period
        _run_dir_without_windows(run, started_s_ago=10)
        assert _call(base + "/decision")[0] == 503 and _call(base + "/decision")[1]["state"] == "PENDING"
        _run_dir_without_windows(run, started_s_ago=500)
        assert _call(base + "/decision")[1]["state"] == "STALE"
        (run / "decisions.parquet").write_text("broken")
        assert _call(base + "/decision")[0] == 503 and _call(base + "/decision")[1]["state"] == "BROKEN"
    finally:
        server.shutdown()
        server.server_close()


def test_serve_refuses_a_public_bind_without_token(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="bearer token is required"):
        make_server(tmp_path, "0.0.0.0", 0, None)
