"""configs/canary.yaml and the hooks group compose against their schemas; typos fail; secrets stay out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.canary.cli import compose, spec_from_config
from harness.cli import main
from harness.errors import BadInput


@pytest.mark.parametrize("hooks", ["none", "haproxy"])
def test_canary_config_composes(hooks: str, tmp_path: Path) -> None:
    cfg = compose([f"logs={tmp_path}", f"hooks={hooks}"])
    spec = spec_from_config(cfg)
    assert spec.window_s == 3600 and spec.sequential.min_per_arm == 100
    assert (spec.haproxy is not None) == (hooks == "haproxy")


def test_typo_fails_and_missing_secret_says_how_to_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(BadInput, match="canary config"):
        compose([f"logs={tmp_path}", "window=5"])
    monkeypatch.delenv("CANARY_WEBHOOK_SECRET", raising=False)
    with pytest.raises(BadInput, match="export CANARY_WEBHOOK_SECRET"):
        spec_from_config(compose([f"logs={tmp_path}", "hooks.webhook.url=http://127.0.0.1:9/x"]))


def test_manifest_has_no_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CANARY_WEBHOOK_SECRET", "very-secret-value")
    spec = spec_from_config(compose([f"logs={tmp_path}", "hooks.webhook.url='http://u:pw@127.0.0.1:9/x?k=tok'",
                                     "drift.enabled=false"]))
    text = json.dumps(spec.manifest()) + repr(spec)
    assert "very-secret-value" not in text and "tok" not in text and "pw" not in text


def test_cli_bad_logs_dir_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["canary", f"logs={tmp_path / 'none'}", "drift.enabled=false", f"output_dir={tmp_path}"])
    assert code == 2 and "no such directory" in capsys.readouterr().err


def test_cli_runs_windows_and_exits_with_the_decision(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`python -m harness canary` on a finished log directory: stats alone breach -> INVESTIGATE (exit 10)."""
    from canary.test_evaluate import write_windows  # tests/ is on sys.path (pyproject pytest pythonpath)

    (tmp_path / "logs").mkdir()
    write_windows(tmp_path / "logs", range(4), "I cannot help with that.")
    code = main(["canary", f"logs={tmp_path / 'logs'}", "drift.enabled=false", f"output_dir={tmp_path}",
                 "window_s=10", "sequential.min_per_arm=20", "run_id=cli"])
    out = capsys.readouterr().out
    assert code == 10 and "canary: INVESTIGATE" in out
    assert (tmp_path / "canary" / "cli" / "decisions.parquet").exists()
