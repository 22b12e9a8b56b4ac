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
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, cast

import pyarrow as pa

from harness.config import ArmConfig, JudgeConfig
from harness.console import Stage
from harness.engines.base import Generation, PreparedRequest, make_engine, request_seed
from harness.engines.checkpoints import fingerprint
from harness.signals import judge_prompts as jp
from harness.signals import judge_tables as jt
from harness.signals.base import Family, MetricSpec, ScoreInputs
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
    ("raw_ba", pa.string()), ("template_version", pa.string()), ("rubric_sha", pa.string()),
    ("judge_fingerprint", pa.string())])
BATCHES_SCHEMA = pa.schema([("kind", pa.string()), ("batch", pa.int32()), ("requests", pa.int64()),
                            ("prompt_tokens", pa.int64()), ("output_tokens", pa.int64()), ("seconds", pa.float64())])


@dataclass(frozen=True)
class JudgeSettings:
    """Everything ``run_judge`` needs, flat and typed (built from ``JudgeConfig`` by ``judge_settings``)."""

    arm: ArmConfig
    rubric: jp.Rubric
    template_version: str = "v1"
    pairwise: bool = True
    max_chars: int = 2000
    max_unscored: float = 0.05
    agreement_bar: float = 0.6
    agreement_min_n: int = 20
    annotations: str | None = None
    arms: tuple[str, str] = ("baseline", "candidate")


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
    if not cfg.arm.checkpoint:
        raise jp.JudgeError("judge.arm.checkpoint is not set. Fix: e.g. judge=zoo, or judge.arm.checkpoint=ORG/NAME.")
    if not cfg.arm.engine.structured_output:
        log.warning("judge.arm.engine.structured_output is off: answers are not constrained to the JSON schema")
    return JudgeSettings(arm=cfg.arm, rubric=rubric, template_version=cfg.template_version, pairwise=cfg.pairwise,
                         max_chars=cfg.max_chars, max_unscored=cfg.max_unscored, agreement_bar=cfg.agreement_bar,
                         agreement_min_n=cfg.agreement_min_n, annotations=cfg.annotations)


JUDGE_MARGIN = 0.25
UNSCORED_MARGIN = 0.05


def judge_metrics(rubric: jp.Rubric, advisory: Sequence[str] = ()) -> tuple[MetricSpec, ...]:
    """The metric catalog entries of the judge family for ``rubric``; ``advisory``: metrics not to be counted."""
    per = tuple(MetricSpec(c.metric, "judge", "mean", c.higher_is_better, f"judge score: {c.description.strip()}",
                           role="eval", margin_absolute=JUDGE_MARGIN, advisory=c.metric in advisory)
                for c in rubric.criteria)
    # judge_unscored is the judge's data quality, not the candidate's: reported (and above judge.max_unscored every
    # criterion turns advisory), never counted as a regression. judge_preferred stays advisory until its agreement
    # with human preference labels is measured (the annotation files hold pointwise scores only): a length-biased
    # judge would otherwise call a terse candidate a regression.
    return per + (
        MetricSpec("judge_unscored", "judge", "rate", False,
                   "data quality: judge answer unusable for a criterion (unscored)", role="degradation",
                   margin_absolute=UNSCORED_MARGIN, advisory=True),
        MetricSpec("judge_preferred", "judge", "rate", True, "pairwise: judge preferred this arm in both orders",
                   role="eval", margin_absolute=JUDGE_MARGIN, advisory=True))


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


def request_text(r: Request) -> str:
    """The request as the judge sees it: every chat message as ``[role] content``, or the plain prompt."""
    if r.messages:
        return "\n".join(f"[{m.role}] {m.content}" for m in r.messages)
    return r.prompt or ""


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
                                   "max_chars": settings.max_chars}, sort_keys=True, default=str).encode())
    for arm in sorted(served):
        for rid in sorted(served[arm]):
            h.update(json.dumps([arm, rid, served[arm][rid]["output_text"]]).encode())
    return h.hexdigest()


def _generate(settings: JudgeSettings, batches: list[tuple[str, list[PreparedRequest]]]
              ) -> tuple[dict[str, Generation], list[dict[str, Any]]]:
    out: dict[str, Generation] = {}
    timing: list[dict[str, Any]] = []
    if not batches:
        return out, timing  # nothing to judge: no engine
    engine = make_engine(settings.arm)
    stage = Stage("judge", sum(len(p) for _, p in batches), unit="prompts")
    try:
        for i, (kind, prepared) in enumerate(batches):
            t = time.perf_counter()
            gens = engine.generate(prepared)
            seconds = time.perf_counter() - t
            out |= {g.request_id: g for g in gens}
            served = [g for g in gens if g.error is None]
            timing.append({"kind": kind, "batch": i, "requests": len(served), "seconds": seconds,
                           "prompt_tokens": sum(g.prompt_tokens or 0 for g in served),
                           "output_tokens": sum(g.output_tokens or 0 for g in served)})
            stage.update(len(gens))
            log.info("judge: %s batch %d/%d, %d requests in %.2f s", kind, i + 1, len(batches), len(gens), seconds)
    finally:
        engine.close()
        stage.close()
    return out, timing


def _batched(kind: str, items: list[PreparedRequest], size: int) -> list[tuple[str, list[PreparedRequest]]]:
    return [(kind, items[i: i + size]) for i in range(0, len(items), size)]


def _pair_messages(system: str, settings: JudgeSettings, r: Request, first: dict[str, Any],
                   second: dict[str, Any]) -> tuple[dict[str, str], ...]:
    return jp.pairwise_messages(system, settings.template_version, request_text(r), first["output_text"] or "",
                                second["output_text"] or "", settings.max_chars)


def _judge(run: RunDir, requests: Mapping[str, Request], served: dict[str, dict[str, dict[str, Any]]],
           settings: JudgeSettings, judge_fp: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Run the judge engine once over every prompt; rows of judge_scores and judge_pairwise."""
    point_sys, pair_sys = jp.system_prompts(settings.rubric, settings.template_version)
    v, rubric = settings.template_version, settings.rubric
    point = [judge_request(f"{rid}|{arm}", jp.pointwise_messages(point_sys, v, request_text(requests[rid]),
                                                                 g["output_text"] or "", settings.max_chars),
                           jp.pointwise_schema(rubric), settings.arm)
             for arm, gens in served.items() for rid, g in sorted(gens.items())]
    base, cand = (served[a] for a in settings.arms)
    both = sorted(set(base) & set(cand)) if settings.pairwise else []
    orders = {"AB": lambda rid: (base[rid], cand[rid]), "BA": lambda rid: (cand[rid], base[rid])}
    pair = [judge_request(f"{rid}|{order}", _pair_messages(pair_sys, settings, requests[rid], *shown(rid)),
                          jp.pairwise_schema(), settings.arm)
            for rid in both for order, shown in orders.items()]
    size = settings.arm.engine.batch_size
    answers, timing = _generate(settings, _batched("pointwise", point, size) + _batched("pairwise", pair, size))
    run.write_table("judge_batches", pa.Table.from_pylist(timing, schema=BATCHES_SCHEMA))
    stamp = {"template_version": v, "rubric_sha": jp.rubric_sha(rubric, v), "judge_fingerprint": judge_fp}
    scores = []
    for arm, gens in served.items():
        for rid, g in sorted(gens.items()):
            a = answers[f"{rid}|{arm}"]
            parsed = ({c.name: (None, f"judge_error: {a.error}") for c in rubric.criteria} if a.error
                      else jp.parse_pointwise(a.output_text, rubric, a.finish_reason))
            scores += [{"request_id": rid, "arm": arm, "segment": g["segment"], "criterion": c, "score": s,
                        "unscored_reason": reason, "raw_text": a.output_text, "finish_reason": a.finish_reason,
                        **stamp} for c, (s, reason) in parsed.items()]
    pairs = []
    for rid in both:
        ab, ba = answers[f"{rid}|AB"], answers[f"{rid}|BA"]
        (vab, rab), (vba, rba) = (((None, f"judge_error: {x.error}") if x.error
                                   else jp.parse_pairwise(x.output_text, x.finish_reason)) for x in (ab, ba))
        pairs.append({"request_id": rid, "segment": base[rid]["segment"], "verdict_ab": vab, "verdict_ba": vba,
                      "reason_ab": rab, "reason_ba": rba, "preference": jp.combine_orders(vab, vba),
                      "raw_ab": ab.output_text, "raw_ba": ba.output_text, **stamp})
    return scores, pairs


def run_judge(run: RunDir, requests: Mapping[str, Request], generations: pa.Table,
              settings: JudgeSettings) -> JudgeResult:
    """Judge the baseline's and candidate's outputs, write the judge tables under ``run``, return the results.

    Args:
        run: the run directory; judge tables are written there (and reused when ``judge.json`` matches).
        requests: the traffic by request id (every ``generations`` request must be there).
        generations: ``GENERATION_SCHEMA`` columns plus ``arm``; other arms (e.g. ``aa``) and error rows are
            not judged (the stats family counts errors).
        settings: from ``judge_settings``.

    Returns:
        Signal rows and metric specs of the ``judge`` family, the pairwise summary (None when pairwise is off),
        the agreement table (None without annotations), the uncalibrated criteria and their advisory metrics.

    Raises:
        JudgeError: a bad annotation file. EngineError: the judge cannot be served.
    """
    served = _served(generations, settings.arms)
    judge_fp = fingerprint(settings.arm.checkpoint or "")
    key = _key(settings, judge_fp, served)
    cached = (run.path / "judge.json").exists() and run.read_json("judge.json").get("key") == key
    if not cached:
        scores, pairs = _judge(run, requests, served, settings, judge_fp)
        run.write_table("judge_scores", pa.Table.from_pylist(scores, schema=SCORES_SCHEMA))
        run.write_table("judge_pairwise", pa.Table.from_pylist(pairs, schema=PAIRWISE_SCHEMA))
        run.write_json("judge.json", {"key": key, "judge_fingerprint": judge_fp, "settings": asdict(settings)})
    scores, pairwise = run.read_table("judge_scores"), run.read_table("judge_pairwise") if settings.pairwise else None
    summary = jt.pairwise_summary(pairwise) if pairwise is not None else None
    if summary is not None:
        run.write_table("judge_pairwise_summary", summary)
    agreement, uncalibrated = jt.agreement(scores, settings.rubric, settings.annotations, settings.agreement_bar,
                                           settings.agreement_min_n)
    if agreement is not None:
        run.write_table("judge_agreement", agreement)
    n_bad, n = jt.unscored_rate(scores, pairwise)
    rate = n_bad / n if n else 0.0
    untrusted = rate > settings.max_unscored
    if untrusted:
        log.warning("judge: %.1f%% of answers unscored, above judge.max_unscored %.1f%%: every criterion is advisory",
                    100 * rate, 100 * settings.max_unscored)
    advisory = tuple(c.metric for c in settings.rubric.criteria if untrusted or c.name in uncalibrated)
    metrics = judge_metrics(settings.rubric, advisory)
    return JudgeResult(
        signals=jt.signal_rows(scores, pairwise), metrics=metrics if settings.pairwise else metrics[:-1],
        pairwise_summary=summary, agreement=agreement, uncalibrated=uncalibrated,
        advisory_metrics=advisory, unscored_rate=rate,
        unscored_breach=untrusted, engine_ran=not cached,
        info={"answers": n, "unscored": n_bad, "judge_fingerprint": judge_fp,
              "template_version": settings.template_version,
              "rubric_sha": jp.rubric_sha(settings.rubric, settings.template_version)})


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
        self.result = run_judge(inputs.run, inputs.requests, inputs.generations, self.settings)
        self.metrics = self.result.metrics
        self.details = {"judge": {"unscored_rate": self.result.unscored_rate,
                                  "max_unscored": self.settings.max_unscored,
                                  "untrusted": self.result.unscored_breach,
                                  "uncalibrated": list(self.result.uncalibrated),
                                  "advisory_metrics": list(self.result.advisory_metrics), **self.result.info}}
        return self.result.signals

    def checks(self, policy: Policy) -> list[Check]:
        return []


def make(spec: RunSpec) -> JudgeSignal | None:
    """The judge family of a run, or None when the run has no judge."""
    judge = spec.settings.get("judge")
    return JudgeSignal(judge_settings(judge)) if judge is not None and judge.enabled else None


PLUGIN = Family(make=make, settings=JudgeConfig)
