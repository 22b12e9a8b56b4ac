"""The signal-family registry: name -> ``Family`` (how a family is built, and the hooks by which it carries itself).

Kept apart from ``harness.signals.base`` (the Protocol and the tables) so that the run spec can read the families'
settings schemas and arm hooks without importing any family. Entries are ``"module:attribute"`` strings, imported
when used. Another package adds a family with one line of its own packaging, an entry point in the group
``harness.signals`` (``[project.entry-points."harness.signals"] toy = "my_pkg.toy:PLUGIN"``), read here at import;
or with ``register`` before the config is composed.

Hook signatures (typed loosely here, to keep this module below the spec; see ``Family``):
``make(RunSpec) -> Signal | None``, ``arms(settings, baseline DictConfig) -> {name: ArmConfig}``,
``record(RunSpec, settings) -> dict | None``, ``replay_jobs(RunSpec, RunDir, arm, record) -> [ReplayJob]``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness.errors import BadInput

SignalFactory = Callable[[Any], Any]
"""Builds a family for a run, or returns None when it does not apply (no golden set, drift off, no judge)."""


@dataclass(frozen=True)
class Family:
    """A registered signal family: how it is built for a run, and the optional hooks by which it carries itself.

    Attributes:
        make: ``make(spec) -> Signal | None`` (None: the family does not apply to this run).
        settings: a dataclass schema: the experiment's ``<name>:`` config group, handed to the family typed as
            ``spec.settings[name]`` (and recorded in the manifest).
        arms: ``arms(settings, baseline) -> {name: ArmConfig}``: arms the family needs replayed besides baseline
            and candidate (``baseline`` is the baseline's config node, for overrides).
        record: ``record(spec, settings) -> dict | None``: what the family checks and records before any engine
            starts (``manifest.records[name]``; bad input raises here, exit 2).
        replay_jobs: ``replay_jobs(spec, run, arm, record) -> [ReplayJob]``: more traffic the arm replays with the
            same engine (golden's set), after the run's traffic.
    """

    make: SignalFactory
    settings: type | None = None
    arms: Callable[[Any, Any], dict[str, Any]] | None = None
    record: Callable[[Any, Any], dict[str, Any] | None] | None = None
    replay_jobs: Callable[[Any, Any, str, dict[str, Any] | None], list[Any]] | None = None


SIGNALS: dict[str, str | Family | SignalFactory] = {
    "stats": "harness.signals.stats:PLUGIN",
    "golden": "harness.signals.golden:PLUGIN",
    "judge": "harness.signals.judge:PLUGIN",
    "drift": "harness.signals.drift:PLUGIN",
    "latency": "harness.signals.latency:PLUGIN",
}
"""Family name -> ``Family`` (or a bare factory), or ``"module:attribute"`` imported when used. ``signals: [...]`` in
an experiment names the families a run scores, in this order by default."""


ENTRY_POINTS = "harness.signals"


def _installed() -> dict[str, str]:
    """Families that installed packages declare as entry points (``ENTRY_POINTS``); the built-in names win."""
    from importlib.metadata import entry_points

    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINTS) if ep.name not in SIGNALS}


SIGNALS.update(_installed())


def register(name: str, family: str | Family | SignalFactory) -> None:
    """Add a signal family under ``name`` (a ``Family``, or a bare ``factory(spec) -> Signal | None``); experiments
    name it in ``signals``. Register before the config is composed when the family has settings."""
    SIGNALS[name] = family


def family(name: str) -> Family:
    """The registered family ``name``.

    Raises:
        BadInput: ``name`` is not registered.
    """
    if name not in SIGNALS:
        raise BadInput(f"signals: unknown signal family {name!r}; known: {sorted(SIGNALS)}. Fix: name registered "
                       "families in `signals`, or register yours with harness.signals.base.register.")
    entry = SIGNALS[name]
    if isinstance(entry, str):
        module, attr = entry.split(":")
        entry = getattr(importlib.import_module(module), attr)
    return entry if isinstance(entry, Family) else Family(make=entry)  # type: ignore[arg-type]


def settings_schemas() -> dict[str, type]:
    """Every registered family's settings schema, by family name (the experiment's plug-in config groups)."""
    return {name: f.settings for name in SIGNALS if (f := family(name)).settings is not None}


