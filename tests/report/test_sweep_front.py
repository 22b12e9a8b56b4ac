"""The sweep's config-level front: repeats grouped with t intervals (sweep_configs.sql on real DuckDB), Pareto
dominance, and the figure marking dominated and gate-failing configs (harness/report/sweep.py, sweep_render.py)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from harness.report.sweep import configs_table, pareto_front, speed_axis
from harness.report.sweep_render import config_rows, pareto_plot


def _job(job: int, config: str, goodput: float, cosine: float, quality_breached: int = 0) -> dict[str, object]:
    return {"job": job, "config": config, "verdict": "PASS" if not quality_breached else "INVESTIGATE",
            "breached": quality_breached, "quality_breached": quality_breached, "output_tokens_per_s": goodput * 50,
            "goodput_per_core": goodput, "golden_score": None, "cosine_to_baseline": cosine, "ttft_p99_s": 0.5,
            "tpot_p50_s": 0.05, "lateness_p99_s": 0.002}


def test_repeats_group_by_config_with_t_intervals() -> None:
    rows = [_job(0, "a", 1.0, 0.99), _job(1, "b", 2.0, 0.9, 1), _job(2, "a", 1.2, 0.98), _job(3, "b", 2.2, 0.91, 1),
            _job(4, "a", 1.1, 0.97), _job(5, "c", 0.5, 0.95)]
    c = {r["config"]: r for r in configs_table(pa.Table.from_pylist(rows)).to_pylist()}
    assert c["a"]["repeats"] == 3 and c["a"]["jobs"] == [0, 2, 4]
    assert c["a"]["goodput_per_core"] == pytest.approx(1.1)
    # sd 0.1, n 3: t(0.975, 2) = 4.303 -> half-width 0.2484
    assert c["a"]["goodput_per_core_hi"] - c["a"]["goodput_per_core"] == pytest.approx(4.3027 * 0.1 / 3 ** 0.5, 1e-3)
    assert c["b"]["quality_failed"] == 2 and c["c"]["goodput_per_core_lo"] is None  # one repeat: no interval
    assert speed_axis(list(c.values())) == "goodput_per_core"


def test_dominated_configs_are_off_the_front_and_failing_ones_marked(tmp_path: Path) -> None:
    configs = [{"config": "a", "goodput_per_core": 1.1, "goodput_per_core_lo": 0.9, "goodput_per_core_hi": 1.3,
                "quality_failed": 0}, {"config": "b", "goodput_per_core": 2.1, "quality_failed": 2},
               {"config": "c", "goodput_per_core": 0.5, "quality_failed": 0}]
    quality = [0.98, 0.90, 0.95]
    front = pareto_front([(c["goodput_per_core"], q) for c, q in zip(configs, quality, strict=True)])
    assert front == [0, 1]  # c is slower and worse than a: dominated
    header, body = config_rows([{**c, "repeats": 1, "verdicts": ["PASS"], "output_tokens_per_s": 1.0,
                                 "ttft_p99_s": 0.5, "tpot_p50_s": 0.05, "lateness_p99_s_max": 0.002}
                                for c in configs], front, "goodput_per_core")
    assert [r[-1] for r in body] == ["yes", "yes", "dominated"] and body[0][-2] == "[0.9, 1.3]"
    path = pareto_plot(configs, quality, "cosine", front, tmp_path / "p.png", "goodput_per_core")
    assert path.stat().st_size > 10_000
