"""The traffic layer the canary demo starts: HAProxy on loopback, stopped by its PID (the vLLM servers are
``harness.engines.server.VLLMServer``). SIGTERM, then SIGKILL, of the process group."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from harness.engines.server import free_port

HAPROXY = "/usr/sbin/haproxy"


@dataclass
class Process:
    """A started process: its name, PID (own process group), log file and, for servers, base URL."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    url: str | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM to the process group (the server's engine children too), SIGKILL after ``timeout_s``."""
        if self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        except ProcessLookupError:
            pass

    def tail(self, n: int = 20) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:]) if self.log.exists() else ""


def start(argv: list[str], log: Path, env: dict[str, str] | None = None, stdout: Path | None = None
          ) -> subprocess.Popen[bytes]:
    """A process in its own session (so its group can be stopped), stderr (and stdout, unless ``stdout``) to ``log``."""
    handle = log.open("ab")
    out = stdout.open("ab") if stdout is not None else None
    try:
        return subprocess.Popen(argv, stdout=out or handle, stderr=handle if out else subprocess.STDOUT,
                                start_new_session=True, env={**os.environ, **(env or {})})
    finally:
        handle.close()
        if out is not None:
            out.close()


HAPROXY_CFG = """global
    stats socket {socket} mode 600 level admin
    maxconn 256
    log stdout format raw local0
defaults
    mode http
    log global
    timeout connect 2s
    timeout client 60s
    timeout server 60s
frontend llm_front
    bind 127.0.0.1:{port}
    unique-id-format %[uuid()]
    http-request set-header X-Request-ID %[unique-id]
    http-after-response set-header X-Request-ID %[unique-id]
    log-format '{{"request_id":"%ID","server":"%s","status":%ST,"ts":%Ts}}'
    default_backend llm
backend llm
    balance roundrobin
    http-response set-header X-Served-By %s
    server control {control} weight {control_weight}
    server canary {canary} weight {canary_weight}
"""


def start_haproxy(work: Path, control: str, canary: str, control_weight: int = 95, canary_weight: int = 5
                  ) -> tuple[Process, Path]:
    """HAProxy in the foreground on a loopback port: backend ``llm`` with servers ``control`` and ``canary``
    (``host:port``), the serving server's name in ``X-Served-By``, a unique id per request (``X-Request-ID`` to the
    server and back to the client), its access log as JSONL (request id, server, status, time) in
    ``work/proxy_logs/haproxy.jsonl``, an admin socket (mode 600) in ``work``."""
    socket_path = work.resolve() / "admin.sock"  # HAProxy reads a relative path as an address
    port = free_port()
    cfg = work / "haproxy.cfg"
    cfg.write_text(HAPROXY_CFG.format(socket=socket_path, port=port, control=control, canary=canary,
                                      control_weight=control_weight, canary_weight=canary_weight))
    check = subprocess.run([HAPROXY, "-c", "-f", str(cfg)], capture_output=True, text=True)
    if check.returncode != 0:
        raise RuntimeError(f"haproxy -c rejected {cfg}: {check.stdout}{check.stderr}")
    (work / "proxy_logs").mkdir(exist_ok=True)
    proc = Process("haproxy", start([HAPROXY, "-db", "-f", str(cfg)], work / "haproxy.log",
                                    stdout=work / "proxy_logs" / "haproxy.jsonl"),
                   work / "haproxy.log", f"http://127.0.0.1:{port}")
    t0 = time.perf_counter()
    while not socket_path.exists():
        if proc.proc.poll() is not None or time.perf_counter() - t0 > 10:
            raise RuntimeError(f"haproxy did not start:\n{proc.tail()}")
        time.sleep(0.05)
    return proc, socket_path
