"""Every command README.md, docs/*.md and the Makefile's header tell a user to type works as typed.

``documented_commands`` reads them (inline code and shell blocks that start with ``make``, ``python -m harness``,
``python scripts/`` or ``.venv/bin/...``; the Makefile's ``#   make ...`` header lines). ``COMMANDS`` is the one list
of what this test does with each, and ``test_the_list_is_complete`` proves it covers every documented command (a new
command in the docs fails here until it is listed):

- ``RUN``: run exactly as typed, from the repository root, with the venv first on PATH (a user who activated it;
  ``python`` is the venv's), relative paths and default output folders included. The exit code must be the one the
  docs promise, and the command must write nothing outside its output folder (``reports/``, ignored by git): the
  repository's ``git status`` is the same before and after.
- ``PARSE``: too expensive for the suite (a benchmark, a GPU box, the real model's experiments, the suite itself)
  or a usage line with placeholders (``<name>``, ``RUN_DIR``, ``[...]``): the command line is parsed and nothing runs
  (``--help`` of its program; ``--cfg job`` for a complete ``replay`` command, which composes its config and checks
  every key; ``make -n`` for a make target).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO

RUN = "run"
PARSE = "parse"
STARTS = ("make ", "python -m harness", "python scripts/", ".venv/bin/python")
PLACEHOLDER = re.compile(r"<[^>]+>| \[|\.\.\.|\b(NAME|RUN_DIR|FILE|DIR|IN\.jsonl|OUT\.parquet|SWEEP_DIR|SWEEP_ID)\b|\|")

BENCH = "a benchmark (minutes; `make bench`, its numbers are in docs/bench)"
GPU = "needs a GPU box and the user's own checkpoints and traffic"
REAL = "the real model's experiments (minutes each on CPU; tests/real runs one on imported arms)"
USAGE = "a usage line with placeholders; its program's arguments are parsed"
PROSE = "names the command in prose; its complete form is listed too"
SUITE = "the suite itself (this test runs inside it)"
SAME = "the same run as `make replay` (run here as typed)"
EXTERNAL = "needs data outside the repository (../shared/data)"
INIT = "writes into the home directory; tests/test_ci_policy.py runs `init` into a temporary one"
GPU_INIT = ("needs a GPU box and the user's checkpoints; parsed with --cfg job against a config dir that "
            "`python -m harness init` writes (the one the docs make at ~/gate)")
ANNOTATE = ("the labelling kit on a run and the label files a person downloads; tests/annotate/test_kit.py runs "
            "each step on the zoo_terse run")
GATE_DIR = Path(os.environ.get("PYTEST_DOCS_GATE", "/tmp/harness-docs-gate"))

COMMANDS: dict[str, tuple[str, int | str]] = {
    # run as typed: (RUN, the exit code the docs promise)
    "make": (RUN, 0),  # the default goal: setup (the venv, already built)
    "make replay": (PARSE, ".ci/run runs it exactly as typed before the suite (and `make gate` here runs the same "
                           "experiment)"),
    "make gate": (RUN, 2),  # ROLLBACK: make fails (make's own status is 2) and prints the verdict's code 11
    "make zoo": (RUN, 0),
    "make lint": (PARSE, ".ci/run runs it exactly as typed (40 s of mypy on a cold cache: outside the suite's budget)"),
    "python -m harness --help": (RUN, 0),
    "python -m harness replay --help": (RUN, 0),
    "python -m harness cache info": (RUN, 0),
    "python -m harness runs": (RUN, 0),
    "python -m harness canary": (RUN, 2),  # no logs= given: bad input, the message says what to set
    "python -m harness serve": (RUN, 2),  # no --run-dir: bad input
    "python -m harness watch": (PARSE, "a local vLLM server of real:smollm2 and a probe run (tests/real/test_watch.py "
                                       "runs the command against the shared real server)"),
    "make watch": (PARSE, "what `python -m harness watch` runs (tests/real/test_watch.py)"),
    "python -m harness watch name=v7 arm.checkpoint=null arm.engine.server.base_url=https://llm.example "
    "arm.engine.server.model=v7 probe.traffic=/data/traffic.parquet": (PARSE, "a user's endpoint and traffic"),
    "python -m harness watch [key=value ...]": (PARSE, USAGE),
    "python -m harness watch name=NAME ...": (PARSE, USAGE),
    "python -m harness.bench.watch collect ref aa1 bf16 top_p system_prompt int8 aa2": (PARSE, BENCH),
    "python -m harness.bench.watch analyze --checks 300 --seed 20261205": (PARSE, BENCH),
    # parsed only
    "make canary": (PARSE, "run as typed by tests/canary/test_demo.py (its own test: 100 s)"),
    "python -m harness.canary.demo": (PARSE, "what `make canary` runs (tests/canary/test_demo.py runs that)"),
    "make replay VERBOSE=1": (PARSE, SAME),
    "python -m harness replay": (PARSE, SAME),
    "make replay ARGS=\"traffic.limit=500\"": (PARSE, SAME),
    "make replay EXPERIMENT=zoo_json_drift": (PARSE, "a zoo experiment: tests/test_zoo_verdicts.py runs them all"),
    "python -m harness replay experiment=zoo_benign": (PARSE, "a zoo experiment (tests/test_zoo_verdicts.py)"),
    "python -m harness replay experiment=zoo_terse traffic.limit=500": (PARSE, "a zoo experiment "
                                                                             "(tests/test_replay_vllm.py)"),
    "make replay EXPERIMENT=<name>": (PARSE, USAGE),
    "make replay [EXPERIMENT=name] [ARGS=\"key=value ...\"] [VERBOSE=1]": (PARSE, USAGE),
    "make replay EXPERIMENT=real_aa": (PARSE, REAL),
    "make replay EXPERIMENT=real_cautious": (PARSE, REAL),
    "make replay EXPERIMENT=real_concise": (PARSE, REAL),
    "make replay EXPERIMENT=real_terse": (PARSE, REAL),
    "python -m harness replay experiment=real_terse": (PARSE, REAL),
    "python -m harness replay experiment=real_load": (PARSE, REAL),
    "make sweep SWEEP=real_serving_load": (PARSE, REAL),
    "python -m harness.bench.load reference": (PARSE, BENCH),
    "python -m harness.bench.load record": (PARSE, BENCH),
    "python -m harness.bench.load replay": (PARSE, BENCH),
    "python -m harness.bench.load sweep": (PARSE, BENCH),
    "python -m harness.bench.load sweep --rate 2": (PARSE, BENCH),
    "python -m harness.bench.load_sim": (PARSE, BENCH),
    "make real": (PARSE, "builds the real model (34 s, cached outside git); tests/real builds it once"),
    "python -m harness real": (PARSE, "what `make real` runs"),
    "make sweep": (PARSE, "a sweep of the zoo's serving settings (tests/test_sweep.py runs a small one)"),
    "make sweep SWEEP=zoo_serving": (PARSE, "a sweep (tests/test_sweep.py runs a small one)"),
    "make sweep SWEEP=zoo_prompts ARGS=\"traffic.limit=500\"": (PARSE, "a sweep (tests/test_sweep.py)"),
    "make sweep SWEEP=real_temperature": (PARSE, REAL),
    "make test": (PARSE, SUITE),
    "make test-fast": (PARSE, SUITE),
    "make test PYTEST_ARGS=\"--durations=15\"": (PARSE, SUITE),
    "make setup": (PARSE, "the venv; every other target builds it first (CI: .ci/run)"),
    "make setup GPU=1": (PARSE, GPU),
    "make setup [GPU=1]": (PARSE, USAGE),
    "make bench": (PARSE, BENCH),
    "make validate-gate": (PARSE, BENCH),
    "make canary-sim": (PARSE, BENCH),
    "make quality": (PARSE, "trains nothing but decodes 400 items per zoo checkpoint (a minute)"),
    "make traffic": (PARSE, "rewrites the committed sample traffic (replays/support_sample.parquet)"),
    "python -m harness traffic": (PARSE, "what `make traffic` runs"),
    "make zoo | make traffic | make quality | make lint | make clean": (PARSE, USAGE),
    ".venv/bin/python -m harness replay experiment=NAME ...": (PARSE, USAGE),
    ".venv/bin/python -m harness init ~/gate": (PARSE, INIT),
    ".venv/bin/python -m harness init ~/gate --checkpoint /models/Llama-3.1-8B-Instruct --traffic "
    "/data/traffic/requests.parquet": (PARSE, INIT),
    ".venv/bin/python -m harness replay --config-dir=$HOME/gate experiment=my_fp8": (PARSE, GPU_INIT),
    ".venv/bin/python -m harness replay --config-dir=$HOME/gate experiment=my_system_prompt": (PARSE, GPU_INIT),
    ".venv/bin/python -m harness replay --config-dir=$HOME/gate experiment=my_fp8  baseline.engine.backend=server "
    "baseline.engine.replicas=2 'baseline.engine.devices=[\"0\",\"1\"]'  candidate.engine.backend=server "
    "candidate.engine.replicas=2 'candidate.engine.devices=[\"0\",\"1\"]'": (PARSE, GPU_INIT),
    ".venv/bin/python -m harness replay --config-dir=$HOME/gate experiment=my_fp8  "
    "baseline.engine.tensor_parallel_size=2 candidate.engine.tensor_parallel_size=2": (PARSE, GPU_INIT),
    "python -m harness init DIR": (PARSE, USAGE),
    "python -m harness init": (PARSE, PROSE),
    "python -m harness signoff": (PARSE, PROSE),
    "python -m harness signoff RUN_DIR --by NAME --note TEXT": (PARSE, "tests/test_ci_recipes.py signs a run off"),
    "python -m harness report RUN_DIR --fail-on V,V": (PARSE, USAGE),
    ".venv/bin/python -m harness.bench.analysis_scaling": (PARSE, BENCH),
    ".venv/bin/python -m harness.bench.cache": (PARSE, BENCH),
    ".venv/bin/python -m harness.bench.engines": (PARSE, BENCH),
    ".venv/bin/python -m harness.bench.engines --backends transformers": (PARSE, BENCH),
    ".venv/bin/python -m harness.bench.overhead": (PARSE, BENCH),
    ".venv/bin/python -m harness.bench.overhead --repeats 24": (PARSE, BENCH),
    "python -m harness.bench.analysis_scaling": (PARSE, BENCH),
    "python -m harness.bench.cache": (PARSE, BENCH),
    "python -m harness.bench.canary_sim --canaries 1000 --seed 2419": (PARSE, BENCH),
    "python -m harness.bench.validate_rule": (PARSE, BENCH),
    "python -m harness.bench.canary_memory": (PARSE, BENCH),
    "python -m harness replay experiment=zoo_aa": (PARSE, "a zoo experiment (tests/test_zoo_verdicts.py)"),
    "python -m harness.bench.embedding": (PARSE, BENCH),
    "python -m harness.bench.engines": (PARSE, BENCH),
    "python -m harness.bench.judge": (PARSE, BENCH),
    "python -m harness.bench.overhead": (PARSE, BENCH),
    "python -m harness.bench.scale": (PARSE, BENCH),
    "python -m harness.bench.traffic_memory ...": (PARSE, USAGE),
    "python -m harness.bench.traffic_memory write /tmp/big.parquet --rows 2000000": (PARSE, BENCH),
    "python -m harness.bench.validate_gate": (PARSE, BENCH),
    "python -m harness.bench.validate_gate --seeds 20 --sizes 100,300,1000": (PARSE, BENCH),
    "python -m harness.fixtures.zoo.quality --n 400": (PARSE, "what `make quality` runs"),
    "python -m harness.fixtures.zoo.quality harness/fixtures/zoo/checkpoints/baseline "
    "harness/fixtures/zoo/checkpoints/benign": (PARSE, "decodes the quality set on two zoo checkpoints (a minute)"),
    "python -m harness ...": (PARSE, USAGE),
    "python -m harness -v replay ...": (PARSE, USAGE),
    "python -m harness replay --cfg job ...": (PARSE, USAGE),
    "python -m harness replay ... signals=[stats,probe] probe.count=5": (PARSE, "tests/signals/test_plugin_cli.py "
                                                                         "runs it with its plug-in installed"),
    "python -m harness replay experiment=<name> traffic.limit=1000 run_id=doc1000": (PARSE, USAGE),
    "python -m harness report": (PARSE, PROSE),
    "python -m harness report RUN_DIR": (PARSE, USAGE),
    "python -m harness report reports/<exp>/doc1000": (PARSE, USAGE),
    "python -m harness report reports/<experiment>/<run_id>": (PARSE, USAGE),
    "python -m harness runs [--output-dir reports]": (PARSE, USAGE),
    "python -m harness runs --output-dir /data/gate": (PARSE, "a user's own output folder"),
    "python -m harness golden build": (PARSE, "rewrites the committed golden set (replays/golden_zoo.parquet)"),
    "python -m harness golden candidates RUN_DIR": (PARSE, USAGE),
    "python -m harness golden check": (PARSE, PROSE),
    "python -m harness golden check FILE": (PARSE, USAGE),
    "python -m harness import openai|litellm|otel IN... OUT.parquet": (PARSE, USAGE),
    "python -m harness import openai|litellm|otel IN... OUT.parquet [--skip-invalid] [--quarantine Q.jsonl]": (PARSE,
                                                                                                          USAGE),
    "python -m harness.traffic.openai_import IN.jsonl OUT.parquet [--segment-field F] [--default-segment S]":
        (PARSE, USAGE),
    "python -m harness real-traffic": (PARSE, "rewrites the committed real-model traffic "
                                              "(replays/real_sample.parquet)"),
    "python -m harness real-traffic --shared ../shared/data --out /tmp/real_shared.parquet": (PARSE, EXTERNAL),
    "python -m harness sweep-summary <sweep_id>": (PARSE, USAGE),
    "python -m harness sweep-summary reports/sweeps/<sweep_id>": (PARSE, USAGE),
    "python -m harness canary logs=/var/log/llm-canary/ window_s=3600 observation_windows=24  "
    "golden.path='${pkg:replays/golden_zoo.parquet}' golden.control_url=http://v7:8000 "
    "golden.canary_url=http://v8:8000  hooks=haproxy hooks.haproxy.socket=/run/haproxy/admin.sock "
    "hooks.webhook.url=https://alerts.example/canary  follow=true run_id=v8-canary": (PARSE, "a live canary in a "
                                                                                      "user's cluster"),
    "python -m harness canary logs=/var/log/app join.logs=/var/log/haproxy  'mapping.arm_values={llm_v7: control, "
    "llm_v8: canary}' follow=true run_id=v8-canary": (PARSE, "a live canary in a user's cluster (tests/canary/"
                                                          "test_demo.py runs the same join against a real HAProxy)"),
    "python -m harness serve --run-dir DIR [--host 127.0.0.1] [--port 8099] [--token-env NAME]": (PARSE, USAGE),
    "python -m harness serve --run-dir reports/canary/v8-canary": (PARSE, "serves until stopped "
                                                                    "(tests/canary/test_serve.py)"),
    "python scripts/calibrate_judge_xstest.py": (PARSE, EXTERNAL),
    "python scripts/calibrate_judge_xstest.py --data ../shared/data --n 150": (PARSE, EXTERNAL),
    "python scripts/measure_refusal.py": (PARSE, EXTERNAL),
    "python scripts/measure_evasion.py": (PARSE, EXTERNAL),
    "python -m harness annotate RUN_DIR [--n 40] [--judge NAME]": (PARSE, USAGE),
    "python -m harness annotate RUN_DIR --labels FILE...": (PARSE, USAGE),
    "python -m harness annotate RUN --labels": (PARSE, PROSE),
    "python -m harness annotate reports/default/latest --n 40 --judge zoo": (PARSE, ANNOTATE),
    "python -m harness annotate reports/default/latest --judge zoo --labels labels-ab12cd34ef56-ann1.csv "
    "labels-ab12cd34ef56-ann2.csv": (PARSE, ANNOTATE),
    "python -m harness annotate reports/default/latest --labels labels-ab12cd34ef56-ann1.csv "
    "--golden golden/annotated.parquet": (PARSE, ANNOTATE),
    "python -m harness golden check golden/annotated.parquet": (PARSE, ANNOTATE),
    "python -m harness.bench.judge_human agreement --data ../shared/data": (PARSE, EXTERNAL),
    "python -m harness.bench.judge_human experiment --data ../shared/data": (PARSE, EXTERNAL),
    "python -m harness.bench.judge_human negative --data ../shared/data --n 40": (PARSE, EXTERNAL),
    "python -m harness replay experiment=judge_pairs traffic.path=<traffic> baseline.imported=<output_1s> "
    "candidate.imported=<output_2s> judge.imported=<verdicts> judge.annotations=<labels> "
    "judge.calibration=<verdicts_on_all_pairs>": (PARSE, EXTERNAL),
    "python scripts/validate_real.py": (PARSE, EXTERNAL),
}


def documented_commands() -> dict[str, str]:
    """Every command the docs tell a user to type -> the file that says it."""
    out: dict[str, str] = {}
    for f in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        text = f.read_text(encoding="utf-8")
        for block in re.findall(r"```(?:bash|sh|console)?\n(.*?)```", text, re.S):
            for line in re.sub(r"\\\n\s*", " ", block).splitlines():
                line = line.split("  #")[0].strip()
                if line.startswith(STARTS) or line == "make":
                    out.setdefault(line, f.name)
        for span in re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.S)):
            if span.strip().startswith(STARTS) or span.strip() == "make":
                out.setdefault(span.strip(), f.name)
    for line in (REPO / "Makefile").read_text(encoding="utf-8").splitlines():
        m = re.match(r"#\s+(make\b[^`]*?)(?:\s{2,}|$)", line)
        if m and not m.group(1).startswith("make's"):
            out.setdefault(m.group(1).strip(), "Makefile")
    return out


def _env() -> dict[str, str]:
    venv_bin = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}", "HF_HUB_OFFLINE": "1"}


def _shell(command: str, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    env = _env()
    if "$HOME/gate" in command:  # the docs' `init ~/gate` first, into a scratch HOME
        home = GATE_DIR / "home"
        if not (home / "gate" / "experiment").is_dir():
            subprocess.run([sys.executable, "-m", "harness", "init", str(home / "gate")], cwd=REPO, env=env,
                           check=True, capture_output=True, timeout=120)
        env["HOME"] = str(home)
    return subprocess.run(["bash", "-c", command], cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          env=env)


def _git_status() -> str:
    return subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=REPO, capture_output=True,
                          text=True, check=True).stdout


def parse_check(command: str) -> str:
    """The command that parses ``command``'s line without running it."""
    if command.startswith("make"):
        target = command.split("|")[0].replace("[", "").replace("]", "")
        target = re.sub(r"<[^>]+>", "x", target)
        return "make -n " + target[len("make"):].strip()
    words = command.split()
    words[0] = "python" if words[0] == ".venv/bin/python" else words[0]  # the venv's python is first on PATH
    if words[0] == "python" and words[1] == "-m":
        program = words[:3]
        rest = words[3:]
        if words[2] == "harness":
            sub = next((w for w in rest if not w.startswith("-")), None)
            if sub == "replay" and not PLACEHOLDER.search(command):
                return re.sub(r"^\.venv/bin/python", "python", command) + " --cfg job"
            program += [w for w in rest[: rest.index(sub) + 1]] if sub in ("replay", *SUBCOMMANDS) else []
        return " ".join([*program, "--help"])
    return " ".join([*words[:2], "--help"])  # python scripts/NAME.py


SUBCOMMANDS = ("report", "runs", "zoo", "traffic", "real", "real-traffic", "import-openai", "golden", "sweep-summary",
               "cache", "canary", "serve", "init", "signoff", "import", "watch")


def test_the_list_is_complete() -> None:
    documented = documented_commands()
    missing = {c: f for c, f in documented.items() if c not in COMMANDS}
    stale = sorted(set(COMMANDS) - set(documented))
    assert missing == {}, "documented but not listed in COMMANDS (run it, or say why it is only parsed)"
    assert stale == [], "listed but no longer documented"


@pytest.mark.parametrize("command", sorted({parse_check(c) for c, (mode, _) in COMMANDS.items() if mode == PARSE}))
def test_documented_command_line_parses(command: str) -> None:
    proc = _shell(command, timeout=180)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-2000:]


@pytest.mark.e2e
@pytest.mark.vllm
@pytest.mark.parametrize("command", sorted(c for c, (mode, _) in COMMANDS.items() if mode == RUN))
def test_documented_command_runs_as_typed(command: str) -> None:
    before = _git_status()
    proc = _shell(command)
    assert proc.returncode == COMMANDS[command][1], (proc.stdout + proc.stderr)[-3000:]
    assert _git_status() == before, "wrote outside its output folder"
    if command == "make gate":  # make cannot pass the code through; it says which it was
        assert "make gate: exit code 11" in proc.stderr
