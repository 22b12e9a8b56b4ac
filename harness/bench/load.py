"""Latency under load on the real model (docs/load.md): timed replay of a bursty trace, our percentiles next to
``vllm bench serve``'s on the same server and trace, and a sweep of serving configs giving the quality-and-speed front.

Each piece holds the engine lock by itself (``flock /tmp/engine.lock``) and stays under ~12 minutes; the sweep is
resumable (finished jobs are kept, ``--jobs N`` per invocation). Results go to ``reports/bench_load/`` and the record
(machine, date) to ``docs/bench/load.json`` by ``record``::

    flock /tmp/engine.lock python -m harness.bench.load replay      # bursty trace, open loop: fidelity, rates
    flock /tmp/engine.lock python -m harness.bench.load reference   # ours vs vllm bench serve, same server and trace
    flock /tmp/engine.lock python -m harness.bench.load sweep --jobs 3   # repeat until it says 0 left
    python -m harness.bench.load record
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
from pathlib import Path
from typing import Any

from harness.bench.record import header

OUT = Path("reports/bench_load")
RECORD = Path("docs/bench/load.json")
SWEEP_CONFIGS = {  # the candidate's config per sweep point (the baseline: configs/arm/real_smollm2.yaml, fp32)
    "fp32 (as baseline)": [],
    "bf16": ["candidate.engine.dtype=bfloat16"],  # the weights and activations in bfloat16: a quantization
    "max_num_seqs=4": ["candidate.engine.extra.max_num_seqs=4"],  # a scheduler setting
    "max_tokens cap 16": ["candidate.sampling.max_tokens=16"],  # a sampling override, not a serving setting: the
    # known "faster but worse" point the front has to mark
}
REPEATS = 3
SWEEP_RATE = 5.0  # req/s offered to each arm: above the fp32 baseline's capacity here, so the SLOs bind and goodput
# tells the configs apart (at 2 req/s every config met them: goodput was the offered rate)


def bursty_trace(src: Path, dst: Path, n: int, burst: int = 8, gap_s: float = 10.0, spread_s: float = 0.2) -> Path:
    """The first ``n`` requests of ``src`` with their timestamps rewritten as bursts: ``burst`` requests within
    ``spread_s`` seconds, then ``gap_s`` seconds of quiet."""
    import pyarrow.parquet as pq

    t = pq.read_table(src).slice(0, n)
    t0 = t.column("timestamp")[0].as_py()
    ts = [t0 + dt.timedelta(seconds=(i // burst) * gap_s + (i % burst) * spread_s / burst) for i in range(t.num_rows)]
    import pyarrow as pa

    t = t.set_column(t.schema.get_field_index("timestamp"), "timestamp", pa.array(ts, t.schema.field("timestamp").type))
    dst.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(t, dst)
    return dst


def compose(overrides: list[str]) -> Any:
    """The experiment config ``overrides`` compose (``configs/config.yaml``), checked."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from harness import CONFIG_DIR
    from harness.spec import check_known_keys, register_schemas

    register_schemas()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
        cfg = hydra_compose(config_name="config", overrides=overrides)
        check_known_keys(cfg)
        return cfg


def run(overrides: list[str], sweep: Any = None) -> Path:
    """One normal run of ``overrides``; returns its directory."""
    from omegaconf import OmegaConf

    from harness.run import run_experiment
    from harness.spec import run_spec

    cfg = compose(overrides)
    run_dir, _ = run_experiment(run_spec(cfg, sweep), OmegaConf.to_container(cfg, resolve=True))  # type: ignore[arg-type]
    return run_dir.path


def _endpoint(arms: tuple[str, ...], url: str) -> list[str]:
    return [o for a in arms for o in (f"{a}.engine.server.base_url={url}", f"{a}.engine.server.model=smollm2")]


def _table(path: Path) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist() if path.exists() else []


def piece_replay() -> dict[str, Any]:
    """The bursty trace (bursts of 8 within 0.2 s every 10 s, 48 requests) replayed open loop at its timestamps
    through one local server (both arms: an A/A of speed)."""
    from harness.fixtures.real.client_logs import served_real
    from harness.fixtures.real.traffic import DEFAULT_REAL_SAMPLE as TRAFFIC_PATH

    trace = bursty_trace(TRAFFIC_PATH, OUT / "bursty.parquet", 48)
    with served_real(OUT / "server") as srv:
        d = run(["experiment=real_load", f"traffic.path={trace}", "traffic.limit=null", "replay.load.mode=timestamps",
                 "replay.load.speedup=1.0", "replay.load.max_duration_s=null", "name=bench_load_bursty",
                 f"output_dir={OUT}", *_endpoint(("baseline", "candidate"), srv.base_url)])
    verdict = json.loads((d / "verdict.json").read_text())
    out = {"piece": "replay", "trace": "48 requests of replays/real_sample.parquet in bursts of 8 within 0.2 s, "
           "every 10 s, replayed at the captured timestamps (speed-up 1)", "run": str(d),
           "load": _table(d / "load.parquet"), "latency": [r for r in _table(d / "latency.parquet")
                                                           if r["segment"] is None],
           "latency_details": verdict.get("latency"), "verdict": verdict["verdict"],
           "latency_checks": [c for c in verdict["checks"] if c["family"] == "latency"],
           **header("harness.bench.load", ["replay"])}
    _save("replay", out)
    return out


def _warm(base_url: str) -> None:
    """One request before anything is timed (``vllm bench serve`` sends its own "initial single prompt test run")."""
    import httpx

    httpx.post(f"{base_url}/v1/chat/completions", timeout=120, json={
        "model": "smollm2", "max_tokens": 8, "messages": [{"role": "user", "content": "Hello"}]}).raise_for_status()


def piece_reference(n: int = 40, rate: float = 2.0, rounds: int = 3) -> dict[str, Any]:
    """Ours and ``vllm bench serve`` on one server and one trace: the first ``n`` real requests at ``rate`` req/s
    (constant gaps, in the trace's order: ``--disable-shuffle``), greedy, their captured max_tokens. After a warm-up
    request, ``rounds`` rounds, each: our replay (two passes, the run's baseline and candidate arms), the reference on
    ``/v1/completions`` (its custom dataset's own way: chat template applied client-side) and the reference on
    ``/v1/chat/completions`` (the endpoint ours uses). The reference keeps its per-request TTFTs and gaps
    (``--save-detailed``): percentiles pooled over the rounds per tool here; ``record`` compares each request with
    itself (``paired_requests``: the TTFT difference, the timed gaps each tool counts)."""
    from harness.fixtures.real.checkpoint import build_real
    from harness.fixtures.real.client_logs import served_real
    from harness.fixtures.real.traffic import DEFAULT_REAL_SAMPLE as TRAFFIC_PATH

    data = OUT / "reference_trace.jsonl"
    _custom_dataset(TRAFFIC_PATH, data, n)
    tokenizer = str(build_real("smollm2"))
    per_round: list[dict[str, Any]] = []
    with served_real(OUT / "server") as srv:
        _warm(srv.base_url)
        for r in range(rounds):
            d = run(["experiment=real_load", f"traffic.limit={n}", "replay.load.mode=constant",
                     f"replay.load.rate={rate}", "replay.load.max_duration_s=null", "signals=[latency]",
                     "baseline.sampling.max_tokens=null", "candidate.sampling.max_tokens=null",
                     "name=bench_load_reference", f"run_id=round{r}", f"output_dir={OUT}",
                     *_endpoint(("baseline", "candidate"), srv.base_url)])
            ours = {arm: _ours_requests(_table(d / "load" / f"arm={arm}")) for arm in ("baseline", "candidate")}
            ref = {ep: _vllm_bench(srv.base_url, tokenizer, data, n, rate, ep) for ep in REFERENCE_ENDPOINTS}
            per_round.append({"round": r, "run": str(d), "ours": ours, "reference": ref})
    tools = {"ours": [req for rd in per_round for arm in ("baseline", "candidate") for req in rd["ours"][arm]],
             **{f"vllm_bench_serve {ep}": [req for rd in per_round for req in rd["reference"][ep]["requests"]]
                for ep in REFERENCE_ENDPOINTS}}
    pooled = {tool: pooled_percentiles(reqs) for tool, reqs in tools.items()}
    per_run = {"ours": [pooled_percentiles(rd["ours"][arm]) for rd in per_round for arm in ("baseline", "candidate")],
               **{f"vllm_bench_serve {ep}": [pooled_percentiles(rd["reference"][ep]["requests"]) for rd in per_round]
                  for ep in REFERENCE_ENDPOINTS}}
    out = {"piece": "reference", "n": n, "rate": rate, "rounds": rounds, "pooled": pooled, "per_run": per_run,
           "per_round": per_round, **header("harness.bench.load", ["reference"])}
    _save("reference", out)
    return out


REFERENCE_ENDPOINTS = ("/v1/completions", "/v1/chat/completions")
PERCENTILES = (50, 90, 99)


def _ours_requests(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Our load rows of one arm, in send order, as the per-request record the comparison reads (seconds)."""
    return [{"ttft": x["ttft_s"], "itl": list(x["itl_s"] or []), "tpot": x["tpot_s"], "e2el": x["latency_s"],
             "output_tokens": x["output_tokens"]} for x in sorted(rows, key=lambda x: x["scheduled_s"])]


def _percentile(values: list[float], q: float) -> float | None:
    import numpy as np

    return float(np.percentile(values, q)) * 1000 if values else None


def pooled_percentiles(requests: list[dict[str, Any]]) -> dict[str, Any]:
    """TTFT, ITL (every gap of every request pooled, as both tools pool them), TPOT and E2E percentiles in ms over
    ``requests``; also how many gaps were timed."""
    out: dict[str, Any] = {"requests": len(requests), "gaps": sum(len(r["itl"]) for r in requests)}
    for metric in ("ttft", "tpot", "e2el"):
        vals = [r[metric] for r in requests if r[metric] is not None]
        out.update({f"{metric}_p{q}_ms": _percentile(vals, q) for q in PERCENTILES})
    gaps = [g for r in requests for g in r["itl"]]
    out.update({f"itl_p{q}_ms": _percentile(gaps, q) for q in PERCENTILES})
    return out


FRAMING_CHUNKS = 2
"""Chunks without text the reference times and we do not, in any request: the chat stream's first chunk (the role)
and its last (the finish reason). A request with more has text-less chunks inside its output (a character split over
several tokens, an emoji: the server streams the first tokens with empty text)."""


def paired_requests(per_round: list[dict[str, Any]], endpoint: str) -> dict[str, Any]:
    """Each request against itself, ours (both passes) vs the reference on ``endpoint`` in the same round: the median
    and 90% range of the TTFT difference (ms); how many requests had more, the same or fewer timed gaps; the
    requests with text-less chunks inside their output (``FRAMING_CHUNKS``), and the ITL p99 of both tools pooled
    over the other requests (what the difference in ITL is once the chunks each tool counts agree)."""
    import numpy as np

    diffs: list[float] = []
    gaps = {"ours_more": 0, "same": 0, "ours_fewer": 0}
    extra: list[int] = []
    split: set[int] = set()
    for rd in per_round:
        theirs = rd["reference"][endpoint]["requests"]
        for arm in ("baseline", "candidate"):
            for i, (mine, ref) in enumerate(zip(rd["ours"][arm], theirs, strict=True)):
                if mine["ttft"] is not None and ref["ttft"] is not None:
                    diffs.append((mine["ttft"] - ref["ttft"]) * 1000)
                k = len(mine["itl"]) - len(ref["itl"])
                extra.append(k)
                gaps["ours_more" if k > 0 else "same" if k == 0 else "ours_fewer"] += 1
                if k < -FRAMING_CHUNKS:
                    split.add(i)
    pooled = {"ours": [g for rd in per_round for arm in ("baseline", "candidate")
                       for i, r in enumerate(rd["ours"][arm]) if i not in split for g in r["itl"]],
              "reference": [g for rd in per_round for i, r in enumerate(rd["reference"][endpoint]["requests"])
                            if i not in split for g in r["itl"]]}
    d = np.array(diffs)
    return {"pairs": len(diffs), "ttft_diff_median_ms": float(np.median(d)) if d.size else None,
            "ttft_diff_p5_ms": float(np.percentile(d, 5)) if d.size else None,
            "ttft_diff_p95_ms": float(np.percentile(d, 95)) if d.size else None,
            "gap_count": gaps, "gap_count_difference_values": sorted(set(extra)),
            "requests_with_textless_chunks": sorted(split),
            "itl_p99_ms_other_requests": {tool: _percentile(v, 99) for tool, v in pooled.items()}}


def _custom_dataset(src: Path, dst: Path, n: int) -> None:
    """The trace as ``vllm bench serve``'s ``custom`` dataset: the user message and the captured max_tokens."""
    import pyarrow.parquet as pq

    rows = pq.read_table(src).slice(0, n).to_pylist()
    dst.parent.mkdir(parents=True, exist_ok=True)
    with dst.open("w") as f:
        for r in rows:
            f.write(json.dumps({"prompt": r["messages"][-1]["content"], "output_tokens": r["max_tokens"]}) + "\n")


def _vllm_bench(base_url: str, tokenizer: str, data: Path, n: int, rate: float, endpoint: str) -> dict[str, Any]:
    """``vllm bench serve`` driven from Python (its console script fails with the CPU build): the custom dataset in
    its order, constant gaps (burstiness inf), greedy. On ``/v1/completions`` it applies the chat template itself
    and sends the text; on ``/v1/chat/completions`` (backend ``openai-chat``) it sends the user message. Returns its
    summary numbers and, per request in the trace's order, TTFT, gaps, TPOT and E2E (seconds)."""
    from vllm.benchmarks.serve import add_cli_args, main_async
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    chat = endpoint == "/v1/chat/completions"
    parser = FlexibleArgumentParser()
    add_cli_args(parser)
    args = parser.parse_args([
        "--backend", "openai-chat" if chat else "openai", "--base-url", base_url, "--endpoint", endpoint,
        "--model", "smollm2", "--tokenizer", tokenizer, "--dataset-name", "custom", "--dataset-path", str(data),
        "--num-prompts", str(n), "--disable-shuffle", *(["--skip-chat-template"] if chat else []),
        "--custom-output-len", "-1", "--request-rate", str(rate), "--burstiness", "inf", "--temperature", "0",
        "--percentile-metrics", "ttft,tpot,itl,e2el", "--metric-percentiles", "50,90,99", "--disable-tqdm",
        "--ready-check-timeout-sec", "0", "--save-detailed"])
    result = asyncio.run(main_async(args))
    requests = []
    for ttft, itl, e2e, n_out in zip(result["ttfts"], result["itls"], result["latencies"], result["output_lens"],
                                     strict=True):
        tpot = (e2e - ttft) / (n_out - 1) if ttft and n_out and n_out > 1 else None
        requests.append({"ttft": ttft or None, "itl": list(itl), "tpot": tpot, "e2el": e2e, "output_tokens": n_out})
    summary = {k: v for k, v in result.items() if isinstance(v, int | float | str) and not isinstance(v, bool)}
    return {"summary": summary, "requests": requests}


def sweep_name(rate: float) -> str:
    """The sweep at ``rate`` requests/s (its runs: ``<name>-j<N>``; the first one, at 2 req/s, has no suffix)."""
    return "real_serving_load" if rate == 2.0 else f"real_serving_load_r{rate:g}"


def piece_sweep(jobs: int, rate: float = SWEEP_RATE) -> dict[str, Any]:
    """Up to ``jobs`` pending sweep jobs (config x repeat), each a normal run: the baseline (real_smollm2, fp32) on a
    server started here once, the candidate on its own local server with the config."""
    from harness.fixtures.real.client_logs import served_real
    from harness.spec import SweepJob

    name = sweep_name(rate)
    sweep_dir = OUT / "sweeps" / name
    plan = [(c, r) for r in range(REPEATS) for c in SWEEP_CONFIGS]
    done = {p.parent.name for p in (OUT / "bench_load_sweep").glob(f"{name}-j*/verdict.json")}
    todo = [(i, c, r) for i, (c, r) in enumerate(plan) if f"{name}-j{i}" not in done][:jobs]
    sweep_dir.mkdir(parents=True, exist_ok=True)
    (sweep_dir / "multirun.yaml").write_text(json.dumps({"configs": SWEEP_CONFIGS, "repeats": REPEATS}) + "\n")
    if todo:
        with served_real(OUT / "server") as srv:
            for i, c, r in todo:
                overrides = [*SWEEP_CONFIGS[c], f"replay.load.repeat={r}"]
                run(["experiment=real_load", "name=bench_load_sweep", f"output_dir={OUT}", "traffic.limit=32",
                     f"replay.load.rate={rate}", *_endpoint(("baseline",), srv.base_url), *overrides],
                    SweepJob(sweep_dir.name, str(sweep_dir.resolve()), i, tuple(overrides)))
    left = len(plan) - len(done) - len(todo)
    if left == 0:
        from harness.report.sweep import summarize

        print(f"sweep summary: {summarize(sweep_dir)}")
    print(f"sweep: {len(todo)} jobs run now, {left} left")
    return {"ran": len(todo), "left": left}


def _save(name: str, out: dict[str, Any]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{name}.json").write_text(json.dumps(out, indent=1, default=str) + "\n")
    print(json.dumps({k: v for k, v in out.items() if k not in ("load",)}, indent=1, default=str)[:4000])


def burst_rates(run_dir: Path, burst: int = 8) -> dict[str, Any]:
    """Per arm of the bursty replay, per burst (``burst`` consecutive scheduled requests): the scheduled and achieved
    rate inside the burst ((n - 1) / span) and the median TTFT by position in the burst (queueing inside a burst)."""
    import statistics

    import pyarrow.parquet as pq

    out = {}
    for part in sorted((run_dir / "load").glob("arm=*")):
        rows = sorted(pq.read_table(part).to_pylist(), key=lambda r: r["scheduled_s"])
        bursts = [rows[i:i + burst] for i in range(0, len(rows) - burst + 1, burst)]
        out[part.name.removeprefix("arm=")] = {
            "scheduled_rps": [(burst - 1) / (b[-1]["scheduled_s"] - b[0]["scheduled_s"]) for b in bursts],
            "achieved_rps": [(burst - 1) / (b[-1]["sent_s"] - b[0]["sent_s"]) for b in bursts],
            "ttft_median_s_by_position": [statistics.median(b[i]["ttft_s"] for b in bursts) for i in range(burst)]}
    return out


def record() -> Path:
    """``docs/bench/load.json`` from the pieces' results (each keeps its own date, command and machine); a piece not
    run here keeps the record's earlier entry."""
    import shutil

    out: dict[str, Any] = json.loads(RECORD.read_text()) if RECORD.exists() else {}
    if (OUT / "replay.json").exists():
        out["replay"] = json.loads((OUT / "replay.json").read_text())
        out["replay"]["bursts"] = burst_rates(Path(out["replay"]["run"]))
    if (OUT / "reference.json").exists():  # its per-request times stay there
        ref = json.loads((OUT / "reference.json").read_text())
        ref["paired"] = {f"ours vs vllm_bench_serve {ep}": paired_requests(ref["per_round"], ep)
                         for ep in REFERENCE_ENDPOINTS}
        ref["per_round"] = [{"round": rd["round"], "run": rd["run"],
                             "vllm_bench_serve": {ep: r["summary"] for ep, r in rd["reference"].items()}}
                            for rd in ref["per_round"]]
        out["reference"] = ref
    for rate in (SWEEP_RATE, 2.0):
        summary = OUT / "sweeps" / sweep_name(rate) / "summary.parquet"
        if not summary.exists():
            continue
        out[f"sweep_r{rate:g}"] = {"jobs": _table(summary), "configs": _table(summary.with_name("configs.parquet")),
                                   **header("harness.bench.load", ["sweep", "--rate", f"{rate:g}"])}
        shutil.copy(summary.with_name("pareto.png"), RECORD.with_name(f"load_pareto_r{rate:g}.png"))
    RECORD.parent.mkdir(parents=True, exist_ok=True)
    RECORD.write_text(json.dumps(out, indent=1, default=str, sort_keys=True) + "\n")
    return RECORD


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m harness.bench.load", description=__doc__.split("\n")[0])
    p.add_argument("piece", choices=["replay", "reference", "sweep", "record"])
    p.add_argument("--jobs", type=int, default=5, help="sweep: jobs to run in this invocation")
    p.add_argument("--rate", type=float, default=SWEEP_RATE, help="sweep: requests/s offered to each arm")
    a = p.parse_args(argv)
    from harness.console import configure

    configure(verbose=False)
    if a.piece == "replay":
        piece_replay()
    elif a.piece == "reference":
        piece_reference()
    elif a.piece == "sweep":
        piece_sweep(a.jobs, a.rate)
    else:
        print(f"record: {record()}")


if __name__ == "__main__":
    main()
