"""The watch against the real model behind the shared vLLM OpenAI server (tests/real/conftest.py): the CLI end to
end: the first run stores the reference (exit 0), the same endpoint checked again is SAME (exit 0), a run whose
sampling settings moved (top_p 0.05, sent explicitly, as a provider's sampling change) is CHANGED (exit 10) with a
signed webhook delivered to a local receiver; ``python -m harness runs`` lists one line per check. About 30 s on the
2-core machine beside the server the package shares."""

from __future__ import annotations

import http.server
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import loopback_server, run_harness

from harness.canary.hooks import SIGNATURE_HEADER, verify

pytestmark = [pytest.mark.vllm, pytest.mark.e2e]
SECRET = "watch-test-secret"


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[bytes, str | None]]]]:
    """A local webhook receiver recording each POST's body and signature header."""
    got: list[tuple[bytes, str | None]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            got.append((self.rfile.read(int(self.headers["Content-Length"])), self.headers.get(SIGNATURE_HEADER)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    with loopback_server(Handler) as url:
        yield f"{url}/hook", got


def test_watch_reference_same_changed_webhook_history(real_server: Any, tmp_path: Path, receiver: Any,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    url, got = receiver
    monkeypatch.setenv("WATCH_TEST_SECRET", SECRET)
    common = [f"output_dir={tmp_path}", "name=smollm2", "arm.checkpoint=null",
              f"arm.engine.server.base_url={real_server.base_url}", "arm.engine.server.model=smollm2",
              "probe.per_segment=2", "sampling.k=4", "sampling.max_tokens=16", "test.min_prompts=6",
              "test.alpha=0.001", f"webhook.url={url}", "webhook.secret_env=WATCH_TEST_SECRET"]
    first = run_harness("watch", *common, "run_id=r0-reference")
    assert first.returncode == 0, first.stderr[-3000:]
    assert "reference snapshot stored" in first.stdout
    root = tmp_path / "watch" / "smollm2"
    assert json.loads((root / "watch.json").read_text())["reference"] == "r0-reference"

    same = run_harness("watch", *common, "run_id=r1-same")  # alpha 0.001: a false CHANGED here is 1 in 1,000
    assert same.returncode == 0, same.stdout + same.stderr[-3000:]
    check = json.loads((root / "runs" / "r1-same" / "check.json").read_text())
    assert check["decision"] == "SAME" and check["prompts"] == 12 and check["run"]["requests"] == 12 * 6
    assert set(check["tests"]) >= {"sampled_mmd", "greedy_exact", "greedy_length", "golden_delta"}
    assert got == []  # no webhook on SAME

    moved = run_harness("watch", *common, "sampling.top_p=0.05", "run_id=r2-changed")
    assert moved.returncode == 10, moved.stdout + moved.stderr[-3000:]
    assert "watch: CHANGED (exit code 10)" in moved.stdout
    check = json.loads((root / "runs" / "r2-changed" / "check.json").read_text())
    assert check["tests"]["sampled_mmd"]["rejected"]
    assert any("top_p None -> 0.05" in w for w in check["warnings"])
    assert len(check["moved"]) == 5 and (root / "runs" / "r2-changed" / "check.md").is_file()
    assert len(got) == 1
    body, signature = got[0]
    assert verify(SECRET.encode(), body, signature)
    payload = json.loads(body)
    assert payload["decision"] == "CHANGED" and payload["run_id"] == "r2-changed" and "sampled_mmd" in payload["tests"]

    runs = run_harness("runs", "--output-dir", str(tmp_path))
    assert runs.returncode == 0, runs.stderr[-2000:]
    lines = [line for line in runs.stdout.splitlines() if line.split()[3:4] and "smollm2" in line]
    assert [line.split()[4] for line in lines] == ["CHANGED", "SAME", "REFERENCE"]
