"""Replay: arms x traffic -> generations, in batches, one Parquet part per batch.

The package: this module (the contract, ``Replayer`` and its registry), ``ledger.py`` (the batch ledger every
replayer shares: what is done, what the cache answers, the commit of a batch), ``local.py`` (``LocalReplayer``: in
this process), ``ray.py`` (``RayReplayer``: engine actors on Ray), ``checks.py`` (before any engine starts, and
resume), ``cache.py`` (the generation cache).

The replayer seam. A ``Replayer`` replays each arm's jobs (``ReplayJob``: the traffic into the run directory, then
what the signal families add, e.g. the golden set into ``<run>/golden/``) and returns one ``ArmTiming`` per job;
everything after the replay (signals, analysis, gate, report) reads only the run directory, so any replayer that
keeps this contract can stand in for ``LocalReplayer`` (the in-process loop, one engine per arm):

- **reads**: the traffic in batches of ``arm.engine.batch_size`` (``Traffic.batches``; batch ``b`` holds the
  requests ``b*size .. (b+1)*size-1`` in file order), the run directory's existing parts (resume), the cache;
- **prepares** each request for the arm (``ledger.prepare``: system prompt, template, sampling arm > captured >
  default);
- **writes**, per batch ``b`` of arm ``a``: ``batches/arm=a/part-b.parquet`` (``BATCH_SCHEMA``: the generated
  requests' counts and the seconds waited for them), then ``generations/arm=a/part-b.parquet``
  (``GENERATION_SCHEMA``, one row per request of the batch, traffic order). Both writes are atomic and durable
  (``harness.store``); the generations part is written last and is the batch's commit record;
- **done** means the generations part exists and holds exactly the traffic batch's request ids (``ledger.plan``
  checks this and raises ``ResumeError`` otherwise); a done batch is never generated again, so the same command with the
  same ``run_id`` resumes an interrupted replay (even after kill -9); ``check_resume`` refuses a resume whose
  traffic or arm settings changed;
- **cache**: requests the generation cache holds (``harness.replay.cache``) are taken from it; the misses are
  generated and added to it before the batch is committed (``ledger.commit_batch``); the ``batches`` part counts only
  the generated ones (``cached`` = how many came from the cache).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from harness.replay.checks import ResumeError, check_prompt_lengths, check_resume, determinism, preflight
from harness.replay.ledger import prepare

if TYPE_CHECKING:
    from harness.config import ArmConfig, LoadConfig, RayConfig
    from harness.replay.cache import GenerationCache
    from harness.store import RunDir
    from harness.traffic import Traffic

__all__ = ["REPLAYERS", "ArmTiming", "ReplayJob", "Replayer", "ResumeError", "check_prompt_lengths", "check_resume",
           "determinism",
           "make_replayer", "preflight", "prepare"]


@dataclass(frozen=True)
class ArmTiming:
    """Seconds spent loading the engine and generating, for one arm in this invocation."""

    arm: str
    load_seconds: float
    batches_run: int
    batches_skipped: int
    cache_hits: int = 0  # requests of the replayed batches served from the generation cache
    cache_misses: int = 0  # requests of the replayed batches sent to the engine
    engine_started: bool = False


@dataclass(frozen=True)
class ReplayJob:
    """One replay of an arm: ``traffic`` into ``run`` (the run directory, or ``<run>/golden/``), recorded under
    ``label`` in the manifest (the arm's name, or ``golden_<arm>``)."""

    traffic: Traffic
    run: RunDir
    label: str


class Replayer(Protocol):
    """Replays an arm's jobs into their run directories under the contract in the module docstring."""

    def replay(self, name: str, arm: ArmConfig, jobs: Sequence[ReplayJob], cache: GenerationCache | None
               ) -> list[ArmTiming]: ...


REPLAYERS: dict[str, str] = {
    "local": "harness.replay.local:LocalReplayer",
    "ray": "harness.replay.ray:RayReplayer",
    "timed": "harness.replay.timed:TimedReplayer",
}
"""Replayer name -> "module:class" (imported when used): ``timed`` when ``replay.load`` is on, ``ray`` when
``ray.enabled``, else ``local``."""


def make_replayer(ray: RayConfig, load: LoadConfig | None = None) -> Replayer:
    """The replayer of a run: ``TimedReplayer`` (open loop) when ``replay.load.mode`` is not off, ``RayReplayer``
    (engine actors) when ``ray.enabled``, else ``LocalReplayer``."""
    timed = load is not None and load.mode != "off"
    module, cls = REPLAYERS["timed" if timed else "ray" if ray.enabled else "local"].split(":")
    factory = getattr(importlib.import_module(module), cls)
    if timed:
        return factory(load)  # type: ignore[no-any-return]
    return factory(ray) if ray.enabled else factory()  # type: ignore[no-any-return]
