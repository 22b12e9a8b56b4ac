"""Analysis scaling: the DuckDB analysis and the report on synthetic runs of growing size, not a test.

    python -m harness.bench.analysis_scaling [--sizes 10000,100000,1000000] [--report-max 1000000] \
        [--out docs/bench/analysis_scaling.jsonl]

For each size N a run directory is synthesized with the schemas a real run writes: ``generations`` and
``batches`` parts per arm (one part per ``--part-size`` requests, as replay writes them), ``signals.parquet``
with the stats family's 10 metrics per request and arm (20 N rows; null where a metric does not apply) and
``metrics.parquet``. Then, timed: ``harness.analysis.tables.analyze`` (every ``.sql`` table, written back as
Parquet; the share spent in its Python paired tests, ``tests_table``, is recorded apart), the gate and the report
(``harness.run._report``: figures, Markdown, HTML; up to ``--report-max`` requests), and two yardsticks: one plain
DuckDB scan of the signals file, ``SELECT count(*), sum(value) FROM signals`` (``scan_s``, one column), and one
scan of every column of every Parquet file the analysis reads: signals, generations and batches parts
(``full_scan_s``). Each analysis query is then run once more alone (``sql_s``), to show where the SQL time goes.
Peak resident memory is recorded after each size. (For the attribution, ``tests_table`` and
``plots.length_distributions`` are wrapped with a timer while the bench runs.)
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from harness.bench.record import append, header, machine_line
from harness.signals.base import SIGNAL_SCHEMA, metric_catalog
from harness.signals.stats import OutputStats
from harness.store import BATCH_SCHEMA, GENERATION_SCHEMA, RunDir

SEGMENTS = ("extract", "faq", "summarize", "chat")
ARMS = ("baseline", "candidate")
CHUNK = 102_400
"""Requests synthesized at a time (bounded memory)."""
# Per metric: (probability of 1 for the baseline, for the candidate, the one segment it applies to or None).
RATES: dict[str, tuple[float, float, str | None]] = {
    "json_valid": (0.97, 0.95, "extract"), "schema_valid": (0.93, 0.90, "extract"), "refusal": (0.01, 0.01, None),
    "hedge": (0.03, 0.06, None), "structure_ok": (0.92, 0.80, "summarize"), "truncated": (0.02, 0.02, None),
    "empty": (0.005, 0.005, None), "error": (0.0, 0.0, None)}
WORDS = "order shipped refund plan account export billing settings invoice address support team data press".split()


def _texts(rng: np.random.Generator, k: int = 64) -> pa.Array:
    return pa.array([" ".join(rng.choice(WORDS, size=int(rng.integers(3, 60)))) for _ in range(k)])


def _conform(columns: dict[str, Any], schema: pa.Schema, n: int) -> pa.Table:
    """A table of ``schema``; its columns not synthesized here (added to the schema later) are null."""
    return pa.table({f.name: columns.get(f.name, pa.nulls(n, f.type)) for f in schema}, schema=schema)


def _chunk(rng: np.random.Generator, pool: pa.Array, start: int, n: int, part_size: int
           ) -> tuple[dict[str, pa.Table], pa.Table]:
    """Generations (per arm) and signal rows (both arms) of requests ``start .. start + n``."""
    ids = pa.array([f"req-{i:09d}" for i in range(start, start + n)])
    seg_idx = rng.integers(0, len(SEGMENTS), n)
    segment = pa.array(np.array(SEGMENTS, dtype=object)[seg_idx])
    base_pick = rng.integers(0, len(pool), n)
    changed = rng.random(n) < 0.3
    picks = {"baseline": base_pick, "candidate": np.where(changed, rng.integers(0, len(pool), n), base_pick)}
    gens, signals = {}, []
    for arm in ARMS:
        text = pool.take(pa.array(picks[arm]))
        chars = pc.utf8_length(text).to_numpy().astype(np.float64)
        tokens = np.maximum(1, chars // 4).astype(np.int64)
        p_base, p_cand, _ = RATES["truncated"]
        truncated = rng.random(n) < (p_base if arm == "baseline" else p_cand)
        gens[arm] = _conform({
            "request_id": ids, "segment": segment, "batch": pa.array((np.arange(start, start + n) // part_size)
                                                                        .astype(np.int32)),
            "output_text": text, "prompt_tokens": pa.array(rng.integers(10, 120, n)), "output_tokens": tokens,
            "finish_reason": pa.array(np.where(truncated, "length", "stop")), "error": pa.nulls(n, pa.string())},
            GENERATION_SCHEMA, n)
        values: dict[str, pa.Array] = {"chars": pa.array(chars), "output_tokens": pa.array(tokens.astype(np.float64))}
        for metric, (p_base, p_cand, only) in RATES.items():
            hit = (rng.random(n) < (p_base if arm == "baseline" else p_cand)).astype(np.float64)
            mask = None if only is None else seg_idx != SEGMENTS.index(only)
            values[metric] = pa.array(truncated.astype(np.float64) if metric == "truncated" else hit, mask=mask)
        for metric, value in values.items():
            signals.append(_conform({"request_id": ids, "arm": pa.array([arm] * n), "segment": segment,
                                     "metric": pa.array([metric] * n), "value": value}, SIGNAL_SCHEMA, n))
    return gens, pa.concat_tables(signals)


def synthesize(run: RunDir, n: int, part_size: int, seed: int = 0) -> int:
    """Write a run directory of ``n`` requests per arm; returns the number of signal rows."""
    rng = np.random.default_rng(seed)
    pool = _texts(rng)
    run.path.mkdir(parents=True, exist_ok=True)
    rows = 0
    with pq.ParquetWriter(run.table_path("signals"), SIGNAL_SCHEMA) as writer:
        for start in range(0, n, CHUNK):
            gens, signals = _chunk(rng, pool, start, min(CHUNK, n - start), part_size)
            writer.write_table(signals)
            rows += signals.num_rows
            for arm, table in gens.items():
                _write_parts(run, arm, table, start, part_size)
    pq.write_table(metric_catalog([OutputStats()]), run.table_path("metrics"))
    return rows


def _write_parts(run: RunDir, arm: str, table: pa.Table, start: int, part_size: int) -> None:
    # Plain writes (no fsync): synthesized data needs no crash safety. CHUNK is a multiple of part_size.
    for offset in range(0, table.num_rows, part_size):
        part = table.slice(offset, part_size)
        b = (start + offset) // part_size
        batch = {"batch": b, "requests": part.num_rows, "prompt_tokens": pc.sum(part["prompt_tokens"]).as_py(),
                 "output_tokens": pc.sum(part["output_tokens"]).as_py(), "seconds": 1.0}
        # Columns of BATCH_SCHEMA not synthesized here (e.g. counters added later) are 0.
        batch_table = pa.Table.from_pylist([{f.name: batch.get(f.name, 0) for f in BATCH_SCHEMA}], schema=BATCH_SCHEMA)
        for name, data in (("generations", part), ("batches", batch_table)):
            path = run.part_path(name, arm, b)
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(data, path)


def plain_scan(run: RunDir, repeats: int = 3) -> tuple[float, float]:
    """Best seconds of one DuckDB scan of the signals' ``value`` column, and of one scan of every column of the
    signals, generations and batches Parquet (a fresh connection each time)."""
    import duckdb

    def best(*queries: str) -> float:
        fastest = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            con = duckdb.connect()
            for sql in queries:
                con.execute(sql).fetchall()
            con.close()
            fastest = min(fastest, time.perf_counter() - start)
        return fastest

    every = [f"SELECT sum(hash(COLUMNS(*))) FROM read_parquet('{path}')"
             for path in (run.table_path("signals"), run.glob("generations"), run.glob("batches"))]
    return best(f"SELECT count(*), sum(value) FROM read_parquet('{run.table_path('signals')}')"), best(*every)


@contextmanager
def timed(module: ModuleType, name: str, into: dict[str, float], key: str) -> Iterator[None]:
    """Add the seconds spent in ``module.name`` to ``into[key]`` while inside the block (attribution only)."""
    original = getattr(module, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            into[key] = into.get(key, 0.0) + time.perf_counter() - start

    setattr(module, name, wrapper)
    try:
        yield
    finally:
        setattr(module, name, original)


def report(run: RunDir, tables: dict[str, pa.Table]) -> dict[str, float]:
    """Gate, then render the report with ``harness.run``'s own report step; seconds per part."""
    from harness.config import ArmConfig
    from harness.fixtures.zoo.traffic import DEFAULT_SAMPLE
    from harness.gate import decide, metric_checks
    from harness.report import ReportInput, plots, write_report
    from harness.spec import RunSpec, default_policy, handmade_manifest

    parts: dict[str, float] = {}
    start = time.perf_counter()
    policy = default_policy()
    verdict = decide(metric_checks(tables["summary"].to_pylist(), policy))
    parts["gate_s"] = time.perf_counter() - start
    pairs = tables["changed_pairs"].to_pylist()
    spec = RunSpec(name="bench_scaling", traffic_path=str(DEFAULT_SAMPLE), limit=None,
                   arms={a: ArmConfig() for a in ARMS}, signals=("stats",), policy=policy)
    manifest = handmade_manifest(spec, run.run_id, len(pairs))
    requests = {p["request_id"]: SimpleNamespace(messages=None, prompt="synthetic prompt") for p in pairs}
    start = time.perf_counter()
    with timed(plots, "length_distributions", parts, "length_plot_s"):
        write_report(run, ReportInput(manifest, verdict, tables, requests, {}))  # type: ignore[arg-type]
    parts["report_s"] = time.perf_counter() - start
    return parts


def sql_breakdown(run: RunDir) -> dict[str, float]:
    """Seconds of each analysis query alone, after ``analyze`` wrote ``tests``: where the SQL time goes."""
    from harness.analysis import tables as analysis_run

    con = analysis_run.connect(run)
    out: dict[str, float] = {}
    start = time.perf_counter()
    analysis_run.create_pairs(con)
    out["pairs"] = time.perf_counter() - start
    con.register("tests", run.read_table("tests"))
    for name in ("paired_counts", *analysis_run.TABLES):
        start = time.perf_counter()
        con.sql((analysis_run.SQL_DIR / f"{name}.sql").read_text()).to_arrow_table()
        out[name] = time.perf_counter() - start
    con.close()
    return out


def measure(n: int, part_size: int, report_max: int, root: Path) -> dict[str, Any]:
    """Synthesize a run of ``n`` requests, then time the scan, the analysis and (up to ``report_max``) the report."""
    run = RunDir(root, "bench_scaling", f"n{n}")
    start = time.perf_counter()
    rows = synthesize(run, n, part_size)
    row: dict[str, Any] = {"requests": n, "signal_rows": rows, "parts_per_arm": -(-n // part_size),
                           "synthesize_s": time.perf_counter() - start,
                           "signals_mb": run.table_path("signals").stat().st_size / 1e6}
    row["scan_s"], row["full_scan_s"] = plain_scan(run)
    import harness.analysis.tables as analysis_run

    start = time.perf_counter()
    with timed(analysis_run, "tests_table", row, "analyze_paired_tests_s"):
        tables = analysis_run.analyze(run)
    row["analyze_s"] = time.perf_counter() - start
    row["analyze_over_scan"] = row["analyze_s"] / row["scan_s"]
    row["analyze_over_full_scan"] = row["analyze_s"] / row["full_scan_s"]
    row["peak_rss_mb_after_analyze"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3
    row["sql_s"] = sql_breakdown(run)
    if n <= report_max:
        row.update(report(run, tables))
        row["peak_rss_mb_after_report"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3
    else:
        row["report_s"] = None
        row["report_skipped"] = f"n > --report-max {report_max}"
    print(f"{n:>9,} requests: scan {row['scan_s']:.3f} s, full scan {row['full_scan_s']:.2f} s, "
          f"analyze {row['analyze_s']:.2f} s, report "
          f"{row['report_s'] if row['report_s'] is None else round(row['report_s'], 2)} s", flush=True)
    return row


def run_sizes(sizes: list[int], part_size: int, report_max: int, keep: Path | None) -> dict[str, Any]:
    """Measure every size (ascending, so the peak memory after each is that size's)."""
    with tempfile.TemporaryDirectory(prefix="bench_scaling_") as tmp:
        rows = [measure(n, part_size, report_max, keep or Path(tmp)) for n in sorted(sizes)]
    return {"bench": "analysis_scaling", "part_size": part_size, "report_max": report_max, "sizes": rows}


def print_table(rec: dict[str, Any]) -> None:
    """One row per size; times relative to the smallest size show whether growth is linear."""
    print(machine_line(rec))
    print(f"{'requests':>10} {'signal rows':>12} {'scan s':>8} {'full scan s':>12} {'analyze s':>10} "
          f"{'of it paired':>13} {'/scan':>7} {'/full scan':>11} {'report s':>9} {'peak RSS MB':>12}")
    for r in rec["sizes"]:
        rep = "-" if r["report_s"] is None else f"{r['report_s']:.2f}"
        peak = r.get("peak_rss_mb_after_report", r["peak_rss_mb_after_analyze"])
        print(f"{r['requests']:>10,} {r['signal_rows']:>12,} {r['scan_s']:>8.3f} {r['full_scan_s']:>12.2f} "
              f"{r['analyze_s']:>10.2f} {r.get('analyze_paired_tests_s', 0.0):>13.2f} {r['analyze_over_scan']:>7.1f} "
              f"{r['analyze_over_full_scan']:>11.1f} {rep:>9} {peak:>12.0f}")


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, measure, append one JSON line to ``--out`` and print the table."""
    p = argparse.ArgumentParser(prog="python -m harness.bench.analysis_scaling", description=__doc__.split("\n")[0])
    p.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated request counts")
    p.add_argument("--part-size", type=int, default=256, help="requests per generations part (engine.batch_size)")
    p.add_argument("--report-max", type=int, default=1_000_000, help="render the report only up to this many requests")
    p.add_argument("--keep", type=Path, default=None, help="write the synthetic runs here (default: a temp dir)")
    p.add_argument("--out", type=Path, default=Path("docs/bench/analysis_scaling.jsonl"),
                   help="JSON-lines file to append")
    a = p.parse_args(argv)
    sizes = [int(s) for s in a.sizes.split(",") if s.strip()]
    if not sizes or min(sizes) < 1 or a.part_size < 1 or CHUNK % a.part_size:
        p.error(f"--sizes must be positive; --part-size must divide {CHUNK}")
    rec = {**header("harness.bench.analysis_scaling", argv), **run_sizes(sizes, a.part_size, a.report_max, a.keep)}
    append(a.out, [rec])
    print_table(rec)
    print(f"appended 1 line to {a.out}")


if __name__ == "__main__":
    main()
