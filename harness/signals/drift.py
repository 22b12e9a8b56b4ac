"""The embedding-drift stage: embed every arm's outputs once, cosine to the baseline per request, and read
it against the A/A noise floor.

Tables written to the run directory:

- ``embeddings.parquet``: ``request_id``, ``arm``, ``embedding`` (fixed-size list of float32), served
  requests only; the model is recorded in the file's metadata, so re-analysis reuses it and never re-embeds.
- ``drift.parquet``: one row per request and compared arm (``candidate``; ``aa`` when the experiment has
  an A/A arm): ``request_id``, ``segment``, ``arm``, ``cosine`` (to the baseline's output).
- ``drift_summary.parquet`` (``harness/analysis/drift.sql``): per arm, overall and per segment: n, mean
  and 5th-percentile cosine, and the share of requests below the A/A floor with its Wilson 95% CI; the candidate's
  rows also carry its below-floor indicators paired with the A/A arm's on the same requests
  (``harness/analysis/drift_pairs.sql``: ``n_pairs``, ``up``, ``down``, ``aa_below``).

The floor is the A/A arm's ``aa_quantile`` quantile of cosine, at most ``drift.practical_floor`` (0.98): under
greedy decoding the quantile is 1.0 and "below the floor" would mean "changed at all" (``floor_degenerate``).

As a signal family (``DriftSignal``, role ``divergence``): no per-request rows for the paired analysis; its checks
(``drift_checks``) compare the candidate's share of requests below the floor with the A/A arm's share on the same
requests, overall and per segment: a **paired** difference of two shares, read with Tango's score bounds
(``harness.analysis.margin``), so the A/A level's own sampling error is in the bound. A breach is a difference
whose lower bound, at alpha split over the family's checks that can fire (``harness.gate.family_levels``), exceeds
the margin (``gate.margins.drift``, default 0.10); ok when the upper bound is within it; else inconclusive. Rows
without the paired counts (tables written before them) are read the earlier way: the exact (Clopper-Pearson) bounds
of the candidate's share against the A/A level (at least ``aa_quantile``) taken as known. Divergence is not
regression: a breach counts as a divergence (DIVERGENCE alone -> INVESTIGATE). The numbers also go into
``verdict.json`` under ``divergence``.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from harness.config import ArmConfig, DriftConfig
from harness.console import Stage
from harness.gate import Check, Evidence, Policy, Threshold, breach_check, family_levels
from harness.signals.base import SIGNAL_SCHEMA, Family, MetricSpec, ScoreInputs
from harness.signals.drift_stats import aa_floor, paired_permutation_test, wilson_interval
from harness.signals.embedding import Embedder, cosine_pairs, embeddings_table, release_gpu_memory, table_vectors
from harness.store import RunDir

if TYPE_CHECKING:
    from harness.config import RayConfig
    from harness.spec import RunSpec

FAMILY = "drift"
log = logging.getLogger(__name__)
DRIFT_SCHEMA = pa.schema([("request_id", pa.string()), ("segment", pa.string()), ("arm", pa.string()),
                          ("cosine", pa.float64())])
SQL = Path(__file__).resolve().parents[1] / "analysis" / "drift.sql"
PAIRS_SQL = SQL.with_name("drift_pairs.sql")
PRACTICAL_FLOOR = 0.98
"""Default of ``drift.practical_floor``: the floor is at most this cosine: an edit of a token or two (MiniLM
cosine above 0.98) is not divergence. On the zoo's greedy runs the A/A 5% quantile is 1.000000 (96.5% of A/A
outputs identical), and 0.7% of A/A outputs fall below 0.98 (benign 0.4%, json_drift 21%, hedging 43%, terse 80%)."""
EMBED_CHUNK = 4096  # texts per encode call (a progress step; each call sorts its texts by length for batching)
METRIC = MetricSpec("share_below_aa_floor", "drift", "rate", False,
                    "share of requests whose output moved further from the baseline's than the A/A floor allows",
                    role="divergence", margin_absolute=0.10)


def embed_outputs(run: RunDir, generations: pa.Table, model: str, device: str | None,
                  ray: RayConfig | None = None) -> pa.Table:
    """Embeddings of every served output of every arm, read back when already computed with ``model``; with
    ``ray``, computed by ``ray.embed_actors`` Ray actors (``harness.signals.embedding.ray_embed``)."""
    path = run.table_path("embeddings")
    served = generations.filter(pc.is_null(generations["error"]))
    if path.exists():
        table = pq.read_table(path)
        if (table.schema.metadata or {}).get(b"model", b"").decode() == model and table.num_rows == served.num_rows:
            log.info("embeddings: reusing %s", path)
            return table
    texts = served["output_text"].to_pylist()
    distinct = list(dict.fromkeys(texts))  # each distinct text embedded once (an A/A copy, unchanged outputs)
    log.info("embeddings: %d outputs, %d distinct texts, with %s", len(texts), len(distinct), model)
    if ray is not None and distinct:
        vectors = _ray_vectors(distinct, model, device, ray)
    else:
        vectors = _local_vectors(distinct, model, device)
    row_of = {t: i for i, t in enumerate(distinct)}
    parts = []
    for arm in sorted(set(served["arm"].to_pylist())):
        rows = served.filter(pc.equal(served["arm"], arm))
        parts.append(embeddings_table(rows["request_id"].to_pylist(), arm,
                                      vectors[[row_of[t] for t in rows["output_text"].to_pylist()]]))
    table = pa.concat_tables(parts)
    table = table.replace_schema_metadata({"model": model})
    run.write_table("embeddings", table)
    return table


def _ray_vectors(distinct: list[str], model: str, device: str | None, ray: RayConfig) -> np.ndarray:
    from harness.ray_session import ray_session
    from harness.signals.embedding import ray_embed

    log.info("embeddings: %d distinct texts with %s on %d Ray actors", len(distinct), model, ray.embed_actors)
    stage = Stage("embedding (Ray)", len(distinct), unit="texts")
    with ray_session(ray):
        vectors = ray_embed(distinct, model, device, ray.embed_actors)
    stage.update(len(distinct))
    stage.close()
    return vectors


def _local_vectors(distinct: list[str], model: str, device: str | None) -> np.ndarray:
    embedder = Embedder(model, device=device)
    log.info("embeddings: on %s (%s)", embedder.device, embedder.dtype)
    stage = Stage("embedding", len(distinct), unit="texts")
    chunks = []
    for i in range(0, len(distinct), EMBED_CHUNK):
        chunks.append(embedder.encode(distinct[i: i + EMBED_CHUNK]))
        stage.update(len(chunks[-1]))
    stage.close()
    vectors = np.concatenate(chunks) if chunks else np.zeros((0, embedder.dim), dtype=np.float32)
    del embedder
    release_gpu_memory()
    return vectors


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


def summarize(run: RunDir, embeddings: pa.Table, drift: pa.Table, quantile: float, n_perm: int,
              practical_floor: float = PRACTICAL_FLOOR) -> dict[str, Any]:
    """The A/A floor (the ``quantile`` of A/A similarity, at most ``practical_floor``), per-segment drift (SQL) with
    Wilson CIs and the candidate's indicators paired with the A/A arm's, and the paired MMD test, as one dict."""
    import duckdb

    aa = np.array([r["cosine"] for r in drift.to_pylist() if r["arm"] == "aa"], dtype=float)
    quantile_floor = aa_floor(aa, quantile) if aa.size else None
    # under greedy decoding most A/A outputs are identical and the quantile is ~1.0: "below the floor" would mean
    # "changed at all" (a one-token edit counts like a rewrite); the practical floor caps it
    degenerate = quantile_floor is not None and quantile_floor > practical_floor
    floor = min(quantile_floor, practical_floor) if quantile_floor is not None else None
    con = duckdb.connect()
    con.register("drift", drift)
    rows = con.sql(SQL.read_text(), params={"floor": floor}).to_arrow_table().to_pylist()
    pairs = ({r["segment"]: r for r in con.sql(PAIRS_SQL.read_text(), params={"floor": floor})
              .to_arrow_table().to_pylist()} if floor is not None else {})
    con.close()
    for r in rows:
        if r["arm"] == "candidate" and r["segment"] in pairs:
            r.update({k: pairs[r["segment"]][k] for k in ("n_pairs", "up", "down", "aa_below")})
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
            "aa_floor": floor, "aa_quantile_floor": quantile_floor, "practical_floor": practical_floor,
            "floor_degenerate": degenerate, "rows": rows, "mmd_paired": tests}


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
              n_perm: int, ray: RayConfig | None = None, practical_floor: float = PRACTICAL_FLOOR) -> dict[str, Any]:
    """Embed, compare and summarize; writes the tables described in the module docstring."""
    embeddings = embed_outputs(run, generations, model, device, ray)
    segments = dict(zip(generations["request_id"].to_pylist(), generations["segment"].to_pylist(), strict=True))
    drift = drift_rows(embeddings, segments)
    run.write_table("drift", drift)
    return summarize(run, embeddings, drift, quantile, n_perm, practical_floor)


def drift_checks(rows: list[dict[str, Any]], aa_quantile: float, policy: Policy) -> list[Check]:
    """Divergence checks from the drift summary rows (candidate arm, overall and per segment; module docstring)."""
    margin = policy.threshold(asdict(METRIC))
    drift_margin = margin.absolute if margin is not None and margin.absolute is not None else 0.0
    cand = [r for r in rows if r["arm"] == "candidate" and r.get("n_below") is not None]
    # The reference level of a segment is the A/A arm's own share below the floor there (at least aa_quantile):
    # the floor is one quantile over all requests, and segments whose outputs vary more under the serving
    # perturbation or sampling sit below it more often even when nothing changed.
    aa_share = {r["segment"]: r["share_below"] for r in rows
                if r["arm"] == "aa" and r.get("share_below") is not None}
    ref = [max(aa_quantile, aa_share.get(r["segment"], 0.0)) for r in cand]
    levels = family_levels([_can_fire(r, drift_margin, policy) for r in cand], [r["segment"] is None for r in cand],
                           policy.alpha)
    return [breach_check(METRIC.name, METRIC.family, r["segment"], METRIC.role, METRIC.higher_is_better, False,
                         _paired_evidence(r, level, drift_margin, policy) if r.get("n_pairs") is not None
                         else _evidence(r, lv, level, drift_margin, policy), Threshold(drift_margin), policy)
            for r, lv, level in zip(cand, ref, levels, strict=True)]


def _can_fire(r: dict[str, Any], margin: float, policy: Policy) -> bool:
    """Whether a drift check could breach: enough requests, and (paired with the A/A arm) more requests changed
    sides of the floor than the margin, so that all of them going the divergent way could cross it."""
    if r.get("n_pairs") is None:
        return bool(r["n"] >= policy.min_requests)
    n = int(r["n_pairs"])
    return n >= policy.min_requests and (int(r["up"]) + int(r["down"])) / n > margin


def _paired_evidence(r: dict[str, Any], level: float, margin: float, policy: Policy) -> Evidence:
    """The candidate's share below the floor minus the A/A arm's, paired on the request (Tango's score bounds at the
    family's split level): the A/A level is an estimate with its own error, not a known number."""
    from harness.analysis.margin import Paired

    n, up, down, aa_k = int(r["n_pairs"]), int(r["up"]), int(r["down"]), int(r["aa_below"])
    aa, cand = (aa_k / n, (aa_k + up - down) / n) if n else (0.0, 0.0)
    test = Paired("tango", n, cand - aa, 0.0, down, up)
    lo, hi = (float(x) for x in test.bounds(level)) if n else (-1.0, 1.0)
    where = f" [{r['segment']}]" if r["segment"] is not None else ""

    def describe(p: float | None, status: str) -> str:
        return (f"drift/share_below_aa_floor{where}: {cand:.1%} of {n} requests below the A/A floor against the A/A "
                f"arm's {aa:.1%} on the same requests (difference {cand - aa:+.1%}, Tango one-sided bounds "
                f"[{lo:+.1%}, {hi:+.1%}] at {level:.2g} each; margin {margin:.0%}, p="
                f"{p if p is not None else float('nan'):.2g} adj.): {status}")

    return Evidence(n, aa, cand, cand - aa, lo, hi, None, "tango (paired with the A/A arm)", level,
                    lambda d0, g: float(test.p(d0, g)), enough=n >= policy.min_requests, describe=describe)


def share_bounds(k: int, n: int, level: float) -> tuple[float, float]:
    """One-sided exact (Clopper-Pearson) lower and upper bounds of a share ``k / n``, each with error ``level``."""
    from scipy.stats import beta

    lo = float(beta.ppf(level, k, n - k + 1)) if k > 0 else 0.0
    hi = float(beta.isf(level, k + 1, n - k)) if k < n else 1.0
    return lo, hi


def _evidence(r: dict[str, Any], ref: float, level: float, margin: float, policy: Policy) -> Evidence:
    """A drift summary row as the breach rule reads it: the share below the floor against the A/A level, with
    exact one-sided bounds at the family's split level."""
    from scipy.stats import binom

    share, k, n = r["share_below"], int(r["n_below"]), int(r["n"])
    where = f" [{r['segment']}]" if r["segment"] is not None else ""
    lo, hi = share_bounds(k, n, level) if n else (0.0, 1.0)

    def p(d0: float, greater: bool) -> float:  # H0: share <= ref + d0 (greater) or share >= ref + d0
        q = min(max(ref + d0, 0.0), 1.0)
        return float(binom.sf(k - 1, n, q) if greater else binom.cdf(k, n, q))

    def describe(p: float | None, status: str) -> str:
        return (f"drift/share_below_aa_floor{where}: {share:.1%} of {n} requests below the A/A floor (one-sided "
                f"bounds [{lo:.1%}, {hi:.1%}] at {level:.2g} each; A/A level {ref:.1%}, margin {margin:.0%}, "
                f"binomial p={p if p is not None else float('nan'):.2g} adj.): {status}")

    return Evidence(n, ref, share, share - ref, lo - ref, hi - ref, None, "binomial", level, p,
                    enough=n >= policy.min_requests, describe=describe)


class DriftSignal:
    """The ``drift`` family: embeds every arm's outputs, compares them with the baseline's, gates the share below
    the A/A floor (``drift_checks``); ``details`` is the ``divergence`` section of ``verdict.json``."""

    family = "drift"
    metrics = (METRIC,)

    def __init__(self, model: str, device: str | None, aa_quantile: float, n_perm: int, floor_source: str,
                 ray: RayConfig | None = None, practical_floor: float = PRACTICAL_FLOOR) -> None:
        self.model, self.device, self.aa_quantile, self.n_perm = model, device, aa_quantile, n_perm
        self.floor_source, self.ray, self.practical_floor = floor_source, ray, practical_floor
        self.details: dict[str, Any] | None = None

    def score(self, inputs: ScoreInputs) -> pa.Table:
        """Runs the drift stage (tables in the module docstring); no rows for the paired analysis."""
        divergence = run_drift(inputs.run, inputs.generations, self.model, self.device, self.aa_quantile,
                               self.n_perm, self.ray, self.practical_floor)
        self.details = {"divergence": {**divergence, "floor_source": self.floor_source}}
        return SIGNAL_SCHEMA.empty_table()

    def checks(self, policy: Policy) -> list[Check]:
        return drift_checks(self.details["divergence"]["rows"], self.aa_quantile, policy) if self.details else []


def make(spec: RunSpec) -> DriftSignal | None:
    """The drift family of a run, or None when ``drift.enabled`` is off (or the run has no drift settings)."""
    d = spec.settings.get(FAMILY)
    if d is None or not d.enabled:
        return None
    return DriftSignal(d.model, d.device, d.aa_quantile, d.n_perm, floor_source(spec),
                       spec.ray if spec.ray.enabled else None, d.practical_floor)


def aa_arms(settings: DriftConfig, baseline: Any) -> dict[str, ArmConfig]:
    """The A/A arm: ``drift.aa_imported``, else the baseline (its config node) with ``drift.aa_perturbation``
    applied, when drift is on, the list is not empty and the baseline is generated (an imported baseline replayed
    again is a copy, not a noise floor)."""
    from omegaconf import OmegaConf

    if settings.enabled and settings.aa_imported:
        return {"aa": ArmConfig(imported=settings.aa_imported)}
    if settings.enabled and settings.aa_perturbation and not baseline.imported:
        perturbation = OmegaConf.from_dotlist(list(settings.aa_perturbation))
        return {"aa": OmegaConf.to_object(OmegaConf.merge(baseline, perturbation))}  # type: ignore[dict-item]
    return {}


def floor_source(spec: RunSpec) -> str:
    """Where the run's A/A floor comes from, or why it has none (shown in the report and ``verdict.json``)."""
    d, baseline = spec.settings[FAMILY], spec.arms["baseline"]
    if "aa" in spec.arms and spec.arms["aa"].imported:
        return f"the A/A arm imported from {spec.arms['aa'].imported} (a second capture of the baseline)"
    if "aa" in spec.arms:
        return f"the A/A arm: the baseline replayed with {', '.join(d.aa_perturbation)}"
    why = ("the baseline is imported and no second capture of it was given (drift.aa_imported): replaying the same "
           "file again would give a copy, not a noise floor" if baseline.imported
           else "drift.aa_perturbation is [] and no drift.aa_imported was given")
    return f"none: {why}. Divergence is reported, not gated"


PLUGIN = Family(make=make, settings=DriftConfig, arms=aa_arms)
