"""The server engine's HTTP client against a scripted loopback endpoint: pure client logic (retries, backoff, error
rows, clear errors). Real vLLM servers: tests/test_scale_out.py (greedy outputs vs the offline engine, SIGTERM,
resume, the verdict)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from helpers import loopback_server

from harness.config import ArmConfig, EngineConfig, ServerConfig
from harness.engines.base import EngineError, PreparedRequest
from harness.engines.server import ServerEngine, free_port


def _req(rid: str, text: str = "hello", max_tokens: int = 16) -> PreparedRequest:
    return PreparedRequest(rid, ({"role": "user", "content": text},), None, 0.0, 1.0, max_tokens, 1, None)


class _Script:
    """What the scripted endpoint answers: per request id (the user text), a list of statuses to send before a
    streamed 200 (or forever, with ``always``)."""

    def __init__(self) -> None:
        self.before_ok: dict[str, list[int]] = {}
        self.always: dict[str, int] = {}
        self.calls: dict[str, int] = {}
        self.models = ["m"]


def _handler(script: _Script) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:  # /v1/models
            body = json.dumps({"data": [{"id": m} for m in script.models]}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            key = req["messages"][-1]["content"]
            script.calls[key] = script.calls.get(key, 0) + 1
            pending = script.before_ok.get(key, [])
            status = script.always.get(key) or (pending.pop(0) if pending else 200)
            if status != 200:
                self.send_response(status)
                self.send_header("Retry-After", "0")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"no")
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for piece in ("Hi", " there"):
                chunk = {"choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()
            done = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
            usage = {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 2}}
            self.wfile.write(f"data: {json.dumps(done)}\n\ndata: {json.dumps(usage)}\n\ndata: [DONE]\n\n".encode())

    return Handler


@pytest.fixture
def endpoint() -> Iterator[tuple[str, _Script]]:
    script = _Script()
    with loopback_server(_handler(script)) as url:
        yield url, script


def _arm(base_url: str, **server: Any) -> ArmConfig:
    return ArmConfig(engine=EngineConfig(backend="server", server=ServerConfig(
        base_url=base_url, **{"retries": 3, "backoff_s": 0.01, "timeout_s": 5.0, **server})))


def test_streamed_answers_carry_latency_and_retries_recover_from_429_and_503(endpoint: tuple[str, _Script]) -> None:
    url, script = endpoint
    script.before_ok = {"flaky": [429, 503]}
    engine = ServerEngine(_arm(url))
    try:
        ok, flaky = engine.generate([_req("a", "fine"), _req("b", "flaky")])
    finally:
        engine.close()
    for g in (ok, flaky):
        assert (g.output_text, g.prompt_tokens, g.output_tokens, g.finish_reason, g.error) == \
            ("Hi there", 5, 2, "stop", None)
        assert g.ttft_s is not None and g.latency_s is not None and 0 <= g.ttft_s <= g.latency_s
        assert g.itl_s is not None and g.itl_s >= 0
    assert script.calls == {"fine": 1, "flaky": 3}


def test_a_request_that_keeps_failing_is_an_error_row_and_the_rest_are_answered(
        endpoint: tuple[str, _Script]) -> None:
    url, script = endpoint
    script.always = {"broken": 500, "bad": 400}
    engine = ServerEngine(_arm(url))
    try:
        ok, broken, bad = engine.generate([_req("a", "fine"), _req("b", "broken"), _req("c", "bad")])
    finally:
        engine.close()
    assert ok.error is None and ok.output_text == "Hi there"
    assert broken.output_text == "" and "HTTP 500" in str(broken.error) and "after 4 attempts" in str(broken.error)
    assert "HTTP 400" in str(bad.error) and "after 1 attempts" in str(bad.error)  # a client error is not retried
    assert script.calls["broken"] == 4 and script.calls["bad"] == 1


def test_wrong_model_unreachable_endpoint_and_missing_key_are_clear_errors(
        endpoint: tuple[str, _Script], monkeypatch: pytest.MonkeyPatch) -> None:
    url, _ = endpoint
    with pytest.raises(EngineError, match=r"serves \['m'\], not 'other'.*engine.server.model"):
        ServerEngine(_arm(url, model="other"))
    with pytest.raises(EngineError, match=r"does not answer.*engine.server.base_url"):
        ServerEngine(_arm(f"http://127.0.0.1:{free_port()}"))
    monkeypatch.delenv("GATE_TEST_KEY", raising=False)
    with pytest.raises(EngineError, match=r"GATE_TEST_KEY, which is not set.*export GATE_TEST_KEY"):
        ServerEngine(_arm(url, api_key_env="GATE_TEST_KEY"))


def test_an_endpoint_that_stops_answering_stops_the_arm(endpoint: tuple[str, _Script]) -> None:
    url, script = endpoint
    engine = ServerEngine(_arm(url))
    try:
        engine.endpoints[0] = engine.endpoints[0].__class__(f"http://127.0.0.1:{free_port()}", "m")  # it went away
        with pytest.raises(EngineError, match=r"refused every request of the batch.*resume"):
            engine.generate([_req("a"), _req("b")])
    finally:
        engine.close()
