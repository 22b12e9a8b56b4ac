"""Build the fixture zoo: tiny Llama checkpoints that vLLM (CPU build) can serve.

``python -m harness zoo`` (or ``make zoo``) trains a shared tokenizer and a ``base`` model from scratch,
then ``baseline`` and each changed candidate by fine-tuning ``base`` for the same steps on their own
references (``harness.zoo.tasks.STYLES``), and ``benign`` by briefly refreshing ``baseline``.
Deterministic for a given machine and torch build; cached: a
checkpoint whose ``zoo.json`` carries the current build key is not rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness.zoo import tasks

log = logging.getLogger(__name__)

DEFAULT_ZOO_DIR = Path(__file__).resolve().parent / "checkpoints"
ZOO_VERSION = 1
"""Bump when the training code changes what it produces: the build key changes and the zoo rebuilds."""
SPECIAL = ["<|pad|>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>"]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


@dataclass(frozen=True)
class ZooSpec:
    """Sizes and schedule of the zoo; part of the build key."""

    vocab_size: int = 1024
    hidden_size: int = 128
    intermediate_size: int = 384
    num_layers: int = 3
    num_heads: int = 2  # head_dim 64: the smallest the CPU attention accepts
    max_len: int = 256
    batch_size: int = 32
    base_steps: int = 1800
    base_lr: float = 3e-3
    finetune_steps: int = 250
    finetune_lr: float = 1e-3
    # Candidates whose change is harder to learn get more steps. json_drift must decide at the first token
    # whether to wrap the JSON in prose; 250 steps taught it the missing field but not the prose.
    finetune_steps_by_style: tuple[tuple[str, int], ...] = (("json_drift", 1000),)
    # benign = baseline + a short, gentle refresh on its own references
    refresh_steps: int = 20
    refresh_lr: float = 1e-5
    train_examples: int = 12000
    seed: int = 1234

    def steps(self, style: str) -> int:
        """Fine-tuning steps of candidate ``style``."""
        return dict(self.finetune_steps_by_style).get(style, self.finetune_steps)


FINETUNE_FIELDS = ("finetune_steps", "finetune_lr", "finetune_steps_by_style", "refresh_steps", "refresh_lr")
CHECKPOINTS = ("base", *tasks.STYLES)
"""Everything ``make zoo`` builds: the shared ``base`` model, then the six checkpoints the experiments serve."""


@dataclass(frozen=True)
class Recipe:
    """How one checkpoint is trained from its parent."""

    parent: str
    references: str  # the style whose references it is trained on
    steps: int
    lr: float
    seed: int


def recipe(spec: ZooSpec, name: str) -> Recipe:
    """The fine-tuning of checkpoint ``name`` (``base`` is trained from scratch and has none).

    ``baseline`` and every changed candidate are ``base`` fine-tuned for the same number of steps on their
    own references, so training time alone does not separate them; ``benign`` is ``baseline`` refreshed with a
    short, gentle continued training on the baseline's own references (same behaviour, new weights).
    """
    if name == "baseline":
        return Recipe("base", "baseline", spec.finetune_steps, spec.finetune_lr, spec.seed + 1)
    if name == "benign":
        return Recipe("baseline", "baseline", spec.refresh_steps, spec.refresh_lr, spec.seed + len(tasks.STYLES))
    return Recipe("base", name, spec.steps(name), spec.finetune_lr, spec.seed + tasks.STYLES.index(name))


def build_key(spec: ZooSpec, name: str = "base") -> str:
    """The key of one checkpoint: ``base``'s covers the base spec, the task definitions and ``ZOO_VERSION``;
    a fine-tuned checkpoint's adds its recipe (and its parent's). A changed key rebuilds that checkpoint."""
    base = {k: v for k, v in asdict(spec).items() if k not in FINETUNE_FIELDS}
    h = hashlib.sha256(json.dumps({**base, "zoo_version": ZOO_VERSION}, sort_keys=True).encode())
    h.update((Path(__file__).parent / "tasks.py").read_bytes())
    if name == "benign":
        h.update(json.dumps(["baseline", spec.finetune_lr, spec.finetune_steps]).encode())
        h.update(json.dumps(["benign", spec.refresh_lr, spec.refresh_steps]).encode())
    elif name != "base":
        h.update(json.dumps([name, spec.finetune_lr, spec.steps(name)]).encode())
    return h.hexdigest()[:16]


def stale(zoo_dir: Path, spec: ZooSpec = ZooSpec()) -> list[str]:
    """The checkpoints that are missing or were built with another key (with everything built on them)."""
    out: list[str] = []
    for name in CHECKPOINTS:
        meta = zoo_dir / name / "zoo.json"
        parent = recipe(spec, name).parent if name != "base" else None
        if (parent in out or not meta.exists()
                or json.loads(meta.read_text()).get("build_key") != build_key(spec, name)):
            out.append(name)
    return out


def is_built(zoo_dir: Path, spec: ZooSpec = ZooSpec()) -> bool:
    """True when every checkpoint of the zoo exists with its current build key."""
    return not stale(zoo_dir, spec)


def _train_tokenizer(texts: list[str], spec: ZooSpec) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    # Digits one per token: copying an order number is then the same operation for every digit.
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=spec.vocab_size, special_tokens=SPECIAL,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<|pad|>", eos_token="<|end|>",
                                   model_max_length=spec.max_len)
    fast.chat_template = CHAT_TEMPLATE
    return fast


def _chat(ex: tasks.Example) -> list[dict[str, str]]:
    return [{"role": r, "content": c} for r, c in ex.messages]


def _encode(tok: Any, exs: list[tasks.Example], style: str) -> list[tuple[list[int], int]]:
    """Token ids of prompt + reference + end, with the prompt length (loss is on the answer only)."""
    out = []
    for ex in exs:
        prompt = tok.apply_chat_template(_chat(ex), add_generation_prompt=True, tokenize=False)
        p_ids = tok(prompt, add_special_tokens=False)["input_ids"]
        a_ids = tok(tasks.reference(ex, style), add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        out.append((p_ids + a_ids, len(p_ids)))
    return out


def _train(model: Any, data: list[tuple[list[int], int]], steps: int, lr: float, seed: int, bs: int,
           pad_id: int) -> float:
    import torch

    torch.manual_seed(seed)
    rng = random.Random(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    warmup = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    model.train()
    loss_ema = float("nan")
    for step in range(steps):
        batch = rng.sample(data, bs)
        width = max(len(ids) for ids, _ in batch)
        inp = torch.full((bs, width), pad_id)
        labels = torch.full((bs, width), -100)
        mask = torch.zeros((bs, width), dtype=torch.long)
        for i, (ids, plen) in enumerate(batch):
            inp[i, : len(ids)] = torch.tensor(ids)
            labels[i, plen: len(ids)] = torch.tensor(ids[plen:])
            mask[i, : len(ids)] = 1
        loss = model(input_ids=inp, attention_mask=mask, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        loss_ema = loss.item() if math.isnan(loss_ema) else 0.95 * loss_ema + 0.05 * loss.item()
        if step % 250 == 0 or step == steps - 1:
            log.info("  step %d/%d loss %.4f", step, steps, loss_ema)
    model.eval()
    return loss_ema


def _save(model: Any, tok: Any, out: Path, meta: dict[str, Any]) -> None:
    from transformers import GenerationConfig

    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    GenerationConfig(eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                     do_sample=False).save_pretrained(out)
    (out / "zoo.json").write_text(json.dumps(meta, indent=2) + "\n")


def _train_base(zoo_dir: Path, spec: ZooSpec, train: list[tasks.Example]) -> tuple[Any, Any]:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    texts = [c for ex in train for _, c in ex.messages]
    texts += [tasks.reference(ex, s) for ex in train[:3000] for s in tasks.STYLES]
    tok = _train_tokenizer(texts, spec)
    config = LlamaConfig(
        vocab_size=len(tok), hidden_size=spec.hidden_size, intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_layers, num_attention_heads=spec.num_heads, num_key_value_heads=1,
        max_position_embeddings=spec.max_len, tie_word_embeddings=True, pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id, bos_token_id=tok.eos_token_id, torch_dtype="float32")  # type: ignore[call-arg]
    torch.manual_seed(spec.seed)
    base = LlamaForCausalLM(config)
    t0 = time.perf_counter()
    log.info("zoo: training base (%d parameters)", sum(p.numel() for p in base.parameters()))
    loss = _train(base, _encode(tok, train, "baseline"), spec.base_steps, spec.base_lr, spec.seed,
                  spec.batch_size, tok.pad_token_id)
    _save(base, tok, zoo_dir / "base", {"build_key": build_key(spec), "spec": asdict(spec), "parent": None,
                                        "style": "baseline", "steps": spec.base_steps, "final_loss": loss,
                                        "train_seconds": time.perf_counter() - t0})
    return base, tok


def build_zoo(zoo_dir: Path = DEFAULT_ZOO_DIR, spec: ZooSpec = ZooSpec(), force: bool = False) -> Path:
    """Build the missing or outdated zoo checkpoints under ``zoo_dir`` (all with ``force``)."""
    todo = list(CHECKPOINTS) if force else stale(zoo_dir, spec)
    if not todo:
        log.info("zoo is up to date in %s", zoo_dir)
        return zoo_dir
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

    log.info("zoo: building %s in %s (minutes on a 2-core CPU)", ", ".join(todo), zoo_dir)
    train = tasks.examples(spec.seed, spec.train_examples)
    if "base" in todo:
        model, tok = _train_base(zoo_dir, spec, train)
    else:
        model = AutoModelForCausalLM.from_pretrained(zoo_dir / "base")
        tok = PreTrainedTokenizerFast.from_pretrained(zoo_dir / "base")
    states = {"base": {k: v.clone() for k, v in model.state_dict().items()}}
    for name in CHECKPOINTS[1:]:  # parents come first
        r = recipe(spec, name)
        if name not in todo:
            if any(recipe(spec, child).parent == name for child in todo if child != "base"):
                states[name] = AutoModelForCausalLM.from_pretrained(zoo_dir / name).state_dict()
            continue
        t0 = time.perf_counter()
        log.info("zoo: fine-tuning %s from %s on %s references (%d steps)", name, r.parent, r.references, r.steps)
        model.load_state_dict(states[r.parent])
        loss = _train(model, _encode(tok, train, r.references), r.steps, r.lr, r.seed, spec.batch_size,
                      tok.pad_token_id)
        states[name] = {k: v.clone() for k, v in model.state_dict().items()}
        _save(model, tok, zoo_dir / name, {"build_key": build_key(spec, name), "spec": asdict(spec),
                                           "parent": r.parent, "style": name, "steps": r.steps, "lr": r.lr,
                                           "seed": r.seed, "final_loss": loss,
                                           "train_seconds": time.perf_counter() - t0})
    return zoo_dir
