"""Harness overhead: ``replay_arm`` through a run directory vs a plain ``vllm.LLM.generate``, not a test.

    python -m harness.bench.overhead [--n 2000] [--repeats 12] [--checkpoint zoo:baseline] \
        [--out docs/bench/overhead.jsonl]

One ``vllm.LLM`` (the ``VLLMEngine`` of the arm) is built once and serves both sides, so engine start-up and
shutdown are outside every timing and both sides time the same engine (the replay gets it as its
``ArmEngine``, as a run shares one engine between the traffic and the golden set):

- ``replay``: ``harness.replay.replay_arm`` as a run calls it: traffic read and validated batch by batch from
  Parquet, requests prepared, chat template applied and tokenized, batches of ``engine.batch_size`` streamed
  through the engine (``Engine.stream``), generations and batch parts written atomically and durably.
- ``plain``: what a plain script does with the same prompts: render each request's chat template to text, then one
  ``LLM.generate`` over all the texts (vLLM tokenizes them inside the call), both timed. Its greedy
  ``SamplingParams`` (the same ``max_tokens``, clamped the same way) are built beforehand, untimed.
- ``plain_tokens``: the engine alone: the token ids prepared beforehand (untimed, and timed apart as
  ``plain_tokenize_s``), then one timed ``LLM.generate`` over them. A lower bound no script reaches from text.

Each repetition runs the sides in a rotated order; the overhead is the median over repetitions of
``replay / plain - 1``, with the distribution-free 95% CI of that median (order statistics), and, reported
beside it, the median of ``replay / plain_tokens - 1``. All sides must give identical
outputs (counted in the record).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.bench.record import append, header, machine_line, median, median_ci
from harness.config import ArmConfig, SamplingConfig
from harness.engines.base import PreparedRequest
from harness.fixtures.zoo.settings import zoo_engine
from harness.fixtures.zoo.traffic import DEFAULT_SAMPLE
from harness.store import RunDir

SIDES = ("replay", "plain", "plain_tokens")
TARGET_OVERHEAD = 0.05


def plain_inputs(llm: Any, prepared: Sequence[PreparedRequest], max_model_len: int
                 ) -> tuple[list[PreparedRequest], list[Any], list[Any]]:
    """The requests whose prompts fit, their token-id prompts and greedy sampling params as a plain script builds
    them."""
    from vllm import SamplingParams, TokensPrompt

    from harness.engines.base import prompt_ids

    keep, prompts, params = [], [], []
    for r, tokens in zip(prepared, prompt_ids(llm.get_tokenizer(), None, prepared), strict=True):
        if len(tokens) < max_model_len:
            keep.append(r)
            prompts.append(TokensPrompt(prompt_token_ids=tokens))
            params.append(SamplingParams(temperature=0.0, max_tokens=min(r.max_tokens, max_model_len - len(tokens))))
    return keep, prompts, params


def time_replay(arm: ArmConfig, traffic: Any, shared: Any, out_dir: Path,
                rep: int) -> tuple[float, float, dict[str, str]]:
    """Seconds of one ``replay_arm`` into a fresh run directory, the engine seconds it recorded, and the outputs."""
    import duckdb

    from harness.replay.local import replay_arm

    run = RunDir(out_dir, "bench_overhead", f"rep{rep}")
    start = time.perf_counter()
    replay_arm("baseline", arm, traffic, run, shared)
    seconds = time.perf_counter() - start
    con = duckdb.connect()
    engine_s = con.execute(f"SELECT sum(seconds) FROM read_parquet('{run.glob('batches')}')").fetchall()[0][0]
    outputs = dict(con.sql(f"SELECT request_id, output_text FROM read_parquet('{run.glob('generations')}') "
                           "WHERE error IS NULL").fetchall())
    con.close()
    return seconds, float(engine_s), outputs


def time_plain(llm: Any, requests: list[PreparedRequest] | None, prompts: list[Any], params: list[Any]
               ) -> tuple[float, list[str]]:
    """Seconds of a plain script and its outputs: with ``requests``, render their chat templates and generate from
    the texts; without, generate from the token-id ``prompts``."""
    start = time.perf_counter()
    if requests is None:
        outs = llm.generate(prompts, params, use_tqdm=False)
    else:
        tok = llm.get_tokenizer()
        texts = [r.prompt if r.messages is None else
                 tok.apply_chat_template(list(r.messages), add_generation_prompt=True, tokenize=False)
                 for r in requests]
        outs = llm.generate(texts, params, use_tqdm=False, tokenization_kwargs={"add_special_tokens": False})
    return time.perf_counter() - start, [o.outputs[0].text for o in outs]


def run(n: int, repeats: int, checkpoint: str, traffic_path: Path) -> dict[str, Any]:
    """Measure and return one record: per repetition the seconds of each side, and the median overhead."""
    from harness.replay import prepare
    from harness.replay.local import ArmEngine
    from harness.traffic import load_traffic, open_traffic

    arm = ArmConfig(checkpoint=checkpoint, engine=zoo_engine(backend="vllm"),
                    sampling=SamplingConfig(temperature=0.0))
    traffic = open_traffic(traffic_path, limit=n)
    requests = load_traffic(traffic_path, limit=n)
    shared = ArmEngine(arm)
    try:
        llm = shared.get().llm  # type: ignore[attr-defined]
        start = time.perf_counter()
        kept, prompts, params = plain_inputs(llm, [prepare(r, arm) for r in requests], shared.get().max_model_len)  # type: ignore[attr-defined]
        ids = [r.request_id for r in kept]
        tokenize_s = time.perf_counter() - start
        llm.generate(prompts[:64], params[:64], use_tqdm=False)  # warm-up
        reps = []
        with tempfile.TemporaryDirectory(prefix="bench_overhead_") as tmp:
            for rep in range(repeats):
                order = SIDES[rep % 3:] + SIDES[: rep % 3]
                row: dict[str, Any] = {"rep": rep, "order": list(order)}
                outputs: dict[str, dict[str, str]] = {}
                for side in order:
                    if side == "replay":
                        row["replay_s"], row["replay_engine_s"], outputs[side] = time_replay(arm, traffic, shared,
                                                                                             Path(tmp), rep)
                    else:
                        row[f"{side}_s"], texts = time_plain(llm, kept if side == "plain" else None, prompts, params)
                        outputs[side] = dict(zip(ids, texts, strict=True))
                row["identical_outputs"] = min(sum(outputs["replay"].get(k) == v for k, v in outputs[side].items())
                                               for side in ("plain", "plain_tokens"))
                row["ratio"] = row["replay_s"] / row["plain_s"]
                row["ratio_tokens"] = row["replay_s"] / row["plain_tokens_s"]
                reps.append(row)
                print(f"rep {rep}: replay {row['replay_s']:.2f} s (engine {row['replay_engine_s']:.2f}), plain "
                      f"{row['plain_s']:.2f} s, plain from token ids {row['plain_tokens_s']:.2f} s", flush=True)
    finally:
        shared.close()
    overhead = median([r["ratio"] for r in reps]) - 1
    ci = median_ci([r["ratio"] - 1 for r in reps])
    return {"bench": "overhead", "checkpoint": checkpoint, "n": n, "served": len(prompts), "repeats": repeats,
            "plain_tokenize_s": tokenize_s, "batch_size": arm.engine.batch_size,
            "max_model_len": arm.engine.max_model_len, "reps": reps,
            "median_ratio": overhead + 1, "overhead": overhead, "overhead_ci95": ci,
            "overhead_vs_tokens": median([r["ratio_tokens"] for r in reps]) - 1,
            "target": TARGET_OVERHEAD, "met": overhead <= TARGET_OVERHEAD}


def print_table(rec: dict[str, Any]) -> None:
    """The repetitions and the verdict against the target, for a human."""
    print(machine_line(rec))
    print(f"{'rep':>3} {'order':<28} {'replay s':>9} {'engine s':>9} {'plain s':>8} {'tokens s':>9} "
          f"{'ratio':>6} {'identical':>10}")
    for r in rec["reps"]:
        print(f"{r['rep']:>3} {','.join(r['order']):<28} {r['replay_s']:>9.2f} {r['replay_engine_s']:>9.2f} "
              f"{r['plain_s']:>8.2f} {r['plain_tokens_s']:>9.2f} {r['ratio']:>6.3f} "
              f"{r['identical_outputs']:>5}/{rec['served']}")
    ci = rec["overhead_ci95"]
    ci_text = "n/a (fewer than 6 repetitions)" if ci is None else f"[{ci[0]:+.1%}, {ci[1]:+.1%}]"
    print(f"overhead (median replay/plain - 1): {rec['overhead']:+.1%}, 95% CI of the median {ci_text} "
          f"(target <= {rec['target']:.0%}: "
          f"{'met' if rec['met'] else 'MISSED'}); vs plain from token ids (tokenizing took "
          f"{rec['plain_tokenize_s']:.2f} s apart): {rec['overhead_vs_tokens']:+.1%}")


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, measure, append one JSON line to ``--out`` and print the table."""
    p = argparse.ArgumentParser(prog="python -m harness.bench.overhead", description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=2000, help="requests from the traffic file")
    p.add_argument("--repeats", type=int, default=12, help="repetitions, side order rotated each time")
    p.add_argument("--checkpoint", default="zoo:baseline")
    p.add_argument("--traffic", type=Path, default=DEFAULT_SAMPLE)
    p.add_argument("--out", type=Path, default=Path("docs/bench/overhead.jsonl"), help="JSON-lines file to append")
    a = p.parse_args(argv)
    if a.n < 1 or a.repeats < 1:
        p.error("--n and --repeats must be >= 1")
    rec = {**header("harness.bench.overhead", argv), **run(a.n, a.repeats, a.checkpoint, a.traffic)}
    append(a.out, [rec])
    print_table(rec)
    print(f"appended 1 line to {a.out}")


if __name__ == "__main__":
    main()
