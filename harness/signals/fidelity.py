"""Production fidelity: how closely the replayed baseline reproduces the responses production gave (the traffic's
captured ``response``), read against the A/A level (the A/A arm against the baseline), and what to check when it does
not (sampling, template, max_tokens). Reported, not gated: a replay that does not reproduce production makes every
other number of the run a statement about the replay, not about production.

Per request with a captured response and a served baseline generation: identical (after trimming whitespace), the
cosine between their embeddings (the drift model; the baseline's vectors reused from ``embeddings.parquet``), and the
length ratio (baseline characters / production characters). ``fidelity.parquet`` holds the rows; the section of
``verdict.json`` (``fidelity``) the summary.
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from harness.signals.embedding import Embedder, cosine_pairs, release_gpu_memory, table_vectors
from harness.store import RunDir

log = logging.getLogger(__name__)
FIDELITY_SCHEMA = pa.schema([("request_id", pa.string()), ("segment", pa.string()), ("compared", pa.string()),
                             ("identical", pa.bool_()), ("cosine", pa.float64()), ("length_ratio", pa.float64())])
IDENTICAL_SLACK = 0.10  # identical share this far below the A/A level still "reproduces"
COSINE_SLACK = 0.05  # 5th-percentile cosine this far below the A/A level still "reproduces"


def _served(generations: pa.Table, arm: str) -> dict[str, dict[str, Any]]:
    rows = generations.filter(pc.and_(pc.equal(generations["arm"], arm), pc.is_null(generations["error"])))
    return {r["request_id"]: r for r in rows.to_pylist()}


def _ratio(a: str, b: str) -> float:
    return len(a) / max(len(b), 1)


def _summary(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    cos = sorted(r["cosine"] for r in rows if r["cosine"] is not None)
    ratios = [r["length_ratio"] for r in rows]
    return {"n": len(rows), "identical_share": sum(r["identical"] for r in rows) / len(rows) if rows else None,
            "cosine_mean": statistics.fmean(cos) if cos else None,
            "cosine_p5": float(np.quantile(cos, 0.05)) if cos else None,
            "cosine_median": statistics.median(cos) if cos else None,
            "length_ratio_median": statistics.median(ratios) if ratios else None}


def _vectors(run: RunDir, texts: dict[str, str], arm: str, model: str, device: str | None) -> dict[str, np.ndarray]:
    """Embeddings by request id: an arm's from ``embeddings.parquet`` when drift wrote them, else computed."""
    path = run.table_path("embeddings")
    if arm != "production" and path.exists():
        table = pq.read_table(path)
        table = table.filter(pc.equal(table["arm"], arm))
        if table.num_rows:
            return dict(zip(table["request_id"].to_pylist(), table_vectors(table), strict=True))
    ids = list(texts)
    if not ids:
        return {}
    embedder = Embedder(model, device=device)
    vectors = embedder.encode([texts[i] for i in ids])
    del embedder
    release_gpu_memory()
    return dict(zip(ids, vectors, strict=True))


def compare(run: RunDir, other: Mapping[str, str], base: Mapping[str, dict[str, Any]], segments: Mapping[str, str],
            compared: str, model: str | None, device: str | None) -> list[dict[str, Any]]:
    """Per request in both: identical, cosine (None without a model) and length ratio of ``base`` over ``other``."""
    ids = [rid for rid in other if rid in base]
    cos: dict[str, float] = {}
    if model and ids:
        mine = _vectors(run, {rid: base[rid]["output_text"] for rid in ids}, "baseline", model, device)
        theirs = _vectors(run, {rid: other[rid] for rid in ids}, "production" if compared == "production"
                          else compared, model, device)
        both = [rid for rid in ids if rid in mine and rid in theirs]
        if both:
            values = cosine_pairs(np.stack([mine[r] for r in both]), np.stack([theirs[r] for r in both]))
            cos = {rid: float(c) for rid, c in zip(both, values, strict=True)}
    return [{"request_id": rid, "segment": segments.get(rid, ""), "compared": compared,
             "identical": base[rid]["output_text"].strip() == other[rid].strip(), "cosine": cos.get(rid),
             "length_ratio": _ratio(base[rid]["output_text"], other[rid])} for rid in ids]


def hints(production: Mapping[str, Any], aa: Mapping[str, Any] | None, baseline: Mapping[str, Any],
          sampling: Mapping[str, Any] | None, captured_temperature: float,
          length_share: float) -> tuple[bool, list[str]]:
    """Whether the replay reproduces production (against the A/A level when there is one), and what to check."""
    ok = True
    if aa and aa.get("identical_share") is not None and production["identical_share"] is not None:
        ok = production["identical_share"] >= aa["identical_share"] - IDENTICAL_SLACK
        if aa.get("cosine_p5") is not None and production.get("cosine_p5") is not None:
            ok = ok or production["cosine_p5"] >= aa["cosine_p5"] - COSINE_SLACK
    elif production["identical_share"] is not None:
        ok = production["identical_share"] >= 0.5 or (production.get("cosine_median") or 0) >= 0.95
    out = []
    fallback = (sampling or {}).get("fallback", 0)
    if fallback:
        out.append(f"sampling: {fallback} requests replayed a parameter production did not log (Sampling as "
                   "replayed); set the arm's sampling.default_* to what production used")
    if captured_temperature > 0:
        out.append("sampling: production sampled (temperature > 0 captured): identical outputs are not expected; read "
                   "the cosine against an A/A arm with another sampling seed")
    if baseline.get("system_prompt") is not None or baseline.get("prompt_template"):
        out.append("template: the baseline arm changes the system prompt or prompt template; production did not")
    else:
        out.append("template: the chat template production served with (a server's --chat-template) must be the "
                   "checkpoint's; and the checkpoint, dtype and quantization production's")
    ratio = production.get("length_ratio_median")
    if ratio is not None and (ratio < 0.8 or (length_share > 0.05 and ratio < 0.95)):  # shorter than production
        out.append(f"max_tokens: {length_share:.0%} of baseline answers stopped at max_tokens (median length ratio "
                   f"{ratio if ratio is None else round(ratio, 2)}): production's limit was higher, or not logged")
    return ok, out


def fidelity(run: RunDir, requests: Mapping[str, Any], generations: pa.Table, arms: Mapping[str, Any],
             model: str | None, device: str | None, sampling: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The fidelity section (module docstring), or None when no request carries a production response or the
    baseline is not replayed."""
    captured = {rid: r.response for rid, r in requests.items() if getattr(r, "response", None) is not None}
    base = _served(generations, "baseline")
    if not captured or not base or arms["baseline"].imported:
        return None
    segments = {rid: r.segment for rid, r in requests.items()}
    rows = compare(run, captured, base, segments, "production", model, device)
    if not rows:
        return None
    aa_rows: list[dict[str, Any]] = []
    source = arms["aa"].imported if "aa" in arms and arms["aa"].imported else None
    aa_is_production = bool(source and source.startswith("traffic:"))
    if "aa" in arms and not aa_is_production:  # production as the A/A arm: the same comparison, no level
        aa = {rid: g["output_text"] for rid, g in _served(generations, "aa").items()}
        aa_rows = compare(run, aa, base, segments, "aa", model, device)
    run.write_table("fidelity", pa.Table.from_pylist(rows + aa_rows, schema=FIDELITY_SCHEMA))
    production, level = _summary(rows), _summary(aa_rows) if aa_rows else None
    temps = [r.temperature for r in requests.values() if getattr(r, "temperature", None) is not None]
    length = sum(base[r["request_id"]]["finish_reason"] == "length" for r in rows) / len(rows)
    ok, checks = hints(production, level, vars(arms["baseline"]), (sampling or {}).get("baseline"),
                       max(temps, default=0.0), length)
    log.info("fidelity: %d requests with a production response, identical %.1f%%", len(rows),
             100 * (production["identical_share"] or 0))
    return {"production": production, "aa": level, "reproduces": ok, "check": [] if ok else checks,
            "notes": checks if ok else [], "aa_is_production": aa_is_production}
