"""A real sweep (Hydra multirun, vLLM CPU on the zoo) twice: the summary, and the second run served from the cache.

configs/sweep/zoo_smoke.yaml: 3 jobs on 60 requests, no golden set, no drift. The baseline is fixed, so only the
first job generates it; job 0's candidate equals the baseline (max_tokens as captured) and is served entirely from
the cache. The second sweep generates nothing and starts no engine.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from helpers import REPO, run_harness

from harness import CONFIG_DIR
from harness.report.sweep import pareto_front, swept_settings


def _sweep(tmp_path: Path, cache: Path) -> tuple[Path, list[dict]]:  # type: ignore[type-arg]
    proc = run_harness("replay", "-m", "sweep=zoo_smoke", f"output_dir={tmp_path}", f"cache.dir={cache}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = Path(re.findall(r"sweep summary: (\S+)", proc.stdout)[-1])
    runs = sorted(summary.parent.parent.parent.glob(f"sweep_zoo_smoke/{summary.parent.name}-j*/manifest.json"))
    assert len(runs) == 3, proc.stdout
    return summary, [json.loads(p.read_text()) for p in runs]


@pytest.mark.vllm
def test_sweep_summary_and_second_run_from_the_cache(zoo: Path, tmp_path: Path, shared_cache: Path,
                                                     terse_run: Any) -> None:
    """Over the session's cache, where the zoo_terse run left the baseline's answers to these 60 requests."""
    summary, first = _sweep(tmp_path, shared_cache)
    assert summary.exists() and (summary.parent / "pareto.png").exists()
    page = (summary.parent / "summary.html").read_text()
    assert "<script" not in page and "data:image/png;base64," in page and page.count("<tr>") == 8  # 2 tables
    assert not (REPO / "multirun").exists() and not (REPO / "outputs").exists()
    rows = pq.read_table(summary.parent / "summary.parquet").to_pylist()
    assert [r["settings"] for r in rows] == [f"candidate.sampling.max_tokens={v}" for v in ("null", "48", "16")]
    assert all(r["verdict"] in ("PASS", "INVESTIGATE", "ROLLBACK", "INSUFFICIENT_DATA") for r in rows)
    replay = [m["replay"] for m in first]
    assert replay[0]["baseline"]["cache_hits"] == 60 and not replay[0]["baseline"]["engine_started"]
    assert replay[0]["candidate"] == {**replay[0]["candidate"], "cache_hits": 60, "engine_started": False}
    assert rows[0]["generated"] == 0 and rows[0]["output_tokens_per_s"] is None  # no rate, not infinity
    for job in (1, 2):
        assert replay[job]["baseline"]["cache_hits"] == 60 and not replay[job]["baseline"]["engine_started"]
        candidate = replay[job]["candidate"]  # requests captured with max_tokens 48 hit the baseline's entries
        assert candidate["cache_hits"] + candidate["cache_misses"] == 60 and candidate["cache_misses"] > 0
        assert candidate["engine_started"] and rows[job]["generated"] == candidate["cache_misses"]
        assert rows[job]["output_tokens_per_s"] > 0
    assert {m["sweep"]["id"] for m in first} == {summary.parent.name}

    summary2, second = _sweep(tmp_path, shared_cache)
    assert summary2.parent != summary.parent
    for m in second:
        for arm in ("baseline", "candidate"):
            assert m["replay"][arm]["cache_hits"] == 60 and m["replay"][arm]["cache_misses"] == 0
            assert not m["replay"][arm]["engine_started"] and m["load_seconds"][arm] == 0.0
    rows2 = pq.read_table(summary2.parent / "summary.parquet").to_pylist()
    assert [r["verdict"] for r in rows2] == [r["verdict"] for r in rows]
    assert all(r["generated"] == 0 and r["cached"] == 60 and r["requests_per_s"] is None for r in rows2)


def test_swept_settings_and_pareto_front() -> None:
    jobs = [["a=1", "b=x", "sweep=s", "traffic.limit=60"], ["a=2", "b=x", "sweep=s", "traffic.limit=60"],
            ["a=3", "b=y", "sweep=s", "traffic.limit=60"]]
    assert swept_settings(jobs) == [{"a": "1", "b": "x"}, {"a": "2", "b": "x"}, {"a": "3", "b": "y"}]
    assert pareto_front([(1.0, 0.9), (2.0, 0.5), (0.5, 0.8), (2.0, 0.4), (1.5, 0.9)]) == [1, 4]


@pytest.mark.parametrize("name", sorted(p.stem for p in (CONFIG_DIR / "sweep").glob("*.yaml")))
def test_sweep_configs_compose_and_sweep_arm_settings(name: str) -> None:
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from harness.config import ExperimentConfig
    from harness.spec import register_schemas

    register_schemas()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
        params = dict(compose(config_name="config", overrides=[f"sweep={name}"],
                              return_hydra_config=True).hydra.sweeper.params)
        exp = OmegaConf.to_object(compose(config_name="config", overrides=[f"sweep={name}"]))
    assert params and all(k.startswith("candidate.") or k == "replay.load.repeat" for k in params)  # repeats label
    assert isinstance(exp, ExperimentConfig) and exp.name == f"sweep_{name}" and exp.traffic.limit
    assert exp.golden.path is None
