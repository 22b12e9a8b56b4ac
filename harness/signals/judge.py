"""LLM-as-judge: a model served by the engine layer rates both arms' outputs on a rubric.

Pointwise, each output of the baseline and the candidate gets one score per criterion (metric
``judge_<criterion>``); pairwise, the two outputs of a request are compared in both orders and a
preference counts only when both orders agree (``judge_preferred``; the rest is tie or inconsistent).
Answers are constrained to a JSON schema (vLLM structured outputs); one that still cannot be used is
unscored, with its reason and raw text kept (``judge_unscored``). Rows follow ``SIGNAL_SCHEMA``, so
``summary.sql`` computes paired deltas and the gate can gate them; criteria below the agreement bar with
human labels (or without labels) are *advisory*: their metrics must not be gated.

Files written in the run directory: ``judge_scores`` (request x arm x criterion: score or null,
unscored_reason, raw_text, template_version, rubric_sha, judge_fingerprint), ``judge_pairwise`` (request:
verdict_ab, verdict_ba, preference, raw texts), ``judge_batches`` (engine seconds and tokens per batch),
``judge_pairwise_summary`` (``harness/analysis/judge_pairwise.sql``), ``judge_agreement`` and ``judge.json``.
When ``judge.json`` holds the same key (settings, judge fingerprint, generations) the engine is not run again:
``python -m harness report RUN_DIR`` rebuilds everything from the files.

As a signal family (``JudgeSignal``, role ``eval``; ``judge_unscored`` is a ``degradation``): default margins
0.25 scale points for scores and preferences (``gate.margins.judge``), 5 points for ``judge_unscored``. When the
unscored share of all judge answers is above ``judge.max_unscored``, every criterion is advisory for that run (the
judge's numbers are not trusted), and ``verdict.json`` says so under ``judge``.

``JudgeError`` (a ``ValueError``) is a bad rubric, config or annotation file: exit code 2 in ``cli.py``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pyarrow as pa

from harness.config import ArmConfig, JudgeConfig
from harness.engines.base import PreparedRequest, capabilities, request_seed
from harness.engines.checkpoints import fingerprint
from harness.signals import judge_prompts as jp
from harness.signals import judge_tables as jt
from harness.signals.base import Family, MetricSpec, ScoreInputs
from harness.signals.judge_pass import BATCHES_SCHEMA as BATCHES_SCHEMA  # re-exported
from harness.signals.judge_pass import engine_rows, imported_rows
from harness.signals.judge_pass import request_text as request_text  # re-exported (bench/judge.py)
from harness.signals.judge_settings import JudgeSettings
from harness.store import RunDir
from harness.traffic import Request

if TYPE_CHECKING:
    from harness.gate import Check, Policy
    from harness.spec import RunSpec

log = logging.getLogger(__name__)
JUDGE_MAX_TOKENS = 128
SCORES_SCHEMA = pa.schema([
    ("request_id", pa.string()), ("arm", pa.string()), ("segment", pa.string()), ("criterion", pa.string()),
    ("score", pa.int32()), ("unscored_reason", pa.string()), ("raw_text", pa.string()),
    ("finish_reason", pa.string()), ("template_version", pa.string()), ("rubric_sha", pa.string()),
    ("judge_fingerprint", pa.string())])
PAIRWISE_SCHEMA = pa.schema([
    ("request_id", pa.string()), ("segment", pa.string()), ("verdict_ab", pa.string()), ("verdict_ba", pa.string()),
    ("reason_ab", pa.string()), ("reason_ba", pa.string()), ("preference", pa.string()), ("raw_ab", pa.string()),
    ("raw_ba", pa.string()), ("confidence", pa.float64()), ("template_version", pa.string()),
    ("rubric_sha", pa.string()), ("judge_fingerprint", pa.string())])



def judge_settings(cfg: JudgeConfig | Mapping[str, Any]) -> JudgeSettings:
    """Check a judge config (the dataclass, or its ``asdict`` as stored in the manifest) and flatten it.

    Raises:
        JudgeError: bad rubric, unknown template version, no judge checkpoint.
    """
    if not isinstance(cfg, JudgeConfig):
        from omegaconf import OmegaConf

        cfg = cast(JudgeConfig, OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(JudgeConfig), dict(cfg))))
    rubric = jp.Rubric(cfg.rubric.name, tuple(jp.Criterion(c.name, c.description, c.scale_min, c.scale_max,
                                                           c.higher_is_better) for c in cfg.rubric.criteria))
    jp.validate_rubric(rubric)
    jp.template(cfg.template_version)
    if not cfg.imported and not cfg.arm.checkpoint and not cfg.arm.engine.server.base_url:
        raise jp.JudgeError("judge.arm.checkpoint is not set. Fix: e.g. judge=zoo, judge.arm.checkpoint=ORG/NAME, an "
                            "endpoint (judge.arm.engine.backend=server judge.arm.engine.server.base_url=URL), or "
                            "judge.imported=FILE.")
    if cfg.imported and not Path(cfg.imported).is_file():
        raise jp.JudgeError(f"judge.imported: {cfg.imported} does not exist. Fix: give the imported judge file (CSV, "
                            "JSONL or Parquet; docs/judge.md, 'Imported judge results').")
    if not cfg.imported and not cfg.arm.engine.structured_output:
        log.warning("judge.arm.engine.structured_output is off: answers are not constrained to the JSON schema")
    return JudgeSettings(arm=cfg.arm, rubric=rubric, template_version=cfg.template_version, pairwise=cfg.pairwise,
                         max_chars=cfg.max_chars, max_unscored=cfg.max_unscored, agreement_bar=cfg.agreement_bar,
                         agreement_min_n=cfg.agreement_min_n, annotations=cfg.annotations, imported=cfg.imported,
                         accuracy_bar=cfg.accuracy_bar, agreement_level=cfg.agreement_level,
                         trust_target=cfg.trust_target, calibration=cfg.calibration)


JUDGE_MARGIN = 0.25
UNSCORED_MARGIN = 0.05


def judge_metrics(rubric: jp.Rubric, advisory: Sequence[str] = ("judge_preferred",)) -> tuple[MetricSpec, ...]:
    """The metric catalog entries of the judge family for ``rubric``; ``advisory``: metrics not to be counted
    (``judge_preferred`` unless the pairwise preference was admitted)."""
    per = tuple(MetricSpec(c.metric, "judge", "mean", c.higher_is_better, f"judge score: {c.description.strip()}",
                           role="eval", margin_absolute=JUDGE_MARGIN, advisory=c.metric in advisory)
                for c in rubric.criteria)
    # judge_unscored is the judge's data quality, not the candidate's: reported (and above judge.max_unscored every
    # criterion turns advisory), never counted as a regression. judge_preferred is advisory unless its agreement with
    # human preference labels was measured and admitted (``judge_admission``): a length-biased judge would otherwise
    # call a terse candidate a regression (issue 24).
    return per + (
        MetricSpec("judge_unscored", "judge", "rate", False,
                   "data quality: judge answer unusable for a criterion (unscored)", role="degradation",
                   margin_absolute=UNSCORED_MARGIN, advisory=True),
        MetricSpec("judge_preferred", "judge", "rate", True, "pairwise: judge preferred this arm in both orders",
                   role="eval", margin_absolute=JUDGE_MARGIN, advisory="judge_preferred" in advisory))


@dataclass(frozen=True)
class JudgeResult:
    """What a judge pass produced; the tables are also in the run directory."""

    signals: pa.Table
    metrics: tuple[MetricSpec, ...]
    pairwise_summary: pa.Table | None
    agreement: pa.Table | None
    uncalibrated: tuple[str, ...]
    advisory_metrics: tuple[str, ...]
    unscored_rate: float
    unscored_breach: bool
    engine_ran: bool
    info: dict[str, Any] = field(default_factory=dict)
    admission: dict[str, Any] | None = None  # the pairwise preference's measurements and decision


def judge_request(key: str, messages: tuple[dict[str, str], ...], schema: dict[str, Any],
                  arm: ArmConfig) -> PreparedRequest:
    """One judge prompt for the engine: the judge arm's sampling (default greedy, 128 tokens), answer schema."""
    s = arm.sampling
    return PreparedRequest(
        request_id=key, messages=messages, prompt=None,
        temperature=s.temperature if s.temperature is not None else 0.0,
        top_p=s.top_p if s.top_p is not None else 1.0, max_tokens=s.max_tokens or JUDGE_MAX_TOKENS,
        seed=request_seed(s.seed, key), response_schema=schema)


def _served(generations: pa.Table, arms: Sequence[str]) -> dict[str, dict[str, dict[str, Any]]]:
    """arm -> request_id -> generation row, for the judged arms' outputs that are not error rows."""
    out: dict[str, dict[str, dict[str, Any]]] = {a: {} for a in arms}
    for g in generations.to_pylist():
        if g["arm"] in out and g["error"] is None:
            out[g["arm"]][g["request_id"]] = g
    return out


def _key(settings: JudgeSettings, judge_fp: str, served: dict[str, dict[str, dict[str, Any]]]) -> str:
    h = hashlib.sha256(json.dumps({"fp": judge_fp, "arm": asdict(settings.arm), "rubric": asdict(settings.rubric),
                                   "v": settings.template_version, "pairwise": settings.pairwise,
                                   "max_chars": settings.max_chars, "imported": settings.imported},
                                  sort_keys=True, default=str).encode())
    for arm in sorted(served):
        for rid in sorted(served[arm]):
            h.update(json.dumps([arm, rid, served[arm][rid]["output_text"]]).encode())
    return h.hexdigest()


def run_judge(run: RunDir, requests: Mapping[str, Request], generations: pa.Table,
              settings: JudgeSettings, cache_dir: str | None = None) -> JudgeResult:
    """Judge the baseline's and candidate's outputs, write the judge tables under ``run``, return the results.

    Args:
        run: the run directory; judge tables are written there (and reused when ``judge.json`` matches).
        requests: the traffic by request id (every ``generations`` request must be there).
        generations: ``GENERATION_SCHEMA`` columns plus ``arm``; other arms (e.g. ``aa``) and error rows are
            not judged (the stats family counts errors).
        settings: from ``judge_settings``.
        cache_dir: the generation cache's root (``cache.dir``); None: the judge's answers are not cached.

    Returns:
        Signal rows and metric specs of the ``judge`` family, the pairwise summary (None when pairwise is off),
        the agreement table (None without annotations), the uncalibrated criteria and their advisory metrics,
        the pairwise admission (``judge_admission.json``): ``judge_preferred`` counts only when it is admitted,
        and then judgments below the selective-trust threshold are abstentions (null rows).

    Raises:
        JudgeError: a bad annotation file. EngineError: the judge cannot be served.
    """
    served = _served(generations, settings.arms)
    judge_fp = _judge_fingerprint(settings)
    key = _key(settings, judge_fp, served)
    cached = (run.path / "judge.json").exists() and run.read_json("judge.json").get("key") == key
    if not cached:
        stamp = {"template_version": settings.template_version,
                 "rubric_sha": jp.rubric_sha(settings.rubric, settings.template_version), "judge_fingerprint": judge_fp}
        scores_rows, pairs_rows = (imported_rows(settings.imported, served, settings, stamp) if settings.imported
                                   else engine_rows(run, requests, served, settings, stamp, key, cache_dir))
        run.write_table("judge_scores", pa.Table.from_pylist(scores_rows, schema=SCORES_SCHEMA))
        run.write_table("judge_pairwise", pa.Table.from_pylist(pairs_rows, schema=PAIRWISE_SCHEMA))
        run.write_json("judge.json", {"key": key, "judge_fingerprint": judge_fp, "settings": asdict(settings)})
    scores, pairwise = run.read_table("judge_scores"), run.read_table("judge_pairwise") if settings.pairwise else None
    summary = jt.pairwise_summary(pairwise) if pairwise is not None else None
    if summary is not None:
        run.write_table("judge_pairwise_summary", summary)
    agreement, uncalibrated = jt.agreement(scores, settings.rubric, settings.annotations, settings.agreement_bar,
                                           settings.agreement_min_n, settings.agreement_level)
    if agreement is not None:
        run.write_table("judge_agreement", agreement)
    n_bad, n = jt.unscored_rate(scores, pairwise)
    rate = n_bad / n if n else 0.0
    untrusted = rate > settings.max_unscored
    if untrusted:
        log.warning("judge: %.1f%% of answers unscored, above judge.max_unscored %.1f%%: every criterion is advisory",
                    100 * rate, 100 * settings.max_unscored)
    admission = None
    if pairwise is not None:
        lengths = {rid: tuple(len(served[a][rid]["output_text"] or "") for a in settings.arms)
                   for rid in pairwise.column("request_id").to_pylist()}
        admission = jt.pairwise_admission(pairwise, lengths, settings.annotations, settings.bar, untrusted,
                                          settings.calibration, settings.rubric)
        run.write_json("judge_admission.json", admission)
    admitted = admission is not None and admission["admitted"]
    threshold = admission["selective_trust"]["threshold"] if admission is not None and admitted else None
    advisory = tuple(c.metric for c in settings.rubric.criteria if untrusted or c.name in uncalibrated)
    advisory += () if admitted else ("judge_preferred",)
    metrics = judge_metrics(settings.rubric, advisory)
    return JudgeResult(
        signals=jt.signal_rows(scores, pairwise, threshold if admitted else None),
        metrics=metrics if settings.pairwise else metrics[:-1],
        pairwise_summary=summary, agreement=agreement, uncalibrated=uncalibrated,
        advisory_metrics=advisory, unscored_rate=rate,
        unscored_breach=untrusted, engine_ran=not cached and not settings.imported,
        info={"answers": n, "unscored": n_bad, "judge_fingerprint": judge_fp,
              "template_version": settings.template_version, "source": "imported" if settings.imported else
              "endpoint" if capabilities(settings.arm).endpoint else "engine",
              "rubric_sha": jp.rubric_sha(settings.rubric, settings.template_version)},
        admission=admission)


def _judge_fingerprint(settings: JudgeSettings) -> str:
    """The judge's identity: its weights' fingerprint; an imported file's content hash; an endpoint's address."""
    if settings.imported:
        return "imported:sha256:" + hashlib.sha256(Path(settings.imported).read_bytes()).hexdigest()
    if settings.arm.checkpoint:
        return fingerprint(settings.arm.checkpoint)
    return f"endpoint:{settings.arm.engine.server.base_url} {settings.arm.engine.server.model}"


class JudgeSignal:
    """The ``judge`` family as a ``Signal``: ``score`` runs ``run_judge`` and keeps its result in ``result``."""

    family = "judge"

    def __init__(self, settings: JudgeSettings) -> None:
        self.settings = settings
        self.metrics = judge_metrics(settings.rubric) if settings.pairwise else judge_metrics(settings.rubric)[:-1]
        self.result: JudgeResult | None = None
        self.details: dict[str, Any] | None = None

    def score(self, inputs: ScoreInputs) -> pa.Table:
        """Judge the traffic's generations (or reuse the run's judge tables); rows in ``SIGNAL_SCHEMA``."""
        spec = getattr(inputs.manifest, "spec", None)  # a unit test may score without a manifest
        self.result = run_judge(inputs.run, inputs.requests, inputs.generations, self.settings,
                                getattr(spec, "cache_dir", None))
        self.metrics = self.result.metrics
        adm = self.result.admission
        self.details = {"judge": {"unscored_rate": self.result.unscored_rate,
                                  "pairwise_admission": None if adm is None else _admission_brief(adm),
                                  "max_unscored": self.settings.max_unscored,
                                  "untrusted": self.result.unscored_breach,
                                  "uncalibrated": list(self.result.uncalibrated),
                                  "advisory_metrics": list(self.result.advisory_metrics), **self.result.info}}
        return self.result.signals

    def checks(self, policy: Policy) -> list[Check]:
        return []


def _admission_brief(adm: dict[str, Any]) -> dict[str, Any]:
    """What ``verdict.json`` says about the pairwise preference's admission (the rest: ``judge_admission.json``)."""
    orders = {o["order"]: {k: o[k] for k in ("n", "accuracy", "accuracy_low", "kappa", "kappa_low")}
              for o in adm["orders"]}
    lb = adm["length_bias"]
    return {"admitted": adm["admitted"], "reason": adm["reason"], "labelled": adm["labelled"], "bar": adm["bar"],
            "orders": orders, "flip_rate": adm["position_bias"]["flip_rate"],
            "raw_win_rate": lb["raw_win_rate"], "lc_win_rate": lb["lc_win_rate"],
            "selective_trust": adm["selective_trust"]}


def make(spec: RunSpec) -> JudgeSignal | None:
    """The judge family of a run, or None when the run has no judge."""
    judge = spec.settings.get("judge")
    return JudgeSignal(judge_settings(judge)) if judge is not None and judge.enabled else None


PLUGIN = Family(make=make, settings=JudgeConfig)
