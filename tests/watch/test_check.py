"""The watch's check and records on synthetic probe runs (pure logic, no engine): the frozen probe set and its
fingerprint, the combined decision with the changed segments and moved prompts, INCONCLUSIVE on failed requests,
the golden paired delta, the history's one line per check."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.errors import BadInput
from harness.report.history import collect_watch, format_watch
from harness.watch import probe as probe_set
from harness.watch.check import CheckSettings, compare
from harness.watch.probe import Probe
from harness.watch.report import webhook_payload, write_markdown

PROBES = [Probe(f"p{i:02d}", "traffic", f"r{i}", "faq" if i < 6 else "chat",
                ({"role": "user", "content": f"question {i}"},), None,
                (("normalized_contains", "yes"),) if i < 3 else ()) for i in range(12)]


def _rows(text: Any, k: int = 4, greedy: int = 2, error: Any = None) -> list[dict[str, Any]]:
    rows = []
    for p in PROBES:
        for kind, n in (("sample", k), ("greedy", greedy)):
            for i in range(n):
                rows.append({"probe_id": p.probe_id, "segment": p.segment, "pass": kind, "index": i,
                             "output_text": text(p, kind, i), "prompt_tokens": 5, "output_tokens": 8,
                             "finish_reason": "length", "error": error(p, i) if error else None, "latency_s": 0.1})
    return rows


def ref_text(p: Probe, kind: str, i: int) -> str:
    return f"yes the answer to {p.probe_id} is" + ("" if kind == "greedy" else f" variant {i % 3} of many")


def test_same_outputs_are_same_and_a_segment_change_is_changed_there() -> None:
    t = CheckSettings(n_perm=999)
    same = compare(PROBES, _rows(ref_text), _rows(ref_text), t)
    assert same["decision"] == "SAME" and same["changed_segments"][0]["changed"] is False
    assert same["greedy_identical"] == 1.0 and same["golden_delta"]["delta"] == 0.0

    def chat_moved(p: Probe, kind: str, i: int) -> str:
        return ref_text(p, kind, i) if p.segment == "faq" else f"no, {p.probe_id} cannot be answered here {i}"

    moved = compare(PROBES, _rows(ref_text), _rows(chat_moved), t)
    assert moved["decision"] == "CHANGED"
    assert [s["segment"] for s in moved["changed_segments"] if s["changed"]] == ["chat"]
    assert {m["segment"] for m in moved["moved"]} == {"chat"} and len(moved["moved"]) == 5
    assert moved["tests"]["greedy_exact"]["rejected"] and moved["greedy_identical"] == 0.5
    payload = webhook_payload({**moved, "name": "w", "run_id": "r"})
    assert payload["changed_segments"] == ["chat"] and "cannot" not in json.dumps(payload)  # no text in the payload


def test_failed_requests_make_the_check_inconclusive() -> None:
    rec = compare(PROBES, _rows(ref_text), _rows(ref_text, error=lambda p, i: "HTTP 503" if i == 0 else None),
                  CheckSettings(n_perm=199))
    assert rec["decision"] == "INCONCLUSIVE" and "failed" in rec["reasons"][0]


def test_golden_delta_sees_a_drop_in_reference_scores() -> None:
    def no_yes(p: Probe, kind: str, i: int) -> str:
        return ref_text(p, kind, i).replace("yes", "maybe")

    rec = compare(PROBES, _rows(ref_text), _rows(no_yes), CheckSettings(n_perm=999))
    assert rec["golden_delta"] == {"prompts": 3, "reference": 1.0, "new": 0.0, "delta": -1.0}
    assert rec["tests"]["golden_delta"]["p_value"] < 0.01


def test_probe_set_is_stratified_and_frozen(tmp_path: Path) -> None:
    from harness import data_dir

    probes = probe_set.draw(str(data_dir("replays") / "real_sample.parquet"), None, 3, 0)
    assert len(probes) == 18 and {p.segment for p in probes} == {"coding", "writing", "borderline", "support",
                                                                 "unsafe", "qa"}
    fp = probe_set.write(probes, tmp_path / "probe.parquet")
    assert probe_set.read(tmp_path / "probe.parquet", fp) == probes
    with pytest.raises(BadInput, match="fingerprint"):
        probe_set.read(tmp_path / "probe.parquet", "0" * 64)
    with pytest.raises(BadInput, match="probe.traffic"):
        probe_set.draw(None, None, 3, 0)


def test_history_lists_one_line_per_check_and_check_md_escapes_text(tmp_path: Path) -> None:
    rec = compare(PROBES, _rows(ref_text), _rows(lambda p, k, i: f"<script>x</script> {p.probe_id} {i}"),
                  CheckSettings(n_perm=199))
    for run_id, decision, when in (("a", "REFERENCE", "2026-12-05T01:00:00+00:00"),
                                   ("b", rec["decision"], "2026-12-05T02:00:00+00:00")):
        run = tmp_path / "watch" / "w" / "runs" / run_id
        run.mkdir(parents=True)
        full = {**rec, "decision": decision, "run": {"created_at": when, "sampling": {"k": 4, "greedy": 2}}}
        (run / "check.json").write_text(json.dumps(full))
    checks = collect_watch(tmp_path)
    assert [c.decision for c in checks] == ["CHANGED", "REFERENCE"]
    assert "sampled_mmd" in format_watch(checks).splitlines()[3]
    md = write_markdown({**rec, "name": "w", "run": {}}, tmp_path / "check.md").read_text()
    assert "<script>" not in md and "&lt;script&gt;" in md
