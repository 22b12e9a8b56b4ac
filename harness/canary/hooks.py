"""The traffic layer: HAProxy's runtime API and a signed webhook, called on the canary's decisions.

- ``HAProxy``: commands over the admin socket (``stats socket PATH mode 600 level admin``); ``rollback`` sets the
  canary server's weight to 0 (``set server <backend>/<server> weight 0``) and reads it back (``get weight``).
- ``Webhook``: POST of the decision as JSON (payload in docs/canary.md), signed ``X-Harness-Signature-256:
  sha256=<hex HMAC-SHA256 of the body>`` with a secret read from a named environment variable; retried with
  exponential backoff; a delivery that still fails is logged (without the secret or the URL's query) and kept in an
  outbox file in the run directory, retried before every later delivery and on restart: never dropped silently.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import BadInput

log = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-Harness-Signature-256"


class HAProxyError(RuntimeError):
    """The runtime API refused a command or did not answer as expected."""


@dataclass(frozen=True)
class HAProxy:
    """One server of one backend behind HAProxy's admin socket."""

    socket_path: str
    backend: str
    server: str
    timeout_s: float = 5.0

    def command(self, line: str) -> str:
        """Send one runtime-API command and return HAProxy's answer (the socket closes after it)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(self.timeout_s)
            s.connect(self.socket_path)
            s.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode(errors="replace")

    def get_weight(self) -> int:
        """The server's current weight (``get weight`` answers ``"<current> (initial <initial>)"``)."""
        answer = self.command(f"get weight {self.backend}/{self.server}").strip()
        try:
            return int(answer.split()[0])
        except (ValueError, IndexError):
            raise HAProxyError(f"get weight {self.backend}/{self.server}: unexpected answer {answer!r}") from None

    def set_weight(self, weight: int) -> str:
        answer = self.command(f"set server {self.backend}/{self.server} weight {int(weight)}").strip()
        if answer:  # HAProxy answers nothing on success
            raise HAProxyError(f"set server {self.backend}/{self.server} weight {weight}: {answer}")
        return answer

    def show_stat(self) -> str:
        """``show stat`` (CSV, one line per frontend, backend and server)."""
        return self.command("show stat")

    def rollback(self) -> dict[str, Any]:
        """Canary weight to 0, read back; the record of what was done (raises if the weight did not stick)."""
        before = self.get_weight()
        self.set_weight(0)
        after = self.get_weight()
        record = {"action": "haproxy_set_weight", "server": f"{self.backend}/{self.server}", "weight_before": before,
                  "weight_set": 0, "weight_read_back": after, "at": time.time()}
        if after != 0:
            raise HAProxyError(f"{self.backend}/{self.server}: weight set to 0 but read back {after}")
        return record


def sign(secret: bytes, body: bytes) -> str:
    """The signature header's value: ``sha256=`` + hex HMAC-SHA256 of the body."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify(secret: bytes, body: bytes, header: str | None) -> bool:
    """Whether ``header`` is the right signature of ``body`` (constant-time comparison), for receivers."""
    return header is not None and hmac.compare_digest(sign(secret, body), header)


def public_url(url: str) -> str:
    """The URL without credentials, query or fragment: what logs, reports and the manifest may show."""
    p = urllib.parse.urlsplit(url)
    host = p.hostname or ""
    return urllib.parse.urlunsplit((p.scheme, f"{host}:{p.port}" if p.port else host, p.path, "", ""))


def read_secret(env_name: str | None, what: str) -> bytes:
    """The secret in environment variable ``env_name`` (never logged)."""
    value = os.environ.get(env_name or "")
    if not env_name or not value:
        raise BadInput(f"{what}: expected a secret in the environment variable {env_name!r}, found none. Fix: export "
                       f"{env_name or 'A_VARIABLE'}=<secret> (and name it in the config), or turn the hook off.")
    return value.encode()


class Webhook:
    """POSTs signed decisions with retries; undelivered ones wait in ``outbox`` (JSONL) for the next attempt."""

    def __init__(self, url: str, secret: bytes, outbox: Path, attempts: int = 5, backoff_s: float = 0.5,
                 timeout_s: float = 5.0) -> None:
        self.url, self._secret, self.outbox = url, secret, outbox
        self.attempts, self.backoff_s, self.timeout_s = max(1, attempts), backoff_s, timeout_s

    def __repr__(self) -> str:  # no secret in any repr or log line
        return f"Webhook({public_url(self.url)!r})"

    def _post(self, payload: dict[str, Any]) -> int:
        body = json.dumps(payload, sort_keys=True).encode()
        req = urllib.request.Request(self.url, data=body, method="POST", headers={
            "Content-Type": "application/json", SIGNATURE_HEADER: sign(self._secret, body),
            "X-Harness-Delivery": payload["delivery_id"], "User-Agent": "model-upgrade-gate-canary"})
        with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:  # noqa: S310 (http(s) URL from config)
            return int(resp.status)

    def _try(self, payload: dict[str, Any]) -> str | None:
        """Deliver with retries; None on success, else the last error (no secret in it)."""
        error = None
        for attempt in range(self.attempts):
            try:
                status = self._post(payload)
                if 200 <= status < 300:
                    return None
                error = f"HTTP {status}"
            except urllib.error.HTTPError as e:
                error = f"HTTP {e.code}"
            except (urllib.error.URLError, OSError, TimeoutError) as e:
                error = type(e).__name__ + (f": {e.reason}" if isinstance(e, urllib.error.URLError) else "")
            if attempt + 1 < self.attempts:
                time.sleep(self.backoff_s * 2 ** attempt)
        return error

    def deliver(self, payload: dict[str, Any]) -> bool:
        """Retry the outbox, then deliver ``payload``; False when it was queued in the outbox instead."""
        self.flush()
        payload = {**payload, "delivery_id": payload.get("delivery_id") or uuid.uuid4().hex}
        error = self._try(payload)
        if error is None:
            return True
        log.warning("webhook %s: delivery %s of window %s failed after %d attempts (%s); kept in %s and retried "
                    "with the next delivery", public_url(self.url), payload["delivery_id"], payload.get("window"),
                    self.attempts, error, self.outbox)
        with self.outbox.open("a") as f:
            f.write(json.dumps(payload, sort_keys=True) + "\n")
        return False

    def pending(self) -> list[dict[str, Any]]:
        if not self.outbox.exists():
            return []
        return [json.loads(line) for line in self.outbox.read_text().splitlines() if line.strip()]

    def flush(self) -> int:
        """Retry every queued delivery, in order; the ones that still fail stay queued. Returns how many remain."""
        queued = self.pending()
        if not queued:
            return 0
        left = [p for p in queued if self._try(p) is not None]
        tmp = self.outbox.with_name(self.outbox.name + ".tmp")
        tmp.write_text("".join(json.dumps(p, sort_keys=True) + "\n" for p in left))
        tmp.replace(self.outbox)
        if left:
            log.warning("webhook %s: %d deliveries still queued in %s", public_url(self.url), len(left), self.outbox)
        return len(left)
