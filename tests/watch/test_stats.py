"""The watch's statistics on synthetic texts (pure logic: no engine): kernels, the within-prompt permutation null
(its false-alarm rate on exchangeable outputs), power on a shifted distribution, the combined decision."""

from __future__ import annotations

import numpy as np
import pytest

from harness.analysis.paired import holm
from harness.watch import stats

WORDS = ["the", "a", "plan", "export", "data", "yes", "no", "reset", "link", "hour"]


def _texts(rng: np.random.Generator, n: int, p: np.ndarray) -> list[str]:
    return [" ".join(rng.choice(WORDS, size=6, p=p)) for _ in range(n)]


def _check(rng: np.random.Generator, shift: float, prompts: int = 8, k: int = 6, n_perm: int = 199) -> float:
    base = np.full(len(WORDS), 1 / len(WORDS))
    moved = base.copy()
    moved[0] += shift
    moved /= moved.sum()
    grams = []
    for _ in range(prompts):
        grams.append(stats.hamming_gram(_texts(rng, k, base) + _texts(rng, k, moved)))
    return stats.mmd_test("sampled_mmd", grams, [k] * prompts, n_perm, rng).p_value()


@pytest.mark.parametrize("kernel", ["hamming", "ngram", "exact"])
def test_kernels_are_symmetric_psd_with_unit_diagonal(kernel: str) -> None:
    texts = ["the plan is basic", "the plan is pro", "", "a b c d e f", "the plan is basic"]
    k = stats.KERNELS[kernel](texts)
    assert np.allclose(k, k.T) and np.allclose(np.diag(k), 1.0)
    assert np.linalg.eigvalsh(k).min() > -1e-9
    assert k[0, 4] == pytest.approx(1.0) and k[0, 3] < 1.0


def test_hamming_counts_agreeing_positions_with_padding() -> None:
    k = stats.hamming_gram(["a b c", "a x c", "a b c d"])
    assert k[0, 1] == pytest.approx(1 - 1 / stats.HAMMING_L)  # one of 32 positions differs, the padding agrees
    assert k[0, 2] == pytest.approx(1 - 1 / stats.HAMMING_L)


def test_permutation_null_false_alarm_rate_is_at_most_alpha() -> None:
    rng = np.random.default_rng(20261205)
    p = np.array([_check(rng, 0.0) for _ in range(200)])
    assert np.mean(p <= 0.05) <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / 200)  # binomial sd: 1.5 pts
    assert np.mean(p <= 0.5) == pytest.approx(0.5, abs=0.12)  # p-values roughly uniform, not conservative to 0


def test_a_shifted_distribution_is_detected() -> None:
    rng = np.random.default_rng(7)
    p = np.array([_check(rng, 0.6) for _ in range(20)])
    assert np.mean(p <= 0.05) >= 0.9


def test_mean_difference_test_is_two_sided_and_sees_a_length_change() -> None:
    rng = np.random.default_rng(3)
    same = [rng.normal(20, 3, 4) for _ in range(10)]
    longer = [np.r_[rng.normal(20, 3, 2), rng.normal(26, 3, 2)] for _ in range(10)]
    shorter = [np.r_[rng.normal(26, 3, 2), rng.normal(20, 3, 2)] for _ in range(10)]
    assert stats.mean_diff_test("len", same, [2] * 10, 999, rng).p_value() > 0.01
    assert stats.mean_diff_test("len", longer, [2] * 10, 999, rng).p_value() < 0.01
    assert stats.mean_diff_test("len", shorter, [2] * 10, 999, rng).p_value() < 0.01


def test_identical_greedy_outputs_give_p_one_and_a_changed_prompt_set_a_small_p() -> None:
    rng = np.random.default_rng(1)
    same = [stats.exact_gram(["x", "x", "x", "x"]) for _ in range(12)]
    assert stats.mmd_test("g", same, [2] * 12, 999, rng).p_value() == 1.0
    moved = [stats.exact_gram(["x", "x", "y", "y"]) for _ in range(6)] + same[:6]
    assert stats.mmd_test("g", moved, [2] * 12, 999, rng).p_value() < 0.01


def test_decide_bonferroni_over_tests_and_inconclusive_first() -> None:
    d = stats.decide({"a": 0.004, "b": 0.5}, 0.01, [])
    assert d.decision == "CHANGED" and d.rejected == ("a",) and d.alpha_test == pytest.approx(0.005)
    assert stats.decide({"a": 0.006, "b": 0.5}, 0.01, []).decision == "SAME"
    assert stats.decide({"a": 0.0001}, 0.01, ["too many errors"]).decision == "INCONCLUSIVE"


def test_needed_permutations_reach_the_per_test_level() -> None:
    assert stats.needed_permutations(0.0025, 2000) == 2000
    b = stats.needed_permutations(0.01 / 30 / 4, 2000)
    assert 1 / (b + 1) <= 0.01 / 30 / 4 / 5 + 1e-12


def test_holm_as_the_watch_adjusts_its_segments() -> None:  # harness.analysis.paired.holm, in the p-values' order
    adj = dict(zip("abc", holm([0.01, 0.04, 0.03]), strict=True))
    assert adj == pytest.approx({"a": 0.03, "c": 0.06, "b": 0.06})
