"""Harness overhead: ``replay_arm`` through a run directory vs a plain ``vllm.LLM.generate``, not a test.

    python -m harness.bench.overhead [--n 2000] [--repeats 3] [--checkpoint zoo:baseline] \
        [--out docs/bench/overhead.jsonl]

One ``vllm.LLM`` (the ``VLLMEngine`` of the arm) is built once and serves both sides, so engine start-up and
shutdown are outside every timing and both sides time the same engine (the replay gets it as its
``SharedEngine``, as a run shares one engine between the traffic and the golden set):

- ``replay``: ``harness.replay.replay_arm`` as a run calls it: traffic read and validated batch by batch from
  Parquet, requests prepared, chat template applied, ``generate`` per batch of ``engine.batch_size``, generations
  and batch parts written atomically and durably.
- ``plain``: what a plain script does: the same chat-templated token ids and greedy ``SamplingParams`` (same
  ``max_tokens``, clamped the same way) built beforehand, then timed: one ``LLM.generate`` call over all prompts.
- ``plain_batched``: the same, one call per ``engine.batch_size`` prompts (what the replay's batching costs).

Each repetition runs the sides in a rotated order; the overhead is the median over repetitions of
``replay / plain - 1``. The plain script's tokenization (chat template + tokenizer, done once, untimed in
``plain``) is timed apart: the replay does that work inside its timing. Both sides must give identical
outputs (counted in the record).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.bench.record import append, header, machine_line, median
from harness.config import ArmConfig, EngineConfig, SamplingConfig
from harness.engines.base import PreparedRequest
from harness.store import RunDir
from harness.zoo.traffic import DEFAULT_SAMPLE

SIDES = ("replay", "plain", "plain_batched")
TARGET_OVERHEAD = 0.05


def _token_ids(tok: Any, r: PreparedRequest) -> list[int]:
    if r.messages is None:
        return list(tok(r.prompt)["input_ids"])
    text = tok.apply_chat_template(list(r.messages), add_generation_prompt=True, tokenize=False)
    return list(tok(text, add_special_tokens=False)["input_ids"])


def plain_inputs(llm: Any, prepared: Sequence[PreparedRequest],
                 max_model_len: int) -> tuple[list[str], list[Any], list[Any]]:
    """Request ids, token-id prompts and greedy sampling params as a plain script builds them (prompts that fit)."""
    from vllm import SamplingParams, TokensPrompt

    tok = llm.get_tokenizer()
    ids, prompts, params = [], [], []
    for r in prepared:
        tokens = _token_ids(tok, r)
        if len(tokens) < max_model_len:
            ids.append(r.request_id)
            prompts.append(TokensPrompt(prompt_token_ids=tokens))
            params.append(SamplingParams(temperature=0.0, max_tokens=min(r.max_tokens, max_model_len - len(tokens))))
    return ids, prompts, params


def time_replay(arm: ArmConfig, traffic: Any, shared: Any, out_dir: Path,
                rep: int) -> tuple[float, float, dict[str, str]]:
    """Seconds of one ``replay_arm`` into a fresh run directory, the engine seconds it recorded, and the outputs."""
    import duckdb

    from harness.replay import replay_arm

    run = RunDir(out_dir, "bench_overhead", f"rep{rep}")
    start = time.perf_counter()
    replay_arm("baseline", arm, traffic, run, shared=shared)
    seconds = time.perf_counter() - start
    con = duckdb.connect()
    engine_s = con.execute(f"SELECT sum(seconds) FROM read_parquet('{run.glob('batches')}')").fetchall()[0][0]
    outputs = dict(con.sql(f"SELECT request_id, output_text FROM read_parquet('{run.glob('generations')}') "
                           "WHERE error IS NULL").fetchall())
    con.close()
    return seconds, float(engine_s), outputs


def time_plain(llm: Any, prompts: list[Any], params: list[Any], batch: int | None) -> tuple[float, list[str]]:
    """Seconds of ``LLM.generate`` over all prompts (in chunks of ``batch`` when given) and the outputs."""
    size = batch or len(prompts)
    start = time.perf_counter()
    outs = []
    for i in range(0, len(prompts), size):
        outs += llm.generate(prompts[i: i + size], params[i: i + size], use_tqdm=False)
    return time.perf_counter() - start, [o.outputs[0].text for o in outs]


def run(n: int, repeats: int, checkpoint: str, traffic_path: Path) -> dict[str, Any]:
    """Measure and return one record: per repetition the seconds of each side, and the median overhead."""
    from harness.replay import SharedEngine, prepare
    from harness.traffic import load_traffic, open_traffic

    arm = ArmConfig(checkpoint=checkpoint, engine=EngineConfig(backend="vllm"),
                    sampling=SamplingConfig(temperature=0.0))
    traffic = open_traffic(traffic_path, limit=n)
    requests = load_traffic(traffic_path, limit=n)
    shared = SharedEngine(arm)
    try:
        llm = shared.get().llm  # type: ignore[attr-defined]
        start = time.perf_counter()
        ids, prompts, params = plain_inputs(llm, [prepare(r, arm) for r in requests], arm.engine.max_model_len)
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
                        batch = arm.engine.batch_size if side == "plain_batched" else None
                        row[f"{side}_s"], texts = time_plain(llm, prompts, params, batch)
                        outputs[side] = dict(zip(ids, texts, strict=True))
                row["identical_outputs"] = sum(outputs["replay"].get(k) == v for k, v in outputs["plain"].items())
                row["ratio"] = row["replay_s"] / row["plain_s"]
                row["ratio_batched"] = row["replay_s"] / row["plain_batched_s"]
                reps.append(row)
                print(f"rep {rep}: replay {row['replay_s']:.2f} s (engine {row['replay_engine_s']:.2f}), plain "
                      f"{row['plain_s']:.2f} s, plain batched {row['plain_batched_s']:.2f} s", flush=True)
    finally:
        shared.close()
    overhead = median([r["ratio"] for r in reps]) - 1
    return {"bench": "overhead", "checkpoint": checkpoint, "n": n, "served": len(prompts), "repeats": repeats,
            "plain_tokenize_s": tokenize_s,
            "overhead_vs_tokenized": median([r["replay_s"] / (r["plain_s"] + tokenize_s) for r in reps]) - 1,
            "batch_size": arm.engine.batch_size, "max_model_len": arm.engine.max_model_len, "reps": reps,
            "median_ratio": overhead + 1, "overhead": overhead,
            "overhead_vs_batched": median([r["ratio_batched"] for r in reps]) - 1,
            "target": TARGET_OVERHEAD, "met": overhead <= TARGET_OVERHEAD}


def print_table(rec: dict[str, Any]) -> None:
    """The repetitions and the verdict against the target, for a human."""
    print(machine_line(rec))
    print(f"{'rep':>3} {'order':<28} {'replay s':>9} {'engine s':>9} {'plain s':>8} {'batched s':>10} "
          f"{'ratio':>6} {'identical':>10}")
    for r in rec["reps"]:
        print(f"{r['rep']:>3} {','.join(r['order']):<28} {r['replay_s']:>9.2f} {r['replay_engine_s']:>9.2f} "
              f"{r['plain_s']:>8.2f} {r['plain_batched_s']:>10.2f} {r['ratio']:>6.3f} "
              f"{r['identical_outputs']:>5}/{rec['served']}")
    print(f"overhead (median replay/plain - 1): {rec['overhead']:+.1%} (target <= {rec['target']:.0%}: "
          f"{'met' if rec['met'] else 'MISSED'}); vs plain batched: {rec['overhead_vs_batched']:+.1%}; vs plain "
          f"plus its tokenization ({rec['plain_tokenize_s']:.2f} s): {rec['overhead_vs_tokenized']:+.1%}")


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, measure, append one JSON line to ``--out`` and print the table."""
    p = argparse.ArgumentParser(prog="python -m harness.bench.overhead", description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=2000, help="requests from the traffic file")
    p.add_argument("--repeats", type=int, default=3, help="repetitions, side order rotated each time")
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
