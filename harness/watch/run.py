"""One watch check top to bottom: the frozen probe set, a probe run, the test against the reference, the files.

Layout of ``<output_dir>/watch/<name>/``::

    watch.json                   probe fingerprint, the reference run id, what is watched, when it started
    probe.parquet                the frozen probe set (probe.py)
    runs/<run_id>/samples.parquet one row per request (sample.py)
    runs/<run_id>/run.json       the run's settings, endpoint, requests, tokens, seconds
    runs/<run_id>/check.json     the decision and every test (check.py); absent for the reference run
    runs/<run_id>/check.md       the same in words (report.py)

The first run is the reference snapshot (its decision is ``REFERENCE``, exit code 0); later runs are tested
against it. A run whose ``samples.parquet`` exists (same ``run_id``) is not sent again: the check is recomputed.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import BadInput
from harness.store import RunDir
from harness.watch import probe as probe_set
from harness.watch.check import CheckSettings, compare
from harness.watch.sample import Settings, read_run, run_probes, write_run

if TYPE_CHECKING:
    from harness.config import ArmConfig
    from harness.engines.base import Engine

log = logging.getLogger(__name__)
REFERENCE = "REFERENCE"


@dataclass(frozen=True)
class WatchSpec:
    """The typed watch: what is watched, the probe source, the sampling, the tests, where it goes."""

    name: str
    arm: ArmConfig
    traffic: str | None
    golden: str | None
    per_segment: int
    probe_seed: int
    sampling: Settings
    test: CheckSettings
    output_dir: Path
    run_id: str | None


def watch_dir(output_dir: Path, name: str) -> Path:
    return Path(output_dir) / "watch" / name


def target(arm: ArmConfig) -> str:
    """What is watched, for records: the endpoint URL and model name, or the checkpoint and dtype."""
    s = arm.engine.server
    if arm.engine.backend == "server" and s.base_url:
        return f"{s.base_url.rstrip('/')} model={s.model or '(its only model)'}"
    return f"{arm.checkpoint} ({arm.engine.backend}, dtype {arm.engine.dtype})"


def _state(spec: WatchSpec) -> tuple[dict[str, Any], list[probe_set.Probe]]:
    """watch.json and the probe set: drawn and frozen on the first run, read back and verified after."""
    root = watch_dir(spec.output_dir, spec.name)
    meta_path = root / "watch.json"
    if not meta_path.is_file():
        probes = probe_set.draw(spec.traffic, spec.golden, spec.per_segment, spec.probe_seed)
        fp = probe_set.write(probes, root / "probe.parquet")
        meta = {"name": spec.name, "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "probe_fingerprint": fp, "probe_source": {"traffic": spec.traffic, "golden": spec.golden,
                                                          "per_segment": spec.per_segment, "seed": spec.probe_seed},
                "prompts": len(probes), "target": target(spec.arm), "reference": None}
        write_meta(meta_path, meta)
        log.info("watch %s: probe set of %d prompts frozen (%s)", spec.name, len(probes), fp[:12])
        return meta, probes
    import json

    meta = json.loads(meta_path.read_text())
    return meta, probe_set.read(root / "probe.parquet", meta["probe_fingerprint"])


def write_meta(path: Path, meta: dict[str, Any]) -> None:
    """``watch.json``, written atomically."""
    RunDir(path.parent.parent, path.parent.name, "").write_json(path.name, meta)


def run_watch(spec: WatchSpec, engine: Engine | None = None) -> tuple[str, RunDir, dict[str, Any]]:
    """Send one probe run (through ``engine`` when given: one already started for the arm) and test it against the
    reference; returns (decision, run dir, check record)."""
    meta, probes = _state(spec)
    root = watch_dir(spec.output_dir, spec.name)
    run_id = spec.run_id or dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ") + f"-{random.getrandbits(16):04x}"
    run = RunDir(root, "runs", run_id)
    if (run.path / "samples.parquet").is_file():
        log.info("watch %s: run %s already sent; testing it again", spec.name, run_id)
        info = run.read_json("run.json")
    else:
        rows, seconds = run_probes(spec.arm, probes, spec.sampling, random.SystemRandom().randrange(2**31), engine)
        info = {"run_id": run_id, "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "target": target(spec.arm), "sampling": asdict(spec.sampling), "engine_s": round(seconds, 2),
                "requests": len(rows), "prompt_tokens": sum(r["prompt_tokens"] or 0 for r in rows),
                "output_tokens": sum(r["output_tokens"] or 0 for r in rows),
                "errors": sum(1 for r in rows if r["error"]), "probe_fingerprint": meta["probe_fingerprint"]}
        write_run(run, rows, info)
    if meta["reference"] is None or meta["reference"] == run_id:
        meta["reference"] = run_id
        write_meta(root / "watch.json", meta)
        record = {"decision": REFERENCE, "run_id": run_id, "reference": run_id, "run": info,
                  "reasons": ["the first run of this watch: stored as the reference snapshot"]}
        run.write_json("check.json", record)
        return REFERENCE, run, record
    ref = RunDir(root, "runs", meta["reference"])
    if not (ref.path / "samples.parquet").is_file():
        raise BadInput(f"{ref.path}/samples.parquet: the reference run of watch {spec.name!r} is missing. Fix: "
                       "restore it, or start a new watch (another name=).")
    record = compare(probes, read_run(ref), read_run(run), spec.test)
    ref_info = ref.read_json("run.json")
    warnings = [f"sampling differs from the reference's: {k} {ref_info['sampling'].get(k)} -> {v}"
                for k, v in info["sampling"].items() if ref_info["sampling"].get(k) != v]
    if ref_info.get("target") != info.get("target"):
        warnings.append(f"target differs from the reference's: {ref_info.get('target')} -> {info.get('target')}")
    record = {**record, "run_id": run_id, "reference": meta["reference"], "name": spec.name, "run": info,
              "reference_run": ref_info, "warnings": warnings}
    run.write_json("check.json", record)
    return str(record["decision"]), run, record
