"""Sweeps: a Hydra multirun over arm settings, then one summary table across its runs.

``python -m harness replay -m sweep=NAME`` runs one normal run per job (``reports/<name>/<sweep_id>-j<N>/``, the
sweep recorded in each manifest) and then ``summarize`` writes ``reports/sweeps/<sweep_id>/``: ``summary.parquet``,
``summary.md``, ``summary.html`` and ``pareto.png`` (quality vs generated output tokens/s, Pareto front marked).
Aggregation is ``harness/analysis/sweep_summary.sql``; see docs/sweeps.md.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import secrets
from pathlib import Path
from typing import Any

import pyarrow as pa

from harness.analysis.tables import SQL_DIR
from harness.errors import BadInput
from harness.spec import read_manifest
from harness.store import RunDir, write_parquet_atomic

KEY_METRICS = ("output_tokens", "chars", "json_valid", "schema_valid", "structure_ok", "truncated", "refusal",
               "hedge", "empty", "error", "ttft", "tpot", "e2e_latency", "slo_met")
"""Metrics whose overall delta (candidate - baseline) the summary shows, with every golden metric."""
IGNORED_OVERRIDES = ("sweep", "hydra.", "run_id")
REPEAT_KEY = "replay.load.repeat"
"""A swept key that labels repeated runs of one config: left out of the config, its jobs summarised together."""
QUALITY_EXEMPT = ("latency",)
"""Families whose breach is about speed, not quality: a config fails the gate *on quality* by any other."""


def new_sweep_id() -> str:
    """A sweep id: UTC time and a random suffix (two sweeps started in the same second differ)."""
    return f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(2)}"


def find_sweep(sweep: str, output_dir: str = "reports") -> Path:
    """The sweep directory from a path or a sweep id.

    Raises:
        BadInput: neither exists; the message says where sweeps are.
    """
    for path in (Path(sweep), Path(output_dir) / "sweeps" / sweep):
        if (path / "multirun.yaml").exists():
            return path.resolve()
    raise BadInput(f"{sweep}: no sweep directory (with multirun.yaml) there or in {output_dir}/sweeps/. "
                            "Fix: pass reports/sweeps/<sweep_id> or the sweep id printed by the sweep.")


def sweep_runs(sweep_dir: Path) -> list[dict[str, Any]]:
    """The sweep's runs, by job: run directory, manifest and verdict (None when the job did not finish)."""
    sweep_id = sweep_dir.name
    out = []
    for manifest_path in sweep_dir.parent.parent.glob(f"*/{sweep_id}-j*/manifest.json"):
        manifest = read_manifest(RunDir.at(manifest_path.parent))
        if manifest.spec.sweep is None or manifest.spec.sweep.id != sweep_id:
            continue
        verdict_path = manifest_path.parent / "verdict.json"
        verdict = json.loads(verdict_path.read_text()) if verdict_path.exists() else None
        out.append({"job": manifest.spec.sweep.job, "dir": manifest_path.parent, "manifest": manifest,
                    "verdict": verdict})
    if not out:
        raise BadInput(f"{sweep_dir}: no run of sweep {sweep_id} under {sweep_dir.parent.parent}/*/. "
                                "Fix: run the sweep (`make sweep SWEEP=NAME`) or pass the right --output-dir.")
    return sorted(out, key=lambda r: r["job"])


def swept_settings(overrides: list[list[str]]) -> list[dict[str, str]]:
    """Per job, the overrides that differ between jobs (the swept settings), as key -> value."""
    parsed = [dict(o.lstrip("+~").split("=", 1) for o in job if "=" in o and not o.startswith(IGNORED_OVERRIDES))
              for job in overrides]
    keys = sorted({k for p in parsed for k in p})
    swept = [k for k in keys if len({p.get(k) for p in parsed}) > 1 or len(parsed) == 1]
    return [{k: p.get(k, "(default)") for k in swept} for p in parsed]


def _jobs_table(runs: list[dict[str, Any]]) -> pa.Table:
    settings = swept_settings([list(r["manifest"].spec.sweep.overrides) for r in runs])
    rows = []
    for r, s in zip(runs, settings, strict=True):
        v = r["verdict"] or {}
        families = v.get("families") or {}
        config = " ".join(f"{k}={val}" for k, val in s.items() if k != REPEAT_KEY)
        rows.append({"job": r["job"], "run_id": r["manifest"].run_id, "run_dir": str(r["dir"]),
                     "settings": " ".join(f"{k}={val}" for k, val in s.items()),
                     "config": config or "(default)", "repeat": s.get(REPEAT_KEY, "0"),
                     "quality_breached": sum(st == "breached" for f, st in families.items()
                                             if f not in QUALITY_EXEMPT),
                     "verdict": v.get("verdict", "NO VERDICT"), "direction": v.get("direction"),
                     "families": ", ".join(f"{f}={st}" for f, st in sorted(families.items())),
                     "breached": sum(st == "breached" for st in families.values())})
    return pa.Table.from_pylist(rows)


def _union(parts: list[tuple[int, str]]) -> str:
    """One SQL relation over several runs' Parquet files, with a ``job`` column (empty when there are none)."""
    if not parts:
        return "SELECT NULL::INTEGER AS job, NULL::VARCHAR AS arm, NULL::DOUBLE AS cosine WHERE false"
    q = [f"SELECT {job} AS job, * FROM read_parquet('{p.replace(chr(39), chr(39) * 2)}', hive_partitioning = true)"
         for job, p in parts]
    return " UNION ALL BY NAME ".join(q)


def summary_table(runs: list[dict[str, Any]], metrics: tuple[str, ...] = KEY_METRICS) -> pa.Table:
    """Run ``sweep_summary.sql`` over the sweep's runs: one row per job."""
    import duckdb

    con = duckdb.connect()
    con.register("jobs", _jobs_table(runs))
    done = [r for r in runs if r["verdict"] is not None]
    con.execute("CREATE VIEW batches AS " + _union([(r["job"], str(r["dir"] / "batches" / "*" / "*.parquet"))
                                                    for r in done]))
    con.execute("CREATE VIEW deltas AS SELECT * FROM (" + _union(
        [(r["job"], str(r["dir"] / "summary.parquet")) for r in done]) + ") WHERE segment IS NULL")
    load = [(r["job"], str(r["dir"] / "load.parquet")) for r in done if (r["dir"] / "load.parquet").exists()]
    con.execute("CREATE VIEW load AS " + (_union(load) if load else
                "SELECT NULL::INTEGER AS job, NULL::VARCHAR AS arm, NULL::DOUBLE AS goodput_rps, "
                "NULL::DOUBLE AS completed_rps, NULL::DOUBLE AS lateness_p99_s, NULL::DOUBLE AS achieved_rps, "
                "NULL::DOUBLE AS scheduled_rps WHERE false"))
    con.execute("CREATE VIEW drift AS " + _union([(r["job"], str(r["dir"] / "drift.parquet")) for r in done
                                                  if (r["dir"] / "drift.parquet").exists()]))
    latency = [(r["job"], str(r["dir"] / "latency.parquet")) for r in done if (r["dir"] / "latency.parquet").exists()]
    empty = ("SELECT NULL::INTEGER AS job, NULL::VARCHAR AS arm, NULL::VARCHAR AS segment, NULL::DOUBLE AS ttft_p50_s, "
             "NULL::DOUBLE AS latency_p90_s, NULL::DOUBLE AS ttft_p99_s, NULL::DOUBLE AS tpot_p50_s WHERE false")
    # runs analysed before latency.parquet had segments and TPOT read as overall rows without TPOT
    con.execute("CREATE VIEW latency AS SELECT * FROM (" + empty + ")" + (
        " UNION ALL BY NAME " + _union(latency) if latency else ""))
    golden = [m for r in done for m in _golden_metrics(r)]
    table = con.sql((SQL_DIR / "sweep_summary.sql").read_text(),
                    params={"metrics": sorted({*metrics, *golden}), "cores": os.cpu_count() or 1}).to_arrow_table()
    con.close()
    return table


def configs_table(summary: pa.Table) -> pa.Table:
    """``sweep_configs.sql`` over the per-job summary: one row per config, its repeats' means, with 95% intervals
    (mean +/- t(0.975, n-1) * sd / sqrt(n); none for a single repeat) of throughput, goodput per core and quality."""
    import duckdb
    from scipy.stats import t

    con = duckdb.connect()
    con.register("jobs", summary)
    rows = con.sql((SQL_DIR / "sweep_configs.sql").read_text()).to_arrow_table().to_pylist()
    con.close()
    for r in rows:
        n = r["repeats"]
        for col in ("output_tokens_per_s", "goodput_per_core", "golden_score", "cosine_to_baseline"):
            sd = r.pop(f"{col}_sd")
            half = float(t.ppf(0.975, n - 1)) * sd / math.sqrt(n) if n > 1 and sd is not None else None
            r[f"{col}_lo"] = r[col] - half if half is not None and r[col] is not None else None
            r[f"{col}_hi"] = r[col] + half if half is not None and r[col] is not None else None
    return pa.Table.from_pylist(rows)


def _golden_metrics(run: dict[str, Any]) -> list[str]:
    import pyarrow.parquet as pq

    rows = pq.read_table(run["dir"] / "summary.parquet", columns=["metric", "family"]).to_pylist()
    return [r["metric"] for r in rows if r["family"] == "golden"]


def quality_axis(rows: list[dict[str, Any]]) -> tuple[str, list[float | None]]:
    """The quality the Pareto figure uses (higher is better): golden score, else cosine to the baseline, else
    minus the number of breached families."""
    for col, label in (("golden_score", "golden score (candidate)"),
                       ("cosine_to_baseline", "mean cosine to the baseline's output")):
        if any(r[col] is not None for r in rows):
            return label, [r[col] for r in rows]
    return "- breached families", [float(-r["breached"]) for r in rows]


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both axes (both higher-is-better)."""
    return [i for i, (x, y) in enumerate(points)
            if not any(x2 >= x and y2 >= y and (x2, y2) != (x, y) for x2, y2 in points)]


def summarize(sweep_dir: Path, metrics: tuple[str, ...] = KEY_METRICS) -> Path:
    """Write ``summary.parquet``, ``summary.md``, ``summary.html`` and ``pareto.png`` into the sweep directory;
    returns summary.md."""
    from harness.report.sweep_render import pareto_plot, render_summary, write_summary_html

    runs = sweep_runs(sweep_dir)
    table = summary_table(runs, metrics)
    write_parquet_atomic(sweep_dir / "summary.parquet", table)
    rows = table.to_pylist()
    configs = configs_table(table)
    write_parquet_atomic(sweep_dir / "configs.parquet", configs)
    points = configs.to_pylist()
    label, quality = quality_axis(rows)
    c_label, c_quality = quality_axis([{**c, "breached": c["quality_failed"]} for c in points])
    speed = speed_axis(points)
    plotted = [i for i, c in enumerate(points) if c[speed] is not None and c_quality[i] is not None]
    front = [plotted[i] for i in pareto_front([(float(points[i][speed]), float(c_quality[i]))  # type: ignore[arg-type]
                                               for i in plotted])]
    figure = pareto_plot(points, c_quality, c_label, front, sweep_dir / "pareto.png", speed)
    job_front = [i for i, r in enumerate(rows) if any(r["job"] in points[c]["jobs"] for c in front)]
    manifest = runs[0]["manifest"]
    text = render_summary(sweep_dir.name, manifest, rows, label, quality, job_front, figure.name, points, front,
                          speed)
    path = sweep_dir / "summary.md"
    path.write_text(text)
    write_summary_html(sweep_dir, manifest, rows, label, quality, job_front, figure, points, front, speed)
    return path


def speed_axis(configs: list[dict[str, Any]]) -> str:
    """The speed the front uses: goodput per core when the sweep replayed open loop with SLOs, else output
    tokens/s over generated requests."""
    return "goodput_per_core" if any(c.get("goodput_per_core") is not None for c in configs) else "output_tokens_per_s"
