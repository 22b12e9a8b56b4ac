"""Typed schemas of every config group, registered with Hydra's ConfigStore.

YAML under ``configs/`` only sets values: a typo in a key fails at composition, a required value left
unset (``MISSING``) fails before any model loads. Stages never see these objects: ``cli.py`` turns
them into plain arguments.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, make_dataclass
from typing import Any, Dict, List, Optional  # noqa: UP035  (OmegaConf needs typing generics)

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf


@dataclass
class TrafficConfig:
    """Which captured traffic to replay."""

    path: str = MISSING
    limit: Optional[int] = None  # noqa: UP045  replay only the first N requests
    # over-long prompts (longer than an arm's max_model_len) above this share of the traffic: an error before any
    # generation (each would be an error row on both arms); below it, a warning with the count
    max_too_long_share: float = 0.01


@dataclass
class ServerConfig:
    """The ``server`` backend (harness/engines/server.py, docs/scale.md): local vLLM servers, or an endpoint."""

    base_url: Optional[str] = None  # noqa: UP045  an existing OpenAI-compatible server; null: start local vLLM servers
    model: Optional[str] = None  # noqa: UP045  the endpoint's model name (default: its only model, or the checkpoint)
    api_key_env: Optional[str] = None  # noqa: UP045  the environment variable holding the API key (never recorded)
    concurrency: int = 32  # requests in flight per server
    timeout_s: float = 120.0  # per request (and per attempt)
    retries: int = 3  # more attempts on 429, 5xx and connection errors, with exponential backoff
    backoff_s: float = 0.5  # the first retry's wait; doubled each attempt
    startup_timeout_s: float = 300.0  # a local server's /health must answer within this


@dataclass
class EngineConfig:
    """How an arm is served. ``backend`` names an engine in ``harness.engines.ENGINES``."""

    backend: str = "vllm"
    # Defaults fit a real checkpoint on a GPU; the CPU zoo sets its own in configs/arm/zoo_*.yaml.
    dtype: str = "auto"  # the checkpoint's torch_dtype (bf16 for most instruct models)
    quantization: Optional[str] = None  # noqa: UP045  fp8, awq, gptq, ...; null: as the checkpoint says (docs/gpu.md)
    max_model_len: Optional[int] = None  # noqa: UP045  null: the checkpoint's context length (config.json)
    gpu_memory_utilization: float = 0.9  # on CPU: share of host memory for the KV cache (0.1-0.25 there)
    enforce_eager: bool = False  # CUDA graphs on; the CPU zoo sets true
    structured_output: bool = False  # constrain outputs to the request's response_schema
    batch_size: int = 1024  # requests per replay batch (one Parquet part each)
    seed: int = 0
    extra: Dict[str, Any] = field(default_factory=dict)  # noqa: UP006  more engine keyword arguments
    tensor_parallel_size: int = 1  # GPUs per engine (vLLM tensor parallelism)
    # engines per arm (data parallelism): local vLLM servers (server backend) or engine actors (ray.enabled); the
    # in-process vllm backend serves with one
    replicas: int = 1
    devices: List[str] = field(default_factory=list)  # noqa: UP006  CUDA_VISIBLE_DEVICES per replica, e.g. ["0,1", "2,3"]
    server: ServerConfig = field(default_factory=ServerConfig)


@dataclass
class SamplingConfig:
    """Sampling for an arm. Per parameter, the first that is set wins: the override here (every request), the value the
    traffic captured, the ``default_*`` here (requests that did not capture it), the checkpoint's
    ``generation_config.json`` (what a vLLM server applies to a request without it), then greedy / 1.0 / up to
    ``max_model_len``. The report counts the requests replayed with each source."""

    temperature: Optional[float] = None  # noqa: UP045  override every request (0: greedy)
    top_p: Optional[float] = None  # noqa: UP045  override every request
    max_tokens: Optional[int] = None  # noqa: UP045  override every request
    default_temperature: Optional[float] = None  # noqa: UP045  only where the traffic has none
    default_top_p: Optional[float] = None  # noqa: UP045  only where the traffic has none
    default_max_tokens: Optional[int] = None  # noqa: UP045  only where the traffic has none
    seed: int = 0


@dataclass
class ArmConfig:
    """One side of the comparison: a checkpoint served one way, or outputs imported from a file."""

    checkpoint: Optional[str] = None  # noqa: UP045  local path or hub id
    # Parquet/JSONL of outputs keyed by request_id, an earlier run (RUN_DIR[:ARM]), or `traffic`: the production
    # responses the traffic captured (its `response` column)
    imported: Optional[str] = None  # noqa: UP045
    engine: EngineConfig = field(default_factory=EngineConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    system_prompt: Optional[str] = None  # noqa: UP045  replaces/sets the system message
    prompt_template: Optional[str] = None  # noqa: UP045  applied to the last user message, e.g. "{prompt}"


@dataclass
class GateConfig:
    """The alert policy (harness/gate.py, docs/gate.md): per metric and segment, a breach is a change the worse
    way beyond the metric's margin that the paired test finds significant after multiple-comparison control;
    breached families are counted into a verdict."""

    # per metric, e.g. `+gate.thresholds.refusal={absolute: 0.02}`: {absolute: x} or {relative: x} (checked in cli.py;
    # a plain dict so that Hydra's `+` can add one from the command line)
    thresholds: Dict[str, Dict[str, Optional[float]]] = field(default_factory=dict)  # noqa: UP006,UP045
    # per family, an absolute margin for its metrics without their own threshold, e.g. golden: 0.03 (points),
    # judge: 0.5 (scale points), drift: 0.15 (share below the A/A floor beyond the A/A level); else each metric's
    # declared default (harness/signals/*.py, docs/gate.md)
    margins: Dict[str, float] = field(default_factory=dict)  # noqa: UP006
    # a direction for a metric, per segment ("*": all): e.g. {fenced_code: {code: lower_is_better}} makes more fenced
    # code on the `code` route a degradation instead of a divergence; {refusal: {unsafe: higher_is_better}} makes
    # fewer refusals on the `unsafe` route a degradation (the catalog says fewer refusals is better)
    directions: Dict[str, Dict[str, str]] = field(default_factory=dict)  # noqa: UP006
    min_requests: int = 30  # fewer paired requests than this: the metric (or segment) is not gated
    alpha: float = 0.05  # error rate per signal family (false breaches; likewise false improvements)
    correction: str = "split"  # alpha split over each family's checks that can fire (the only procedure)
    power: float = 0.8  # power asked of the golden/judge sample to detect its margin, else INSUFFICIENT_DATA


@dataclass
class GoldenConfig:
    """A golden set (harness/golden/schema.py) replayed through both arms and scored; null: none."""

    path: Optional[str] = None  # noqa: UP045


@dataclass
class DriftConfig:
    """Embedding drift: old vs new output similarity per request, read against an A/A noise floor.

    The A/A arm is the baseline replayed once more with ``aa_perturbation`` applied: overrides of an arm,
    e.g. ``["engine.dtype=bfloat16"]`` when greedy, ``["sampling.seed=1"]`` when sampling; ``[]``: no A/A arm.
    ``aa_imported`` takes an A/A capture from a file instead. An imported baseline gets no A/A arm from
    ``aa_perturbation`` (replaying a file again gives a copy, not a noise floor): without ``aa_imported`` its
    divergence is reported, not gated.
    """

    enabled: bool = True
    model: str = "packaged:all-MiniLM-L6-v2"  # sentence-transformers model: packaged:NAME, local path or hub id
    device: Optional[str] = None  # noqa: UP045  default: cuda when available, else cpu
    aa_perturbation: List[str] = field(default_factory=list)  # noqa: UP006  dotlist, e.g. ["engine.dtype=bfloat16"]
    # an A/A arm imported instead: a second capture of the baseline version (another day, seed or replica), keyed
    # by the same request ids; needed for a floor when the baseline itself is imported (a copy of it is no floor);
    # `traffic`: the production responses the traffic captured (shadow logs: production is the baseline's capture)
    aa_imported: Optional[str] = None  # noqa: UP045
    aa_quantile: float = 0.05  # the floor is this quantile of A/A similarity
    # ... and at most this cosine: under greedy decoding the A/A quantile is 1.0 and "below the floor" would mean
    # "changed at all" (a one-token edit counted like a rewrite); MiniLM cosine above 0.98 is an edit of a token or two
    practical_floor: float = 0.98
    n_perm: int = 500  # permutations of the paired MMD test


@dataclass
class ReportConfig:
    """What the report shows."""

    top_pairs: int = 5
    max_chars: int = 600  # longer texts are cut in the report
    redact: bool = False  # show prompts and outputs as sha256 prefix + length (no production text)


@dataclass
class CriterionConfig:
    """One judged criterion: its name (metric ``judge_<name>``), what its scale means, and its direction."""

    name: str = MISSING  # lowercase identifier, e.g. accuracy
    description: str = MISSING  # what the judge rates; say what the top and bottom of the scale mean
    scale_min: int = 1
    scale_max: int = 5
    higher_is_better: bool = True


@dataclass
class RubricConfig:
    """The criteria rated in one judge call: 3 to 5 of them (split a longer rubric into several judges)."""

    name: str = ""
    criteria: List[CriterionConfig] = field(default_factory=list)  # noqa: UP006


@dataclass
class JudgeConfig:
    """LLM-as-judge (``harness.signals.judge``): a model served like an arm rates both arms' outputs.

    Criteria whose agreement with human labels (``annotations``) is below ``agreement_bar`` (quadratic-
    weighted kappa) are advisory: reported, never counted as a breach.
    """

    enabled: bool = False
    arm: ArmConfig = field(default_factory=ArmConfig)  # the judge model: checkpoint, engine, sampling
    rubric: RubricConfig = field(default_factory=RubricConfig)
    template_version: str = "v1"  # prompt templates in harness/signals/judge_prompts.py, recorded with every score
    pairwise: bool = True  # also compare the arms head to head, in both orders
    max_chars: int = 2000  # each request/answer text is cut to this many characters in the judge prompt
    max_unscored: float = 0.05  # unscored share of all judge answers above this: every criterion is advisory
    agreement_bar: float = 0.6  # the LOWER bound of the kappa interval needed to be gated (criteria: weighted)
    agreement_min_n: int = 20  # fewer matched annotations than this: the criterion stays uncalibrated
    annotations: Optional[str] = None  # noqa: UP045  CSV/Parquet: request_id, arm, criterion, label
    # the pairwise preference (docs/judge.md, "Admission"): counted only when, in both orders, the kappa's and the
    # accuracy's lower bounds clear agreement_bar / accuracy_bar, and a confidence threshold reaches trust_target
    accuracy_bar: float = 0.75
    agreement_level: float = 0.95  # two-sided level of the agreement intervals
    trust_target: float = 0.8  # selective trust: the admitted judgments' agreement (lower bound) to reach
    imported: Optional[str] = None  # noqa: UP045  an imported judge file (verdicts/scores) instead of the judge arm
    # the same judge's verdicts on labelled pairs outside this run (the imported file format, or an earlier run's
    # judge_pairwise.parquet): measured with the run's own labelled pairs for the admission
    calibration: Optional[str] = None  # noqa: UP045


@dataclass
class LoadConfig:
    """Open-loop timed replay (``replay.load``, harness/replay/timed.py, docs/load.md): each arm's traffic is sent at
    a schedule, never waiting for earlier responses (server backend only), and latency under that load is scored by
    the ``latency`` signal family."""

    # off: the closed-loop replay (``engine.server.concurrency`` in flight); timestamps: at the captured timestamps
    # divided by ``speedup``; constant: ``rate`` requests/s evenly; poisson: ``rate`` requests/s, exponential gaps
    mode: str = "off"
    speedup: float = 1.0  # timestamps: 10 = ten times faster than captured
    rate: Optional[float] = None  # noqa: UP045  constant / poisson: requests per second
    seed: int = 0  # poisson: the gaps' seed (both arms get the same schedule)
    max_requests: Optional[int] = None  # noqa: UP045  send at most this many (the rest: error rows `not_sent`)
    max_duration_s: Optional[float] = None  # noqa: UP045  send nothing scheduled later than this (not_sent)
    max_in_flight: int = 1024  # a safety cap on open requests; reaching it delays sends (seen as lateness)
    max_lateness_p99_s: float = 0.05  # schedule fidelity bound: p99 of (sent - scheduled) above it: latency untrusted
    slo_ttft_s: Optional[float] = None  # noqa: UP045  goodput: requests meeting every SLO set here, per second
    slo_tpot_s: Optional[float] = None  # noqa: UP045
    slo_e2e_s: Optional[float] = None  # noqa: UP045
    saturation_ratio: float = 1.5  # over-saturation: last quarter's median TTFT / first quarter's above this ...
    saturation_alpha: float = 0.01  # ... and a rising trend (Kendall's tau on send order) at this level
    repeat: int = 0  # a label for repeated runs of one config in a sweep (summarised with intervals); no effect


@dataclass
class ReplayConfig:
    """How the traffic is sent: ``load`` (off: closed loop, as fast as the engine takes it)."""

    load: LoadConfig = field(default_factory=LoadConfig)


@dataclass
class CacheConfig:
    """The generation cache (``harness.replay.cache``): served generations keyed by checkpoint fingerprint,
    output-affecting engine options and the prepared request; a re-run or a sweep generates only the misses
    (docs/sweeps.md)."""

    enabled: bool = True
    dir: str = "${output_dir}/.cache"  # default reports/.cache; `python -m harness cache clear` empties it


@dataclass
class RayConfig:
    """Replay and embed on Ray (harness/replay/ray.py, docs/scale.md): engine actors per arm, embedding actors."""

    enabled: bool = False
    address: Optional[str] = None  # noqa: UP045  null: start a local Ray here; `auto` or ray://HEAD:10001: join one
    num_cpus: Optional[int] = None  # noqa: UP045  a local Ray's CPUs (default: all)
    schedule_timeout_s: float = 600.0  # engine actors not running by then: an error saying what they asked for
    embed_actors: int = 1  # embedding actors for drift


@dataclass
class CIConfig:
    """What a CI job makes of the verdict (docs/ci.md): the verdicts that fail it exit with their code, the others
    (and PASS, and a signed-off HOLD_FOR_SIGNOFF or INVESTIGATE) exit 0. ``--fail-on V,V`` on the command line."""

    fail_on: List[str] = field(  # noqa: UP006
        default_factory=lambda: ["INVESTIGATE", "ROLLBACK", "HOLD_FOR_SIGNOFF", "INSUFFICIENT_DATA"])


@dataclass
class ExperimentConfig:
    """The root config: one experiment = traffic + two arms + gate policy. Each signal family that declares a
    settings schema adds its own group under its name (``golden``, ``drift``, ``judge``, yours):
    ``experiment_schema`` builds the root from them (``harness.spec.register_schemas``)."""

    name: str = MISSING
    traffic: TrafficConfig = field(default_factory=TrafficConfig)
    # the signal families scored (harness.signals.base.SIGNALS); each skips itself where it does not apply
    signals: List[str] = field(  # noqa: UP006
        default_factory=lambda: ["stats", "golden", "judge", "drift", "latency"])
    baseline: ArmConfig = field(default_factory=ArmConfig)
    candidate: ArmConfig = field(default_factory=ArmConfig)
    gate: GateConfig = field(default_factory=GateConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    cache: CacheConfig = field(default_factory=CacheConfig)
    ray: RayConfig = field(default_factory=RayConfig)
    ci: CIConfig = field(default_factory=CIConfig)
    replay: ReplayConfig = field(default_factory=ReplayConfig)
    output_dir: str = "reports"
    run_id: Optional[str] = None  # noqa: UP045  default: a timestamp


@dataclass
class SequentialConfig:
    """The canary's always-valid test (``harness.canary.sequential``): the mSPRT with a normal mixture."""

    alpha: float = 0.05  # error over every look of the canary, per family (split over its checks that can fire)
    tau_sd: float = 0.1  # mixture sd in units of the metric's sd: the standardized effect found fastest
    min_per_arm: int = 100  # fewer samples than this in either arm: the check is not gated (too_few)
    min_events: float = 10.0  # rates: fewer expected events (pooled rate x smaller arm) and the check is too_few


@dataclass
class CanaryGoldenConfig:
    """The golden set replayed against both endpoints on a schedule: a new slice of ``limit`` items every ``every``
    windows (each item once), scored like the offline golden family."""

    path: Optional[str] = None  # noqa: UP045  null: no golden replay
    every: int = 6  # windows between replays
    limit: int = 40  # items per replay
    control_url: Optional[str] = None  # noqa: UP045  OpenAI-compatible base URL of the control version
    canary_url: Optional[str] = None  # noqa: UP045  ... and of the canary version (not through the traffic split)
    model: Optional[str] = None  # noqa: UP045  the served model name (both endpoints); null: each one's first model
    max_tokens: int = 128
    timeout_s: float = 60.0


@dataclass
class CanaryDriftConfig:
    """Embedding shift against control: each output's mean cosine similarity to a fixed reference sample of control
    outputs (the first ``reference`` ones), compared between the arms with the mSPRT (a divergence)."""

    enabled: bool = True
    model: str = "packaged:all-MiniLM-L6-v2"
    reference: int = 200  # control outputs held out as the reference
    control_share: float = 1.0  # embed this share of control outputs (by request id hash); the canary's all
    device: Optional[str] = None  # noqa: UP045


@dataclass
class HAProxyHookConfig:
    """HAProxy's runtime API: on ROLLBACK, `set server <backend>/<server> weight 0` and `get weight` to read it back."""

    socket: Optional[str] = None  # noqa: UP045  the admin socket (`stats socket PATH mode 600 level admin`); null: off
    backend: str = "llm"
    server: str = "canary"


@dataclass
class WebhookHookConfig:
    """A signed webhook POST of every decision change (payload in docs/canary.md)."""

    url: Optional[str] = None  # noqa: UP045  null: off
    secret_env: str = "CANARY_WEBHOOK_SECRET"  # environment variable holding the HMAC secret (never in config)
    attempts: int = 5
    backoff_s: float = 0.5  # first retry delay; doubles each attempt
    timeout_s: float = 5.0


@dataclass
class HooksConfig:
    """How the canary reaches the traffic layer (configs/hooks/*.yaml)."""

    haproxy: HAProxyHookConfig = field(default_factory=HAProxyHookConfig)
    webhook: WebhookHookConfig = field(default_factory=WebhookHookConfig)


@dataclass
class CanaryMappingConfig:
    """Where the canary's fields are in the logged records (dotted paths; docs/canary.md, "Reading real logs")."""

    arm_field: str = "arm"  # e.g. response.model, metadata.upstream, server
    arm_values: Dict[str, str] = field(default_factory=dict)  # noqa: UP006  logged value -> control|canary
    segment_field: Optional[str] = None  # noqa: UP045  null: the segment column (metadata.segment in JSONL)
    request_id_field: Optional[str] = None  # noqa: UP045  null: request_id (Parquet), id (JSONL)


@dataclass
class CanaryJoinConfig:
    """The proxy's access log (JSONL) joined to the application's log by request id: the arm comes from the proxy."""

    logs: Optional[str] = None  # noqa: UP045  the proxy log directory; null: no join (the arm is in the logs)
    request_id_field: str = "request_id"  # HAProxy %ID, Envoy x-request-id
    arm_field: str = "server"  # HAProxy %s, Envoy %UPSTREAM_HOST%; mapped by mapping.arm_values
    wait_s: float = 60.0  # (follow) a record without its match after this long is counted as unmatched


@dataclass
class CanaryHealthConfig:
    """When `serve` answers not-healthy (HTTP 503) instead of a decision (docs/canary.md, "Fail closed")."""

    stale_windows: float = 2.0  # the newest window ended more than this many window lengths ago
    grace_s: Optional[float] = None  # noqa: UP045  no window yet this long after the start; null: 2 windows
    heartbeat_s: float = 60.0  # the evaluator's heartbeat is older than this


@dataclass
class CanaryConfig:
    """The root config of `python -m harness canary` (configs/canary.yaml; docs/canary.md)."""

    name: str = "canary"
    logs: str = MISSING  # the directory the traffic layer's logger writes (Parquet / JSONL; the arm: `mapping`, `join`)
    window_s: float = 3600.0  # tumbling windows, evaluated on all data so far
    observation_windows: int = 24  # windows without a breach before PROMOTE
    max_windows: Optional[int] = None  # noqa: UP045  stop after this many windows (default 3 x observation)
    start: Optional[str] = None  # noqa: UP045  ISO-8601 start of window 0; default: the first record's time
    follow: bool = False  # keep watching the directory (wall clock) instead of evaluating what is there and exiting
    poll_s: float = 5.0
    sequential: SequentialConfig = field(default_factory=SequentialConfig)
    gate: GateConfig = field(default_factory=GateConfig)
    golden: CanaryGoldenConfig = field(default_factory=CanaryGoldenConfig)
    drift: CanaryDriftConfig = field(default_factory=CanaryDriftConfig)
    hooks: HooksConfig = field(default_factory=HooksConfig)
    mapping: CanaryMappingConfig = field(default_factory=CanaryMappingConfig)
    join: CanaryJoinConfig = field(default_factory=CanaryJoinConfig)
    max_bad_share: float = 0.01  # log records the canary cannot use (quarantined, unmatched) above this: INVESTIGATE
    health: CanaryHealthConfig = field(default_factory=CanaryHealthConfig)
    output_dir: str = "reports"
    run_id: Optional[str] = None  # noqa: UP045  give the same one to resume a stopped evaluator


@dataclass
class WatchProbeConfig:
    """The probe set, drawn once (the first run) and frozen with its fingerprint (docs/watch.md)."""

    traffic: Optional[str] = None  # noqa: UP045  captured traffic (Parquet) to draw from
    golden: Optional[str] = None  # noqa: UP045  a golden set to draw from (its references give paired deltas)
    per_segment: int = 6  # prompts drawn per segment (all of a segment when it has fewer)
    seed: int = 0


@dataclass
class WatchSamplingConfig:
    """What each probe run sends per prompt: k samples at the production sampling settings plus greedy passes."""

    k: int = 10  # sampled completions per prompt
    greedy: int = 2  # greedy passes per prompt (two or more: the endpoint's own nondeterminism is in the null)
    temperature: float = 0.7  # as production sends it
    top_p: Optional[float] = None  # noqa: UP045  null: not sent (the endpoint's default applies, as for clients)
    max_tokens: int = 48


@dataclass
class WatchTestConfig:
    """The equality tests and the combined decision (harness/watch/stats.py, docs/watch.md)."""

    alpha: float = 0.01  # false-CHANGED rate over `schedule_checks` checks (per-check budget alpha / schedule_checks)
    schedule_checks: int = 1  # checks planned against one reference (e.g. 30 for a month of daily checks)
    kernel: str = "hamming"  # string kernel of the MMD (harness.watch.stats.KERNELS)
    n_perm: int = 2000  # permutations (raised so the smallest p-value can reach the per-test level)
    max_error_share: float = 0.05  # failed requests above this share in either run: INCONCLUSIVE
    min_prompts: int = 10  # prompts with complete samples in both runs below this: INCONCLUSIVE
    seed: int = 0  # permutations


@dataclass
class WatchConfig:
    """The root config of `python -m harness watch` (configs/watch.yaml; docs/watch.md)."""

    name: str = "watch"  # the watch's folder: <output_dir>/watch/<name>/
    arm: ArmConfig = field(default_factory=ArmConfig)  # the pinned endpoint (engine.backend=server) or checkpoint
    probe: WatchProbeConfig = field(default_factory=WatchProbeConfig)
    sampling: WatchSamplingConfig = field(default_factory=WatchSamplingConfig)
    test: WatchTestConfig = field(default_factory=WatchTestConfig)
    webhook: WebhookHookConfig = field(default_factory=WebhookHookConfig)  # POSTed on CHANGED (signed)
    output_dir: str = "reports"
    run_id: Optional[str] = None  # noqa: UP045


def shipped(relative: str) -> str:
    """``${pkg:replays/NAME}`` in a config: the absolute path of a file shipped inside the package."""
    from harness import PACKAGE_DIR, data_dir

    top, _, rest = relative.partition("/")
    return str(data_dir(top) / rest if top in ("configs", "replays") else PACKAGE_DIR / relative)


if not OmegaConf.has_resolver("pkg"):  # any config read with these schemas may name shipped files
    OmegaConf.register_new_resolver("pkg", shipped)


def experiment_schema(groups: Mapping[str, type]) -> type:
    """The root schema: ``ExperimentConfig`` plus one field per plug-in settings group (name -> dataclass)."""
    return make_dataclass("ExperimentConfig", [(k, t, field(default_factory=t)) for k, t in groups.items()],
                          bases=(ExperimentConfig,))


def register(groups: Mapping[str, type] | None = None) -> type:
    """Register the schemas so YAML files can name them in their defaults lists; ``groups``: the plug-in settings
    groups (``harness.spec.register_schemas`` passes the signal families'). Returns the root schema."""
    root = experiment_schema(groups or {})
    cs = ConfigStore.instance()
    cs.store(name="experiment_schema", node=root)
    cs.store(group="arm", name="arm_schema", node=ArmConfig)
    cs.store(group="gate", name="gate_schema", node=GateConfig)
    for name, schema in (groups or {}).items():
        cs.store(group=name, name=f"{name}_schema", node=schema)
    cs.store(name="canary_schema", node=CanaryConfig)
    cs.store(group="hooks", name="hooks_schema", node=HooksConfig)
    cs.store(name="watch_schema", node=WatchConfig)
    return root
