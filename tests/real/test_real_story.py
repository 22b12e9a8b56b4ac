"""The whole story on CPU with real parts: real:smollm2 served by a local vLLM OpenAI server as production; traffic
sent by the real `openai` client, captured by the official OpenTelemetry instrumentation (and through LiteLLM when it is
installed) and logged by the application as OpenAI chat JSONL with a torn last line and a tool-call turn; imported;
replayed from a config dir `python -m harness init` writes outside the repository, against a candidate with a new system
prompt, the captured responses as the A/A capture; the report's production-fidelity section; the CI exit policy and a
sign-off. The shared real-model server (tests/real/conftest.py), then one engine at a time; about 2 minutes on the
2-core machine."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
from helpers import run_harness

from harness.gate import SIGNABLE
from harness.traffic import load_traffic

pytestmark = [pytest.mark.vllm, pytest.mark.e2e]
N = 24


@pytest.fixture(scope="module")
def logs(real_server: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from harness.fixtures.real.client_logs import capture, real_requests

    pytest.importorskip("openai")
    pytest.importorskip("opentelemetry.instrumentation.openai_v2")
    found = capture(real_server.base_url, real_server.name, real_requests(N), tmp_path_factory.mktemp("story_logs"))
    with found["openai"].open("a", encoding="utf-8") as f:  # the application died mid-write
        f.write('{"id": "torn", "request": {"messages": [{"role": "user", "content": "Wh\n')
    with found["otel"].open("a", encoding="utf-8") as f:  # and so did the file exporter
        f.write('{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "ab\n')
    return found


def test_real_logs_to_a_signed_off_decision(logs: dict[str, Path], tmp_path: Path) -> None:
    segments = {"support", "qa", "borderline", "writing", "coding", "unsafe"}
    openai = run_harness("import", "openai", str(logs["openai"]), str(tmp_path / "openai.parquet"), "--skip-invalid",
                         "--segment-field", "metadata.route")
    assert openai.returncode == 0, openai.stderr[-2000:]
    assert "skipped 1 invalid records" in openai.stdout
    quarantined = [json.loads(x) for x in (tmp_path / "openai.quarantine.jsonl").read_text().splitlines()]
    assert len(quarantined) == 1 and "JSON" in quarantined[0]["reasons"][0]
    from_app = {r.request_id: r for r in load_traffic(tmp_path / "openai.parquet")}
    tool = [r for r in from_app.values() if r.tools is not None]
    assert len(tool) == 1 and tool[0].tools["messages"][1]["tool_calls"]
    assert any(r.n == 2 for r in from_app.values()) and any(r.stop for r in from_app.values())

    otel = run_harness("import", "otel", str(logs["otel"].parent), str(tmp_path / "traffic.parquet"),
                       "--skip-invalid", "--segment-field", "parent.app.route")
    assert otel.returncode == 0, otel.stderr[-2000:]
    assert "skipped 1 invalid records" in otel.stdout  # the torn line, quarantined
    traffic = {r.request_id: r for r in load_traffic(tmp_path / "traffic.parquet")}
    assert {r.segment for r in traffic.values()} <= segments | {"orders"}
    same = set(traffic) & set(from_app)  # the span's response id is the id the application logged
    assert len(same) >= len(from_app) - 2, (sorted(traffic), sorted(from_app))
    assert all(traffic[i].response == from_app[i].response for i in same if traffic[i].n is None)
    if "litellm" in logs:
        ll = run_harness("import", "litellm", str(logs["litellm"]), str(tmp_path / "litellm.parquet"),
                         "--segment-field", "metadata.requester_metadata.route")
        assert ll.returncode == 0, ll.stderr[-2000:]
        assert {r.segment for r in load_traffic(tmp_path / "litellm.parquet")} <= segments
    else:
        assert importlib.util.find_spec("litellm") is None

    gate = tmp_path / "gate"
    made = run_harness("init", str(gate), "--cpu", "--checkpoint", "real:smollm2", "--traffic",
                       str(tmp_path / "traffic.parquet"))
    assert made.returncode == 0, made.stderr
    reports = tmp_path / "reports"
    replay = run_harness("--config-dir", str(gate), "replay", "experiment=my_system_prompt", f"output_dir={reports}",
                         "run_id=story", "drift.aa_imported=traffic", f"cache.dir={tmp_path / 'cache'}",
                         "gate.min_requests=10", "--fail-on=ROLLBACK")
    run = reports / "my_system_prompt" / "story"
    verdict = json.loads((run / "verdict.json").read_text())
    assert replay.returncode == (11 if verdict["verdict"] == "ROLLBACK" else 0), replay.stderr[-3000:]
    fidelity = verdict["fidelity"]
    assert fidelity["production"]["n"] >= N - 6 and fidelity["aa_is_production"] and fidelity["aa"] is None
    assert fidelity["production"]["identical_share"] >= 0.5  # the same checkpoint, dtype and greedy decoding
    assert "## Production fidelity" in (run / "report.md").read_text()
    assert "Production fidelity" in (run / "report.html").read_text()
    sampling = verdict["sampling"]["baseline"]
    assert sampling["tools_not_replayed"] == 1 and sampling["n_above_1"] >= 1
    print(json.dumps({"verdict": verdict["verdict"], "fidelity": fidelity, "sampling": sampling}, indent=1))

    signoff = run_harness("signoff", str(run), "--by", "platform-oncall", "--note", "new prompt reviewed")
    if verdict["verdict"] in SIGNABLE:
        assert signoff.returncode == 0, signoff.stderr
        again = run_harness("report", str(run), f"--fail-on={verdict['verdict']}")
        assert again.returncode == 0 and "## Sign-off" in (run / "pr_comment.md").read_text()
    else:
        assert signoff.returncode == 2 and "cannot be signed off" in signoff.stderr
    assert run_harness("report", str(run), "--fail-on=").returncode == 0  # a policy that fails nothing
