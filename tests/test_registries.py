"""Every ``"module:attr"`` string in a registry imports (a renamed module fails here, on CPU, not in a user's run)."""

from __future__ import annotations

import importlib

import pytest

from harness.engines.base import ENGINES, Capabilities
from harness.engines.checkpoints import CHECKPOINT_PREFIXES
from harness.replay import REPLAYERS
from harness.signals.registry import SIGNALS, Family, family

ENTRIES = [*(("engine", k, v) for k, v in ENGINES.items()),
           *(("checkpoint", k, v) for k, v in CHECKPOINT_PREFIXES.items()),
           *(("replayer", k, v) for k, v in REPLAYERS.items()),
           *(("signal", k, v) for k, v in SIGNALS.items() if isinstance(v, str))]


@pytest.mark.parametrize(("registry", "name", "target"), ENTRIES, ids=[f"{r}:{n}" for r, n, _ in ENTRIES])
def test_registry_entry_imports(registry: str, name: str, target: str) -> None:
    module, attr = target.split(":")
    obj = getattr(importlib.import_module(module), attr)
    if registry == "engine":  # an engine declares what it can do; nobody asks its name
        from harness.config import ArmConfig

        assert isinstance(obj.capabilities(ArmConfig(checkpoint="zoo:baseline")), Capabilities)
    elif registry == "signal":
        assert isinstance(family(name), Family) and isinstance(obj, Family) and callable(obj.make)
    else:
        assert callable(obj)
