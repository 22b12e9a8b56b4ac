"""The watch's statistics: pure functions of texts and numbers, no I/O (docs/watch.md, "Statistics").

Every test compares, prompt by prompt, the reference run's outputs X_i with the new run's outputs Y_i, and takes its
null from permuting the run labels **within each prompt** (all prompts at once, the same permutation index for every
prompt's statistic): under H0 (the endpoint serves the same distribution of completions for every prompt) the
outputs of a prompt are exchangeable between the two runs, so the permutation p-value ``(1 + #{T_b >= T_obs}) /
(B + 1)`` is valid at any sample size, and the endpoint's own nondeterminism (batching, restarts) is in the null
as long as each run holds it too (two or more greedy passes per run).

- ``sampled_mmd``: the sum over prompts of the unbiased MMD^2 between X_i and Y_i under a string kernel (``KERNELS``:
  ``hamming``, the share of the first ``HAMMING_L`` word positions that agree, end of text padded, after Gao et al.,
  ICLR 2025; ``ngram``, the cosine of character 3-gram counts).
- ``greedy_exact``: the same MMD^2 with the exact-match kernel over the greedy passes.
- ``greedy_length``: |sum over prompts of mean output tokens (new) - mean output tokens (reference)|, greedy passes.
- ``golden_delta``: |sum over prompts with reference checks of mean score (new) - mean score (reference)| over all
  outputs, a score being the mean of the prompt's golden metrics on that output.

``decide`` combines them: each test at ``alpha_check / m`` (Bonferroni over the m tests that apply), CHANGED when one
rejects, INCONCLUSIVE when the run cannot be compared (errors, too few prompts), else SAME.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

HAMMING_L = 32
Kernel = Callable[[Sequence[str]], np.ndarray]


def hamming_gram(texts: Sequence[str]) -> np.ndarray:
    """Share of the first ``HAMMING_L`` word positions where two texts agree (past a text's end: a pad word, so two
    texts that both ended agree there). A sum of delta kernels: positive semi-definite."""
    vocab: dict[str, int] = {}
    codes = np.full((len(texts), HAMMING_L), -1, dtype=np.int64)
    for i, t in enumerate(texts):
        for j, w in enumerate(t.split()[:HAMMING_L]):
            codes[i, j] = vocab.setdefault(w, len(vocab))
    return (codes[:, None, :] == codes[None, :, :]).mean(axis=2)


def ngram_gram(texts: Sequence[str], n: int = 3) -> np.ndarray:
    """Cosine similarity of character ``n``-gram counts (an inner product of normalised vectors: PSD)."""
    grams = [Counter(t[i:i + n] for i in range(max(len(t) - n + 1, 0))) for t in texts]
    norms = [math.sqrt(sum(v * v for v in g.values())) for g in grams]
    k = np.zeros((len(texts), len(texts)))
    for i, gi in enumerate(grams):
        for j in range(i, len(texts)):
            gj = grams[j]
            small, big = (gi, gj) if len(gi) <= len(gj) else (gj, gi)
            dot = sum(v * big.get(g, 0) for g, v in small.items())
            nrm = norms[i] * norms[j]
            k[i, j] = k[j, i] = dot / nrm if nrm else float(not gi and not gj)
    return k


def exact_gram(texts: Sequence[str]) -> np.ndarray:
    """1 where two texts are identical."""
    ids = {t: i for i, t in enumerate(dict.fromkeys(texts))}
    codes = np.array([ids[t] for t in texts])
    return (codes[:, None] == codes[None, :]).astype(float)


KERNELS: dict[str, Kernel] = {"hamming": hamming_gram, "ngram": ngram_gram, "exact": exact_gram}
"""String kernels by name (``watch.test.kernel``)."""


def label_draws(n_x: int, n_y: int, n_perm: int, rng: np.random.Generator) -> np.ndarray:
    """(n_perm + 1) x (n_x + n_y) indicators of the X side: row 0 the observed labels, then random permutations."""
    base = np.r_[np.ones(n_x), np.zeros(n_y)]
    perms = rng.permuted(np.tile(base, (n_perm, 1)), axis=1)
    return np.vstack([base, perms])


def mmd2_draws(gram: np.ndarray, lx: np.ndarray) -> np.ndarray:
    """Unbiased MMD^2 for every label draw (rows of ``lx``) of one prompt's Gram matrix (X and Y need >= 2 each)."""
    n_x = int(lx[0].sum())
    n_y = gram.shape[0] - n_x
    k0 = gram - np.diag(np.diag(gram))
    ly = 1.0 - lx
    xx = np.einsum("bi,ij,bj->b", lx, k0, lx) / (n_x * (n_x - 1))
    yy = np.einsum("bi,ij,bj->b", ly, k0, ly) / (n_y * (n_y - 1))
    xy = np.einsum("bi,ij,bj->b", lx, gram, ly) / (n_x * n_y)
    return xx + yy - 2 * xy  # type: ignore[no-any-return]


def mean_diff_draws(values: np.ndarray, lx: np.ndarray) -> np.ndarray:
    """mean(Y) - mean(X) of one prompt's values for every label draw."""
    n_x = lx[0].sum()
    ly = 1.0 - lx
    return (ly @ values) / (len(values) - n_x) - (lx @ values) / n_x  # type: ignore[no-any-return]


@dataclass(frozen=True)
class PermTest:
    """One permutation test over prompts: ``per_prompt`` is prompts x (B + 1) (column 0 observed)."""

    name: str
    per_prompt: np.ndarray
    absolute: bool  # the statistic is |sum| (two-sided mean difference) rather than the sum (MMD^2)

    def totals(self, rows: np.ndarray | None = None) -> np.ndarray:
        t = (self.per_prompt if rows is None else self.per_prompt[rows]).sum(axis=0)
        return np.abs(t) if self.absolute else t  # type: ignore[no-any-return]

    def p_value(self, rows: np.ndarray | None = None) -> float:
        t = self.totals(rows)
        return float((1 + np.sum(t[1:] >= t[0] - 1e-12)) / len(t))

    @property
    def observed(self) -> float:
        return float(self.per_prompt[:, 0].sum())

    def z_scores(self) -> np.ndarray:
        """Per prompt: (observed - permutation mean) / permutation sd; how far each prompt moved."""
        perm = self.per_prompt[:, 1:]
        sd = perm.std(axis=1)
        return np.where(sd > 0, (self.per_prompt[:, 0] - perm.mean(axis=1)) / np.where(sd > 0, sd, 1), 0.0)


def mmd_test(name: str, grams: Sequence[np.ndarray], n_x: Sequence[int], n_perm: int,
             rng: np.random.Generator) -> PermTest:
    """The summed MMD^2 test over prompts (Gram matrices with the X outputs first, ``n_x[i]`` of them)."""
    rows = [mmd2_draws(g, label_draws(nx, g.shape[0] - nx, n_perm, rng)) for g, nx in zip(grams, n_x, strict=True)]
    return PermTest(name, np.vstack(rows), absolute=False)


def mean_diff_test(name: str, values: Sequence[np.ndarray], n_x: Sequence[int], n_perm: int,
                   rng: np.random.Generator) -> PermTest:
    """The two-sided summed mean-difference test over prompts (values with the X outputs first)."""
    rows = [mean_diff_draws(v, label_draws(nx, len(v) - nx, n_perm, rng)) for v, nx in zip(values, n_x, strict=True)]
    return PermTest(name, np.vstack(rows), absolute=True)


def needed_permutations(alpha_test: float, n_perm: int) -> int:
    """At least ``n_perm``, and enough that the smallest p-value 1 / (B + 1) is a fifth of the per-test level."""
    return max(n_perm, math.ceil(5 / alpha_test))


@dataclass(frozen=True)
class Decision:
    """The combined decision of one check."""

    decision: str  # SAME, CHANGED, INCONCLUSIVE
    alpha_check: float
    alpha_test: float  # alpha_check / m
    rejected: tuple[str, ...]
    reasons: tuple[str, ...]


def decide(p_values: dict[str, float], alpha_check: float, not_comparable: Sequence[str]) -> Decision:
    """SAME / CHANGED / INCONCLUSIVE from the tests' p-values (Bonferroni over the tests) and what makes the run not
    comparable (errors, too few prompts: INCONCLUSIVE whatever the tests say)."""
    m = max(len(p_values), 1)
    alpha_test = alpha_check / m
    if not_comparable:
        return Decision("INCONCLUSIVE", alpha_check, alpha_test, (), tuple(not_comparable))
    rejected = tuple(sorted(k for k, p in p_values.items() if p <= alpha_test))
    if rejected:
        why = tuple(f"{k}: p = {p_values[k]:.2g} <= {alpha_test:.2g} (alpha {alpha_check:.2g} / {m} tests)"
                    for k in rejected)
        return Decision("CHANGED", alpha_check, alpha_test, rejected, why)
    smallest = min(p_values.values(), default=1.0)
    return Decision("SAME", alpha_check, alpha_test, (),
                    (f"no test below {alpha_test:.2g} (alpha {alpha_check:.2g} / {m} tests); smallest p = "
                     f"{smallest:.2g}",))
