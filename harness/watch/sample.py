"""One probe run: every probe prompt answered ``k`` times at the production sampling settings and ``greedy`` times
at temperature 0, through the server backend (a pinned endpoint, ``engine.backend=server`` with
``engine.server.base_url``) or a local checkpoint (any engine backend); one Parquet row per request.

``samples.parquet`` columns: ``probe_id``, ``segment``, ``pass`` (``sample`` or ``greedy``), ``index`` (0..k-1),
``output_text``, ``prompt_tokens``, ``output_tokens``, ``finish_reason``, ``error``, ``latency_s``. Sampled requests
carry fresh seeds each run (independent samples, as production's unseeded requests); ``top_p`` null is not sent, so
the endpoint's own default applies (a server-side sampling change is then visible, as it is to production clients).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.engines.base import Engine, Generation, PreparedRequest
from harness.store import RunDir
from harness.watch.probe import Probe

if TYPE_CHECKING:
    from harness.config import ArmConfig

log = logging.getLogger(__name__)
SAMPLE, GREEDY = "sample", "greedy"
BATCH = 256


@dataclass(frozen=True)
class Settings:
    """The sampling a probe run used (recorded with it; a check warns when they differ from the reference's)."""

    k: int
    greedy: int
    temperature: float
    top_p: float | None
    max_tokens: int


def requests(probes: Sequence[Probe], s: Settings, seed: int) -> list[tuple[Probe, str, int, PreparedRequest]]:
    """Every request of a probe run: (probe, pass, index, request), sampled ones with fresh seeds from ``seed``."""
    rng = random.Random(seed)
    unset = ("top_p",) if s.top_p is None else ()
    out = []
    for p in probes:
        for kind, n, temp in ((SAMPLE, s.k, s.temperature), (GREEDY, s.greedy, 0.0)):
            for i in range(n):
                r = PreparedRequest(f"{p.probe_id}/{kind}/{i}", p.messages, p.prompt, temp,
                                    1.0 if s.top_p is None else s.top_p, s.max_tokens, rng.randrange(2**31), None,
                                    unset=unset if kind == SAMPLE else ())
                out.append((p, kind, i, r))
    return out


def run_probes(arm: ArmConfig, probes: Sequence[Probe], s: Settings, seed: int, engine: Engine | None = None
               ) -> tuple[list[dict[str, Any]], float]:
    """Send the probe run through the arm's engine (``engine``: one already started, left open); returns one row
    per request and the engine seconds."""
    from harness.engines.base import make_engine

    todo = requests(probes, s, seed)
    own = engine is None
    engine = make_engine(arm) if engine is None else engine
    gens: list[Generation] = []
    try:
        t0 = time.perf_counter()
        for start in range(0, len(todo), BATCH):
            gens += engine.generate([r for _, _, _, r in todo[start:start + BATCH]])
            log.info("watch: %d/%d requests answered", len(gens), len(todo))
        seconds = time.perf_counter() - t0
    finally:
        if own:
            engine.close()
    rows = [{"probe_id": p.probe_id, "segment": p.segment, "pass": kind, "index": i, "output_text": g.output_text,
             "prompt_tokens": g.prompt_tokens, "output_tokens": g.output_tokens, "finish_reason": g.finish_reason,
             "error": g.error, "latency_s": g.latency_s} for (p, kind, i, _), g in zip(todo, gens, strict=True)]
    return rows, seconds


def write_run(run: RunDir, rows: list[dict[str, Any]], meta: dict[str, Any]) -> None:
    """``samples.parquet`` and ``run.json`` of one probe run (atomic writes)."""
    import pyarrow as pa

    run.write_table("samples", pa.Table.from_pylist(rows, schema=SAMPLES_SCHEMA()))
    run.write_json("run.json", meta)


def SAMPLES_SCHEMA() -> Any:  # noqa: N802  (a schema constant, built lazily: pyarrow loads only when used)
    import pyarrow as pa

    return pa.schema([("probe_id", pa.string()), ("segment", pa.string()), ("pass", pa.string()),
                      ("index", pa.int32()), ("output_text", pa.string()), ("prompt_tokens", pa.int64()),
                      ("output_tokens", pa.int64()), ("finish_reason", pa.string()), ("error", pa.string()),
                      ("latency_s", pa.float64())])


def read_run(run: RunDir) -> list[dict[str, Any]]:
    """The rows of a stored probe run."""
    return run.read_table("samples").to_pylist()  # type: ignore[no-any-return]

