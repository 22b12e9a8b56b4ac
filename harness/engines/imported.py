"""An arm whose outputs already exist (shadow logs captured in production, or an earlier run): read, not generated.

The file is Parquet or JSONL with one row per request: ``request_id`` and ``output`` (text), and
optionally ``finish_reason`` (text), ``prompt_tokens``, ``output_tokens`` (integers >= 0). It can also be an
earlier run of this harness: ``reports/<experiment>/<run_id>`` imports that run's ``baseline`` generations,
``reports/<experiment>/<run_id>:<arm>`` those of another arm (its error rows are left out, so those requests
become ``missing_in_import`` here). A traffic
request missing from the file becomes an error row ``missing_in_import``. Ids in the file that are not
in the traffic are ignored with a warning and counted in the manifest (``imported_coverage``); a file
none of whose ids is in the traffic is an error (it is the outputs of other traffic).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.engines.base import Capabilities, EngineError, Generation, PreparedRequest, batch_by_batch
from harness.traffic.schema import Issue, show_id, show_value

if TYPE_CHECKING:
    from harness.config import ArmConfig
    from harness.traffic import Traffic

log = logging.getLogger(__name__)
OPTIONAL = ("finish_reason", "prompt_tokens", "output_tokens")
MAX_LISTED = 20
FIX_ALL = "one row per request_id with a string `output`"
TRAFFIC_PREFIX = "traffic:"
"""``traffic:PATH``: the production responses captured in a traffic file (its ``response`` column) as outputs: a
second capture of the baseline (``drift.aa_imported=traffic``), or production itself as an arm."""


def captured_traffic(source: str | Path) -> Path | None:
    """The traffic file of a ``traffic:PATH`` source, else None."""
    text = str(source)
    return Path(text[len(TRAFFIC_PREFIX):]) if text.startswith(TRAFFIC_PREFIX) else None


def _captured_rows(path: Path) -> dict[str, dict[str, Any]]:
    from harness.traffic import load_traffic

    out = {r.request_id: {"request_id": r.request_id, "output": r.response, "finish_reason": None,
                          "prompt_tokens": None, "output_tokens": None}
           for r in load_traffic(path) if r.response is not None}
    if not out:
        raise EngineError(f"{path}: no request carries a captured `response`, so it cannot serve as outputs "
                          "(traffic:PATH). Fix: import the traffic with its responses, or give another outputs file.")
    return out


def _jsonl_rows(path: Path) -> Iterator[tuple[str, dict[str, Any] | None, list[Issue]]]:
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            at = f"line {number}"
            try:
                line = json.loads(raw.decode("utf-8-sig" if number == 1 else "utf-8"))
            except UnicodeDecodeError as err:
                found = f"the invalid byte 0x{raw[err.start]:02x} at byte {err.start} of the line"
                yield at, None, [Issue("", "UTF-8 text", found, "re-export the file as UTF-8")]
                continue
            except json.JSONDecodeError as err:
                yield at, None, [Issue("", "one JSON object per line", f"invalid JSON ({err.msg} at column "
                                       f"{err.colno})", "fix or drop this line")]
                continue
            except RecursionError:
                yield at, None, [Issue("", "one JSON object per line", "JSON nested too deeply to parse",
                                       "fix or drop this line")]
                continue
            if not isinstance(line, dict):
                yield at, None, [Issue("", "a JSON object", type(line).__name__, "write one JSON object per line")]
                continue
            yield at, line, []


def _parquet_rows(path: Path) -> Iterator[tuple[str, dict[str, Any] | None, list[Issue]]]:
    import pyarrow.parquet as pq

    from harness.traffic.reader import READ_ERRORS, one_line, table_rows

    try:
        parquet = pq.ParquetFile(path)
        tables = (parquet.read_row_group(g) for g in range(parquet.num_row_groups))
        offset = 0
        for table in tables:
            for i, (row, issues) in enumerate(table_rows(table), start=offset):
                yield f"row {i}", row, issues
            offset += table.num_rows
    except READ_ERRORS as err:
        raise EngineError(f"{path}: could not read it as Parquet ({one_line(err)}). Fix: write the "
                          f"imported outputs as Parquet or JSONL, {FIX_ALL}.") from err


def _row_issues(row: dict[str, Any]) -> list[Issue]:
    issues = []
    rid, text = row.get("request_id"), row.get("output")
    if not isinstance(rid, str) or not rid:
        issues.append(Issue("request_id", "a non-empty string", show_value(rid), "give every output its request's id"))
    if not isinstance(text, str):
        issues.append(Issue("output", "a string", show_value(text), "store the output text ('' when empty)"))
    reason = row.get("finish_reason")
    if reason is not None and not isinstance(reason, str):
        issues.append(Issue("finish_reason", "a string (stop, length, ...) or null", show_value(reason),
                            "store the finish reason as text or leave it out"))
    for key in ("prompt_tokens", "output_tokens"):
        n = row.get(key)
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 0):
            issues.append(Issue(key, "an integer >= 0 or null", show_value(n), "store the token count or leave it out"))
    return issues


def run_parts(source: str | Path) -> list[Path] | None:
    """The generations parts of an earlier run's arm: ``RUN_DIR`` (its baseline) or ``RUN_DIR:ARM``; None when
    ``source`` is not a run directory. The arm's golden-set answers (``RUN_DIR/golden/``) come with them, so a run
    that imports it answers the same golden set from the folder (request ids are distinct).

    Raises:
        EngineError: a run directory without generations of that arm.
    """
    text = str(source)
    head, _, arm = text.rpartition(":")
    path, arm = (Path(head), arm) if head and Path(head).is_dir() else (Path(text), "baseline")
    if not path.is_dir():
        return None
    parts = sorted((path / "generations" / f"arm={arm}").glob("part-*.parquet"))
    if not parts:
        raise EngineError(f"{source}: expected an earlier run's directory (reports/<experiment>/<run_id>: its baseline "
                          f"is imported; RUN_DIR:<arm> for another arm), found no generations of arm {arm!r} in "
                          f"{path / 'generations'}. Fix: point the arm's `imported` at a finished run.")
    return parts + sorted((path / "golden" / "generations" / f"arm={arm}").glob("part-*.parquet"))


def _run_rows(parts: list[Path]) -> dict[str, dict[str, Any]]:
    import pyarrow.parquet as pq

    out = {}
    for part in parts:
        for g in pq.read_table(part).to_pylist():
            if g["error"] is None:
                out[g["request_id"]] = {"request_id": g["request_id"], "output": g["output_text"],
                                        "finish_reason": g["finish_reason"], "prompt_tokens": g["prompt_tokens"],
                                        "output_tokens": g["output_tokens"]}
    return out


def load_outputs(path: str | Path) -> dict[str, dict[str, Any]]:
    """Read an outputs file (or an earlier run's generations) into ``request_id -> row``, checking every row; all
    problems are raised together.

    Raises:
        EngineError: naming the file, the line (JSONL, 1-based) or row (Parquet, 0-based), the field and the fix.
    """
    captured = captured_traffic(path)
    if captured is not None:
        return _captured_rows(captured)
    parts = run_parts(path)
    if parts is not None:
        return _run_rows(parts)
    path = Path(path)
    if not path.is_file():
        raise EngineError(f"imported outputs file {path} does not exist. Fix: set the arm's `imported` path.")
    rows = _parquet_rows(path) if path.suffix == ".parquet" else _jsonl_rows(path)
    out: dict[str, dict[str, Any]] = {}
    seen: dict[str, str] = {}
    problems = []
    for at, row, issues in rows:
        if row is not None and not issues:
            issues = _row_issues(row)
            rid = str(row.get("request_id"))
            if not issues and rid in seen:
                issues = [Issue("request_id", "a unique id", f"duplicate {rid!r} (first at {seen[rid]})",
                                "keep one output per request")]
            if not issues:
                out[rid], seen[rid] = row, at
            else:
                at = f"{at} (request_id={show_id(rid)})" if isinstance(row.get("request_id"), str) else at
        problems += [issue.describe(str(path), at, kind="field") for issue in issues]
    if not problems and not out:
        problems.append(f"{path}: expected at least one output, found none. Fix: {FIX_ALL}.")
    if problems:
        more = [f"... and {len(problems) - MAX_LISTED} more"] if len(problems) > MAX_LISTED else []
        raise EngineError("\n".join(problems[:MAX_LISTED] + more))
    return out


def imported_coverage(path: str | Path, traffic: Traffic) -> dict[str, Any]:
    """How an imported outputs file's ids meet the traffic's, for the manifest.

    Returns:
        ``rows`` (outputs in the file), ``matched`` (traffic requests with an output), ``missing_in_import``
        (traffic requests without one: error rows), ``not_in_traffic`` (outputs whose id the traffic lacks:
        ignored) and up to 5 ``not_in_traffic_examples``.

    Raises:
        EngineError: when no id of the file is in the traffic.
    """
    ids = set(load_outputs(path))
    matched: set[str] = set()
    for batch in traffic.batches(8192, wanted=lambda _: False):
        matched.update(rid for rid in batch.request_ids if rid in ids)
    extra = sorted(ids - matched)
    coverage = {"rows": len(ids), "matched": len(matched), "missing_in_import": traffic.requests - len(matched),
                "not_in_traffic": len(extra), "not_in_traffic_examples": extra[:5]}
    if not matched:
        raise EngineError(f"{path}: expected outputs for the requests in {traffic.path}, found none of its "
                          f"{len(ids)} request_ids there (e.g. {extra[:3]}). Fix: import the outputs of this traffic "
                          "(request_id must be the traffic's id), or point `traffic.path` at the traffic they answer.")
    if extra:
        log.warning("%s: %d of its %d request_ids are not in the traffic (e.g. %s); they are ignored and counted in "
                    "manifest.json (imported.not_in_traffic)", path, len(extra), len(ids), ", ".join(extra[:3]))
    return coverage


class ImportedOutputs:
    """Serves an arm from a file of outputs keyed by ``request_id``."""

    @staticmethod
    def capabilities(arm: ArmConfig) -> Capabilities:
        """Outputs read from a file: nothing to cache, place or replicate."""
        return Capabilities(cacheable=False, own_replicas=True, on_ray=False)

    def __init__(self, arm: ArmConfig) -> None:
        if arm.imported is None:
            raise EngineError("an imported arm has no `imported` file. Fix: set the arm's `imported` path.")
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

    def stream(self, batches: Iterable[Sequence[PreparedRequest]]) -> Iterator[list[Generation]]:
        return batch_by_batch(self, batches)

    def close(self) -> None:
        self.rows = {}
