"""``python -m harness watch [key=value ...]``: the composed ``WatchConfig`` -> a ``WatchSpec`` -> one check.

The one place the watch's config becomes plain values (the webhook's secret is read from its environment variable
here). Exit codes: SAME 0 (and the first, reference run), CHANGED 10, INCONCLUSIVE 13; 2 bad input or config.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from harness.errors import BadInput

USAGE = """python -m harness watch [key=value ...]

Watches a pinned model: replays a frozen probe set against an endpoint (arm.engine.backend=server
arm.engine.server.base_url=URL arm.engine.server.model=NAME) or a local checkpoint (arm.checkpoint=...), k samples
per prompt plus greedy passes, and tests the run against the watch's first (reference) run: SAME (exit 0),
CHANGED (10), INCONCLUSIVE (13). Keys: configs/watch.yaml and WatchConfig in harness/config.py (name, probe.*,
sampling.*, test.*, webhook.url, output_dir, run_id); docs/watch.md."""


def compose(overrides: list[str]) -> Any:
    """The watch config (``configs/watch.yaml`` + overrides), typed; a typo or a wrong type raises BadInput."""
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
            cfg = hydra_compose(config_name="watch", overrides=overrides)
            check_known_keys(cfg)
            return OmegaConf.to_object(cfg)
    except (HydraException, OmegaConfBaseException) as e:
        raise BadInput(f"watch config: {e}. Fix: check the key and its type in harness/config.py (WatchConfig) "
                       "and docs/watch.md.") from None


def spec_from_config(cfg: Any) -> Any:
    """Plain, checked values for ``run_watch``."""
    from harness.watch.check import CheckSettings
    from harness.watch.run import WatchSpec
    from harness.watch.sample import Settings
    from harness.watch.stats import KERNELS

    s, t = cfg.sampling, cfg.test
    problems = []
    if s.k < 2 or s.greedy < 2:
        problems.append(f"sampling.k={s.k}, sampling.greedy={s.greedy}: the tests need >= 2 of each per prompt")
    if not 0 < t.alpha < 1 or t.schedule_checks < 1:
        problems.append(f"test.alpha={t.alpha}, test.schedule_checks={t.schedule_checks}: expected 0 < alpha < 1 and "
                        "schedule_checks >= 1")
    if t.kernel not in KERNELS:
        problems.append(f"test.kernel={t.kernel!r}: expected one of {', '.join(KERNELS)}")
    if not cfg.arm.checkpoint and not (cfg.arm.engine.backend == "server" and cfg.arm.engine.server.base_url):
        problems.append("arm: nothing to watch. Set arm.engine.backend=server arm.engine.server.base_url=URL (a "
                        "pinned endpoint), or arm.checkpoint=PATH (a local checkpoint)")
    if problems:
        raise BadInput("watch config: " + "; ".join(problems) + ". Fix: set them as described (docs/watch.md).")
    return WatchSpec(cfg.name, cfg.arm, cfg.probe.traffic, cfg.probe.golden, cfg.probe.per_segment, cfg.probe.seed,
                     Settings(s.k, s.greedy, s.temperature, s.top_p, s.max_tokens),
                     CheckSettings(t.alpha, t.schedule_checks, t.kernel, t.n_perm, t.max_error_share, t.min_prompts,
                                  t.seed), Path(cfg.output_dir), cfg.run_id)


def notify(cfg: Any, record: dict[str, Any], run_path: Path) -> bool | None:
    """POST the signed webhook on CHANGED (the canary's ``Webhook``: retries, an outbox); None when not sent."""
    from harness.canary.hooks import Webhook, read_secret
    from harness.watch.report import webhook_payload

    wh = cfg.webhook
    if not wh.url or record["decision"] != "CHANGED":
        return None
    hook = Webhook(wh.url, read_secret(wh.secret_env, "watch.webhook"), run_path.parent.parent / "outbox.jsonl",
                   wh.attempts, wh.backoff_s, wh.timeout_s)
    return hook.deliver(webhook_payload(record))


def watch(argv: list[str]) -> int:
    """Parse, run one check, print the summary; the exit code of the decision."""
    from harness.watch import DECISION_CODES
    from harness.watch.report import console_lines, write_markdown
    from harness.watch.run import REFERENCE, run_watch

    if any(a in ("-h", "--help") for a in argv):
        print(USAGE)
        return 0
    cfg = compose(argv)
    if cfg.webhook.url:
        from harness.canary.hooks import read_secret

        read_secret(cfg.webhook.secret_env, "watch.webhook")  # a missing secret fails before any request
    decision, run, record = run_watch(spec_from_config(cfg))
    if decision == REFERENCE:
        print(f"watch: reference snapshot stored (exit code 0): {run.path}")
        return 0
    code = DECISION_CODES[decision]
    write_markdown(record, run.path / "check.md")
    sent = notify(cfg, record, run.path)
    for line in console_lines(record, run.path, code):
        print(line)
    if sent is not None:
        print(f"  webhook: {'delivered' if sent else 'queued in outbox.jsonl (delivery failed)'}")
    return code


if __name__ == "__main__":
    sys.exit(watch(sys.argv[1:]))
