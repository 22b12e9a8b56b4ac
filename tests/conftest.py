"""Shared fixtures: the zoo (committed; rebuilt only when its build key changed)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def zoo() -> Path:
    from harness.zoo.build import DEFAULT_ZOO_DIR, build_zoo

    return build_zoo(DEFAULT_ZOO_DIR)


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One generation cache for the end-to-end tests of a session (``cache.dir=...``): what one test generated
    (the zoo baseline on the sample traffic and the golden set) the next reads back instead of starting an engine.
    Tests of the cache itself, of resume and of reproducibility use their own (or none)."""
    return tmp_path_factory.mktemp("generation_cache")
