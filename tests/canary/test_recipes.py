"""The Argo Rollouts and Flagger recipes in docs/canary/recipes/ read `serve` the way the controllers do.

Argo's ``web`` provider: GET the url with the template's headers; a non-2xx answer is a measurement Error; else the
``jsonPath`` (Kubernetes JSONPath, evaluated here with jsonpath-ng) gives ``result`` and the conditions (Argo's expr
syntax, here the ``==``/``||`` subset the template uses) decide Failed, Successful or Inconclusive. Flagger: POST the
webhook's url with its payload (name, namespace, phase, metadata); 2xx proceeds, anything else halts."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import REPO, canary_run_dir
from jsonpath_ng import parse

from harness.canary.serve import make_server, serve_in_thread

RECIPES = REPO / "docs" / "canary" / "recipes"
TOKEN = "tok-recipe"


def _argo(base: str) -> str:
    template = yaml.safe_load((RECIPES / "argo-analysis-template.yaml").read_text())
    [metric] = template["spec"]["metrics"]
    web = metric["provider"]["web"]
    url = web["url"].replace("{{args.gate-url}}", base)
    req = urllib.request.Request(url)
    for h in web["headers"]:
        req.add_header(h["key"], h["value"].replace("{{args.gate-token}}", TOKEN))
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            body = json.loads(r.read())
    except urllib.error.HTTPError:
        return "Error"
    [match] = parse(web["jsonPath"].strip("{}")).find(body)

    def holds(condition: str) -> bool:
        expr = condition.replace("||", " or ").replace("&&", " and ")
        assert re.fullmatch(r"[\w\s'=!|&()]+", condition), condition  # the subset this evaluator understands
        return bool(eval(expr, {"__builtins__": {}}, {"result": match.value}))  # noqa: S307

    if holds(metric["failureCondition"]):
        return "Failed"
    return "Successful" if holds(metric["successCondition"]) else "Inconclusive"


def _flagger(base: str) -> dict[str, int]:
    canary = yaml.safe_load((RECIPES / "flagger-canary.yaml").read_text())
    out = {}
    for hook in canary["spec"]["analysis"]["webhooks"]:
        url = re.sub(r"^http://[^/]+", base, hook["url"])
        payload = {"name": "llm-server", "namespace": "default", "phase": "Progressing",
                   "metadata": {**hook.get("metadata", {}), "token": TOKEN}}
        req = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                out[hook["type"]] = r.status
        except urllib.error.HTTPError as e:
            out[hook["type"]] = e.code
    return out


@pytest.fixture
def gate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("GATE_TOKEN", TOKEN)
    canary_run_dir(tmp_path, "CONTINUE")
    server = make_server(tmp_path / "run", "0.0.0.0", 0, "GATE_TOKEN")  # as in the cluster: all interfaces, a token
    serve_in_thread(server)
    yield f"http://127.0.0.1:{server.server_address[1]}", tmp_path
    server.shutdown()
    server.server_close()


def test_argo_reads_each_decision_and_fails_closed(gate: Any) -> None:
    base, tmp = gate
    expected = {"CONTINUE": "Successful", "PROMOTE": "Successful", "INVESTIGATE": "Inconclusive",
                "ROLLBACK": "Failed"}
    for decision, phase in expected.items():
        canary_run_dir(tmp, decision)
        assert _argo(base) == phase, decision
    canary_run_dir(tmp, "CONTINUE", beat_age_s=120)  # the evaluator is gone: an Error, never a success
    assert _argo(base) == "Error"
    template = yaml.safe_load((RECIPES / "argo-analysis-template.yaml").read_text())
    assert template["spec"]["metrics"][0]["consecutiveErrorLimit"] <= 3


def test_flagger_hooks_proceed_halt_and_roll_back(gate: Any) -> None:
    base, tmp = gate
    canary_run_dir(tmp, "CONTINUE")
    assert _flagger(base) == {"pre-rollout": 200, "rollout": 200, "confirm-promotion": 412, "rollback": 412}
    canary_run_dir(tmp, "PROMOTE")
    assert _flagger(base)["confirm-promotion"] == 200
    canary_run_dir(tmp, "ROLLBACK")
    assert _flagger(base) == {"pre-rollout": 412, "rollout": 412, "confirm-promotion": 412, "rollback": 200}
    canary_run_dir(tmp, "CONTINUE", age_s=600)  # stale: every gate halts
    assert set(_flagger(base).values()) == {503}
