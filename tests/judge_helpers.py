"""What the endpoint-judge tests share: a run's outputs to judge, an endpoint judge's settings, a scripted endpoint.

``ScriptedEndpoint`` is a small OpenAI-compatible HTTP server in a thread (``/v1/models``, streamed
``/v1/chat/completions``) whose failures a test scripts: a 503 on each prompt's first attempt, a 400 for prompts that
contain a marker, an abrupt disconnect after N answers (the endpoint going down), and an API key it requires.
It answers a pointwise prompt with a 3 for every criterion of the response schema and a pairwise one with "A".
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pyarrow as pa
from helpers import loopback_server
from omegaconf import OmegaConf

from harness import CONFIG_DIR, REPLAYS_DIR
from harness.config import JudgeConfig
from harness.fixtures.zoo import tasks
from harness.signals.judge import JudgeSettings, judge_settings
from harness.store import GENERATION_SCHEMA
from harness.traffic import Request, load_traffic

BAD = "BAD-MARKER-400"


def judged_outputs(n: int, bad: int | None = None) -> tuple[dict[str, Request], pa.Table]:
    """The first ``n`` sample requests answered by the zoo's task references (baseline style vs terse); the
    candidate's answer to request ``bad`` carries the marker the scripted endpoint refuses with HTTP 400."""
    requests = load_traffic(REPLAYS_DIR / "support_sample.parquet", limit=n)
    rows = []
    for i, (r, ex) in enumerate(zip(requests, tasks.examples(7, n), strict=True)):
        for arm, style in (("baseline", "baseline"), ("candidate", "terse")):
            text = tasks.reference(ex, style) + (f" {BAD}" if arm == "candidate" and i == bad else "")
            rows.append({"request_id": r.request_id, "segment": r.segment, "batch": 0, "arm": arm, "output_text": text,
                         "prompt_tokens": 20, "output_tokens": 10, "finish_reason": "stop", "error": None})
    return {r.request_id: r for r in requests}, pa.Table.from_pylist(
        rows, schema=GENERATION_SCHEMA.append(pa.field("arm", pa.string())))


def endpoint_settings(base_url: str, model: str, *dotlist: str) -> JudgeSettings:
    """configs/judge/zoo.yaml's rubric, the judge arm an OpenAI-compatible endpoint (no checkpoint)."""
    cfg = OmegaConf.merge(OmegaConf.structured(JudgeConfig), OmegaConf.load(CONFIG_DIR / "judge" / "zoo.yaml"),
                          OmegaConf.from_dotlist(["arm.checkpoint=null", "arm.engine.backend=server",
                                                  f"arm.engine.server.base_url={base_url}",
                                                  f"arm.engine.server.model={model}", "arm.engine.extra={}",
                                                  "annotations=null", *dotlist]))
    return judge_settings(OmegaConf.to_object(cfg))  # type: ignore[arg-type]


class _State:
    def __init__(self, key: str | None) -> None:
        self.key = key
        self.fail_first = False
        self.down_after: int | None = None
        self.answered = 0
        self.attempts: list[str] = []  # a hash of each chat request's messages, in arrival order
        self.lock = threading.Lock()


class _Handler(BaseHTTPRequestHandler):
    state: _State

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _authorized(self) -> bool:
        if self.state.key and self.headers.get("Authorization") != f"Bearer {self.state.key}":
            self._json(401, {"error": "bad key"})
            return False
        return True

    def _json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(obj).encode()
        self.send_response(status)
        for k, v in {"Content-Type": "application/json", "Content-Length": str(len(body)), **(headers or {})}.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802
        if self._authorized():
            self._json(200, {"data": [{"id": "scripted"}]})

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if not self._authorized():
            return
        digest = hashlib.sha256(json.dumps(body["messages"]).encode()).hexdigest()[:16]
        st = self.state
        with st.lock:
            first = digest not in st.attempts
            st.attempts.append(digest)
            if st.down_after is not None and st.answered >= st.down_after:
                self.close_connection = True  # the endpoint went down: no answer at all
                return
        if st.fail_first and first:
            self._json(503, {"error": "busy"}, {"Retry-After": "0"})
            return
        if any(BAD in m["content"] for m in body["messages"]):
            self._json(400, {"error": "content policy"})
            return
        props = body["response_format"]["json_schema"]["schema"]["properties"]
        text = json.dumps({"preference": "A"} if "preference" in props else {c: 3 for c in props})
        with st.lock:
            st.answered += 1
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for chunk in ({"choices": [{"delta": {"content": text}}]},
                      {"choices": [{"delta": {}, "finish_reason": "stop"}]},
                      {"choices": [], "usage": {"prompt_tokens": 50, "completion_tokens": 9}}):
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
        self.wfile.write(b"data: [DONE]\n\n")


@contextmanager
def scripted_endpoint(key: str | None = None) -> Iterator[tuple[str, _State]]:
    """A scripted OpenAI-compatible endpoint on a free loopback port: (base URL, its state); stopped on exit."""
    state = _State(key)
    with loopback_server(type("Handler", (_Handler,), {"state": state})) as url:
        yield url, state


def files_text(folder: Path) -> str:
    """Every file under ``folder`` as text (bytes decoded with replacement): to check a secret is nowhere."""
    return "".join(p.read_bytes().decode(errors="replace") for p in folder.rglob("*") if p.is_file())
