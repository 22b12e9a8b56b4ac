"""One judge pass over a run's outputs: the prompts, where the answers come from, and the rows they become.

Two sources (``judge.imported`` decides): a **judge arm** (``judge_engine.answer``: the prompts replayed through the
replayer, cached and resumable) or an **imported judge file** (``judge_import``: verdicts and scores from an
existing evaluation pipeline; a request missing from it is unscored, ``not_in_imported_file``). Either way the
result is rows of ``judge_scores`` (request x arm x criterion) and ``judge_pairwise`` (request: both orders, the
combined preference, the confidence when the source gives one), so everything after the pass is the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.dataset as ds

from harness.engines.base import Generation
from harness.signals import judge_prompts as jp
from harness.signals.judge_engine import answer, judge_cache, prompt_request
from harness.signals.judge_import import MISSING, load_imported
from harness.store import RunDir
from harness.traffic import Request

if TYPE_CHECKING:
    from harness.signals.judge_settings import JudgeSettings

Served = dict[str, dict[str, dict[str, Any]]]  # arm -> request_id -> generation row
BATCHES_SCHEMA = pa.schema([("kind", pa.string()), ("batch", pa.int32()), ("requests", pa.int64()),
                            ("prompt_tokens", pa.int64()), ("output_tokens", pa.int64()), ("seconds", pa.float64())])


def request_text(r: Request) -> str:
    """The request as the judge sees it: every chat message as ``[role] content``, or the plain prompt."""
    if r.messages:
        return "\n".join(f"[{m.role}] {m.content}" for m in r.messages)
    return r.prompt or ""


def paired(settings: JudgeSettings, served: Served) -> list[str]:
    """The requests both judged arms answered (compared head to head), sorted; none when pairwise is off."""
    base, cand = (served[a] for a in settings.arms)
    return sorted(set(base) & set(cand)) if settings.pairwise else []


def _prompts(requests: Mapping[str, Request], served: Served, settings: JudgeSettings
             ) -> list[tuple[str, list[Request]]]:
    point_sys, pair_sys = jp.system_prompts(settings.rubric, settings.template_version)
    v, mc, arm = settings.template_version, settings.max_chars, settings.arm
    point = [prompt_request(f"{rid}|{a}", g["segment"], jp.pointwise_messages(
                 point_sys, v, request_text(requests[rid]), g["output_text"] or "", mc),
                 jp.pointwise_schema(settings.rubric), arm)
             for a, gens in served.items() for rid, g in sorted(gens.items())]
    base, cand = (served[a] for a in settings.arms)
    pair = []
    for rid in paired(settings, served):
        text, b, c = request_text(requests[rid]), base[rid]["output_text"] or "", cand[rid]["output_text"] or ""
        for order, (first, second) in (("AB", (b, c)), ("BA", (c, b))):
            pair.append(prompt_request(f"{rid}|{order}", base[rid]["segment"],
                                       jp.pairwise_messages(pair_sys, v, text, first, second, mc),
                                       jp.pairwise_schema(), arm))
    return [("pointwise", point), ("pairwise", pair)]


def _batches(run: RunDir) -> pa.Table:
    rows = []
    for kind in ("pointwise", "pairwise"):
        files = sorted(str(f) for f in (run.path / "judge" / "batches" / f"arm={kind}").glob("part-*.parquet"))
        if files:
            rows += [{"kind": kind, **{k: r[k] for k in ("batch", "requests", "prompt_tokens", "output_tokens",
                                                          "seconds")}}
                     for r in ds.dataset(files, format="parquet").to_table().to_pylist()]
    return pa.Table.from_pylist(rows, schema=BATCHES_SCHEMA)


def _parsed(a: Generation | None, rubric: jp.Rubric) -> dict[str, tuple[int | None, str | None]]:
    if a is None:
        return {c.name: (None, "judge_error: no answer") for c in rubric.criteria}
    if a.error:
        return {c.name: (None, f"judge_error: {a.error}") for c in rubric.criteria}
    return jp.parse_pointwise(a.output_text, rubric, a.finish_reason)


def _verdict(a: Generation | None) -> tuple[str | None, str | None]:
    if a is None:
        return None, "judge_error: no answer"
    return (None, f"judge_error: {a.error}") if a.error else jp.parse_pairwise(a.output_text, a.finish_reason)


def engine_rows(run: RunDir, requests: Mapping[str, Request], served: Served, settings: JudgeSettings,
                stamp: dict[str, str], key: str, cache_dir: str | None
                ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The judge arm answers every prompt through the replayer; rows of judge_scores and judge_pairwise."""
    cache = judge_cache(settings.arm, stamp["judge_fingerprint"], cache_dir)
    answers, _ = answer(run, settings.arm, _prompts(requests, served, settings), key, cache)
    run.write_table("judge_batches", _batches(run))
    scores = []
    for arm, gens in served.items():
        for rid, g in sorted(gens.items()):
            a = answers.get(f"{rid}|{arm}")
            scores += [{"request_id": rid, "arm": arm, "segment": g["segment"], "criterion": c, "score": s,
                        "unscored_reason": reason, "raw_text": a.output_text if a else None,
                        "finish_reason": a.finish_reason if a else None, **stamp}
                       for c, (s, reason) in _parsed(a, settings.rubric).items()]
    base = served[settings.arms[0]]
    pairs = []
    for rid in paired(settings, served):
        ab, ba = answers.get(f"{rid}|AB"), answers.get(f"{rid}|BA")
        (vab, rab), (vba, rba) = _verdict(ab), _verdict(ba)
        pairs.append({"request_id": rid, "segment": base[rid]["segment"], "verdict_ab": vab, "verdict_ba": vba,
                      "reason_ab": rab, "reason_ba": rba, "preference": jp.combine_orders(vab, vba),
                      "raw_ab": ab.output_text if ab else None, "raw_ba": ba.output_text if ba else None,
                      "confidence": None, **stamp})
    return scores, pairs


def imported_rows(path: str, served: Served, settings: JudgeSettings, stamp: dict[str, str]
                  ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Rows of judge_scores and judge_pairwise from an imported judge file (``judge_import``)."""
    imported = load_imported(path, settings.rubric)
    scores = []
    for arm, gens in served.items() if imported.scores else ():  # a pairwise-only file: no pointwise rows
        for rid, g in sorted(gens.items()):
            for c in settings.rubric.criteria:
                k = (rid, arm, c.name)
                score = imported.scores.get(k)
                reason = (None if score is not None else "unscored in the imported file" if k in imported.scores
                          else MISSING)
                scores.append({"request_id": rid, "arm": arm, "segment": g["segment"], "criterion": c.name,
                               "score": score, "unscored_reason": reason, "raw_text": None, "finish_reason": None,
                               **stamp})
    base = served[settings.arms[0]]
    pairs = []
    for rid in paired(settings, served):
        v = imported.pairwise.get(rid)
        vab, vba = (v["verdict_ab"], v["verdict_ba"]) if v else (None, None)
        why = MISSING if v is None else "unscored in the imported file"
        pairs.append({"request_id": rid, "segment": base[rid]["segment"], "verdict_ab": vab, "verdict_ba": vba,
                      "reason_ab": None if vab else why, "reason_ba": None if vba else why,
                      "preference": jp.combine_orders(vab, vba), "raw_ab": v.get("raw_ab") if v else None,
                      "raw_ba": v.get("raw_ba") if v else None, "confidence": v["confidence"] if v else None,
                      **stamp})
    return scores, pairs
