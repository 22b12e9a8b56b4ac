"""Who accepted a verdict: ``signoff.json`` in the run directory (``python -m harness signoff RUN --by NAME --note
TEXT``). Only a HOLD_FOR_SIGNOFF or INVESTIGATE can be signed off; a signed-off run fails no CI job
(``harness.gate.job_exit_code``), and the report, the pull-request summary and the run history show the sign-off."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness.errors import BadInput
from harness.gate import SIGNABLE

FILE = "signoff.json"


@dataclass(frozen=True)
class SignOff:
    """One acceptance: who, why, when, and the verdict accepted."""

    by: str
    note: str
    at: str
    verdict: str


def read_signoffs(run_dir: Path) -> list[SignOff]:
    """The run's sign-offs, oldest first ([] when none, or when the file does not parse)."""
    path = run_dir / FILE
    try:
        found: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return []
    rows = found.get("signoffs") if isinstance(found, dict) else None
    return [SignOff(str(r.get("by")), str(r.get("note")), str(r.get("at")), str(r.get("verdict")))
            for r in rows or [] if isinstance(r, dict)]


def add_signoff(run_dir: Path, by: str, note: str, now: dt.datetime | None = None) -> SignOff:
    """Record that ``by`` accepted the run's verdict, with ``note``.

    Raises:
        BadInput: not a run with a verdict, a verdict that cannot be signed off, or an empty name or note.
    """
    verdict_path = run_dir / "verdict.json"
    try:
        verdict = str(json.loads(verdict_path.read_text(encoding="utf-8"))["verdict"])
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as e:
        raise BadInput(f"{verdict_path}: no readable verdict ({e}). Fix: sign off a finished run "
                       "(reports/<experiment>/<run_id>, or .../latest).") from e
    if verdict not in SIGNABLE:
        raise BadInput(f"{run_dir}: verdict {verdict} cannot be signed off; only {' or '.join(SIGNABLE)} can. "
                       "Fix: a ROLLBACK or INSUFFICIENT_DATA needs a new candidate or more data, not a signature.")
    if not by.strip() or not note.strip():
        raise BadInput("signoff: --by and --note must not be empty. Fix: name who accepts and say why.")
    entry = SignOff(by.strip(), note.strip(), (now or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds"), verdict)
    rows = [asdict(s) for s in read_signoffs(run_dir)] + [asdict(entry)]
    (run_dir / FILE).write_text(json.dumps({"signoffs": rows}, indent=2) + "\n", encoding="utf-8")
    return entry
