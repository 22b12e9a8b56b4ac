"""What a user sees on the terminal: one progress line per stage, engine logs quiet, one summary at the end.

By default the harness prints a progress bar per stage (each arm's replay with requests/s and ETA, the golden
replay named as such, embedding, the judge) when stderr is a terminal, else one line per finished stage; the
harness's warnings and errors, vLLM's errors; and the summary block (``cli._print_result``). Everything else is
written to the run directory: ``harness.log`` (the harness's own INFO log) and ``engine.log`` (vLLM's log from the
main process, through ``VLLM_LOGGING_CONFIG_PATH``, and all output of the engine processes it spawns, whose file
descriptors point there: ``engine_output``). ``python -m harness -v ...`` (``make
replay VERBOSE=1``) shows everything on the terminal as well.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

PROGRESS = logging.getLogger("harness.progress")
ENGINE_LOG = "HARNESS_ENGINE_LOG"
"""Set by ``run_logs`` (not verbose): where an engine's start-up output and its processes' output go."""
RUN_DIR = "HARNESS_RUN_DIR"
"""Set by ``run_logs``: the run directory (server logs are written there, beside ``engine.log``)."""
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_verbose = False


def configure(verbose: bool) -> None:
    """Logging for a CLI invocation: the harness at INFO when verbose, else warnings; stage lines always."""
    global _verbose
    _verbose = verbose
    level = logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format=FORMAT)
    for h in logging.getLogger().handlers:  # the terminal's level; harness.log (run_logs) gets INFO either way
        h.setLevel(level)
    logging.getLogger("harness").setLevel(level)
    PROGRESS.setLevel(logging.INFO)
    if not verbose and not any(getattr(h, "stage_lines", False) for h in PROGRESS.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler.stage_lines = True  # type: ignore[attr-defined]
        PROGRESS.addHandler(handler)
    if not verbose:
        os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        if not sys.stderr.isatty():  # library progress bars (vLLM, sentence-transformers) in a log are noise
            os.environ.setdefault("TQDM_DISABLE", "1")


@contextlib.contextmanager
def run_logs(run_dir: Path) -> Iterator[None]:
    """Write ``harness.log`` and ``engine.log`` into ``run_dir`` while the block runs (engines started inside it
    log there; on the terminal only warnings and errors, or everything when verbose)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(run_dir / "harness.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.setLevel(logging.INFO)
    harness_logger = logging.getLogger("harness")
    level = harness_logger.level
    harness_logger.addHandler(handler)
    harness_logger.setLevel(logging.INFO)
    config = run_dir / "engine_logging.json"
    config.write_text(json.dumps(_engine_logging(run_dir / "engine.log")))
    saved = {k: os.environ.get(k) for k in ("VLLM_LOGGING_CONFIG_PATH", "VLLM_CONFIGURE_LOGGING", ENGINE_LOG,
                                            RUN_DIR)}
    os.environ.update(VLLM_LOGGING_CONFIG_PATH=str(config), VLLM_CONFIGURE_LOGGING="1", **{RUN_DIR: str(run_dir)})
    if not _verbose:
        os.environ[ENGINE_LOG] = str(run_dir / "engine.log")
    try:
        yield
    finally:
        harness_logger.removeHandler(handler)
        harness_logger.setLevel(level)
        handler.close()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _engine_logging(path: Path) -> dict[str, Any]:
    """vLLM's logging as a dictConfig: everything to ``path``, warnings (or everything, verbose) to stderr."""
    fmt = {"format": "%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s"}
    return {"version": 1, "disable_existing_loggers": False, "formatters": {"plain": fmt},
            "handlers": {"file": {"class": "logging.FileHandler", "filename": str(path), "mode": "a",
                                  "formatter": "plain", "level": "DEBUG"},
                         "console": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr",
                                     "formatter": "plain", "level": "INFO" if _verbose else "ERROR"}},
            "loggers": {"vllm": {"handlers": ["file", "console"], "level": "INFO", "propagate": False}}}


def current_run_dir() -> Path | None:
    """The run directory ``run_logs`` is writing to, or None outside a run."""
    path = os.environ.get(RUN_DIR)
    return Path(path) if path else None


@contextlib.contextmanager
def engine_output() -> Iterator[str | None]:
    """While an engine starts, send this process's stdout and stderr (file descriptors 1 and 2) to the run's
    ``engine.log``: the engine processes it spawns inherit them and write there for their whole life (vLLM's
    start-up prints, library warnings, C++ messages). Yields the log's path, or None when not redirecting
    (verbose, or outside a run)."""
    path = os.environ.get(ENGINE_LOG)
    if not path:
        yield None
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(path, "ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
    try:
        yield path
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, copy in zip((1, 2), saved, strict=True):
            os.dup2(copy, fd)
            os.close(copy)


class Stage:
    """A progress bar over one stage's requests (a terminal), or one line when it finishes (a log)."""

    def __init__(self, name: str, total: int, unit: str = "req") -> None:
        self.name, self.total, self.unit, self.done = name, total, unit, 0
        self.start = time.perf_counter()
        self.bar = None
        if sys.stderr.isatty() and not os.environ.get("TQDM_DISABLE"):
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=name, unit=unit, leave=True, dynamic_ncols=True)

    def update(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)

    def close(self, note: str = "") -> None:
        seconds = time.perf_counter() - self.start
        if self.bar is not None:
            if note:
                self.bar.set_postfix_str(note)
            self.bar.close()
            return
        rate = f", {self.done / seconds:.0f} {self.unit}/s" if seconds > 0 and self.done else ""
        PROGRESS.info("%s: %d %s in %.1f s%s%s", self.name, self.done, self.unit, seconds, rate,
                      f" ({note})" if note else "")
