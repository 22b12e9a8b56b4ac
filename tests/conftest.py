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


SELF_CONTAINED = {"real": "tests/real/", "canary": "tests/canary/test_demo.py",
                  "commands": "tests/test_docs_commands.py::test_documented_command_runs_as_typed"}
"""Engine tests that share nothing with the zoo's session fixtures (test id prefixes): each group runs on the other
worker, beside the zoo engine tests. The real model's tests share their server and engine among themselves; the
canary demo starts its own servers; the documented commands run as typed, on the user's default cache."""


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the xdist_group markers
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``make test`` runs two pytest-xdist workers (``-n 2 --dist loadgroup``). Every engine test is in an xdist
    group: one worker runs the ``engines`` group (the zoo's engine tests, in their usual order, over one set of session
    fixtures: one generation cache, one zoo engine); the other runs the self-contained groups (``real``: the real
    model's tests over their one server; ``canary``: the canary demo's own servers; ``commands``: the documented
    commands as typed), then the tests that start no engine. So at most two engine tests run at once, never two over
    the same session fixtures. xdist hands out the largest group first, so ``engines`` starts at once on one worker
    and a self-contained group on the other."""
    def group(item: pytest.Item) -> str | None:
        if not (item.get_closest_marker("vllm") or item.get_closest_marker("e2e")
                or ENGINE_FIXTURES & set(getattr(item, "fixturenames", ()))):
            return None
        return next((g for g, prefix in SELF_CONTAINED.items() if item.nodeid.startswith(prefix)), "engines")

    groups = {id(i): group(i) for i in items}
    for item in items:
        if groups[id(item)] is not None:
            item.add_marker(pytest.mark.xdist_group(groups[id(item)]))
    order = {"engines": 0, "real": 1, "canary": 2, "commands": 3, None: 4}  # in one process: the zoo's engines first
    items.sort(key=lambda i: order[groups[id(i)]])
