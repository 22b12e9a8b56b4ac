"""The run history: every run under an output directory, newest first, for ``python -m harness runs``.

``collect_runs`` reads each ``<output_dir>/<experiment>/<run_id>/`` (its typed manifest and its ``verdict.json``),
``format_runs`` prints them as a plain-text table and ``write_index`` writes ``<output_dir>/index.html``: one table
of every run with a link to its report, a trend figure of the gated metrics per experiment, and a link to each
sweep's summary (``harness.report.index_html``). Unfinished runs (no ``verdict.json``) are listed as ``no verdict``
and runs whose manifest is of another format as ``unreadable (older format)``: the history hides nothing.
Nothing here reads Parquet: the index builds from JSON in seconds over hundreds of runs. See docs/history.md.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import BadInput
from harness.report.signoff import read_signoffs
from harness.spec import read_manifest
from harness.store import RunDir

NO_VERDICT = "no verdict"
UNREADABLE = "unreadable (older format)"
MALFORMED = "unreadable (malformed manifest)"
SKIPPED_DIRS = ("sweeps", "watch")  # and every directory whose name starts with "." (.cache, ...)
INDEX = "index.html"


@dataclass(frozen=True)
class CheckPoint:
    """One overall gate check of a run (``verdict.json`` ``checks``), what the trend figure plots."""

    metric: str
    family: str
    delta: float | None
    baseline: float | None
    candidate: float | None
    status: str


@dataclass(frozen=True)
class RunSummary:
    """One run as the history lists it. ``experiment`` and ``run_id`` are its directory names.

    ``verdict`` is the gate's verdict, or ``NO_VERDICT`` (unfinished), ``UNREADABLE`` (a manifest of another
    format) or ``MALFORMED`` (a manifest that does not parse); ``created_at`` is the manifest's time (ISO 8601),
    else (unreadable or hand-made manifests) the manifest file's modification time.
    ``report`` is the path of its ``report.html`` relative to the output directory (None: not written).
    """

    experiment: str
    run_id: str
    created_at: str
    baseline: str | None
    candidate: str | None
    verdict: str
    direction: str | None
    reason: str | None
    report: str | None
    checks: tuple[CheckPoint, ...] = ()
    signed_off_by: str | None = None  # who accepted the verdict (signoff.json; the latest sign-off)

    @property
    def shown_verdict(self) -> str:
        """The verdict, with who signed it off when someone did."""
        return self.verdict if not self.signed_off_by else f"{self.verdict} (signed off: {self.signed_off_by})"

    @property
    def finished(self) -> bool:
        """Whether the gate decided (the run has a readable ``verdict.json``)."""
        return self.verdict not in (NO_VERDICT, UNREADABLE, MALFORMED)

    @property
    def arms(self) -> str:
        """``baseline -> candidate`` (their sources), or "" when the manifest was unreadable."""
        return "" if self.baseline is None and self.candidate is None else f"{self.baseline} -> {self.candidate}"

    @property
    def time(self) -> dt.datetime:
        """``created_at`` as an aware datetime (UTC when it names no zone; the epoch when it does not parse)."""
        try:
            t = dt.datetime.fromisoformat(self.created_at)
        except ValueError:
            return dt.datetime.fromtimestamp(0, dt.UTC)
        return t if t.tzinfo is not None else t.replace(tzinfo=dt.UTC)


def _mtime(path: Path) -> str:
    return dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC).isoformat(timespec="seconds")


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _checks(verdict: dict[str, Any]) -> tuple[CheckPoint, ...]:
    return tuple(CheckPoint(str(c.get("metric")), str(c.get("family")), _float(c.get("delta")),
                            _float(c.get("baseline")), _float(c.get("candidate")), str(c.get("status")))
                 for c in verdict.get("checks") or [] if isinstance(c, dict) and c.get("segment") is None)


def read_run(run_dir: Path, output_dir: Path) -> RunSummary:
    """One run directory as a ``RunSummary``; a manifest of another format gives an ``UNREADABLE`` row."""
    experiment, run_id = run_dir.parent.name, run_dir.name
    report = f"{experiment}/{run_id}/report.html" if (run_dir / "report.html").is_file() else None
    try:
        manifest = read_manifest(RunDir(output_dir, experiment, run_id))
    except (BadInput, KeyError, TypeError, ValueError) as e:  # ValueError: not JSON, or a config that does not type
        return RunSummary(experiment, run_id, _mtime(run_dir / "manifest.json"), None, None,
                          UNREADABLE if isinstance(e, BadInput) else MALFORMED, None, None, report)
    arms = {a: manifest.arms[a].source if a in manifest.arms else None for a in ("baseline", "candidate")}
    created = manifest.created_at or _mtime(run_dir / "manifest.json")
    verdict_path = run_dir / "verdict.json"
    verdict: Any = None
    if verdict_path.is_file():
        try:
            verdict = json.loads(verdict_path.read_text())
        except json.JSONDecodeError:
            verdict = None
    if not isinstance(verdict, dict) or "verdict" not in verdict:
        return RunSummary(experiment, run_id, created, arms["baseline"], arms["candidate"], NO_VERDICT, None, None,
                          report)
    reasons = verdict.get("reasons") or []
    signoffs = read_signoffs(run_dir)
    return RunSummary(experiment, run_id, created, arms["baseline"], arms["candidate"], str(verdict["verdict"]),
                      verdict.get("direction"), str(reasons[0]) if reasons else None, report, _checks(verdict),
                      signoffs[-1].by if signoffs else None)


def _real_dirs(parent: Path) -> list[Path]:
    """The subdirectories of ``parent`` that are not symlinks (``latest``) nor hidden (``.cache``)."""
    return [p for p in parent.iterdir() if p.is_dir() and not p.is_symlink() and not p.name.startswith(".")]


def collect_runs(output_dir: Path) -> list[RunSummary]:
    """Every run under ``output_dir`` (``<experiment>/<run_id>/manifest.json``), newest first.

    ``latest`` symlinks, ``sweeps/`` and hidden directories (``.cache``) are skipped; runs without a
    ``verdict.json`` are kept (``NO_VERDICT``), so are runs whose manifest is of another format (``UNREADABLE``).

    Args:
        output_dir: the directory the runs were written to (``output_dir`` of the config, ``reports``).

    Returns:
        The runs, newest first (ties: experiment, then run id, descending).
    """
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return []
    runs = [read_run(run_dir, output_dir)
            for experiment in _real_dirs(output_dir) if experiment.name not in SKIPPED_DIRS
            for run_dir in _real_dirs(experiment) if (run_dir / "manifest.json").is_file()]
    return sorted(runs, key=lambda r: (r.time, r.experiment, r.run_id), reverse=True)


def collect_sweeps(output_dir: Path) -> list[tuple[str, str | None]]:
    """Each sweep under ``<output_dir>/sweeps/`` (a directory with a summary or Hydra's ``multirun.yaml``; newest
    first: ids start with their UTC time) and the path of its summary page relative to ``output_dir``
    (``summary.html``, else ``summary.md`` (summarized before pages existed), else None: not summarized yet)."""
    sweeps = Path(output_dir) / "sweeps"
    if not sweeps.is_dir():
        return []
    out = []
    for sweep in sorted(_real_dirs(sweeps), key=lambda p: p.name, reverse=True):
        page = next((n for n in ("summary.html", "summary.md") if (sweep / n).is_file()), None)
        if page or (sweep / "multirun.yaml").is_file():  # what Hydra writes first: a sweep still running
            out.append((sweep.name, f"sweeps/{sweep.name}/{page}" if page else None))
    return out


def _plain(value: Any, width: int | None = None) -> str:
    """``value`` for a terminal: control characters (escape sequences in untrusted names) as ``?``, cut to width."""
    text = "" if value is None else "".join(c if c.isprintable() else "?" for c in str(value))
    return text if width is None or len(text) <= width else text[: width - 3] + "..."


def format_runs(runs: list[RunSummary]) -> str:
    """The runs as a plain-text table (time, experiment, run, verdict, direction, arms, top reason)."""
    if not runs:
        return "No runs found."
    header = ["time (UTC)", "experiment", "run", "verdict", "direction", "baseline -> candidate", "top reason"]
    rows = [[r.time.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M"), _plain(r.experiment, 40), _plain(r.run_id, 40),
             _plain(r.shown_verdict), _plain(r.direction),
             _plain(r.arms, 60),
             _plain(r.reason, 100)] for r in runs]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in [header, *rows]]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


@dataclass(frozen=True)
class WatchCheck:
    """One check of a watched model (``<output_dir>/watch/<name>/runs/<run_id>/check.json``): one history line."""

    name: str
    run_id: str
    created_at: str
    decision: str
    tests: str  # each test's p-value, e.g. "sampled_mmd 0.41, greedy_exact 1"
    changed_segments: str
    greedy_identical: float | None


def collect_watch(output_dir: Path) -> list[WatchCheck]:
    """Every watch check under ``output_dir/watch``, newest first (the reference run included, as REFERENCE)."""
    root = Path(output_dir) / "watch"
    out = []
    for check in sorted(root.glob("*/runs/*/check.json")) if root.is_dir() else []:
        try:
            rec = json.loads(check.read_text())
        except (OSError, json.JSONDecodeError):
            rec = {"decision": MALFORMED}
        run = rec.get("run") if isinstance(rec.get("run"), dict) else {}
        tests = rec.get("tests") if isinstance(rec.get("tests"), dict) else {}
        out.append(WatchCheck(check.parent.parent.parent.name, check.parent.name,
                              str(run.get("created_at") or _mtime(check)), str(rec.get("decision")),
                              ", ".join(f"{k} {_float(v.get('p_value')) or 0:.2g}" for k, v in tests.items()
                                        if isinstance(v, dict)),
                              ", ".join(str(s.get("segment")) for s in rec.get("changed_segments") or []
                                        if isinstance(s, dict) and s.get("changed")),
                              _float(rec.get("greedy_identical"))))
    return sorted(out, key=lambda c: (c.created_at, c.name, c.run_id), reverse=True)


def format_watch(checks: list[WatchCheck]) -> str:
    """The watch checks as a plain-text table, one line per check (the trend: read it top to bottom)."""
    header = ["time (UTC)", "watch", "run", "decision", "greedy identical", "p-values", "changed segments"]
    rows = [[_plain(c.created_at[:16].replace("T", " ")), _plain(c.name, 40), _plain(c.run_id, 40),
             _plain(c.decision), "" if c.greedy_identical is None else f"{c.greedy_identical:.0%}",
             _plain(c.tests, 90), _plain(c.changed_segments, 60)] for c in checks]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    lines = ["  ".join(x.ljust(w) for x, w in zip(row, widths, strict=True)).rstrip() for row in [header, *rows]]
    return "\n".join(["Watch checks (docs/watch.md):", lines[0], "  ".join("-" * w for w in widths), *lines[1:]])
