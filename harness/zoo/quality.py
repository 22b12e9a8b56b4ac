"""Quality of zoo checkpoints on held-out requests, against the task's truth.

``python -m harness.zoo.quality [--n 400] [CHECKPOINT ...]`` serves each checkpoint with vLLM
(greedy) and prints, per checkpoint: JSON validity and field accuracy (extract), yes/no accuracy
against the true facts (faq), share of summaries with exactly three bullets, share of chat replies
equal to the reference, hedge/refusal share, and the share of outputs equal to the checkpoint's own
training reference style.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from harness.zoo import tasks

HELD_OUT_SEED = 99


def score(ex: tasks.Example, text: str, style: str) -> dict[str, float]:
    """Per-example quality scores (keys depend on the segment)."""
    out: dict[str, float] = {"matches_style": float(text == tasks.reference(ex, style))}
    f = ex.facts
    if ex.segment == "extract":
        try:
            obj = json.loads(text)
        except ValueError:
            obj = None
        out["json_valid"] = float(isinstance(obj, dict))
        fields = ("name", "product", "quantity", "order_id")
        out["field_accuracy"] = (sum(isinstance(obj, dict) and obj.get(k) == f[k] for k in fields) / len(fields))
    elif ex.segment == "faq":
        truth = tasks.has_feature(f["plan"], f["feature"], "improved")
        said = "yes" if "yes" in text.lower()[:40] else "no" if "no" in text.lower()[:40] else None
        out["yes_no_accuracy"] = float(said == ("yes" if truth else "no"))
    elif ex.segment == "summarize":
        out["three_bullets"] = float(sum(line.startswith("- ") for line in text.splitlines()) == 3)
    else:
        out["chat_exact"] = float(text == tasks.reference(ex, "baseline"))
    out["hedge_or_refusal"] = float(tasks.HEDGE_PREFIX.strip() in text or tasks.REFUSAL in text)
    return out


def evaluate_checkpoint(path: str, n: int) -> dict[str, Any]:
    """Greedy-generate ``n`` held-out examples and average the scores per key."""
    from vllm import LLM, SamplingParams

    style = path.rstrip("/").split("/")[-1]
    style = style if style in tasks.STYLES else "baseline"
    exs = tasks.examples(HELD_OUT_SEED, n)
    llm = LLM(model=path, dtype="float32", max_model_len=256, enforce_eager=True, gpu_memory_utilization=0.1)
    chats: list[Any] = [[{"role": r, "content": c} for r, c in ex.messages] for ex in exs]
    outs = llm.chat(chats,
                    SamplingParams(temperature=0.0, max_tokens=96), use_tqdm=False)
    sums: dict[str, list[float]] = {}
    for ex, o in zip(exs, outs, strict=True):
        for k, v in score(ex, o.outputs[0].text, style).items():
            sums.setdefault(k, []).append(v)
    llm.llm_engine.engine_core.shutdown()
    return {"checkpoint": path, "n": n, **{k: round(sum(v) / len(v), 3) for k, v in sums.items()}}


def main() -> None:
    from harness.zoo.build import DEFAULT_ZOO_DIR

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("checkpoints", nargs="*", default=[str(DEFAULT_ZOO_DIR / s) for s in tasks.STYLES])
    p.add_argument("--n", type=int, default=400)
    a = p.parse_args()
    for c in a.checkpoints:
        print(json.dumps(evaluate_checkpoint(c, a.n)), flush=True)


if __name__ == "__main__":
    main()
