"""The evaluator on real log files, the real packaged embedding model, real Parquet: decisions, persistence, resume."""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path

import pyarrow.parquet as pq

from harness.canary.evaluate import CanarySpec, Evaluator
from harness.canary.logs import write_log
from harness.canary.sequential import Sequential
from harness.gate import Policy, Threshold

T0 = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
TOPICS = ["shipping", "refunds", "passwords", "invoices", "the mobile app", "gift cards", "returns", "accounts"]


def answer(rng: random.Random) -> str:
    t = rng.choice(TOPICS)
    return (f"Here is how {t} works. " + " ".join(
        f"Step {i + 1}: open the {t} page and follow the instructions there." for i in range(rng.randint(1, 4))))


def write_windows(logs: Path, windows: range, canary_text: object, per_window: int = 20, seed: int = 0) -> None:
    rng = random.Random(seed)
    for w in windows:
        rows = []
        for i in range(per_window * 2):
            arm = "canary" if i % 2 else "control"
            text = answer(rng) if arm == "control" or canary_text is None else canary_text
            rows.append({"request_id": f"w{w}-{i}", "timestamp": T0 + dt.timedelta(seconds=10 * w + i * 0.1),
                         "segment": "faq", "messages": [{"role": "user", "content": f"How do {TOPICS[i % 8]} work?"}],
                         "response": text, "arm": arm, "latency_s": 0.05})
        write_log(rows, logs / f"part-{w:03d}.parquet")


def spec(tmp: Path, **kw: object) -> CanarySpec:
    base = dict(name="t", logs=tmp / "logs", window_s=10.0, observation_windows=4,
                sequential=Sequential(min_per_arm=20), policy=Policy(), output_dir=tmp / "reports",
                drift=("packaged:all-MiniLM-L6-v2", 20, "cpu", 1.0), run_id="r1")
    return CanarySpec(**{**base, **kw})  # type: ignore[arg-type]


def test_regression_rolls_back_with_two_families(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    write_windows(tmp_path / "logs", range(6), "I cannot help with that.")
    ev = Evaluator(spec(tmp_path))
    assert ev.run() == "ROLLBACK"
    decisions = pq.read_table(ev.path / "decisions.parquet").to_pylist()
    last = decisions[-1]
    families = json.loads(last["families"])
    assert families["stats"] == "breached" and families["drift"] == "breached"
    assert (ev.path / "timeline.png").stat().st_size > 1000
    assert "ROLLBACK" in (ev.path / "report.md").read_text()


def test_aa_promotes_after_the_observation_period_and_resume_continues(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    write_windows(logs, range(3), None)
    first = Evaluator(spec(tmp_path))
    assert first.run() == "CONTINUE"  # windows 0 and 1 complete (window 2's end is after the last record)
    assert first.next_window == 2
    write_windows(logs, range(3, 6), None, seed=1)  # the directory grows; a new evaluator resumes
    # 100 outputs per arm cannot show the default margins (chars 15%, drift 0.02) within an always-valid sequence:
    # PROMOTE needs every overall check non-inferior, so this A/A run states margins its sample can show
    wide = Policy(thresholds={"chars": Threshold(relative=0.6), "drift_similarity": Threshold(absolute=0.06)})
    again = Evaluator(spec(tmp_path, policy=wide))
    assert again.next_window == 2
    assert again.run() == "PROMOTE"
    decisions = pq.read_table(again.path / "decisions.parquet").to_pylist()
    assert [d["window"] for d in decisions] == [0, 1, 2, 3]
    assert [d["decision"] for d in decisions] == ["CONTINUE"] * 3 + ["PROMOTE"]
    assert "one more window" in json.loads(decisions[-1]["reasons"])[-1]
    manifest = json.loads((again.path / "manifest.json").read_text())
    assert manifest["t0"].startswith("2026-12-01T09:00:00")
