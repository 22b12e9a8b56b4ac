"""The exit policy, the sign-off record, the pull-request summary, `init`'s config dir and the over-long prompt check:
pure logic and config composition (no engine; the CI jobs themselves run in tests/test_ci_recipes.py)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO, SAMPLE, report_input

from harness.cli import _config_dir_after_command, _fail_on_override
from harness.errors import BadInput
from harness.gate import FAILING, Verdict, check_fail_on, job_exit_code
from harness.report.markdown import render_pr_comment
from harness.report.signoff import SignOff, add_signoff, read_signoffs


def test_exit_policy_fails_only_the_listed_verdicts() -> None:
    assert [job_exit_code(v) for v in ("PASS", *FAILING)] == [0, 10, 11, 12, 13]
    policy = check_fail_on(["ROLLBACK", "INSUFFICIENT_DATA"])
    assert [job_exit_code(v, policy) for v in FAILING] == [0, 11, 0, 13]
    assert job_exit_code("HOLD_FOR_SIGNOFF", signed_off=True) == 0 and job_exit_code("ROLLBACK", signed_off=True) == 11
    assert job_exit_code("ROLLBACK", ()) == 0
    with pytest.raises(BadInput, match="unknown verdict.*'ROLLBAK'"):
        check_fail_on(["ROLLBAK"])


def test_command_line_flags_become_overrides() -> None:
    assert _fail_on_override(["experiment=x", "--fail-on", "ROLLBACK,INVESTIGATE"]) == \
        ["experiment=x", "ci.fail_on=[ROLLBACK,INVESTIGATE]"]
    assert _fail_on_override(["--fail-on="]) == ["ci.fail_on=[]"]
    assert _config_dir_after_command(["--config-dir=/c", "replay", "a=b"]) == ["replay", "--config-dir=/c", "a=b"]
    assert _config_dir_after_command(["-cd", "/c", "replay"]) == ["replay", "-cd", "/c"]
    assert _config_dir_after_command(["replay", "--config-dir=/c"]) == ["replay", "--config-dir=/c"]


def test_signoff_only_for_held_or_investigated_runs(tmp_path: Path) -> None:
    (tmp_path / "verdict.json").write_text(json.dumps({"verdict": "ROLLBACK"}))
    with pytest.raises(BadInput, match="ROLLBACK cannot be signed off"):
        add_signoff(tmp_path, "alice", "ok")
    (tmp_path / "verdict.json").write_text(json.dumps({"verdict": "INVESTIGATE"}))
    with pytest.raises(BadInput, match="must not be empty"):
        add_signoff(tmp_path, " ", "ok")
    add_signoff(tmp_path, "alice", "first")
    add_signoff(tmp_path, "bob", "second")
    assert [(s.by, s.note, s.verdict) for s in read_signoffs(tmp_path)] == [("alice", "first", "INVESTIGATE"),
                                                                            ("bob", "second", "INVESTIGATE")]
    with pytest.raises(BadInput, match="no readable verdict"):
        add_signoff(tmp_path / "nothing", "a", "b")


def test_pr_comment_escapes_untrusted_text_and_shows_the_policy_and_signoff() -> None:
    data = report_input(name="exp|<script>", run_id="r_1", sources=("`a`", "[b](http://x)"),
                        verdict=Verdict("HOLD_FOR_SIGNOFF", "IMPROVEMENT", (), ()))
    data = dataclasses.replace(data, signoffs=(SignOff("eve <x>", "see | here\nnew line", "2026-12-05T00:00:00+00:00",
                                                       "HOLD_FOR_SIGNOFF"),), job_exit_code=0)
    text = render_pr_comment(data)
    assert "<script>" not in text and "exp\\|\\<script\\>" in text and "\\[b\\](http://x)" in text
    assert "see \\| here new line" in text and "eve \\<x\\>" in text
    assert "exit code 0, the job passes (signed off)" in text


def _cfg_job(config_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", f"--config-dir={config_dir}", "replay", *args, "--cfg",
                           "job"], cwd=REPO, capture_output=True, text=True, timeout=120)


def test_init_writes_a_config_dir_that_composes(tmp_path: Path) -> None:
    from harness.starter import write_config_dir

    d = tmp_path / "gate"
    written = write_config_dir(d)
    assert {p.relative_to(d).as_posix() for p in written} >= {
        "arm/my_bf16.yaml", "arm/my_fp8.yaml", "arm/my_awq.yaml", "experiment/my_fp8.yaml",
        "experiment/my_system_prompt.yaml", "sweep/my_quantization.yaml", "judge/my_judge.yaml"}
    for p in written:  # each file says which command uses it
        assert f"--config-dir={d.resolve()}" in p.read_text().split("\n", 2)[1 if "@package" in p.read_text() else 0]
    with pytest.raises(BadInput, match="exists"):
        write_config_dir(d)
    proc = _cfg_job(d, "experiment=my_fp8", "judge=my_judge")
    assert proc.returncode == 0, proc.stderr
    import yaml

    cfg = yaml.safe_load(proc.stdout)
    assert cfg["candidate"]["engine"]["quantization"] == "fp8" and cfg["baseline"]["engine"]["dtype"] == "bfloat16"
    assert cfg["golden"]["path"] is None and cfg["baseline"]["sampling"]["temperature"] is None
    assert cfg["judge"]["enabled"] and cfg["name"] == "my_fp8"
    prompt = yaml.safe_load(_cfg_job(d, "experiment=my_system_prompt").stdout)
    assert prompt["candidate"]["system_prompt"] and prompt["baseline"]["system_prompt"] is None


def test_init_experiments_bind_to_a_run_spec(tmp_path: Path) -> None:
    from hydra import compose, initialize_config_dir

    from harness import CONFIG_DIR
    from harness.spec import register_schemas, run_spec
    from harness.starter import write_config_dir

    write_config_dir(tmp_path, checkpoint="real:smollm2", traffic=str(SAMPLE))
    register_schemas()
    for experiment in ("my_fp8", "my_system_prompt"):
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
            dcfg = compose(config_name="config", overrides=[f"hydra.searchpath=[file://{tmp_path}]",
                                                           f"experiment={experiment}", "judge=my_judge"])
        spec = run_spec(dcfg)
        assert spec.arms["baseline"].checkpoint == "real:smollm2" and "aa" in spec.arms
        assert set(spec.fail_on) == set(FAILING) and spec.settings["judge"].enabled
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
        sweep = compose(config_name="config", overrides=[f"hydra.searchpath=[file://{tmp_path}]",
                                                         "experiment=my_fp8", "sweep=my_quantization"],
                        return_hydra_config=True)
    params = sweep.hydra.sweeper.params
    assert sweep.name == "my_quantization" and params["arm@candidate"] == "my_fp8,my_awq"
    for job in params["arm@candidate"].split(","):  # each job of the sweep composes and binds
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
            dcfg = compose(config_name="config", overrides=[f"hydra.searchpath=[file://{tmp_path}]",
                                                           "experiment=my_fp8", "sweep=my_quantization",
                                                           f"arm@candidate={job}"])
        assert run_spec(dcfg).arms["candidate"].engine.quantization in ("fp8", "awq")


def test_over_long_prompts_above_the_share_stop_the_run_before_any_engine(tmp_path: Path) -> None:
    from harness.engines.base import EngineError
    from harness.fixtures.zoo.settings import zoo_arm
    from harness.replay import check_prompt_lengths
    from harness.traffic import open_traffic

    traffic = open_traffic(SAMPLE, limit=200)
    assert check_prompt_lengths({"baseline": zoo_arm()}, traffic, 0.01) == {"baseline": 0}
    with pytest.raises(EngineError, match=r"arm candidate: \d+ of 200 requests .* max_model_len"):
        check_prompt_lengths({"candidate": zoo_arm(max_model_len=40)}, traffic, 0.01)
    found = check_prompt_lengths({"candidate": zoo_arm(max_model_len=40)}, traffic, 1.0)
    assert 0 < found["candidate"] < 200
