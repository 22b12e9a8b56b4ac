"""The pairwise admission's statistics on constructed pairs, the imported judge file's errors, and the run's rows.

Pure logic (no engine): the bar on lower bounds, position and length bias, the length-controlled win rate, selective
trust, abstentions in the signal rows, and ``run_judge`` with an imported judge file with and without human labels.
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest
from judge_helpers import endpoint_settings, judged_outputs
from sklearn.metrics import cohen_kappa_score

from harness.signals.agreement import cohen_kappa, kappa_interval, wilson
from harness.signals.judge import run_judge
from harness.signals.judge_admission import Bar, PairJudgment, admit_pairwise, length_controlled
from harness.signals.judge_import import load_imported
from harness.signals.judge_prompts import Criterion, JudgeError, Rubric
from harness.store import RunDir

RUBRIC = Rubric("r", tuple(Criterion(n, f"about {n}") for n in ("a", "b", "c")))
AB = {"baseline": "A", "candidate": "B"}
BA = {"baseline": "B", "candidate": "A"}


def _pairs(n: int, accuracy: float, seed: int, first_bias: float = 0.0) -> list[PairJudgment]:
    """n labelled pairs; each order's verdict names the human's arm with prob. ``accuracy``, else the other arm;
    with prob. ``first_bias`` an order just picks the answer shown first."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        human = rng.choice(("baseline", "candidate"))
        other = "candidate" if human == "baseline" else "baseline"
        ab = "A" if rng.random() < first_bias else AB[human if rng.random() < accuracy else other]
        ba = "A" if rng.random() < first_bias else BA[human if rng.random() < accuracy else other]
        out.append(PairJudgment(f"r{i}", ab, ba, human, 100, 100))
    return out


def test_intervals_cover_and_match_sklearn() -> None:
    rng = random.Random(3)
    a = [rng.choice("xyz") for _ in range(200)]
    b = [x if rng.random() < 0.7 else rng.choice("xyz") for x in a]
    k = cohen_kappa(a, b, "xyz")
    assert k == pytest.approx(cohen_kappa_score(a, b))
    lo, hi = kappa_interval(a, b, "xyz")
    assert lo is not None and hi is not None and lo < k < hi and hi - lo < 0.25
    assert kappa_interval(a, b, "xyz") == (lo, hi)  # seeded
    wl, wh = wilson(93, 100)
    assert wl == pytest.approx(0.8626, abs=1e-3) and wh == pytest.approx(0.9657, abs=1e-3)


def test_the_bar_is_on_the_lower_bound_in_both_orders() -> None:
    strong = admit_pairwise(_pairs(200, 0.95, 1), Bar())
    assert strong["admitted"], strong["reason"]
    st = strong["selective_trust"]  # the contradicting pairs abstain at any threshold: coverage = consistent share
    assert st["threshold"] == 0.0 and 0.8 < st["coverage"] < 1 and st["abstentions"] == 200 - st["admitted"]
    small = admit_pairwise(_pairs(25, 0.95, 1), Bar())  # the same judge on few pairs: too wide to admit
    assert small["orders"][0]["kappa"] > 0.6 and not small["admitted"] and "lower bound" in small["reason"]
    weak = admit_pairwise(_pairs(200, 0.75, 2), Bar())
    assert not weak["admitted"] and "order AB: kappa" in weak["reason"]
    biased = admit_pairwise(_pairs(300, 0.95, 4, first_bias=0.4), Bar())
    pb = biased["position_bias"]
    assert pb["first_shown_rate"] > 0.65 and pb["flip_rate"] > 0.3 and not biased["admitted"]
    assert admit_pairwise(_pairs(10, 1.0, 5), Bar())["reason"].startswith("only 10 pairs")


def test_length_controlled_win_rate_removes_a_pure_length_preference() -> None:
    rng = random.Random(7)
    diffs = [rng.gauss(200, 300) for _ in range(400)]  # the candidate is longer in ~3 of 4 pairs
    longer = [float(d > 0) if rng.random() < 0.85 else float(d <= 0) for d in diffs]  # prefers the longer output
    res = length_controlled(longer, diffs)
    assert res["raw_win_rate"] == pytest.approx(sum(longer) / 400) and res["raw_win_rate"] > 0.65
    assert abs(res["lc_win_rate"] - 0.5) < 0.08 and res["slope"] > 5 * res["slope_se"]
    fair = [float(rng.random() < 0.7) for _ in diffs]  # prefers the candidate 70%, whatever the lengths
    neutral = length_controlled(fair, diffs)
    assert abs(neutral["lc_win_rate"] - neutral["raw_win_rate"]) < 0.05 and abs(neutral["slope"]) < 3 * neutral[
        "slope_se"]


def test_selective_trust_uses_imported_confidence() -> None:
    rng = random.Random(11)
    pairs = []
    for i in range(300):
        human = rng.choice(("baseline", "candidate"))
        confident = i % 2 == 0
        right = rng.random() < (0.97 if confident else 0.5)
        arm = human if right else ("candidate" if human == "baseline" else "baseline")
        pairs.append(PairJudgment(f"r{i}", AB[arm], BA[arm], human, confidence=0.9 if confident else 0.3))
    st = admit_pairwise(pairs, Bar())["selective_trust"]
    assert st["threshold"] == 0.9 and st["coverage"] == pytest.approx(0.5) and st["agreement_low"] >= 0.8


def _write(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_imported_file_errors_name_file_row_field_and_fix(tmp_path: Path) -> None:
    bad = _write(tmp_path / "j.jsonl", [
        {"request_id": "r1", "verdict_ab": "A", "verdict_ba": "B"},
        {"request_id": "r2", "verdict_ab": "X", "verdict_ba": "B"},
        {"request_id": "r3", "verdict_ab": "A", "verdict_ba": None, "confidence": 7},
        {"request_id": "r1", "verdict_ab": "A", "verdict_ba": "B"},
        {"request_id": "r4", "arm": "candidate", "criterion": "zz", "score": 3},
        {"request_id": "", "verdict_ab": "A"}])
    with pytest.raises(JudgeError) as e:
        load_imported(bad, RUBRIC)
    msg = str(e.value)
    assert f"{bad}: 5 bad imported judge row(s)" in msg
    assert "row 2 (request_id 'r2'), field verdict_ab: 'X' is not a verdict. Fix: write A, B or tie" in msg
    assert "row 3 (request_id 'r3'), field confidence: 7 is outside 0..1" in msg
    assert "row 4 (request_id 'r1'): a second pairwise verdict" in msg
    assert "row 5 (request_id 'r4'), field criterion: 'zz' is not in rubric" in msg
    assert "row 6, field request_id: empty" in msg
    with pytest.raises(JudgeError, match="does not exist.*judge.imported"):
        load_imported(tmp_path / "nope.jsonl", RUBRIC)
    ok = load_imported(_write(tmp_path / "ok.jsonl", [{"request_id": "r1", "verdict_ab": "tie", "verdict_ba": ""}]),
                       RUBRIC)
    assert ok.pairwise["r1"]["verdict_ab"] == "tie" and ok.pairwise["r1"]["verdict_ba"] is None


def _labels(path: Path, prefs: dict[str, str]) -> Path:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["request_id", "arm", "criterion", "label"])
        w.writerows([rid, "pair", "preference", lab] for rid, lab in prefs.items())
    return path


def test_run_with_an_imported_judge_admitted_only_with_labels(tmp_path: Path) -> None:
    requests, outputs = judged_outputs(80)
    rng = random.Random(5)
    human = {rid: rng.choice(("baseline", "candidate")) for rid in requests}
    verdicts = []
    for i, rid in enumerate(sorted(requests)):
        arm = human[rid]
        ab, ba = (AB[arm], BA[arm]) if i % 20 else ("A", "A")  # every 20th: position-biased (inconsistent)
        verdicts.append({"request_id": rid, "verdict_ab": ab, "verdict_ba": ba})
    judge = _write(tmp_path / "judge.jsonl", verdicts[:-1])  # the last request is missing from the file
    base = endpoint_settings("http://unused", "none", f"imported={judge}")
    res = run_judge(RunDir(tmp_path, "e", "nolabels"), requests, outputs, base)
    assert not res.engine_ran and res.info["source"] == "imported" and "judge_preferred" in res.advisory_metrics
    labels = _labels(tmp_path / "labels.csv", human)
    import dataclasses

    run = RunDir(tmp_path, "e", "labels")
    res = run_judge(run, requests, outputs, dataclasses.replace(base, annotations=str(labels), agreement_min_n=20))
    adm = res.admission
    assert adm is not None and adm["admitted"], adm["reason"] if adm else None
    assert "judge_preferred" not in res.advisory_metrics
    assert not next(m for m in res.metrics if m.name == "judge_preferred").advisory
    pairs = {p["request_id"]: p for p in run.read_table("judge_pairwise").to_pylist()}
    last = sorted(requests)[-1]
    assert pairs[last]["preference"] == "unscored" and pairs[last]["reason_ab"] == "not_in_imported_file"
    rows = {(r["request_id"], r["arm"]): r["value"] for r in res.signals.to_pylist()
            if r["metric"] == "judge_preferred"}
    biased = sorted(requests)[20]
    assert rows[(biased, "baseline")] is None and rows[(biased, "candidate")] is None  # abstention
    assert rows[(sorted(requests)[1], human[sorted(requests)[1]])] == 1.0
    assert set(json.loads((run.path / "judge_admission.json").read_text())) >= {"orders", "selective_trust",
                                                                               "disagreements"}


def test_audit_page_escapes_untrusted_text_and_links_each_disagreement(tmp_path: Path) -> None:
    import dataclasses

    import pyarrow as pa
    import pyarrow.compute as pc

    from harness.report import judge_audit

    requests, outputs = judged_outputs(30)
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    texts = [t + evil for t in outputs.column("output_text").to_pylist()]
    outputs = outputs.set_column(outputs.schema.get_field_index("output_text"), "output_text", pa.array(texts))
    ids = sorted(requests)
    human = {rid: "candidate" for rid in ids}
    verdicts = [{"request_id": rid, "verdict_ab": "B", "verdict_ba": "A", "raw_ab": evil} for rid in ids]
    verdicts[3] = {"request_id": ids[3], "verdict_ab": "A", "verdict_ba": "B", "raw_ab": evil}  # a false regression
    base = endpoint_settings("http://unused", "none", f"imported={_write(tmp_path / 'j.jsonl', verdicts)}")
    run = RunDir(tmp_path, "e", "r")
    for arm in ("baseline", "candidate"):
        part = outputs.filter(pc.equal(outputs.column("arm"), arm)).drop_columns(["arm"])
        run.write_part("generations", arm, 0, part)
    run_judge(run, requests, outputs, dataclasses.replace(base, annotations=str(_labels(tmp_path / "l.csv", human))))
    page = judge_audit.render(run, requests)
    assert "<script" not in page and "<img" not in page  # the outputs' and the judge's markup is inert text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in page
    anchor = judge_audit.anchor(ids[3])
    assert f'href="#{anchor}"' in page and f'id="{anchor}"' in page and "false regression): 1" in page
