"""Production fidelity: the replayed baseline against the captured production responses, read against the A/A level,
with what to check when it does not reproduce them; the captured responses as an imported arm (``traffic``)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pyarrow as pa

from harness.config import ArmConfig
from harness.engines.checkpoints import fingerprint
from harness.engines.imported import load_outputs
from harness.signals.fidelity import fidelity
from harness.store import RunDir
from harness.traffic import Message, Request, write_traffic

ANSWERS = [f"Answer number {i}: reset the router, then call support if it still fails." for i in range(40)]


def _gens(arm: str, texts: list[str], reason: str = "stop") -> list[dict[str, Any]]:
    return [{"request_id": f"r{i}", "arm": arm, "output_text": t, "error": None, "finish_reason": reason}
            for i, t in enumerate(texts)]


def _requests(temperature: float | None = 0.0) -> dict[str, Any]:
    return {f"r{i}": SimpleNamespace(response=a, segment="chat", temperature=temperature)
            for i, a in enumerate(ANSWERS)}


def test_a_faithful_replay_reproduces_production_at_the_aa_level(tmp_path: Path) -> None:
    run = RunDir(tmp_path, "e", "r")
    baseline = ANSWERS[:36] + [a + " Thanks." for a in ANSWERS[36:]]
    aa = [a + " Regards." for a in baseline[:4]] + baseline[4:]
    gens = pa.Table.from_pylist(_gens("baseline", baseline) + _gens("aa", aa))
    arms = {"baseline": ArmConfig(checkpoint="zoo:baseline"), "aa": ArmConfig(checkpoint="zoo:baseline")}
    found = fidelity(run, _requests(), gens, arms, "packaged:all-MiniLM-L6-v2", "cpu", None)
    assert found is not None and found["reproduces"] and found["check"] == []
    assert found["production"]["identical_share"] == 0.9 and found["production"]["n"] == 40
    assert found["aa"]["identical_share"] == 0.9 and found["production"]["cosine_p5"] > 0.9
    assert run.read_table("fidelity").num_rows == 80


def test_a_truncated_replay_says_what_to_check(tmp_path: Path) -> None:
    run = RunDir(tmp_path, "e", "r")
    gens = pa.Table.from_pylist(_gens("baseline", [a[:12] for a in ANSWERS], reason="length")
                                + _gens("aa", [a[:12] for a in ANSWERS]))
    arms = {"baseline": ArmConfig(checkpoint="zoo:baseline", system_prompt="Be brief."),
            "aa": ArmConfig(checkpoint="zoo:baseline")}
    sampling = {"baseline": {"requests": 40, "fallback": 40, "params": {}}}
    found = fidelity(run, _requests(0.7), gens, arms, None, None, sampling)
    assert found is not None and not found["reproduces"]
    text = " ".join(found["check"])
    assert "max_tokens: 100%" in text and "40 requests replayed a parameter" in text
    assert "changes the system prompt" in text and "production sampled" in text
    assert found["production"]["cosine_mean"] is None  # no drift model: no cosine


def test_no_production_responses_no_section(tmp_path: Path) -> None:
    reqs = {k: SimpleNamespace(response=None, segment="chat", temperature=0.0) for k in _requests()}
    gens = pa.Table.from_pylist(_gens("baseline", ANSWERS))
    assert fidelity(RunDir(tmp_path, "e", "r"), reqs, gens, {"baseline": ArmConfig(checkpoint="x")}, None, None,
                    None) is None


def test_captured_responses_serve_as_outputs(tmp_path: Path) -> None:
    when = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    reqs = [Request(f"r{i}", when, "chat", (Message("user", "q"),), None, None, None, None, None,
                    ANSWERS[i] if i % 2 == 0 else None, None) for i in range(6)]
    path = tmp_path / "t.parquet"
    write_traffic(reqs, path)
    outputs = load_outputs(f"traffic:{path}")
    assert sorted(outputs) == ["r0", "r2", "r4"] and outputs["r2"]["output"] == ANSWERS[2]
    assert fingerprint(f"traffic:{path}").startswith("sha256:")


def test_production_as_the_aa_capture_gives_no_separate_level(tmp_path: Path) -> None:
    gens = pa.Table.from_pylist(_gens("baseline", ANSWERS) + _gens("aa", ANSWERS))
    arms = {"baseline": ArmConfig(checkpoint="zoo:baseline"), "aa": ArmConfig(imported="traffic:/t.parquet")}
    found = fidelity(RunDir(tmp_path, "e", "r"), _requests(), gens, arms, None, None, None)
    assert found is not None and found["aa"] is None and found["aa_is_production"] and found["reproduces"]
    assert found["production"]["identical_share"] == 1.0
