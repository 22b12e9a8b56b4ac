"""The analysis runner: DuckDB over the run's Parquet, one ``.sql`` file per output table.

Views available to every query: ``generations`` and ``batches`` (replay parts, with ``arm`` from the
path), ``signals`` (one row per request, arm and metric) and ``metrics`` (the metric catalog). ``pairs``
(per-request paired values) is computed first, as a table inside DuckDB; then ``tests``: the paired bootstrap
CIs and paired tests, in Python (``harness.analysis.paired``) on the differences ``paired_counts.sql`` compresses,
which ``summary`` joins.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from harness.analysis.paired import tests_table
from harness.store import RunDir
from harness.store import connect as connect_run

SQL_DIR = Path(__file__).parent
TABLES = ("summary", "changed_pairs", "throughput", "latency", "load", "requests")


def create_pairs(con) -> None:  # type: ignore[no-untyped-def]
    """``pairs.sql`` as a table inside DuckDB, ``pairs_all``, and its finite rows as ``pairs`` (the paired queries
    read it; it never goes to Python). Non-finite pairs are only counted (``summary.sql``)."""
    con.execute("CREATE TEMP TABLE pairs_all AS " + (SQL_DIR / "pairs.sql").read_text())
    con.execute("CREATE TEMP VIEW pairs AS SELECT * EXCLUDE (finite) FROM pairs_all WHERE finite")


def empty_load() -> pa.Table:
    """The ``load`` relation of a run without a timed replay: no rows, the columns of ``LOAD_SCHEMA`` and ``arm``."""
    from harness.replay.timed import LOAD_SCHEMA

    return LOAD_SCHEMA.append(pa.field("arm", pa.string())).empty_table()


def connect(run: RunDir):  # type: ignore[no-untyped-def]
    """``harness.store.connect`` with a ``load`` relation always there (empty for a closed-loop run)."""
    con = connect_run(run)
    if not con.sql("SELECT * FROM duckdb_views() WHERE view_name = 'load'").fetchall():
        con.register("load", empty_load())
    return con


def analyze(run: RunDir) -> dict[str, pa.Table]:
    """Run every analysis query and write its table next to the run's other Parquet files."""
    con = connect(run)
    create_pairs(con)
    tests = tests_table(con.sql((SQL_DIR / "paired_counts.sql").read_text()).to_arrow_table())
    con.register("tests", tests)
    run.write_table("tests", tests)
    out = {"tests": tests}
    for name in TABLES:
        table = con.sql((SQL_DIR / f"{name}.sql").read_text()).to_arrow_table()
        run.write_table(name, table)
        out[name] = table
    con.close()
    return out
