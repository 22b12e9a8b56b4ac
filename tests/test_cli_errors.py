"""Bad input and config exit with code 2 and a message that says how to fix it (no model loaded)."""

from __future__ import annotations

from pathlib import Path

from helpers import run_harness


def test_missing_traffic_file(tmp_path: Path) -> None:
    proc = run_harness("replay", f"traffic.path={tmp_path / 'nope.parquet'}", f"output_dir={tmp_path}")
    assert proc.returncode == 2
    assert "nope.parquet" in proc.stderr and "traffic.path" in proc.stderr


def test_config_typo(tmp_path: Path) -> None:
    proc = run_harness("replay", "candidate.enigne.dtype=bfloat16", f"output_dir={tmp_path}")
    assert proc.returncode == 2
    assert "enigne" in proc.stderr


def test_missing_checkpoint_fails_before_any_engine_starts(tmp_path: Path) -> None:
    proc = run_harness("replay", "candidate.checkpoint=/no/such/model", "traffic.limit=5", f"output_dir={tmp_path}")
    assert proc.returncode == 2
    assert "/no/such/model" in proc.stderr and "does not exist" in proc.stderr
    assert "engine ready" not in proc.stderr


def test_unknown_command() -> None:
    proc = run_harness("frobnicate")
    assert proc.returncode == 2 and "python -m harness replay" in proc.stderr


def test_bad_aa_perturbation(tmp_path: Path) -> None:
    proc = run_harness("replay", 'drift.aa_perturbation=["engine.dtyp=bfloat16"]', f"output_dir={tmp_path}")
    assert proc.returncode == 2
    assert "dtyp" in proc.stderr


def test_a_typo_added_with_plus_is_refused(tmp_path: Path) -> None:
    proc = run_harness("replay", "+traffic.limt=10", f"output_dir={tmp_path}")
    assert proc.returncode == 2 and "limt" in proc.stderr and "traffic.limt" in proc.stderr
    assert not (tmp_path / "default").exists()


def test_help_exits_0_everywhere() -> None:
    for args in ((), ("--help",), ("replay", "--help"), ("canary", "--help"), ("serve", "--help"),
                 ("golden", "--help")):
        proc = run_harness(*args, verbose=False)
        assert proc.returncode == 0, (args, proc.stderr[-1000:])
        assert proc.stdout.strip(), args


def test_import_openai_bad_input_exits_2(tmp_path: Path) -> None:
    missing = run_harness("import-openai", str(tmp_path / "nope.jsonl"), str(tmp_path / "out.parquet"))
    assert missing.returncode == 2 and "nope.jsonl" in missing.stderr and "Fix:" in missing.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    proc = run_harness("import-openai", str(bad), str(tmp_path / "out.parquet"))
    assert proc.returncode == 2 and "line 1" in proc.stderr
