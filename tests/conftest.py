"""Shared fixtures: the zoo (committed; rebuilt only when its build key changed), the session's generation cache,
one vLLM engine, and the zoo_terse run the end-to-end tests read."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from helpers import SAMPLE, run_harness

from harness.traffic import Message, Request, load_traffic, write_traffic


@pytest.fixture(scope="session")
def zoo() -> Path:
    from harness.fixtures.zoo.build import DEFAULT_ZOO_DIR, build_zoo

    return build_zoo(DEFAULT_ZOO_DIR)


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One generation cache for the end-to-end tests of a session (``cache.dir=...``): what one test generated
    (the zoo baseline on the sample traffic and the golden set) the next reads back instead of starting an engine.
    Tests of the cache itself, of resume and of reproducibility use their own (or none)."""
    return tmp_path_factory.mktemp("generation_cache")


@pytest.fixture(scope="session")
def zoo_vllm(zoo: Path) -> Any:
    """One vLLM engine (CPU build) for ``zoo:baseline`` with the default engine options, shared by the tests that
    drive an engine directly (sampling and settings are per request); closed at the end of the session."""
    from harness.engines.base import make_engine
    from harness.fixtures.zoo.settings import zoo_arm

    engine = make_engine(zoo_arm("zoo:baseline"))
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def terse_run(zoo: Path, shared_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    """zoo_terse (with its A/A arm) on 300 sample requests plus one prompt longer than max_model_len, over the
    session's generation cache (test_replay_vllm.py reads it; test_installed.py and test_zoo_verdicts.py reuse the
    generations it leaves in the cache).

    300 requests give about 60 summarize requests: enough for structure_ok to pass gate.min_requests (30)."""
    tmp = tmp_path_factory.mktemp("terse")
    reqs = load_traffic(SAMPLE, limit=300)
    long = Request("too-long", dt.datetime(2026, 11, 3, tzinfo=dt.UTC), "chat",
                   (Message("user", "please help " * 300),), None, 0.0, None, 32, None, None, None)
    write_traffic([*reqs, long], tmp / "traffic.parquet")
    proc = run_harness("replay", "experiment=zoo_terse", f"traffic.path={tmp / 'traffic.parquet'}",
                       f"output_dir={tmp / 'reports'}", "run_id=r1", f"cache.dir={shared_cache}")
    return tmp / "reports" / "zoo_terse" / "r1", proc


# The fixtures that start an engine or a server, or hold what one generated: a test asking for one is an engine test
# even without the ``vllm`` / ``e2e`` marker.
ENGINE_FIXTURES = frozenset({"terse_run", "zoo_vllm", "shared_cache", "real_smollm2", "real_server", "real_engine"})


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the xdist_group markers
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``make test`` runs two pytest-xdist workers (``-n 2 --dist loadgroup``): every engine test is put in ONE xdist
    group, so one worker runs them all, in their usual order, over one set of session fixtures (one generation cache,
    one zoo engine, one real-model server) and never two engines at once on the 2-core machine; the other worker
    takes the tests that start no engine meanwhile. The engine tests go first, so the long pole starts at once."""
    engine = [i for i in items if i.get_closest_marker("vllm") or i.get_closest_marker("e2e")
              or ENGINE_FIXTURES & set(getattr(i, "fixturenames", ()))]
    ids = {id(i) for i in engine}
    for item in engine:
        item.add_marker(pytest.mark.xdist_group("engines"))
    items[:] = engine + [i for i in items if id(i) not in ids]
