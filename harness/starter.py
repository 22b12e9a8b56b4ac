"""``python -m harness init DIR``: a starting config dir for a user's own models, used with ``--config-dir=DIR``.

It holds arms for one Hugging Face checkpoint served in bf16, FP8 and AWQ/GPTQ and with a new system prompt, two
experiments (the quantization gate and the system-prompt gate: no golden set unless given, sampling as captured, an
A/A arm), a quantization sweep and a judge. Every file starts with the command that uses it (docs/gpu.md).
"""

from __future__ import annotations

import json
from pathlib import Path

from harness.errors import BadInput

CHECKPOINT = "/models/Llama-3.1-8B-Instruct"  # a placeholder: edit it, or `init --checkpoint`
TRAFFIC = "/data/traffic/requests.parquet"  # python -m harness import-openai ... writes one

_ENGINE = """engine:
  backend: vllm
  dtype: {dtype}
  max_model_len: 8192  # null: the checkpoint's context length (131,072 for Llama 3.1: more KV memory than needed)
  gpu_memory_utilization: 0.85  # arms run one after the other: each can use most of the GPU
{extra}"""
_CPU_ENGINE = """engine:  # `init --cpu`: the vLLM CPU build (a laptop, CI without a GPU); FP8/AWQ need a GPU
  backend: vllm
  dtype: float32
  max_model_len: 1024
  gpu_memory_utilization: 0.25  # on CPU: the share of host memory for the KV cache
  enforce_eager: true
  extra: {{max_num_seqs: 64}}
{extra}"""


def _arm(command: str, what: str, checkpoint: str, dtype: str = "bfloat16", extra: str = "", tail: str = "",
         cpu: bool = False) -> str:
    engine = _CPU_ENGINE if cpu else _ENGINE
    return (f"# {command}\n# {what}\ncheckpoint: {json.dumps(checkpoint)}\n" + engine.format(dtype=dtype, extra=extra)
            + "sampling: {}  # as captured; a parameter the traffic lacks comes from the checkpoint's "
              "generation_config.json\n" + tail)


def files(dir: Path, checkpoint: str | None = None, traffic: str | None = None, cpu: bool = False
          ) -> dict[str, str]:
    """Relative path -> text of every file ``init`` writes."""
    ckpt = checkpoint or CHECKPOINT
    cd = f"--config-dir={dir.resolve()}"
    run = f"python -m harness replay {cd}"
    used_by = f"Used by `{run} experiment=my_fp8` (and my_system_prompt, the sweep)"
    out = {
        "arm/my_bf16.yaml": _arm(used_by + ".", "The baseline: the checkpoint as production serves it, bf16.",
                                 ckpt, cpu=cpu),
        "arm/my_fp8.yaml": _arm(
            f"`{run} experiment=my_fp8`: the candidate.",
            "The same checkpoint quantized to FP8 when loaded (weights fp8, dynamic activation scales; Hopper/Ada "
            "GPUs).\n# A checkpoint already quantized to FP8 (e.g. an llm-compressor export) needs no `quantization`: "
            "vLLM reads it\n# from its config.json; point `checkpoint` at it and set quantization: null.",
            ckpt, extra="  quantization: fp8\n", cpu=cpu),
        "arm/my_awq.yaml": _arm(
            f"`{run} -m experiment=my_fp8 sweep=my_quantization`: one of the sweep's candidates.",
            "An AWQ (or GPTQ) export of the checkpoint: its own directory. vLLM picks the fast Marlin kernels on "
            "GPUs that have them.\n# GPTQ: quantization: gptq (or gptq_marlin). AWQ/GPTQ kernels run in float16.",
            ckpt.rstrip("/") + "-AWQ", dtype="float16", extra="  quantization: awq\n", cpu=cpu),
        "arm/my_new_prompt.yaml": _arm(
            f"`{run} experiment=my_system_prompt`: the candidate.",
            "The baseline checkpoint and serving, with the new system prompt (it replaces the captured one).",
            ckpt, tail='system_prompt: "You are a support assistant. Answer precisely and briefly; say when you do '
                       'not know."\n', cpu=cpu),
        "experiment/my_fp8.yaml": _experiment(
            f"`{run} experiment=my_fp8` (a CI job: add --fail-on=ROLLBACK,INVESTIGATE; docs/ci.md)",
            "The bf16 -> FP8 gate: the same checkpoint, quantized.", "my_fp8", "my_fp8", traffic),
        "experiment/my_system_prompt.yaml": _experiment(
            f"`{run} experiment=my_system_prompt`",
            "The system-prompt change: same weights and serving, a new system prompt.", "my_new_prompt",
            "my_system_prompt", traffic),
        "sweep/my_quantization.yaml": (
            f"# @package _global_\n# `{run} -m experiment=my_fp8 sweep=my_quantization`\n"
            "# One normal run per candidate (FP8 when loaded, the AWQ export) against the same bf16 baseline, "
            "generated once\n# and then served from the generation cache; summary: "
            "reports/sweeps/<sweep_id>/summary.md (docs/sweeps.md).\n"
            "name: my_quantization\nhydra:\n  sweeper:\n    params:\n      arm@candidate: my_fp8,my_awq\n"),
        "judge/my_judge.yaml": (
            f"# `{run} experiment=my_fp8 judge=my_judge`\n"
            "# An LLM judge served like an arm after both arms (docs/judge.md): rates both arms' answers per "
            "criterion. Its criteria\n# stay advisory until annotations show it agrees with people "
            "(judge.annotations, agreement_bar).\n"
            "enabled: true\narm:\n  checkpoint: Qwen/Qwen2.5-7B-Instruct  # a local path works too\n"
            "  engine:\n    backend: vllm\n    dtype: bfloat16\n    max_model_len: 8192\n"
            "    gpu_memory_utilization: 0.85\n    structured_output: true\n"
            "    extra: {enable_prefix_caching: true}\n  sampling: {temperature: 0.0, max_tokens: 96}\n"
            "annotations: null  # CSV/Parquet: request_id, arm, criterion, label\nrubric:\n  name: mine-v1\n"
            "  criteria:\n"
            "    - {name: accuracy, description: \"the facts are correct for the request; 5 = all correct, 1 = mostly "
            "wrong.\"}\n"
            "    - {name: instruction_adherence, description: \"the answer does what was asked; 5 = fully, 1 = not at "
            "all.\"}\n"
            "    - {name: tone, description: \"polite, direct and confident; 5 = ideal, 1 = rude or evasive.\"}\n"),
    }
    return out


def _experiment(command: str, what: str, candidate: str, name: str, traffic: str | None) -> str:
    return (f"# @package _global_\n# {command}\n# {what}\n"
            "defaults:\n  - override /arm@baseline: my_bf16\n"
            f"  - override /arm@candidate: {candidate}\n\n"
            f"name: {name}  # runs go to reports/{name}/<run_id>/\n"
            f"traffic:\n  path: {json.dumps(traffic or TRAFFIC)}\n"
            "  limit: null  # or N: replay only the first N requests\n"
            "golden:\n  path: null  # a golden set (python -m harness golden check PATH) when you have one\n"
            "drift:\n  # the A/A arm: the baseline replayed with a change that should not matter, for the noise floor."
            "\n  # Sampled traffic: another seed; greedy traffic: another dtype (fp16 for a bf16 baseline).\n"
            '  aa_perturbation: ["sampling.seed=1"]\n'
            "ci:\n  fail_on: [ROLLBACK, INVESTIGATE, HOLD_FOR_SIGNOFF, INSUFFICIENT_DATA]  # or --fail-on on the "
            "command line\n")


def write_config_dir(dir: Path, checkpoint: str | None = None, traffic: str | None = None,
                     force: bool = False, cpu: bool = False) -> list[Path]:
    """Write the config dir; returns the files written.

    Raises:
        BadInput: a file exists (without ``force``), naming it.
    """
    texts = files(dir, checkpoint, traffic, cpu)
    existing = [dir / rel for rel in texts if (dir / rel).exists()]
    if existing and not force:
        raise BadInput(f"{existing[0]} exists. Fix: another DIR, or --force to overwrite the {len(existing)} files.")
    out = []
    for rel, text in texts.items():
        path = dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        out.append(path)
    return out
