"""Agreement statistics on small tables computed by hand, cross-checked with sklearn/scipy; annotation file checks."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest

from harness import CONFIG_DIR, REPLAYS_DIR
from harness.signals.agreement import (
    agreement_rows,
    cohen_kappa,
    exact_agreement,
    load_annotations,
    spearman,
    weighted_kappa,
)
from harness.signals.judge_prompts import Criterion, JudgeError, Rubric

REPO = Path(__file__).resolve().parents[2]
RUBRIC = Rubric("t", (Criterion("accuracy", "facts"), Criterion("tone", "voice"), Criterion("format", "shape")))

# Table 1, two categories, n = 10: pairs (1,1) x3, (1,2) x1, (2,2) x5, (2,1) x1.
#   p_o = 8/10 = 0.8; marginals a = (0.4, 0.6), b = (0.4, 0.6); p_e = 0.16 + 0.36 = 0.52
#   kappa = (0.8 - 0.52) / (1 - 0.52) = 0.28 / 0.48 = 0.583333...
#   with two categories the quadratic weights are 0/1, so weighted kappa = kappa:
#   1 - 0.2 / (0.4*0.6 + 0.6*0.4) = 1 - 0.2 / 0.48 = 0.583333...
T1_A = [1, 1, 1, 1, 2, 2, 2, 2, 2, 2]
T1_B = [1, 1, 1, 2, 2, 2, 2, 2, 2, 1]

# Table 2, scale 1..5, n = 5: a = 1 2 3 4 5, b = 2 3 4 5 5 (the judge is one point high, except at the top).
#   p_o = 1/5 = 0.2; a uniform (0.2 each); b = (0, .2, .2, .2, .4); p_e = 0.2 * 1.0 = 0.2 -> kappa = 0
#   quadratic: observed mean (i-j)^2 = (1+1+1+1+0)/5 = 0.8
#   expected = 0.2 * sum_j b_j * S_j, S_j = sum_i (i-j)^2 over i = 0..4: S = 20, 15, 10, 15, 30 (j = 0..4)
#            = 0.2 * (0.2*15 + 0.2*10 + 0.2*15 + 0.4*30) = 0.2 * 20 = 4.0 -> weighted kappa = 1 - 0.8/4 = 0.8
#   Spearman: ranks a = 1 2 3 4 5, b = 1 2 3 4.5 4.5; deviations (-2,-1,0,1,2), (-2,-1,0,1.5,1.5):
#   cov = 4+1+0+1.5+3 = 9.5, var_a = 10, var_b = 9.5 -> rho = 9.5 / sqrt(95) = sqrt(0.95) = 0.974679...
T2_A = [1, 2, 3, 4, 5]
T2_B = [2, 3, 4, 5, 5]
SCALE = [1, 2, 3, 4, 5]


def test_table1_by_hand() -> None:
    assert exact_agreement(T1_A, T1_B) == pytest.approx(0.8)
    assert cohen_kappa(T1_A, T1_B, [1, 2]) == pytest.approx(0.28 / 0.48)
    assert weighted_kappa(T1_A, T1_B, [1, 2]) == pytest.approx(0.28 / 0.48)


def test_table2_by_hand_weighted_kappa_credits_near_misses() -> None:
    assert exact_agreement(T2_A, T2_B) == pytest.approx(0.2)
    assert cohen_kappa(T2_A, T2_B, SCALE) == pytest.approx(0.0)
    assert weighted_kappa(T2_A, T2_B, SCALE) == pytest.approx(0.8)
    assert spearman(T2_A, T2_B) == pytest.approx(math.sqrt(0.95))


def test_perfect_and_undefined() -> None:
    assert cohen_kappa([1, 2, 3], [1, 2, 3], [1, 2, 3]) == pytest.approx(1.0)
    assert weighted_kappa([1, 2, 3], [1, 2, 3], [1, 2, 3]) == pytest.approx(1.0)
    assert cohen_kappa([5, 5, 5], [5, 5, 5], SCALE) is None  # p_e = 1: chance explains everything
    assert weighted_kappa([5, 5, 5], [5, 5, 5], SCALE) is None
    assert spearman([3, 3, 3], [1, 2, 3]) is None


def test_matches_sklearn_and_scipy_on_random_tables() -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    stats = pytest.importorskip("scipy.stats")
    rng = random.Random(0)
    for _ in range(30):
        n = rng.randint(5, 60)
        a = [rng.randint(1, 5) for _ in range(n)]
        b = [min(5, max(1, x + rng.choice([-2, -1, 0, 0, 1]))) for x in a]
        assert cohen_kappa(a, b, SCALE) == pytest.approx(metrics.cohen_kappa_score(a, b, labels=SCALE))
        assert weighted_kappa(a, b, SCALE) == pytest.approx(
            metrics.cohen_kappa_score(a, b, labels=SCALE, weights="quadratic"))
        assert spearman(a, b) == pytest.approx(stats.spearmanr(a, b).statistic)
    assert weighted_kappa(T2_A, T2_B, SCALE) == pytest.approx(
        metrics.cohen_kappa_score(T2_A, T2_B, labels=SCALE, weights="quadratic"))


def _csv(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "labels.csv"
    p.write_text(text)
    return p


def test_load_annotations_ok_and_extra_columns_ignored(tmp_path: Path) -> None:
    p = _csv(tmp_path, "request_id,arm,criterion,label,annotator\n"
                       "r1,baseline,accuracy,4,ann\nr1,candidate,tone,2,ann\n")
    assert load_annotations(p, RUBRIC) == {("r1", "baseline", "accuracy"): 4, ("r1", "candidate", "tone"): 2}


def test_bad_annotation_rows_are_all_reported_with_row_and_fix(tmp_path: Path) -> None:
    p = _csv(tmp_path, "request_id,arm,criterion,label\n"
                       "r1,baseline,accuracy,4\n"
                       "r1,old,accuracy,4\n"
                       "r2,baseline,politeness,3\n"
                       "r3,baseline,tone,9\n"
                       "r4,baseline,tone,good\n"
                       "r1,baseline,accuracy,5\n")
    with pytest.raises(JudgeError) as e:
        load_annotations(p, RUBRIC)
    msg = str(e.value)
    assert str(p) in msg and "5 bad annotation row(s)" in msg
    assert "row 2" in msg and "arm 'old'" in msg
    assert "row 3" in msg and "'politeness' is not in rubric" in msg and "Fix" in msg
    assert "row 4" in msg and "outside tone's scale 1..5" in msg
    assert "row 5" in msg and "'good' is not an integer" in msg
    assert "row 6" in msg and "second label" in msg


def test_missing_columns_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(JudgeError, match=r"missing column\(s\) \['label'\]"):
        load_annotations(_csv(tmp_path, "request_id,arm,criterion,score\nr1,baseline,tone,3\n"), RUBRIC)
    with pytest.raises(JudgeError, match="does not exist.*judge.annotations"):
        load_annotations(tmp_path / "nope.csv", RUBRIC)


def test_agreement_rows_mark_uncalibrated_below_the_bar_or_with_few_pairs() -> None:
    labels, scores = {}, []
    for i, (j, h) in enumerate(zip(T2_B * 20, T2_A * 20, strict=True)):  # 100 pairs of table 2: weighted kappa 0.8
        labels[(f"r{i}", "baseline", "accuracy")] = h
        scores.append({"request_id": f"r{i}", "arm": "baseline", "criterion": "accuracy", "score": j})
        labels[(f"r{i}", "baseline", "tone")] = h
        scores.append({"request_id": f"r{i}", "arm": "baseline", "criterion": "tone", "score": 6 - h})  # reversed
    scores.append({"request_id": "r0", "arm": "candidate", "criterion": "accuracy", "score": None})  # unscored
    rows = {r["criterion"]: r for r in agreement_rows(scores, labels, RUBRIC, bar=0.6, min_n=20)}
    assert rows["accuracy"]["n"] == 100 and rows["accuracy"]["weighted_kappa"] == pytest.approx(0.8)
    assert 0.6 < rows["accuracy"]["weighted_kappa_low"] < 0.8 < rows["accuracy"]["weighted_kappa_high"]
    assert rows["accuracy"]["calibrated"] and rows["accuracy"]["reason"] == ""
    # the rule is on the lower bound: 10 of the same pairs give the same kappa, too wide an interval to admit it
    few_pairs = {r["criterion"]: r for r in agreement_rows(scores[:20], labels, RUBRIC, bar=0.6, min_n=5)}
    assert few_pairs["accuracy"]["weighted_kappa"] == pytest.approx(0.8) and not few_pairs["accuracy"]["calibrated"]
    assert "lower bound" in few_pairs["accuracy"]["reason"]
    assert rows["tone"]["weighted_kappa"] < 0 and not rows["tone"]["calibrated"]
    assert "< 0.6" in rows["tone"]["reason"]
    assert rows["format"]["n"] == 0 and not rows["format"]["calibrated"] and "only 0" in rows["format"]["reason"]
    few = agreement_rows(scores, labels, RUBRIC, bar=0.6, min_n=101)
    assert not any(r["calibrated"] for r in few)


def test_shipped_sample_loads_against_the_zoo_rubric() -> None:
    from omegaconf import OmegaConf

    from harness.config import JudgeConfig
    from harness.signals.judge import judge_settings

    cfg = OmegaConf.merge(OmegaConf.structured(JudgeConfig), OmegaConf.load(CONFIG_DIR / "judge" / "zoo.yaml"))
    settings = judge_settings(OmegaConf.to_object(cfg))  # type: ignore[arg-type]
    labels = load_annotations(REPLAYS_DIR / "judge_annotations_sample.csv", settings.rubric)
    assert len(labels) == 40 * 2 * 5
