"""An arm whose outputs already exist (shadow logs captured in production): read, not generated.

The file is Parquet or JSONL with one row per request: ``request_id`` and ``output`` (text), and
optionally ``finish_reason``, ``prompt_tokens``, ``output_tokens``. A traffic request missing from the
file becomes an error row ``missing_in_import``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.engines.base import EngineError, Generation, PreparedRequest

if TYPE_CHECKING:
    from harness.config import ArmConfig

log = logging.getLogger(__name__)
OPTIONAL = ("finish_reason", "prompt_tokens", "output_tokens")


def _read_rows(path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()  # type: ignore[no-any-return]
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise EngineError(f"{path}: line {n}: not valid JSON ({e.msg}). Fix: one JSON object per line.") from e
    return rows


def load_outputs(path: str | Path) -> dict[str, dict[str, Any]]:
    """Read an outputs file into ``request_id -> row``, checking ids and the ``output`` field."""
    path = Path(path)
    if not path.exists():
        raise EngineError(f"imported outputs file {path} does not exist. Fix: set the arm's `imported` path.")
    out: dict[str, dict[str, Any]] = {}
    problems = []
    for i, row in enumerate(_read_rows(path)):
        rid, text = row.get("request_id"), row.get("output")
        if not isinstance(rid, str) or not rid:
            problems.append(f"{path}: row {i}, field request_id: expected a non-empty string, found {rid!r}")
        elif not isinstance(text, str):
            problems.append(f"{path}: row {i} (request_id={rid}), field output: expected a string, found {text!r}")
        elif rid in out:
            problems.append(f"{path}: row {i}, field request_id: duplicate {rid!r}")
        else:
            out[rid] = row
    if problems:
        more = f"\n... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise EngineError("\n".join(problems[:20]) + more + "\nFix: one row per request_id with a string `output`.")
    return out


class ImportedOutputs:
    """Serves an arm from a file of outputs keyed by ``request_id``."""

    def __init__(self, arm: ArmConfig) -> None:
        assert arm.imported is not None  # guaranteed by make_engine's choice of backend
        self.rows = load_outputs(arm.imported)

    def generate(self, requests: Sequence[PreparedRequest]) -> list[Generation]:
        out = []
        for r in requests:
            row = self.rows.get(r.request_id)
            if row is None:
                out.append(Generation(r.request_id, "", None, None, None, "missing_in_import"))
                continue
            extra = {k: row.get(k) for k in OPTIONAL}
            out.append(Generation(r.request_id, row["output"], extra["prompt_tokens"], extra["output_tokens"],
                                  extra["finish_reason"] or "stop"))
        return out

    def close(self) -> None:
        self.rows = {}
