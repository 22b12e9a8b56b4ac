"""Every config in configs/ composes against its schema; typos fail. No model is loaded."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError

from harness.config import ExperimentConfig, register
from harness.engines.base import ENGINES, backend_name
from harness.gate import Threshold
from harness.golden.schema import load_golden
from harness.signals.golden import GoldenSignal
from harness.signals.judge import judge_settings
from harness.signals.stats import METRICS

CONFIG_DIR = str(Path(__file__).resolve().parents[1] / "configs")
EXPERIMENTS = sorted(p.stem for p in Path(CONFIG_DIR, "experiment").glob("*.yaml"))


def _compose(overrides: list[str]) -> ExperimentConfig:
    register()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base=None):
        cfg = compose(config_name="config", overrides=overrides)
    return OmegaConf.to_object(cfg)  # type: ignore[return-value]


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_composes_and_binds(experiment: str) -> None:
    cfg = _compose([f"experiment={experiment}"])
    assert isinstance(cfg, ExperimentConfig)
    assert cfg.name == experiment
    assert Path(cfg.traffic.path).exists()
    for arm in (cfg.baseline, cfg.candidate):
        assert backend_name(arm) in ENGINES
        assert arm.checkpoint and arm.checkpoint.startswith("zoo:")
    metric_names = {m.name for m in METRICS} | {"judge_unscored"}  # the judge's, when the run has one
    if cfg.golden.path:
        _, items = load_golden(cfg.golden.path)
        metric_names |= {m.name for m in GoldenSignal(items).metrics}
    for name, t in cfg.gate.thresholds.items():
        assert name in metric_names, f"threshold for unknown metric {name}"
        Threshold(t.absolute, t.relative)
        assert (t.absolute is None) != (t.relative is None)


@pytest.mark.parametrize("judge", ["zoo", "qwen2_5_7b"])
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
