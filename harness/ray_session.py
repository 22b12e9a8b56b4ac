"""The one Ray session of a command: a local Ray started here (and stopped at the end), or a cluster joined.

Shared by the replay (``harness.replay.ray``: engine actors) and the drift family (``harness.signals.embedding``:
embedding actors); nested sessions reuse the connection already open.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from harness.config import RayConfig
from harness.engines.base import EngineError

log = logging.getLogger(__name__)


@contextmanager
def ray_session(settings: RayConfig) -> Iterator[None]:
    """Ray connected for the block: a local Ray started (and stopped) here, or an existing cluster joined.

    Raises:
        EngineError: Ray is not installed, or the cluster address does not answer.
    """
    try:
        import ray
    except ImportError as e:
        raise EngineError("ray.enabled is true but Ray is not installed. Fix: pip install 'ray[data]==2.60.0' (the "
                          "`cpu`/`gpu` extras include it).") from e
    if ray.is_initialized():
        yield
        return
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # Ray 2.60's token auth; a local test cluster needs none
    env = {k: v for k, v in os.environ.items() if k.startswith(("HF_", "VLLM_", "HARNESS_", "TRANSFORMERS_"))}
    kwargs: dict[str, Any] = dict(include_dashboard=False, configure_logging=False, log_to_driver=False,
                                  runtime_env={"env_vars": env})
    if settings.address:
        kwargs["address"] = settings.address
    else:
        kwargs["num_cpus"] = settings.num_cpus
    t0 = time.perf_counter()
    try:
        ray.init(**kwargs)
    except (ConnectionError, RuntimeError, ValueError) as e:
        where = settings.address or "a local Ray"
        raise EngineError(f"Ray: could not connect to {where} ({type(e).__name__}: {e}). Fix: check ray.address "
                          "(`auto` on a cluster node, or ray://HEAD:10001), or set ray.address=null to start a local "
                          "Ray.") from e
    log.info("Ray %s in %.1f s: %s", "joined" if settings.address else "started", time.perf_counter() - t0,
             ray.cluster_resources())
    try:
        yield
    finally:
        ray.shutdown()
        log.info("Ray stopped")


def cluster_gpus() -> float:
    """The GPUs of the connected Ray cluster (0 on a CPU machine)."""
    import ray

    return float(ray.cluster_resources().get("GPU", 0))
