"""The embedding-drift stage: embed every arm's outputs once, cosine to the baseline per request, and read
it against the A/A noise floor.

Tables written to the run directory:

- ``embeddings.parquet``: ``request_id``, ``arm``, ``embedding`` (fixed-size list of float32), served
  requests only; the model is recorded in the file's metadata, so re-analysis reuses it and never re-embeds.
- ``drift.parquet``: one row per request and compared arm (``candidate``; ``aa`` when the experiment has
  an A/A arm): ``request_id``, ``segment``, ``arm``, ``cosine`` (to the baseline's output).
- ``drift_summary.parquet`` (``harness/analysis/drift.sql``): per arm, overall and per segment: n, mean
  and 5th-percentile cosine, and the share of requests below the A/A floor with its Wilson 95% CI.

Divergence is not regression: these numbers are reported and go into ``verdict.json`` under
``divergence``; the gate does not count them as breaches.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from harness.signals.drift_stats import aa_floor, paired_permutation_test, wilson_interval
from harness.signals.embedding import Embedder, cosine_pairs, embeddings_table, release_gpu_memory, table_vectors
from harness.store import RunDir

log = logging.getLogger(__name__)
DRIFT_SCHEMA = pa.schema([("request_id", pa.string()), ("segment", pa.string()), ("arm", pa.string()),
                          ("cosine", pa.float64())])
SQL = Path(__file__).resolve().parents[1] / "analysis" / "drift.sql"


def embed_outputs(run: RunDir, generations: pa.Table, model: str, device: str | None) -> pa.Table:
    """Embeddings of every served output of every arm, read back when already computed with ``model``."""
    path = run.table_path("embeddings")
    served = generations.filter(pc.is_null(generations["error"]))
    if path.exists():
        table = pq.read_table(path)
        if (table.schema.metadata or {}).get(b"model", b"").decode() == model and table.num_rows == served.num_rows:
            log.info("embeddings: reusing %s", path)
            return table
    embedder = Embedder(model, device=device)
    log.info("embeddings: %d outputs with %s on %s (%s)", served.num_rows, model, embedder.device, embedder.dtype)
    parts = []
    for arm in sorted(set(served["arm"].to_pylist())):
        rows = served.filter(pc.equal(served["arm"], arm))
        vectors = embedder.encode(rows["output_text"].to_pylist())
        parts.append(embeddings_table(rows["request_id"].to_pylist(), arm, vectors))
    del embedder
    release_gpu_memory()
    table = pa.concat_tables(parts)
    table = table.replace_schema_metadata({"model": model})
    run.write_table("embeddings", table)
    return table


def drift_rows(embeddings: pa.Table, segments: dict[str, str]) -> pa.Table:
    """Per request and non-baseline arm: cosine between its output and the baseline's."""
    by_arm = {arm: embeddings.filter(pc.equal(embeddings["arm"], arm))
              for arm in set(embeddings["arm"].to_pylist())}
    if "baseline" not in by_arm:
        return DRIFT_SCHEMA.empty_table()
    base = by_arm.pop("baseline")
    base_index = {rid: i for i, rid in enumerate(base["request_id"].to_pylist())}
    base_vectors = table_vectors(base)
    rows: list[dict[str, Any]] = []
    for arm, table in sorted(by_arm.items()):
        ids = table["request_id"].to_pylist()
        keep = [i for i, rid in enumerate(ids) if rid in base_index]
        cos = cosine_pairs(table_vectors(table)[keep], base_vectors[[base_index[ids[i]] for i in keep]])
        rows += [{"request_id": ids[i], "segment": segments[ids[i]], "arm": arm, "cosine": float(c)}
                 for i, c in zip(keep, cos, strict=True)]
    return pa.Table.from_pylist(rows, schema=DRIFT_SCHEMA)


def summarize(run: RunDir, embeddings: pa.Table, drift: pa.Table, quantile: float, n_perm: int) -> dict[str, Any]:
    """The A/A floor, per-segment drift (SQL) with Wilson CIs, and the paired MMD test, as one dict."""
    import duckdb

    aa = np.array([r["cosine"] for r in drift.to_pylist() if r["arm"] == "aa"], dtype=float)
    floor = aa_floor(aa, quantile) if aa.size else None
    con = duckdb.connect()
    con.register("drift", drift)
    rows = con.sql(SQL.read_text(), params={"floor": floor}).to_arrow_table().to_pylist()
    con.close()
    for r in rows:
        r["below_ci_low"], r["below_ci_high"] = (wilson_interval(r["n_below"], r["n"]) if floor is not None
                                                 else (None, None))
    tests = {}
    for arm in ("candidate", "aa"):
        x, y = _paired_vectors(embeddings, arm)
        if len(x) >= 10:
            tests[arm] = paired_permutation_test(y, x, n_perm=n_perm)
    run.write_table("drift_summary", pa.Table.from_pylist(rows))
    return {"model": (embeddings.schema.metadata or {}).get(b"model", b"").decode(), "aa_quantile": quantile,
            "aa_floor": floor, "rows": rows, "mmd_paired": tests}


def _paired_vectors(embeddings: pa.Table, arm: str) -> tuple[np.ndarray, np.ndarray]:
    """Baseline and ``arm`` vectors for the requests both served, in the same order."""
    tables = {a: embeddings.filter(pc.equal(embeddings["arm"], a)) for a in ("baseline", arm)}
    if tables[arm].num_rows == 0:
        return np.empty((0, 0)), np.empty((0, 0))
    index = {a: {rid: i for i, rid in enumerate(t["request_id"].to_pylist())} for a, t in tables.items()}
    common = sorted(set(index["baseline"]) & set(index[arm]))
    vecs = {a: table_vectors(t) for a, t in tables.items()}
    return (vecs["baseline"][[index["baseline"][r] for r in common]], vecs[arm][[index[arm][r] for r in common]])


def run_drift(run: RunDir, generations: pa.Table, model: str, device: str | None, quantile: float,
              n_perm: int) -> dict[str, Any]:
    """Embed, compare and summarize; writes the tables described in the module docstring."""
    embeddings = embed_outputs(run, generations, model, device)
    segments = dict(zip(generations["request_id"].to_pylist(), generations["segment"].to_pylist(), strict=True))
    drift = drift_rows(embeddings, segments)
    run.write_table("drift", drift)
    return summarize(run, embeddings, drift, quantile, n_perm)
