"""Command entry points: config -> plain function calls, nothing else.

    python -m harness [-v] replay [experiment=NAME] [key=value ...]  replay + gate (exit code = verdict); -v: every log
                                                                   line on the terminal (else harness.log, engine.log);
                                                                   `replay --help`: config groups; `replay --cfg job`:
                                                                   the composed config, nothing run; `--fail-on V,V`:
                                                                   the verdicts that fail the job (ci.fail_on);
                                                                   `--config-dir DIR`: your configs (before or after
                                                                   `replay`)
    python -m harness init DIR                                    a config dir for your own models (docs/gpu.md)
    python -m harness signoff RUN_DIR --by NAME --note TEXT       accept a HOLD_FOR_SIGNOFF or INVESTIGATE
    python -m harness --help                                      this text
    python -m harness report RUN_DIR [--fail-on V,V]              rebuild verdict and report from files
    python -m harness runs [--output-dir reports]                 every run, newest first; writes reports/index.html
    python -m harness zoo [--force]                               build the fixture checkpoints
    python -m harness traffic [--out PATH] [--n N]                 write the sample traffic
    python -m harness real [--force]                              build real:smollm2 (dequantized, cached outside git)
    python -m harness real-traffic [--out PATH] [--shared DIR]    write the real model's traffic (docs/real.md)
    python -m harness import-openai IN.jsonl OUT.parquet          convert OpenAI chat logs to traffic
    python -m harness import openai|litellm|otel IN... OUT.parquet  client logs (files or folders) to traffic;
                                                                   --skip-invalid, --segment-field PATH, --sample N
                                                                   [--stratify --seed S] (docs/traffic.md)
    python -m harness golden build|candidates RUN_DIR|check PATH  the golden set: build, propose items, validate
    python -m harness annotate RUN_DIR [--n N --seed S --judge NAME]  a blind labelling page of the run's pairs;
                                                                   --labels FILE...: check labels, agreement;
                                                                   --golden PATH: promote (docs/annotate.md)
    python -m harness replay -m sweep=NAME [key=value ...]        a sweep (configs/sweep/NAME.yaml), then its summary
    python -m harness sweep-summary SWEEP_DIR|SWEEP_ID            rebuild a sweep's summary (reports/sweeps/<id>/)
    python -m harness cache info|clear [--dir DIR]                the generation cache: entries and size; empty it
    python -m harness canary logs=DIR [key=value ...]             gate live canary traffic window by window
                                                                   (configs/canary.yaml; docs/canary.md)
    python -m harness serve --run-dir DIR [--host H --port N]     the latest canary decision for Argo Rollouts/Flagger
    python -m harness watch [key=value ...]                       is a pinned model still what it was? SAME 0,
                                                                   CHANGED 10, INCONCLUSIVE 13 (docs/watch.md)

Exit codes: verdicts per ``harness.gate.VERDICT_CODES`` (PASS 0, INVESTIGATE 10, ROLLBACK 11,
HOLD_FOR_SIGNOFF 12, INSUFFICIENT_DATA 13) when the exit policy (``ci.fail_on``, ``--fail-on``; default: all four)
lists the verdict, else 0; a signed-off run exits 0; 2 = bad input or config (message says how to fix);
1 = unexpected failure; 130 = interrupted (SIGINT/SIGTERM; servers stopped, finished batches kept). A sweep (``-m``)
exits 0 when every job ran, whatever the verdicts (they are in
its summary), else with the first failed job's code (2 or 1).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from harness import CONFIG_DIR
from harness.errors import BadInput

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130  # SIGINT or SIGTERM: every process the harness started was stopped
log = logging.getLogger("harness")


def _job_code(run_path: Path, verdict: Any, fail_on: Any) -> int:
    """The process exit code under the exit policy (a signed-off run fails no job)."""
    from harness.gate import job_exit_code
    from harness.report.signoff import read_signoffs

    return job_exit_code(verdict.verdict, fail_on, signed_off=bool(read_signoffs(run_path)))


def _print_result(run_path: Path, verdict: Any, max_reasons: int = 5, code: int | None = None) -> None:
    """The summary block: verdict, the top reasons (grouped as in the report), where the files are."""
    import pyarrow.parquet as pq

    from harness.report.scorecard import grouped_reasons
    from harness.report.units import Units

    code = verdict.exit_code if code is None else code
    why = "" if code == verdict.exit_code else " under the exit policy (ci.fail_on) or a sign-off"
    print(f"verdict: {verdict.verdict} (exit code {code}{why})")
    print(f"summary: {run_path / 'pr_comment.md'}   (a pull-request comment)")
    print(f"report:  {run_path / 'report.md'}")
    print(f"verdict: {run_path / 'verdict.json'}")
    print(f"html:    {run_path / 'report.html'}   (logs: harness.log, engine.log beside it)")
    summary = run_path / "summary.parquet"
    reasons = grouped_reasons(verdict, Units(pq.read_table(summary).to_pylist() if summary.exists() else []))
    for r in reasons[:max_reasons]:
        print(f"  - {r}")
    if len(reasons) > max_reasons:
        print(f"  ... {len(reasons) - max_reasons} more in report.html")


def _fail_on_override(argv: list[str]) -> list[str]:
    """``--fail-on V,V`` (or ``--fail-on=V,V``; empty: nothing fails) as the Hydra override ``ci.fail_on=[V,V]``."""
    out: list[str] = []
    it = iter(argv)
    for a in it:
        if a == "--fail-on" or a.startswith("--fail-on="):
            value = a.partition("=")[2] if "=" in a else next(it, "")
            verdicts = [v.strip() for v in value.split(",") if v.strip()]
            out.append(f"ci.fail_on=[{','.join(verdicts)}]")
        else:
            out.append(a)
    return out


def _replay(argv: list[str]) -> int:
    import hydra
    from omegaconf import DictConfig, OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from harness.spec import register_schemas

    register_schemas()
    argv = _fail_on_override(argv)
    result: dict[str, Any] = {}
    codes: list[int] = []
    multirun = "-m" in argv or "--multirun" in argv
    if multirun and not any(a.startswith("hydra.sweep.dir=") for a in argv):
        from harness.report.sweep import new_sweep_id

        argv = [*argv, f"hydra.sweep.dir=${{output_dir}}/sweeps/{new_sweep_id()}"]

    @hydra.main(version_base=None, config_path=str(CONFIG_DIR), config_name="config")
    def main(dcfg: DictConfig) -> None:
        from harness.run import run_experiment
        from harness.spec import check_known_keys, run_spec

        result["code"] = 1  # composed: from here on a failure is the run's, not the config's
        sweep = _sweep_job()
        if sweep is not None:
            result["sweep_dir"] = sweep.dir
        try:
            check_known_keys(dcfg)
            spec = run_spec(dcfg, sweep)
            run, verdict = run_experiment(spec, OmegaConf.to_container(dcfg, resolve=True))  # type: ignore[arg-type]
        except (BadInput, OmegaConfBaseException) as e:
            print(f"error: {e}", file=sys.stderr)
            result["code"] = EXIT_BAD_INPUT
            codes.append(EXIT_BAD_INPUT)
            return
        code = _job_code(run.path, verdict, spec.fail_on)
        result["code"] = code
        codes.append(verdict.exit_code)
        _print_result(run.path, verdict, code=code)

    sys.argv = [sys.argv[0], *argv]
    try:
        main()
    except SystemExit as e:
        if "code" not in result:  # Hydra exits before the task runs: --help (0), or the config did not compose
            return 0 if e.code in (0, None) else EXIT_BAD_INPUT
        return e.code if isinstance(e.code, int) else 1
    if multirun and "sweep_dir" in result:
        return _after_sweep(Path(result["sweep_dir"]), codes)
    return int(result.get("code", 0))  # no task ran and nothing failed: --help, --cfg job, --info


def _sweep_job() -> Any:
    """This job's place in a Hydra multirun (sweep id = the sweep directory's name), or None outside one."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from harness.spec import SweepJob

    hc = HydraConfig.get()
    if hc.mode != RunMode.MULTIRUN:
        return None
    return SweepJob(Path(hc.sweep.dir).name, str(Path(hc.sweep.dir).resolve()), int(hc.job.num),
                    tuple(hc.overrides.task))


def _after_sweep(sweep_dir: Path, codes: list[int]) -> int:
    """Write the sweep's summary; exit 0 when every job ran (verdicts are data here), else the first failure."""
    from harness.report.sweep import summarize

    failed = [c for c in codes if c in (1, EXIT_BAD_INPUT)]
    if len(codes) > len(failed):
        from harness.report.index_html import write_index

        print(f"sweep summary: {summarize(sweep_dir)}")
        write_index(sweep_dir.parent.parent)
    return failed[0] if failed else 0


def _sweep_summary(argv: list[str]) -> int:
    from harness.report.sweep import find_sweep, summarize

    p = argparse.ArgumentParser(prog="python -m harness sweep-summary", description="Summarize a sweep's runs.")
    p.add_argument("sweep", help="the sweep directory (reports/sweeps/<id>) or its id")
    p.add_argument("--output-dir", default="reports", help="where runs and sweeps are (default: reports)")
    a = p.parse_args(argv)
    print(f"sweep summary: {summarize(find_sweep(a.sweep, a.output_dir))}")
    return 0


def _cache(argv: list[str]) -> int:
    from harness.replay.cache import cache_info, clear_cache

    p = argparse.ArgumentParser(prog="python -m harness cache", description="The generation cache.")
    p.add_argument("cmd", choices=("info", "clear"))
    p.add_argument("--dir", type=Path, default=Path("reports/.cache"), help="cache.dir (default reports/.cache)")
    a = p.parse_args(argv)
    if a.cmd == "clear":
        print(f"cache {a.dir}: cleared, {clear_cache(a.dir) / 1e6:.1f} MB freed")
        return 0
    rows = cache_info(a.dir)
    for r in rows:
        print(f"{r['key']}  {r['checkpoint']}  {r['dtype']}  {r['entries']} entries  {r['files']} files  "
              f"{r['bytes'] / 1e6:.2f} MB")
    print(f"cache {a.dir}: {len(rows)} arms, {sum(r['entries'] for r in rows)} entries, "
          f"{sum(r['bytes'] for r in rows) / 1e6:.2f} MB")
    return 0


def _report(argv: list[str]) -> int:
    from harness.gate import check_fail_on
    from harness.run import evaluate
    from harness.spec import read_manifest
    from harness.store import RunDir

    p = argparse.ArgumentParser(prog="python -m harness report", description="Rebuild verdict and report.")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--fail-on", default=None, help="verdicts that fail the job, comma-separated (default: the run's "
                   "ci.fail_on); empty: none")
    a = p.parse_args(argv)
    if not (a.run_dir / "manifest.json").exists():
        raise BadInput(f"{a.run_dir} has no manifest.json: not a run directory. "
                                "Fix: pass reports/<experiment>/<run_id> (or .../latest).")
    run = RunDir.at(a.run_dir)
    verdict = evaluate(run)
    fail_on = read_manifest(run).spec.fail_on
    if a.fail_on is not None:
        fail_on = check_fail_on([v.strip() for v in a.fail_on.split(",") if v.strip()], where="--fail-on")
    code = _job_code(run.path, verdict, fail_on)
    _print_result(run.path, verdict, code=code)
    return code


def _signoff(argv: list[str]) -> int:
    from harness.report.signoff import add_signoff
    from harness.run import evaluate
    from harness.store import RunDir

    p = argparse.ArgumentParser(prog="python -m harness signoff",
                                description="Record who accepted a HOLD_FOR_SIGNOFF or INVESTIGATE verdict.")
    p.add_argument("run_dir", type=Path, help="reports/<experiment>/<run_id> (or .../latest)")
    p.add_argument("--by", required=True, help="who accepts the verdict")
    p.add_argument("--note", required=True, help="why (the ticket, the evidence checked)")
    a = p.parse_args(argv)
    if not (a.run_dir / "manifest.json").exists():
        raise BadInput(f"{a.run_dir} has no manifest.json: not a run directory. "
                       "Fix: pass reports/<experiment>/<run_id> (or .../latest).")
    entry = add_signoff(a.run_dir.resolve(), a.by, a.note)
    run = RunDir.at(a.run_dir)
    evaluate(run)  # the report, pr_comment.md and verdict.json show the sign-off
    from harness.report.index_html import write_index

    write_index(run.path.parent.parent)
    print(f"signed off: {entry.verdict} of {run.path} by {entry.by} at {entry.at}; the run now exits 0")
    return 0


def _init(argv: list[str]) -> int:
    from harness.starter import write_config_dir

    p = argparse.ArgumentParser(prog="python -m harness init",
                                description="Write a starting config dir for your own models (docs/gpu.md).")
    p.add_argument("dir", type=Path, help="where to write it (outside the repository)")
    p.add_argument("--force", action="store_true", help="overwrite files that exist")
    p.add_argument("--checkpoint", default=None, help="the baseline checkpoint (default: a placeholder to edit)")
    p.add_argument("--traffic", default=None, help="the traffic Parquet (default: a placeholder to edit)")
    p.add_argument("--cpu", action="store_true", help="engine settings for the vLLM CPU build (no GPU)")
    a = p.parse_args(argv)
    for path in write_config_dir(a.dir, checkpoint=a.checkpoint, traffic=a.traffic, force=a.force, cpu=a.cpu):
        print(f"wrote {path}")
    print(f"next: check the checkpoints and traffic.path, then\n  python -m harness replay "
          f"--config-dir={a.dir.resolve()} experiment=my_fp8")
    return 0


def _zoo(argv: list[str]) -> int:
    from harness.fixtures.zoo.build import DEFAULT_ZOO_DIR, build_zoo

    p = argparse.ArgumentParser(prog="python -m harness zoo", description="Build the fixture checkpoints.")
    p.add_argument("--dir", type=Path, default=DEFAULT_ZOO_DIR)
    p.add_argument("--force", action="store_true", help="rebuild even when up to date")
    a = p.parse_args(argv)
    print(f"zoo ready in {build_zoo(a.dir, force=a.force)}")
    return 0


def _traffic(argv: list[str]) -> int:
    from harness.fixtures.zoo.traffic import DEFAULT_SAMPLE, write_sample_traffic

    p = argparse.ArgumentParser(prog="python -m harness traffic", description="Write the zoo's sample traffic.")
    p.add_argument("--out", type=Path, default=DEFAULT_SAMPLE)
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--seed", type=int, default=7)
    a = p.parse_args(argv)
    write_sample_traffic(a.out, a.n, a.seed)
    print(f"wrote {a.n} requests to {a.out}")
    return 0


def _real(argv: list[str]) -> int:
    from harness.fixtures.real.checkpoint import MODELS, build_real, cache_root

    p = argparse.ArgumentParser(prog="python -m harness real", description="Build a real checkpoint (real:NAME).")
    p.add_argument("name", nargs="?", default="smollm2", choices=sorted(MODELS))
    p.add_argument("--dir", type=Path, default=None, help="cache root (default $HARNESS_REAL_DIR or "
                   f"{cache_root()})")
    p.add_argument("--force", action="store_true", help="rebuild even when up to date")
    a = p.parse_args(argv)
    print(f"real:{a.name} ready in {build_real(a.name, a.dir, force=a.force)}")
    return 0


def _real_traffic(argv: list[str]) -> int:
    from harness.fixtures.real.traffic import DEFAULT_REAL_SAMPLE, write_real_traffic

    p = argparse.ArgumentParser(prog="python -m harness real-traffic", description="Write the real model's traffic.")
    p.add_argument("--out", type=Path, default=DEFAULT_REAL_SAMPLE)
    p.add_argument("--shared", type=Path, default=None,
                   help="also MT-Bench first turns and XSTest prompts from this folder (../shared/data); "
                        "write such a file outside the package (--out), never commit it")
    a = p.parse_args(argv)
    if a.shared is not None and not a.shared.is_dir():
        raise BadInput(f"--shared {a.shared}: no such folder. Fix: give the shared data folder (../shared/data).")
    print(f"wrote {write_real_traffic(a.out, a.shared)} requests to {a.out}")
    return 0


def _import(argv: list[str]) -> int:
    from harness.traffic.importer import main as import_main

    return import_main(argv)


def _import_openai(argv: list[str]) -> int:
    from harness.traffic.openai_import import main as import_main

    return import_main(argv)


def _golden(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m harness golden", description="Golden sets.")
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="write the zoo's golden set")
    b.add_argument("--out", type=Path, default=None)
    b.add_argument("--n", type=int, default=1600)
    c = sub.add_parser("candidates", help="propose golden items from a run, ready for annotation")
    c.add_argument("run_dir", type=Path)
    c.add_argument("--n", type=int, default=50, help="items per reason (diverged, failed, low judged)")
    c.add_argument("--out", type=Path, default=None)
    v = sub.add_parser("check", help="validate a golden set")
    v.add_argument("path", type=Path)
    a = p.parse_args(argv)
    if a.cmd == "build":
        from harness.fixtures.zoo.golden import DEFAULT_GOLDEN, write_zoo_golden

        print(f"golden set written to {write_zoo_golden(a.out or DEFAULT_GOLDEN, n=a.n)}")
    elif a.cmd == "candidates":
        from harness.golden.candidates import propose

        if not (a.run_dir / "manifest.json").exists():
            raise BadInput(f"{a.run_dir}: no manifest.json. Fix: pass a run directory "
                                    "(reports/<experiment>/<run_id> or reports/<experiment>/latest).")
        print(f"golden candidates written to {propose(a.run_dir.resolve(), a.n, a.out)}")
    else:
        from harness.golden.schema import load_golden

        print(f"{a.path}: {len(load_golden(a.path)[1])} golden items, all valid")
    return 0


def _annotate(argv: list[str]) -> int:
    import secrets

    from harness.annotate import check_labels, write_annotation_page

    p = argparse.ArgumentParser(prog="python -m harness annotate", description="Label a run's pairs blind "
                                "(docs/annotate.md).")
    p.add_argument("run_dir", type=Path, help="reports/<experiment>/<run_id> (or .../latest)")
    p.add_argument("--n", type=int, default=40, help="pairs on the page (default 40)")
    p.add_argument("--seed", type=int, default=None, help="order and sides (default: a random seed, recorded)")
    p.add_argument("--judge", default=None, help="score the criteria of configs/judge/NAME.yaml's rubric "
                   "(default: the run's judge's, else the pairwise choice only)")
    p.add_argument("--out", type=Path, default=None, help="the page (default RUN_DIR/annotate/annotate-<id>.html)")
    p.add_argument("--labels", type=Path, nargs="+", default=None, help="label files the page downloaded: check "
                   "them and print agreement instead of writing a page")
    p.add_argument("--golden", type=Path, default=None, help="with --labels: add the promoted requests to this "
                   "golden set (Parquet; created or extended)")
    a = p.parse_args(argv)
    if not (a.run_dir / "manifest.json").exists():
        raise BadInput(f"{a.run_dir} has no manifest.json: not a run directory. "
                       "Fix: pass reports/<experiment>/<run_id> (or .../latest).")
    if a.labels is None:
        if a.golden is not None:
            raise BadInput("--golden needs --labels FILE (the label file with the promoted requests).")
        seed = a.seed if a.seed is not None else secrets.randbelow(2**31)
        print(f"labelling page: {write_annotation_page(a.run_dir, a.n, seed, a.judge, a.out)} (seed {seed})")
        return 0
    for line in check_labels(a.run_dir, a.labels, a.judge, a.golden):
        print(line)
    return 0


def _runs(argv: list[str]) -> int:
    from harness.report.history import collect_runs, collect_watch, format_runs, format_watch
    from harness.report.index_html import write_index

    p = argparse.ArgumentParser(prog="python -m harness runs", description="Every run, newest first; index.html.")
    p.add_argument("--output-dir", type=Path, default=Path("reports"), help="where runs are (default: reports)")
    a = p.parse_args(argv)
    print(format_runs(collect_runs(a.output_dir)))
    checks = collect_watch(a.output_dir)
    if checks:
        print("\n" + format_watch(checks))
    print(f"index: {write_index(a.output_dir)}")
    return 0


def _canary(argv: list[str]) -> int:
    from harness.canary.cli import canary

    return canary(argv)


def _watch(argv: list[str]) -> int:
    from harness.watch.cli import watch

    return watch(argv)


def _serve(argv: list[str]) -> int:
    from harness.canary.serve import main as serve_main

    return serve_main(argv)


COMMANDS = {"replay": _replay, "runs": _runs, "report": _report, "zoo": _zoo, "traffic": _traffic,
            "real": _real, "real-traffic": _real_traffic,
            "import-openai": _import_openai, "import": _import, "golden": _golden, "sweep-summary": _sweep_summary,
            "cache": _cache, "annotate": _annotate,
            "canary": _canary, "serve": _serve, "signoff": _signoff, "init": _init,
            "watch": _watch}


def main(argv: list[str] | None = None) -> int:
    """Dispatch ``python -m harness COMMAND ...``; bad input exits 2 with the fix, not a traceback."""
    from harness import console

    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = bool(argv) and argv[0] in ("-v", "--verbose")
    argv = argv[1:] if verbose else argv
    argv = _config_dir_after_command(argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(__doc__)
        return 0
    if argv[0] not in COMMANDS:
        print(f"error: unknown command {argv[0]!r}.\n{__doc__}", file=sys.stderr)
        return EXIT_BAD_INPUT
    console.configure(verbose or os.environ.get("HARNESS_VERBOSE") == "1")
    signal.signal(signal.SIGTERM, _interrupt)  # SIGTERM unwinds like Ctrl-C: servers and Ray are stopped on the way
    try:
        return COMMANDS[argv[0]](argv[1:])
    except BadInput as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted: the batches already replayed are kept; run the same command (same run_id) to resume.",
              file=sys.stderr)
        return EXIT_INTERRUPTED


def _config_dir_after_command(argv: list[str]) -> list[str]:
    """``--config-dir DIR`` (``-cd DIR``, ``--config-dir=DIR``) given before the command moves after it, where Hydra
    reads it: ``python -m harness --config-dir=D replay ...`` is ``python -m harness replay --config-dir=D ...``."""
    moved: list[str] = []
    rest = list(argv)
    while rest and (rest[0] in ("--config-dir", "-cd") or rest[0].startswith("--config-dir=")):
        flag = rest.pop(0)
        moved += [flag] if "=" in flag else [flag, rest.pop(0) if rest else ""]
    return [rest[0], *moved, *rest[1:]] if rest and moved else argv


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")
