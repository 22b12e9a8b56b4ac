"""The run directory: the Parquet tables that are the contracts between stages, and the manifest.

Layout of ``reports/<experiment>/<run_id>/``::

    generations/arm=<arm>/part-<batch>.parquet   one row per request and arm (replay)
    batches/arm=<arm>/part-<batch>.parquet       one row per replay batch: generated counts, seconds, cached
    signals.parquet                              one row per request, arm and metric
    metrics.parquet                              the metric catalog (direction, kind, family)
    summary.parquet, segments.parquet, ...       analysis tables (DuckDB)
    manifest.json, verdict.json, report.md, *.png

Every write is atomic and durable (temporary file in the same directory, fsync, rename, fsync of the
directory), so a crash never leaves half a file, and a replay part that exists is complete. A replay
batch writes its ``batches`` part first and its ``generations`` part last: the generations part is the
batch's commit record.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

GENERATION_SCHEMA = pa.schema([
    ("request_id", pa.string()),
    ("segment", pa.string()),
    ("batch", pa.int32()),
    ("output_text", pa.string()),
    ("prompt_tokens", pa.int64()),
    ("output_tokens", pa.int64()),
    ("finish_reason", pa.string()),
    ("error", pa.string()),
    ("ttft_s", pa.float64()),  # per request latency, measured where the backend streams (server); else null
    ("itl_s", pa.float64()),
    ("latency_s", pa.float64()),
])

TMP_SUFFIX = ".tmp"

BATCH_SCHEMA = pa.schema([
    ("batch", pa.int32()),
    ("requests", pa.int64()),
    ("prompt_tokens", pa.int64()),
    ("output_tokens", pa.int64()),
    ("seconds", pa.float64()),
    ("cached", pa.int64()),  # requests served from the generation cache (not in requests/tokens/seconds)
])


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _atomic_write(path: Path, write: Any) -> None:
    """Write ``path`` durably: a temporary file in the same directory, fsync, rename, fsync the directory.

    A crash (kill -9, power loss) leaves either the old file or the complete new one, never half of one;
    a stale ``.<name>.*.tmp`` may stay behind and is removed by ``RunDir.remove_stale_temporaries``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TMP_SUFFIX)
    os.close(fd)
    try:
        write(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_parquet_atomic(path: Path, data: pa.Table) -> None:
    """Write one Parquet file atomically and durably (the generation cache's parts, ``harness.replay.cache``)."""
    _atomic_write(path, lambda p: pq.write_table(data, p))


class RunDir:
    """One run's directory under ``<output_dir>/<experiment>/<run_id>``."""

    def __init__(self, output_dir: str | Path, experiment: str, run_id: str) -> None:
        self.experiment_dir = Path(output_dir) / experiment
        self.path = self.experiment_dir / run_id
        self.run_id = run_id

    @classmethod
    def at(cls, path: str | Path) -> RunDir:
        """The run whose directory is ``path`` (``<output_dir>/<experiment>/<run_id>``, or ``.../latest``)."""
        path = Path(path).resolve()
        return cls(path.parent.parent, path.parent.name, path.name)

    def part_path(self, table: str, arm: str, batch: int) -> Path:
        return self.path / table / f"arm={arm}" / f"part-{batch:05d}.parquet"

    def write_part(self, table: str, arm: str, batch: int, data: pa.Table) -> None:
        """Write one replay batch of ``table`` for ``arm``."""
        _atomic_write(self.part_path(table, arm, batch), lambda p: pq.write_table(data, p))

    def has_part(self, table: str, arm: str, batch: int) -> bool:
        return self.part_path(table, arm, batch).exists()

    def has_parts(self, arm: str) -> bool:
        """Whether any batch of ``arm`` was replayed into this run."""
        return any((self.path / "generations" / f"arm={arm}").glob("part-*.parquet"))

    def part_request_ids(self, arm: str, batch: int) -> list[str]:
        """The request ids of one replayed batch, in order (its ``generations`` part)."""
        ids = pq.read_table(self.part_path("generations", arm, batch), columns=["request_id"]).column(0)
        return [str(x) for x in ids.to_pylist()]

    def remove_stale_temporaries(self, arm: str) -> int:
        """Delete the temporary files a killed replay of ``arm`` left behind; returns how many."""
        stale = [p for table in ("generations", "batches")
                 for p in (self.path / table / f"arm={arm}").glob(f".*{TMP_SUFFIX}")]
        for p in stale:
            p.unlink(missing_ok=True)
        return len(stale)

    def glob(self, table: str) -> str:
        """The Parquet glob DuckDB reads a partitioned table from (``arm`` comes from the path)."""
        return str(self.path / table / "*" / "*.parquet")

    def table_path(self, name: str) -> Path:
        return self.path / f"{name}.parquet"

    def write_table(self, name: str, data: pa.Table) -> Path:
        path = self.table_path(name)
        _atomic_write(path, lambda p: pq.write_table(data, p))
        return path

    def read_table(self, name: str) -> pa.Table:
        return pq.read_table(self.table_path(name))

    def write_json(self, name: str, obj: Any) -> Path:
        path = self.path / name
        text = json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n"
        _atomic_write(path, lambda p: Path(p).write_text(text))
        return path

    def read_json(self, name: str) -> Any:
        return json.loads((self.path / name).read_text())

    def write_text(self, name: str, text: str) -> Path:
        path = self.path / name
        _atomic_write(path, lambda p: Path(p).write_text(text))
        return path

    def point_latest(self) -> None:
        """Make ``<experiment>/latest`` a symlink to this run."""
        link = self.experiment_dir / "latest"
        tmp = self.experiment_dir / f".latest.{os.getpid()}"
        if tmp.is_symlink():
            tmp.unlink()
        tmp.symlink_to(self.run_id)
        os.replace(tmp, link)


def sql_quote(path: str) -> str:
    """A string literal for DuckDB SQL (paths are data, never spliced raw)."""
    return "'" + path.replace("'", "''") + "'"


def connect(run: RunDir):  # type: ignore[no-untyped-def]
    """A DuckDB connection over the run directory: views of its parts (``generations``, ``batches``) and, once
    written, its ``signals``/``metrics`` tables. The analysis (``harness.analysis``) and any stage that reads a run
    with SQL start here."""
    import duckdb

    con = duckdb.connect()
    for table in ("generations", "batches"):
        con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet({sql_quote(run.glob(table))}, "
                    "hive_partitioning = true, union_by_name = true)")  # parts written before a column existed
    if any((run.path / "load").glob("*/*.parquet")):  # a timed replay (harness.replay.timed)
        con.execute(f"CREATE VIEW load AS SELECT * FROM read_parquet({sql_quote(run.glob('load'))}, "
                    "hive_partitioning = true, union_by_name = true)")
    for table in ("signals", "metrics"):
        if run.table_path(table).exists():
            con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet({sql_quote(str(run.table_path(table)))})")
    return con
