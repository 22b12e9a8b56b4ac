"""Golden-set maintenance: propose items from a run, written ready for annotation.

``python -m harness golden candidates RUN_DIR [--n 50] [--out FILE]`` picks the requests where the candidate
diverged most from the baseline, failed (error, invalid JSON/schema, refusal, truncation, empty output) or was
judged lowest (``harness/analysis/golden_candidates.sql``), and writes them as a golden-set Parquet with the
traffic columns, both arms' outputs and the reasons, and the golden columns to fill in: ``expected``,
``checks`` and ``dimension`` are empty, so ``load_golden`` names every row still to annotate.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from harness.analysis.tables import SQL_DIR
from harness.golden.schema import GOLDEN_COLUMNS
from harness.spec import read_manifest
from harness.store import RunDir, connect, sql_quote
from harness.traffic import load_traffic, requests_to_table

log = logging.getLogger(__name__)


def propose(run_path: Path, n: int = 50, out: Path | None = None) -> Path:
    """Write the candidate items of the run at ``run_path``; returns the file written."""
    run = RunDir.at(run_path)
    manifest = read_manifest(run)
    con = connect(run)
    drift = run.table_path("drift")
    if drift.exists():
        con.execute(f"CREATE VIEW drift AS SELECT * FROM read_parquet({sql_quote(str(drift))})")
    else:
        con.execute("CREATE VIEW drift AS SELECT NULL::VARCHAR AS request_id, NULL::VARCHAR AS arm, "
                    "NULL::DOUBLE AS cosine WHERE false")
    picked = con.sql((SQL_DIR / "golden_candidates.sql").read_text(), params={"n": n}).to_arrow_table()
    con.close()
    ids = picked["request_id"].to_pylist()
    wanted = set(ids)
    requests = {r.request_id: r for r in load_traffic(manifest.traffic.path, limit=manifest.traffic.limit)
                if r.request_id in wanted}
    table = requests_to_table([requests[i] for i in ids])
    for name in ("reasons", "baseline_output", "candidate_output"):
        table = table.append_column(name, picked[name])
    now = dt.datetime.now(dt.UTC)
    empty = {"expected": None, "checks": None, "dimension": None, "added_at": now,
             "source": f"run:{manifest.experiment}/{manifest.run_id}"}
    golden = pa.Table.from_pylist([empty] * len(ids), schema=GOLDEN_COLUMNS)
    for f in GOLDEN_COLUMNS:
        table = table.append_column(f, golden[f.name])
    out = out or run.path / "golden_candidates.parquet"
    pq.write_table(table, out)
    log.info("%d golden candidates from run %s written to %s", len(ids), manifest.run_id, out)
    return out
