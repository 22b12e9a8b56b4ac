"""The typed run spec and the manifest: what a run was asked to do, and what it found on the way.

``RunSpec`` is built once from the Hydra config (``run_spec``, called by ``cli.py``: the one place config becomes
plain values, the gate's ``Policy`` and the arms the signal families ask for included); stages take it (or plain
values from it), never a ``DictConfig``.
``Manifest`` is the spec plus provenance (traffic and checkpoint hashes, package
versions, engine timings, cache keys); ``manifest.json`` is its serialization, and ``read_manifest`` gives a stage
that re-reads a run the same typed objects back. This module owns the format: nobody else reads manifest keys.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from harness.config import ArmConfig, GateConfig, LoadConfig, RayConfig, ReportConfig
from harness.errors import BadInput
from harness.gate import FAILING, Policy, Threshold, check_fail_on, policy_from_json, policy_to_json
from harness.signals.registry import family, settings_schemas
from harness.store import RunDir

MANIFEST_VERSION = 4
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
    """Everything a run was asked to do. ``arms``: baseline, candidate and the arms the families add (drift's A/A
    arm); ``settings``: each scored family's typed settings group (``Family.settings``), by family name."""

    name: str
    traffic_path: str
    limit: int | None
    arms: Mapping[str, ArmConfig]
    signals: tuple[str, ...]
    policy: Policy
    settings: Mapping[str, Any] = field(default_factory=dict)
    report: ReportConfig = field(default_factory=ReportConfig)
    cache_dir: str | None = None  # None: the generation cache is off
    output_dir: str = "reports"
    run_id: str | None = None
    sweep: SweepJob | None = None
    ray: RayConfig = field(default_factory=RayConfig)  # enabled: replay and embed on Ray (harness.replay.ray)
    fail_on: tuple[str, ...] = FAILING  # the exit policy (ci.fail_on): verdicts that fail a CI job
    max_too_long_share: float = 0.01  # traffic.max_too_long_share: over-long prompts above this share: bad input
    load: LoadConfig = field(default_factory=LoadConfig)  # replay.load: open-loop timed replay (mode off: none)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "traffic_path": self.traffic_path, "limit": self.limit,
                "arms": {a: asdict(arm) for a, arm in self.arms.items()}, "signals": list(self.signals),
                "policy": policy_to_json(self.policy),
                "settings": {k: asdict(v) for k, v in self.settings.items()}, "report": asdict(self.report),
                "cache_dir": self.cache_dir, "output_dir": self.output_dir, "run_id": self.run_id,
                "sweep": asdict(self.sweep) if self.sweep else None, "ray": asdict(self.ray),
                "fail_on": list(self.fail_on), "max_too_long_share": self.max_too_long_share,
                "load": asdict(self.load)}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> RunSpec:
        sweep = obj.get("sweep")
        schemas = settings_schemas()
        settings = {k: _typed(schemas[k], v) if k in schemas else v for k, v in obj["settings"].items()}
        return cls(name=obj["name"], traffic_path=obj["traffic_path"], limit=obj["limit"],
                   arms={a: _typed(ArmConfig, v) for a, v in obj["arms"].items()}, signals=tuple(obj["signals"]),
                   policy=policy_from_json(obj["policy"]), settings=settings,
                   report=_typed(ReportConfig, obj["report"]), cache_dir=obj["cache_dir"],
                   output_dir=obj["output_dir"], run_id=obj["run_id"],
                   sweep=SweepJob(**{**sweep, "overrides": tuple(sweep["overrides"])}) if sweep else None,
                   ray=_typed(RayConfig, obj.get("ray") or {}), fail_on=tuple(obj.get("fail_on", FAILING)),
                   max_too_long_share=obj.get("max_too_long_share", 0.01),
                   load=_typed(LoadConfig, obj.get("load") or {}))


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


@dataclass
class Manifest:
    """The spec plus provenance; ``manifest.json`` (``to_json``) and ``read_manifest`` (``from_json``)."""

    spec: RunSpec
    run_id: str
    created_at: str
    traffic: TrafficRecord
    arms: dict[str, ArmRecord]
    records: dict[str, Any]  # per signal family, what it checked before any engine started (``Family.record``)
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
            "records": self.records, "versions": self.versions,
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
        return cls(spec=RunSpec.from_json(obj["spec"]), run_id=obj["run_id"], created_at=obj["created_at"],
                   traffic=TrafficRecord(**obj["traffic"]), arms={a: ArmRecord(**r) for a, r in obj["arms"].items()},
                   records=dict(obj["records"]), versions=obj["versions"],
                   determinism=obj["determinism"], config=obj["config"], resumed_at=list(obj["resumed_at"]),
                   load_seconds=obj["load_seconds"], replay=obj["replay"], cache_keys=obj["cache"]["arm_keys"])


def handmade_manifest(spec: RunSpec, run_id: str, requests: int,
                      records: dict[str, Any] | None = None) -> Manifest:
    """The manifest of a run directory written without a replay (benchmarks, tests): each arm is named by itself,
    the traffic is ``spec.traffic_path``."""
    from harness.traffic import traffic_fingerprint

    traffic = TrafficRecord(spec.traffic_path, traffic_fingerprint(spec.traffic_path), requests, spec.limit)
    return Manifest(spec=spec, run_id=run_id, created_at="", traffic=traffic,
                    arms={a: ArmRecord(a, "handmade", "") for a in spec.arms}, records=records or {}, versions={},
                    determinism={}, config={})


def read_manifest(run: RunDir) -> Manifest:
    """The run's manifest, typed."""
    path = run.path / "manifest.json"
    return Manifest.from_json(json.loads(path.read_text()), where=str(path))


def write_manifest(run: RunDir, manifest: Manifest) -> None:
    run.write_json("manifest.json", manifest.to_json())


def register_schemas() -> type:
    """Register every config schema with Hydra, the signal families' settings groups included; returns the root."""
    from harness.config import register

    return register(settings_schemas())


def policy(g: GateConfig) -> Policy:
    """The gate policy from the ``gate`` config group (plain values; the gate never sees the config).

    Raises:
        BadInput: a value out of its set (correction, direction, threshold shape), naming the key and the fix.
    """
    if g.correction != "split":
        raise BadInput(f"gate.correction: expected split, found {g.correction!r}. Fix: set gate.correction=split (the "
                       "three-zone rule splits alpha over each family's checks that can fire; docs/gate.md).")
    for metric, by_segment in g.directions.items():
        for segment, d in by_segment.items():
            if d not in ("higher_is_better", "lower_is_better"):
                raise BadInput(f"gate.directions.{metric}.{segment}: expected higher_is_better or "
                               f"lower_is_better, found {d!r}. Fix: set one of them.")
    for metric, t in g.thresholds.items():
        if set(t) - {"absolute", "relative"} or sum(t.get(k) is not None for k in ("absolute", "relative")) != 1:
            raise BadInput(f"gate.thresholds.{metric}: expected {{absolute: x}} or {{relative: x}}, found "
                           f"{dict(t)}. Fix: give exactly one of them.")
    return Policy(thresholds={k: Threshold(t.get("absolute"), t.get("relative")) for k, t in g.thresholds.items()},
                  margins=dict(g.margins), min_requests=g.min_requests, alpha=g.alpha, correction=g.correction,
                  power=g.power, directions={k: dict(v) for k, v in g.directions.items()})


def default_policy() -> Policy:
    """The policy of ``configs/gate/default.yaml`` as a run builds it (for benchmarks that gate like a run)."""
    from omegaconf import OmegaConf

    from harness import CONFIG_DIR

    return policy(OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(GateConfig),  # type: ignore[arg-type]
                                                      OmegaConf.load(CONFIG_DIR / "gate" / "default.yaml"))))


def check_known_keys(dcfg: Any) -> None:
    """Refuse keys the schema does not have, however they were added (Hydra's ``+key=value`` opens the config for
    new keys; a typo there would otherwise be ignored silently). Keys under dict-typed settings (``engine.extra``,
    ``gate.thresholds``, ...) stay free.

    Raises:
        omegaconf.errors.ConfigKeyError: naming the key (the CLI exits 2 with it).
    """
    from omegaconf import OmegaConf

    OmegaConf.merge(OmegaConf.structured(OmegaConf.get_type(dcfg)), OmegaConf.to_container(dcfg))


LOAD_MODES = ("off", "timestamps", "constant", "poisson")


def check_load(load: LoadConfig, arms: Mapping[str, ArmConfig], ray: bool = False) -> LoadConfig:
    """``replay.load`` checked against the arms: a known mode, a rate where the mode needs one, and every generated
    arm on the server backend (only it streams; docs/load.md).

    Raises:
        BadInput: naming the key and the fix.
    """
    if load.mode not in LOAD_MODES:
        raise BadInput(f"replay.load.mode={load.mode!r} is not one of {list(LOAD_MODES)}. Fix: set one of them.")
    if load.mode == "off":
        return load
    if load.mode in ("constant", "poisson") and not (load.rate and load.rate > 0):
        raise BadInput(f"replay.load.mode={load.mode} needs replay.load.rate (requests per second, > 0); it is "
                       f"{load.rate}. Fix: add replay.load.rate=R.")
    if load.speedup <= 0:
        raise BadInput(f"replay.load.speedup={load.speedup}: must be > 0. Fix: 1 replays at the captured pace.")
    if ray:
        raise BadInput("replay.load (timed replay) runs in this process, not on Ray. Fix: ray.enabled=false.")
    for name, arm in arms.items():
        if not arm.imported and arm.engine.backend != "server":
            raise BadInput(f"replay.load.mode={load.mode}: arm {name} is served by engine.backend="
                           f"{arm.engine.backend}, and only the server backend streams timed requests. Fix: "
                           f"{name}.engine.backend=server (or replay.load.mode=off).")
    return load


def run_spec(dcfg: Any, sweep: SweepJob | None = None) -> RunSpec:
    """The typed ``RunSpec`` from the composed Hydra config: the one place config becomes plain values.

    Each family the experiment scores brings its settings group (``spec.settings[name]``) and may add arms
    (``Family.arms``: drift's A/A arm, the baseline with ``drift.aa_perturbation`` applied, or ``drift.aa_imported``).
    """
    from pathlib import Path

    from omegaconf import OmegaConf

    cfg: Any = OmegaConf.to_object(dcfg)
    arms: dict[str, ArmConfig] = {"baseline": cfg.baseline, "candidate": cfg.candidate}
    settings: dict[str, Any] = {}
    for name in cfg.signals:
        fam = family(name)
        if fam.settings is None:
            continue
        settings[name] = getattr(cfg, name)
        if fam.arms is not None:
            arms.update(fam.arms(settings[name], dcfg.baseline))
    for arm in arms.values():  # `imported: traffic`: the production responses the traffic captured
        if arm.imported == "traffic":
            arm.imported = f"traffic:{cfg.traffic.path}"
    return RunSpec(
        name=cfg.name, traffic_path=cfg.traffic.path, limit=cfg.traffic.limit, arms=arms, signals=tuple(cfg.signals),
        policy=policy(cfg.gate), settings=settings, report=cfg.report,
        cache_dir=str(Path(cfg.cache.dir).resolve()) if cfg.cache.enabled else None, output_dir=cfg.output_dir,
        run_id=cfg.run_id or (f"{sweep.id}-j{sweep.job}" if sweep else None), sweep=sweep, ray=cfg.ray,
        fail_on=check_fail_on(cfg.ci.fail_on), max_too_long_share=cfg.traffic.max_too_long_share,
        load=check_load(cfg.replay.load, arms, cfg.ray.enabled))
