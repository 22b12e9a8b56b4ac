"""The watch's false-alarm rate and power, measured on the real model behind a local vLLM OpenAI server
(docs/watch.md). Resumable in pieces: each server session is one piece (at most a few minutes of engine time, run
under the shared engine lock), stored once and skipped when it exists; ``analyze`` needs no server.

    python -m harness.bench.watch collect SESSION... [--budget-s S] [--dir DIR]   server sessions in order (each
        a probe-run pool of POOL_K samples + POOL_G greedy passes per prompt), stopping before one would end past
        S seconds (then run the same command again: collected sessions are skipped)
    python -m harness.bench.watch analyze [--dir DIR] [--checks N] [--out docs/bench/watch.json]

Sessions (each its own server start, the same served model name ``smollm2``): ``ref``, ``aa1``, ``aa2`` (the same
weights and settings, restarted: A/A), ``bf16`` (``--dtype bfloat16``), ``top_p`` (the server's default top_p 0.95
-> 0.9 through ``--override-generation-config``), ``system_prompt`` (a chat template whose default system prompt
differs), ``int8`` (the weights re-quantized to 8 bits, per output channel, and served as float32 again). Every
session's server defaults top_p to 0.95 unless the change is top_p; the probe requests do not send top_p.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import time
from pathlib import Path
from typing import Any

from harness.bench.record import header

log = logging.getLogger(__name__)
DEFAULT_DIR = Path("reports/.bench-watch")
TRAFFIC = "replays/real_sample.parquet"
PER_SEGMENT, POOL_K, POOL_G, TEMPERATURE, MAX_TOKENS = 6, 16, 4, 0.7, 48
SESSIONS = ("ref", "aa1", "aa2", "bf16", "top_p", "system_prompt", "int8")
NEW_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face. Keep answers short and factual."


def _template(real_dir: Path, out: Path) -> Path:
    text = (real_dir / "chat_template.jinja").read_text()
    old = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
    if old not in text:
        raise RuntimeError(f"{real_dir}/chat_template.jinja has no default system prompt to change")
    out.write_text(text.replace(old, NEW_SYSTEM, 1))
    return out


def build_int8(real_dir: Path, out: Path) -> Path:
    """The real checkpoint with every 2-D weight re-quantized to int8 (symmetric, per output channel) and stored as
    float32 again: a weight change of the size an 8-bit re-quantization makes."""
    import shutil

    import torch
    from safetensors.torch import load_file, save_file

    if (out / "model.safetensors").is_file():
        return out
    out.mkdir(parents=True, exist_ok=True)
    for f in real_dir.iterdir():
        if f.is_file() and f.name != "model.safetensors":
            shutil.copy2(f, out / f.name)
    tensors = load_file(str(real_dir / "model.safetensors"))
    for name, w in tensors.items():
        if w.dim() == 2:
            scale = w.abs().amax(dim=1, keepdim=True).clamp(min=1e-12) / 127.0
            tensors[name] = (torch.round(w / scale).clamp(-127, 127) * scale).to(w.dtype).contiguous()
    save_file(tensors, str(out / "model.safetensors.tmp"), metadata={"format": "pt"})
    (out / "model.safetensors.tmp").replace(out / "model.safetensors")
    return out


def session_server(session: str, work: Path) -> tuple[str, Any]:
    """The checkpoint and engine options of a session's server."""
    from harness.config import EngineConfig
    from harness.engines.checkpoints import resolve_checkpoint

    real = Path(resolve_checkpoint("real:smollm2"))
    extra: dict[str, Any] = {"max_num_seqs": 64, "override_generation_config": {"top_p": 0.95}}
    checkpoint, dtype = str(real), "float32"
    if session == "bf16":
        dtype = "bfloat16"
    elif session == "top_p":
        extra["override_generation_config"] = {"top_p": 0.9}
    elif session == "system_prompt":
        extra["chat_template"] = str(_template(real, work / "chat_template_changed.jinja"))
    elif session == "int8":
        checkpoint = str(build_int8(real, real.parent / "smollm2-int8"))
    elif session not in ("ref", "aa1", "aa2"):
        raise SystemExit(f"unknown session {session!r}; one of {', '.join(SESSIONS)}")
    return checkpoint, EngineConfig(dtype=dtype, max_model_len=1024, gpu_memory_utilization=0.25,
                                    enforce_eager=True, extra=extra)


def collect(session: str, root: Path) -> Path:
    """One server session's probe-run pool under ``root/session`` (skipped when it is there)."""
    from harness.config import ArmConfig, EngineConfig, ServerConfig
    from harness.engines.server import VLLMServer
    from harness.store import RunDir
    from harness.watch import probe as probe_set
    from harness.watch.sample import Settings, run_probes, write_run

    run = RunDir(root, "sessions", session)
    if (run.path / "samples.parquet").is_file():
        print(f"{session}: already collected ({run.path})")
        return run.path
    root.mkdir(parents=True, exist_ok=True)
    probes = probe_set.draw(TRAFFIC, None, PER_SEGMENT, 0)
    checkpoint, opts = session_server(session, root)
    settings = Settings(POOL_K, POOL_G, TEMPERATURE, None, MAX_TOKENS)
    t0 = time.perf_counter()
    server = VLLMServer(checkpoint, opts, root / "logs", name="smollm2")
    try:
        server.wait_ready()
        up = time.perf_counter() - t0
        arm = ArmConfig(engine=EngineConfig(backend="server", server=ServerConfig(
            base_url=server.base_url, model="smollm2", concurrency=64)))
        rows, seconds = run_probes(arm, probes, settings, seed=random.SystemRandom().randrange(2**31))
    finally:
        server.stop()
    meta = {**header("harness.bench.watch", ["collect", session]), "session": session, "checkpoint": checkpoint,
            "dtype": opts.dtype, "extra": opts.extra, "server_start_s": round(up, 1), "generate_s": round(seconds, 1),
            "requests": len(rows), "output_tokens": sum(r["output_tokens"] or 0 for r in rows),
            "errors": sum(1 for r in rows if r["error"]), "probe_fingerprint": probe_set.fingerprint(probes)}
    write_run(run, rows, meta)
    print(f"{session}: {len(rows)} requests, {meta['output_tokens']} tokens in {seconds:.0f} s "
          f"(server up in {up:.0f} s), {meta['errors']} errors -> {run.path}")
    return run.path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m harness.bench.watch", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="what", required=True)
    c = sub.add_parser("collect", help="one server session's probe-run pool")
    c.add_argument("session", choices=SESSIONS, nargs="+")
    c.add_argument("--budget-s", type=float, default=540.0)
    c.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    a = sub.add_parser("analyze", help="A/A false-alarm rate and power tables from the stored pools")
    a.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    a.add_argument("--checks", type=int, default=200)
    a.add_argument("--seed", type=int, default=2026)
    a.add_argument("--out", type=Path, default=Path("docs/bench/watch.json"))
    a.add_argument("--kernel", default="hamming", help="the MMD's string kernel (the product's default: hamming)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.what == "collect":
        t0, longest = time.perf_counter(), 0.0
        for session in args.session:
            if time.perf_counter() - t0 + longest > args.budget_s:
                print(f"{session}: left for the next hold (budget {args.budget_s:.0f} s)")
                return 3
            t1 = time.perf_counter()
            collect(session, args.dir)
            longest = max(longest, time.perf_counter() - t1)
        return 0
    from harness.bench.watch_analyze import analyze, tables
    from harness.watch import probe as probe_set

    record = analyze(args.dir, args.checks, args.seed, args.out, probe_set.draw(TRAFFIC, None, PER_SEGMENT, 0),
                     args.kernel)
    print(tables(record))
    print(json.dumps({k: record[k] for k in ("smallest_k_90", "sessions", "analysis_s")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
