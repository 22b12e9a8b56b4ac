"""Every config in configs/ composes against its schema; typos fail. No model is loaded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError

from harness import CONFIG_DIR as PACKAGE_CONFIG_DIR
from harness.config import ExperimentConfig
from harness.engines.base import ENGINES, backend_name
from harness.golden.schema import load_golden
from harness.signals.base import SIGNALS
from harness.signals.drift import METRIC as DRIFT_METRIC
from harness.signals.golden import golden_metrics
from harness.signals.judge import judge_settings
from harness.signals.stats import METRICS
from harness.spec import register_schemas, run_spec

CONFIG_DIR = str(PACKAGE_CONFIG_DIR)
EXPERIMENTS = sorted(p.stem for p in Path(CONFIG_DIR, "experiment").glob("*.yaml"))


def _compose_dict(overrides: list[str]) -> Any:
    register_schemas()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base=None):
        return compose(config_name="config", overrides=overrides)


def _compose(overrides: list[str]) -> ExperimentConfig:
    return OmegaConf.to_object(_compose_dict(overrides))  # type: ignore[return-value]


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_composes_and_binds(experiment: str) -> None:
    dcfg = _compose_dict([f"experiment={experiment}"])
    cfg: ExperimentConfig = OmegaConf.to_object(dcfg)  # type: ignore[assignment]
    assert isinstance(cfg, ExperimentConfig)
    assert cfg.name == experiment
    assert Path(cfg.traffic.path).exists()
    spec = run_spec(dcfg)  # what the CLI hands the run: typed, the A/A arm built, the policy bound
    assert set(spec.signals) <= set(SIGNALS) and {"baseline", "candidate"} <= set(spec.arms)
    for arm in spec.arms.values():
        assert backend_name(arm) in ENGINES
        assert arm.checkpoint and arm.checkpoint.startswith(("zoo:", "real:"))
    metric_names = {m.name for m in METRICS} | {"judge_unscored", DRIFT_METRIC.name}
    if cfg.golden.path:
        _, items = load_golden(cfg.golden.path)
        metric_names |= {m.name for m in golden_metrics(items)}
    for name, t in cfg.gate.thresholds.items():
        assert name in metric_names, f"threshold for unknown metric {name}"
        assert set(t) <= {"absolute", "relative"} and len([v for v in t.values() if v is not None]) == 1


@pytest.mark.parametrize("judge", ["zoo", "qwen2_5_7b", "smollm2"])
def test_judge_configs_compose_and_validate(judge: str) -> None:
    cfg = _compose([f"judge={judge}"])
    assert cfg.judge.enabled and 3 <= len(cfg.judge.rubric.criteria) <= 5
    judge_settings(cfg.judge)


def test_zoo_experiments_exist() -> None:
    for name in ("zoo_aa", "zoo_benign", "zoo_terse", "zoo_hedging", "zoo_json_drift", "zoo_improved"):
        assert name in EXPERIMENTS


def test_unknown_key_is_rejected() -> None:
    with pytest.raises((ConfigCompositionException, ConfigKeyError)):
        _compose(["candidate.engine.dtyp=bfloat16"])


def test_wrong_type_is_rejected() -> None:
    with pytest.raises(Exception, match="max_model_len"):
        _compose(["candidate.engine.max_model_len=lots"])


def test_zoo_settings_live_in_the_zoo_arms() -> None:
    """The schema's engine defaults are a GPU's; every zoo arm sets the zoo's CPU settings itself (the same ones
    ``harness.fixtures.zoo.settings`` gives code that builds arms without Hydra)."""
    from harness.config import EngineConfig
    from harness.fixtures.zoo.settings import ZOO_ENGINE

    gpu = EngineConfig()
    assert (gpu.dtype, gpu.max_model_len, gpu.enforce_eager) == ("auto", None, False)
    assert gpu.gpu_memory_utilization >= 0.8
    for path in Path(CONFIG_DIR, "arm").glob("zoo_*.yaml"):
        engine = OmegaConf.load(path).engine
        assert {k: engine[k] for k in ZOO_ENGINE} == ZOO_ENGINE, path.name
    root = _compose_dict(["experiment=default"])
    assert root.name == "default" and root.golden.path  # `make replay` with no arguments: still the zoo


def test_root_config_brings_nothing_of_the_zoo() -> None:
    """Without an experiment that names them, no zoo arm, golden set or A/A arm leaks into a run."""
    register_schemas()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base=None):
        dcfg = compose(config_name="config", overrides=["~experiment"])
    assert dcfg.baseline.checkpoint is None and dcfg.golden.path is None and list(dcfg.drift.aa_perturbation) == []
    assert OmegaConf.is_missing(dcfg.traffic, "path") and dcfg.baseline.sampling.temperature is None
