"""The typed run spec and the manifest: what a run was asked to do, and what it found on the way.

``RunSpec`` is built once, at the entry point (``cli.py``), from the Hydra config; stages take it (or plain values
from it), never a ``DictConfig``. ``Manifest`` is the spec plus provenance (traffic and checkpoint hashes, package
versions, engine timings, cache keys); ``manifest.json`` is its serialization, and ``read_manifest`` gives a stage
that re-reads a run the same typed objects back. This module owns the format: nobody else reads manifest keys.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from harness.config import ArmConfig, DriftConfig, JudgeConfig, RayConfig, ReportConfig
from harness.errors import BadInput
from harness.gate import Policy, policy_from_json, policy_to_json
from harness.store import RunDir

MANIFEST_VERSION = 3
ARMS = ("baseline", "candidate")
"""The two arms the gate compares (an A/A arm, when the run has one, is only read against the baseline)."""
T = TypeVar("T")


def _typed(cls: type[T], obj: Mapping[str, Any]) -> T:
    """A config dataclass (nested ones included) from its ``asdict``."""
    from omegaconf import OmegaConf

    return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(cls), dict(obj)))  # type: ignore[return-value]


@dataclass(frozen=True)
class SweepJob:
    """This run's place in a sweep (a Hydra multirun)."""

    id: str
    dir: str
    job: int
    overrides: tuple[str, ...]


@dataclass(frozen=True)
class RunSpec:
    """Everything a run was asked to do. ``arms``: baseline, candidate and, when the run has one, the A/A arm."""

    name: str
    traffic_path: str
    limit: int | None
    arms: Mapping[str, ArmConfig]
    signals: tuple[str, ...]
    policy: Policy
    drift: DriftConfig
    golden_path: str | None = None
    judge: JudgeConfig | None = None  # None: no judge
    report: ReportConfig = field(default_factory=ReportConfig)
    cache_dir: str | None = None  # None: the generation cache is off
    output_dir: str = "reports"
    run_id: str | None = None
    sweep: SweepJob | None = None
    ray: RayConfig = field(default_factory=RayConfig)  # enabled: replay and embed on Ray (harness.replay_ray)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "traffic_path": self.traffic_path, "limit": self.limit,
                "arms": {a: asdict(arm) for a, arm in self.arms.items()}, "signals": list(self.signals),
                "policy": policy_to_json(self.policy), "drift": asdict(self.drift), "golden_path": self.golden_path,
                "judge": asdict(self.judge) if self.judge else None, "report": asdict(self.report),
                "cache_dir": self.cache_dir, "output_dir": self.output_dir, "run_id": self.run_id,
                "sweep": asdict(self.sweep) if self.sweep else None, "ray": asdict(self.ray)}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> RunSpec:
        sweep = obj.get("sweep")
        return cls(name=obj["name"], traffic_path=obj["traffic_path"], limit=obj["limit"],
                   arms={a: _typed(ArmConfig, v) for a, v in obj["arms"].items()}, signals=tuple(obj["signals"]),
                   policy=policy_from_json(obj["policy"]), drift=_typed(DriftConfig, obj["drift"]),
                   golden_path=obj["golden_path"], judge=_typed(JudgeConfig, obj["judge"]) if obj["judge"] else None,
                   report=_typed(ReportConfig, obj["report"]), cache_dir=obj["cache_dir"],
                   output_dir=obj["output_dir"], run_id=obj["run_id"],
                   sweep=SweepJob(**{**sweep, "overrides": tuple(sweep["overrides"])}) if sweep else None,
                   ray=_typed(RayConfig, obj.get("ray") or {}))


@dataclass(frozen=True)
class TrafficRecord:
    """The traffic file as replayed: resolved path, sha256, request count (after ``limit``)."""

    path: str
    sha256: str
    requests: int
    limit: int | None


@dataclass(frozen=True)
class ArmRecord:
    """Where an arm's outputs come from: checkpoint or imported file, its backend and sha256 fingerprint;
    ``imported``: the coverage of an imported file (``harness.engines.imported.imported_coverage``)."""

    source: str
    backend: str
    fingerprint: str
    imported: dict[str, Any] | None = None


@dataclass(frozen=True)
class GoldenRecord:
    """The eval references of the run: a golden set (path, sha256, items, or why it was skipped) and the reference
    checks the traffic itself carries (``references``: how many requests have them); ``coverage``: per imported arm,
    how many golden items its file answers (``matched``) and not (``missing_in_import``)."""

    path: str | None
    sha256: str | None
    items: int | None = None
    skipped: str | None = None
    references: int = 0
    coverage: dict[str, dict[str, int]] = field(default_factory=dict)


@dataclass
class Manifest:
    """The spec plus provenance; ``manifest.json`` (``to_json``) and ``read_manifest`` (``from_json``)."""

    spec: RunSpec
    run_id: str
    created_at: str
    traffic: TrafficRecord
    arms: dict[str, ArmRecord]
    golden: GoldenRecord | None
    versions: dict[str, str]
    determinism: dict[str, Any]
    config: dict[str, Any]  # the resolved Hydra config, for people reading the file
    resumed_at: list[str] = field(default_factory=list)
    load_seconds: dict[str, float] = field(default_factory=dict)
    replay: dict[str, dict[str, Any]] = field(default_factory=dict)  # per replayed arm: batches, cache hits, ...
    cache_keys: dict[str, str] = field(default_factory=dict)  # per cached arm: its generation-cache key

    @property
    def experiment(self) -> str:
        return self.spec.name

    def arm_settings(self, arm: str) -> dict[str, Any]:
        """What decides an arm's generations (for resume checks): source, backend, fingerprint, its config, less what
        only changes how fast it is served (engines per arm, devices, the HTTP client's limits)."""
        config = asdict(self.spec.arms[arm])
        for key in ("replicas", "devices"):
            config["engine"].pop(key)
        config["engine"]["server"] = {k: config["engine"]["server"][k] for k in ("base_url", "model")}
        return {**asdict(self.arms[arm]), "config": config}

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "manifest_version": MANIFEST_VERSION, "experiment": self.experiment, "run_id": self.run_id,
            "created_at": self.created_at, "resumed_at": self.resumed_at, "spec": self.spec.to_json(),
            "traffic": asdict(self.traffic), "arms": {a: asdict(r) for a, r in self.arms.items()},
            "golden": asdict(self.golden) if self.golden else None, "versions": self.versions,
            "determinism": self.determinism, "config": self.config, "load_seconds": self.load_seconds,
            "replay": self.replay,
            "cache": {"enabled": self.spec.cache_dir is not None, "dir": self.spec.cache_dir,
                      "arm_keys": self.cache_keys}}
        if self.spec.sweep is not None:
            out["sweep"] = asdict(self.spec.sweep)
        return out

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], where: str = "manifest.json") -> Manifest:
        """Raises BadInput for a manifest of another format version."""
        if obj.get("manifest_version") != MANIFEST_VERSION:
            raise BadInput(f"{where}: manifest format {obj.get('manifest_version', 'before 3')}, this version of the "
                           f"harness reads format {MANIFEST_VERSION}. Fix: replay the experiment again (the "
                           "generation cache makes it cheap), or read it with the version that wrote it.")
        golden = obj["golden"]
        return cls(spec=RunSpec.from_json(obj["spec"]), run_id=obj["run_id"], created_at=obj["created_at"],
                   traffic=TrafficRecord(**obj["traffic"]), arms={a: ArmRecord(**r) for a, r in obj["arms"].items()},
                   golden=GoldenRecord(**golden) if golden else None, versions=obj["versions"],
                   determinism=obj["determinism"], config=obj["config"], resumed_at=list(obj["resumed_at"]),
                   load_seconds=obj["load_seconds"], replay=obj["replay"], cache_keys=obj["cache"]["arm_keys"])


def handmade_manifest(spec: RunSpec, run_id: str, requests: int, golden: GoldenRecord | None = None) -> Manifest:
    """The manifest of a run directory written without a replay (benchmarks, tests): each arm is named by itself,
    the traffic is ``spec.traffic_path``."""
    from harness.traffic import traffic_fingerprint

    traffic = TrafficRecord(spec.traffic_path, traffic_fingerprint(spec.traffic_path), requests, spec.limit)
    return Manifest(spec=spec, run_id=run_id, created_at="", traffic=traffic,
                    arms={a: ArmRecord(a, "handmade", "") for a in spec.arms}, golden=golden, versions={},
                    determinism={}, config={})


def read_manifest(run: RunDir) -> Manifest:
    """The run's manifest, typed."""
    path = run.path / "manifest.json"
    return Manifest.from_json(json.loads(path.read_text()), where=str(path))


def write_manifest(run: RunDir, manifest: Manifest) -> None:
    run.write_json("manifest.json", manifest.to_json())
