"""Shared fixtures: the zoo (committed; rebuilt only when its build key changed)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def zoo() -> Path:
    from harness.zoo.build import DEFAULT_ZOO_DIR, build_zoo

    return build_zoo(DEFAULT_ZOO_DIR)
