"""Processes the canary demo starts: vLLM OpenAI servers and HAProxy, each stopped by its PID.

A minimal launcher (the scale-out issue's ``harness.engines.server`` was not on main when this was written; switch
to it once it is): free loopback port, log file, ``/health`` wait, SIGTERM then SIGKILL of the process group.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

HAPROXY = "/usr/sbin/haproxy"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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


def _start(name: str, argv: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    handle = log.open("ab")
    try:
        return subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, **(env or {})})
    finally:
        handle.close()


def start_vllm(name: str, model_dir: Path, log_dir: Path, served_name: str, max_model_len: int = 256) -> Process:
    """``python -m vllm.entrypoints.openai.api_server`` on a free loopback port, fp32, eager, serving the model as
    ``served_name`` (the same for every version behind one traffic split)."""
    port = free_port()
    argv = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model_dir),
            "--served-model-name", served_name, "--host", "127.0.0.1", "--port", str(port), "--dtype", "float32",
            "--max-model-len", str(max_model_len), "--enforce-eager", "--gpu-memory-utilization", "0.1"]
    log = log_dir / f"vllm_{name}.log"
    return Process(name, _start(name, argv, log, {"HF_HUB_OFFLINE": "1"}), log, f"http://127.0.0.1:{port}")


def wait_healthy(servers: list[Process], timeout_s: float = 240.0) -> float:
    """Wait until every server's ``/health`` answers 200; returns the seconds waited (raises on exit or timeout)."""
    t0 = time.perf_counter()
    pending = list(servers)
    while pending:
        for s in list(pending):
            if s.proc.poll() is not None:
                raise RuntimeError(f"vLLM server {s.name} exited with {s.proc.returncode}:\n{s.tail()}")
            try:
                with urllib.request.urlopen(f"{s.url}/health", timeout=2) as r:  # noqa: S310 (loopback)
                    if r.status == 200:
                        pending.remove(s)
            except OSError:
                pass
        if time.perf_counter() - t0 > timeout_s:
            raise TimeoutError(f"vLLM servers not healthy after {timeout_s:.0f} s: {[s.name for s in pending]}")
        if pending:
            time.sleep(1.0)
    return time.perf_counter() - t0


HAPROXY_CFG = """global
    stats socket {socket} mode 600 level admin
    maxconn 256
defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
frontend llm_front
    bind 127.0.0.1:{port}
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
    (``host:port``), the serving server's name in ``X-Served-By``, an admin socket (mode 600) in ``work``."""
    socket_path = work / "admin.sock"
    port = free_port()
    cfg = work / "haproxy.cfg"
    cfg.write_text(HAPROXY_CFG.format(socket=socket_path, port=port, control=control, canary=canary,
                                      control_weight=control_weight, canary_weight=canary_weight))
    check = subprocess.run([HAPROXY, "-c", "-f", str(cfg)], capture_output=True, text=True)
    if check.returncode != 0:
        raise RuntimeError(f"haproxy -c rejected {cfg}: {check.stdout}{check.stderr}")
    proc = Process("haproxy", _start("haproxy", [HAPROXY, "-db", "-f", str(cfg)], work / "haproxy.log"),
                   work / "haproxy.log", f"http://127.0.0.1:{port}")
    t0 = time.perf_counter()
    while not socket_path.exists():
        if proc.proc.poll() is not None or time.perf_counter() - t0 > 10:
            raise RuntimeError(f"haproxy did not start:\n{proc.tail()}")
        time.sleep(0.05)
    return proc, socket_path
