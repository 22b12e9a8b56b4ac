"""The drift stage on hand-made embeddings: pairing by request, the A/A floor, per-segment SQL (real DuckDB)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.signals.drift import drift_rows, summarize
from harness.signals.embedding import embeddings_table
from harness.store import RunDir


def _unit(rows: list[list[float]]) -> np.ndarray:
    v = np.array(rows, dtype=np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_cosines_pair_by_request_id_and_floor_reads_aa(tmp_path: Path) -> None:
    ids = [f"q{i}" for i in range(40)]
    rng = np.random.default_rng(0)
    base = _unit(rng.normal(size=(40, 8)).tolist())
    aa = base.copy()
    aa[:2] = _unit(rng.normal(size=(2, 8)).tolist())  # the perturbation changed 2 of 40 outputs
    cand = _unit((base + 0.8 * rng.normal(size=(40, 8))).tolist())
    import pyarrow as pa

    emb = pa.concat_tables([embeddings_table(ids, "baseline", base), embeddings_table(ids[::-1], "aa", aa[::-1]),
                            embeddings_table(ids[:30], "candidate", cand[:30])])  # candidate: 10 errored
    segments = {rid: "s1" if i < 20 else "s2" for i, rid in enumerate(ids)}
    drift = drift_rows(emb, segments)
    by = {(r["arm"], r["request_id"]): r["cosine"] for r in drift.to_pylist()}
    assert by[("aa", "q5")] == pytest.approx(1.0, abs=1e-6) and len(drift) == 70
    assert by[("candidate", "q3")] == pytest.approx(float(cand[3] @ base[3]), abs=1e-6)
    out = summarize(RunDir(tmp_path, "e", "r"), emb, drift, quantile=0.05, n_perm=200)
    assert out["aa_floor"] == pytest.approx(np.quantile([by[("aa", r)] for r in ids], 0.05), abs=1e-9)
    rows = {(r["arm"], r["segment"]): r for r in out["rows"]}
    assert rows[("aa", None)]["n_below"] <= 2 and rows[("candidate", None)]["n"] == 30
    assert rows[("candidate", "s2")]["n"] == 10
    assert rows[("candidate", None)]["below_ci_low"] <= rows[("candidate", None)]["share_below"]
    assert set(out["mmd_paired"]) == {"aa", "candidate"}
    assert (tmp_path / "e" / "r" / "drift_summary.parquet").exists()
    paired = rows[("candidate", None)]  # paired with the A/A arm on the 30 requests both have
    aa_below = {r for r in ids[:30] if by[("aa", r)] < out["aa_floor"] - 1e-6}
    cand_below = {r for r in ids[:30] if by[("candidate", r)] < out["aa_floor"] - 1e-6}
    assert (paired["n_pairs"], paired["up"], paired["down"], paired["aa_below"]) == (
        30, len(cand_below - aa_below), len(aa_below - cand_below), len(aa_below))


def test_no_aa_arm_means_no_floor(tmp_path: Path) -> None:
    import pyarrow as pa

    ids = [f"q{i}" for i in range(12)]
    base = _unit(np.random.default_rng(1).normal(size=(12, 8)).tolist())
    emb = pa.concat_tables([embeddings_table(ids, "baseline", base), embeddings_table(ids, "candidate", base)])
    drift = drift_rows(emb, dict.fromkeys(ids, "s"))
    out = summarize(RunDir(tmp_path, "e", "r"), emb, drift, quantile=0.05, n_perm=50)
    overall = next(r for r in out["rows"] if r["segment"] is None)
    assert out["aa_floor"] is None and overall["share_below"] is None and overall["below_ci_low"] is None
    assert overall["mean_cosine"] == pytest.approx(1.0, abs=1e-6)


def test_practical_floor_caps_a_degenerate_quantile(tmp_path: Path) -> None:
    """Greedy A/A: the outputs are identical, the quantile is 1.0; the floor is drift.practical_floor, and the
    summary says the quantile was degenerate."""
    import pyarrow as pa

    ids = [f"q{i}" for i in range(20)]
    base = _unit(np.random.default_rng(2).normal(size=(20, 8)).tolist())
    emb = pa.concat_tables([embeddings_table(ids, "baseline", base), embeddings_table(ids, "aa", base),
                            embeddings_table(ids, "candidate", base)])
    drift = drift_rows(emb, dict.fromkeys(ids, "s"))
    out = summarize(RunDir(tmp_path, "e", "r"), emb, drift, quantile=0.05, n_perm=20, practical_floor=0.9)
    assert out["floor_degenerate"] and out["aa_floor"] == 0.9 and out["aa_quantile_floor"] > 0.9
