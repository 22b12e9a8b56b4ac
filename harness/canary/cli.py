"""``python -m harness canary [key=value ...]``: the composed ``CanaryConfig`` -> a ``CanarySpec`` -> the evaluator.

The one place the canary's config becomes plain values (secrets are read from their environment variables here).
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Any

from harness.errors import BadInput

USAGE = """python -m harness canary logs=DIR [key=value ...]

Gates live canary traffic window by window: reads the canary logs in DIR (Parquet, or OpenAI JSONL with an `arm`
field naming control or canary), evaluates tumbling windows on cumulative data and decides CONTINUE, INVESTIGATE,
ROLLBACK or PROMOTE (exit code: the last decision). Keys: configs/canary.yaml and CanaryConfig in harness/config.py
(window_s, observation_windows, follow, sequential.*, gate.*, golden.*, drift.*, hooks=haproxy, ...);
docs/canary.md has the method, the recipes and the payloads."""


def compose(overrides: list[str]) -> Any:
    """The canary config (``configs/canary.yaml`` + overrides), typed; a typo or a wrong type raises BadInput."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from harness import CONFIG_DIR
    from harness.spec import check_known_keys, register_schemas

    register_schemas()
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
            cfg = hydra_compose(config_name="canary", overrides=overrides)
            check_known_keys(cfg)  # `+key=value` typos too
            return OmegaConf.to_object(cfg)
    except (HydraException, OmegaConfBaseException) as e:
        raise BadInput(f"canary config: {e}. Fix: check the key and its type in harness/config.py "
                       "(CanaryConfig) and docs/canary.md.") from None


def spec_from_config(cfg: Any) -> Any:
    """Plain values for the evaluator: policy, sequential parameters, hooks (with secrets), golden endpoints."""
    from harness.canary.evaluate import CanarySpec, WebhookSpec
    from harness.canary.hooks import HAProxy, read_secret
    from harness.canary.logs import JoinSpec, LogMapping
    from harness.canary.samples import Endpoint, GoldenReplayer, served_model
    from harness.canary.sequential import Sequential
    from harness.spec import policy

    seq = cfg.sequential
    if not (0 < seq.alpha < 1 and seq.tau_sd > 0 and seq.min_per_arm >= 2 and cfg.window_s > 0):
        raise BadInput(f"canary.sequential: expected 0 < alpha < 1, tau_sd > 0, min_per_arm >= 2 and window_s > 0, "
                       f"found {seq} and window_s={cfg.window_s}. Fix: set them in range.")
    golden = None
    if cfg.golden.path:
        g = cfg.golden
        if not (g.control_url and g.canary_url):
            raise BadInput("canary.golden: a golden path needs golden.control_url and golden.canary_url (the two "
                           "versions' endpoints). Fix: set both, or golden.path=null.")
        endpoints = [Endpoint(u, g.model or served_model(u)) for u in (g.control_url, g.canary_url)]
        golden = GoldenReplayer(g.path, g.limit, endpoints[0], endpoints[1], g.max_tokens, g.timeout_s)
    hp, wh, m, j = cfg.hooks.haproxy, cfg.hooks.webhook, cfg.mapping, cfg.join
    bad = [f"{k}: {v!r}" for k, v in m.arm_values.items() if v not in ("control", "canary")]
    if bad or not 0 <= cfg.max_bad_share < 1:
        raise BadInput(f"canary: mapping.arm_values {bad} / max_bad_share {cfg.max_bad_share}. Fix: map each logged "
                       "value to control or canary; max_bad_share in [0, 1).")
    webhook = None
    if wh.url:
        webhook = WebhookSpec(wh.url, read_secret(wh.secret_env, "hooks.webhook"), wh.attempts, wh.backoff_s,
                              wh.timeout_s)
    start = None
    if cfg.start:
        start = dt.datetime.fromisoformat(cfg.start)
        start = start if start.tzinfo else start.replace(tzinfo=dt.UTC)
    return CanarySpec(
        name=cfg.name, logs=Path(cfg.logs), window_s=cfg.window_s, observation_windows=cfg.observation_windows,
        sequential=Sequential(seq.alpha, seq.tau_sd, seq.min_per_arm, seq.min_events), policy=policy(cfg.gate),
        output_dir=Path(cfg.output_dir), max_windows=cfg.max_windows, start=start, follow=cfg.follow,
        poll_s=cfg.poll_s, run_id=cfg.run_id,
        drift=((cfg.drift.model, cfg.drift.reference, cfg.drift.device, cfg.drift.control_share)
               if cfg.drift.enabled else None),
        golden=golden, golden_every=cfg.golden.every,
        haproxy=HAProxy(hp.socket, hp.backend, hp.server) if hp.socket else None, webhook=webhook,
        mapping=LogMapping(m.arm_field, dict(m.arm_values), m.segment_field, m.request_id_field),
        join=JoinSpec(Path(j.logs), j.request_id_field, j.arm_field, j.wait_s) if j.logs else None,
        max_bad_share=cfg.max_bad_share,
        health={"stale_windows": cfg.health.stale_windows, "grace_s": cfg.health.grace_s or 2 * cfg.window_s,
                "heartbeat_s": cfg.health.heartbeat_s})


def canary(argv: list[str]) -> int:
    """Run the evaluator; exit code per the last decision (``harness.canary.evaluate.EXIT_CODES``)."""
    from harness.canary.evaluate import EXIT_CODES, Evaluator

    if any(a in ("-h", "--help") for a in argv):
        print(USAGE)
        return 0
    spec = spec_from_config(compose(argv))
    evaluator = Evaluator(spec)
    decision = evaluator.run()
    print(f"canary: {decision or 'no complete window yet'}")
    print(f"run:    {evaluator.path}   (report.md, timeline.png, decisions.parquet, windows.parquet)")
    sys.stdout.flush()
    return EXIT_CODES.get(decision or "CONTINUE", 14)
