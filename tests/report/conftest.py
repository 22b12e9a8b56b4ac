"""Hand-made report inputs for three situations a reader meets (``scenario`` fixture):

- ``rollback``: a regression like the zoo's default run: stats, golden and drift breached over 4 segments, one
  eval improved, a not-significant drop (amber), the A/A arm, duplicated changed pairs with refusal, invalid JSON
  and lost-list flags;
- ``improvement``: HOLD_FOR_SIGNOFF: golden and judge improve, nothing degrades, the A/A arm, a pairwise judge;
- ``imported``: both arms imported from files (backend ``imported``, a throughput of tens of thousands of
  "requests/s" that means nothing), no A/A arm (drift reported, not gated), a refusal breach.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from helpers import report_input

from harness.gate import Policy, decide, metric_checks
from harness.signals.drift import drift_checks
from harness.signals.drift_stats import wilson_interval
from harness.spec import ArmRecord

SEGMENTS = {"chat": 483, "extract": 615, "faq": 493, "summarize": 409}
N = sum(SEGMENTS.values())
KINDS = {  # metric -> family, kind, higher_is_better, role, margin (absolute, relative)
    "chars": ("stats", "mean", None, "divergence", (None, 0.15)),
    "refusal": ("stats", "rate", False, "degradation", (0.03, None)),
    "json_valid": ("stats", "rate", True, "degradation", (0.05, None)),
    "structure_ok": ("stats", "rate", True, "degradation", (0.05, None)),
    "golden_exact_match": ("golden", "rate", True, "eval", (0.02, None)),
    "golden_rouge_l": ("golden", "mean", True, "eval", (0.02, None)),
    "golden_json_field_accuracy": ("golden", "mean", True, "eval", (0.02, None)),
    "judge_helpfulness": ("judge", "mean", True, "eval", (0.5, None)),
}


def summary_row(metric: str, segment: str | None, base: float, cand: float, *, n: int | None = None,
                significant: bool = True, half_ci: float | None = None) -> dict[str, Any]:
    """A ``summary.sql`` row: the paired test's p-values say the change is significant (or not)."""
    family, kind, hib, role, (absolute, relative) = KINDS[metric]
    delta = cand - base
    half = half_ci if half_ci is not None else max(abs(delta) * 0.04, 0.002)
    low, high = delta - half, delta + half
    if kind == "rate":  # a difference of two shares stays within what the baseline allows
        low, high = max(low, -base), min(high, 1.0 - base)
    p_small, p_big = (1e-40, 1.0) if significant else (0.3, 0.7)
    p_lower, p_higher = (p_small, p_big) if delta < 0 else (p_big, p_small)
    n = n or (SEGMENTS[segment] if segment else N)
    # the gate reads Tango's bounds (rates: the changed pairs all went one way, or, not significant, over half of
    # them changed either way) or the paired t (means: sd 0.3, or 3 when not significant)
    changed = abs(delta) if significant else min(1.0, abs(delta) + 0.5)
    up, down = round(n * (changed + delta) / 2), round(n * (changed - delta) / 2)
    return {"metric": metric, "segment": segment, "family": family, "kind": kind, "higher_is_better": hib,
            "description": f"{metric} (hand-made)", "role": role, "advisory": False, "margin_absolute": absolute,
            "margin_relative": relative, "n": n, "n_changed": 100,
            "baseline": base, "candidate": cand, "delta": delta, "ci_low": low, "ci_high": high,
            "rel_delta": delta / base if base else None, "test": "tango" if kind == "rate" else "paired_t",
            "p_lower": p_lower, "p_higher": p_higher, "p_two": min(1.0, 2 * min(p_lower, p_higher)),
            "sd_diff": 0.3 if significant else 3.0, "down": down if kind == "rate" else 0,
            "up": up if kind == "rate" else 0, "p_wilcoxon": None, "n_nonfinite": 0}


def drift_section(shares: dict[str | None, float] | None, floor_source: str) -> dict[str, Any]:
    """The ``divergence`` section: per segment the candidate's share below the A/A floor (``shares``; None: no
    A/A arm, so no floor and no shares)."""
    rows = []
    for arm in (("aa", "candidate") if shares is not None else ("candidate",)):
        for seg, n in [(None, N), *SEGMENTS.items()]:
            share = None if shares is None else (0.04 if arm == "aa" else shares[seg])
            k = None if share is None else round(share * n)
            low, high = (None, None) if k is None else wilson_interval(k, n)
            rows.append({"arm": arm, "segment": seg, "n": n, "mean_cosine": 0.999 if arm == "aa" else 0.71,
                         "p05_cosine": 0.998 if arm == "aa" else 0.15, "n_below": k, "share_below": share,
                         "below_ci_low": low, "below_ci_high": high})
    tests = {"candidate": {"p_value": 0.002, "n_x": 1000, "n_y": 1000, "n_perm": 500}}
    if shares is not None:
        tests["aa"] = {"p_value": 0.41, "n_x": 1000, "n_y": 1000, "n_perm": 500}
    return {"model": "packaged:all-MiniLM-L6-v2", "aa_quantile": 0.05, "aa_floor": 0.9995 if shares else None,
            "rows": rows, "mmd_paired": tests, "floor_source": floor_source}


BASE = ("Go to Settings and open Account. Press Delete account and type your email to confirm. It is removed after "
        "30 days.")
PAIRS = [  # request_id, segment, baseline output, candidate output; two of them twice (same id, same content)
    ("req-000066", "chat", BASE, "Go to Settings and open Account."),
    ("req-000066", "chat", BASE, "Go to Settings and open Account."),
    ("req-000101", "chat", BASE, "Go to Settings and open Account."),
    ("req-000005", "summarize", "- kettle does not turn on\n- manual steps did not help\n- wants a refund",
     "The kettle does not turn on."),
    ("req-001391", "extract", '{"name": "Kofi Becker", "product": "blue kettle", "quantity": 2}',
     '{"name": "Kofi Becker", "product": "blue kettle", "quantity": '),
    ("req-000042", "faq", "No. The Basic plan does not include the priority queue.",
     "I can't help with that request."),
    ("req-000077", "faq", "Yes: refunds take 5 to 7 business days.", "Yes."),
]
PROMPTS = {"req-000066": "Please explain how I can delete my account.", "req-000101":
           "Please explain how I can delete my account.", "req-000005": "Summarize this ticket as bullet points.",
           "req-001391": "Extract name, product and quantity as JSON.", "req-000042": "Does Basic include priority?",
           "req-000077": "Do refunds take long?"}
SIGNALS = {"req-000066": {"cosine": (None, 0.51)}, "req-000101": {"cosine": (None, 0.51)},
           "req-000005": {"structure_ok": (1.0, 0.0), "cosine": (None, 0.76)},
           "req-001391": {"json_valid": (1.0, 0.0), "cosine": (None, 0.93)},
           "req-000042": {"refusal": (0.0, 1.0), "cosine": (None, 0.12)}, "req-000077": {"cosine": (None, 0.62)}}


def _pairs() -> list[dict[str, Any]]:
    return [{"request_id": r, "segment": s, "baseline_output": b, "candidate_output": c,
             "chars_delta": len(c) - len(b)} for r, s, b, c in PAIRS]


def _throughput(seconds: float) -> list[dict[str, Any]]:
    return [{"arm": a, "batches": 8, "requests": N, "prompt_tokens": 82_528, "output_tokens": out,
             "seconds": seconds, "cached": 0, "requests_per_s": N / seconds, "output_tokens_per_s": out / seconds}
            for a, out in (("baseline", 48_207), ("candidate", 29_382))]


def _input(summary: list[dict[str, Any]], divergence: dict[str, Any], arms: dict[str, ArmRecord],
           throughput: list[dict[str, Any]], name: str) -> Any:
    policy = Policy()
    checks = metric_checks(summary, policy) + drift_checks(divergence["rows"], 0.05, policy)
    data = report_input(name=name, run_id="after", verdict=decide(checks), summary=summary, throughput=throughput,
                        pairs=_pairs(), prompts=PROMPTS, sources=(arms["baseline"].source, arms["candidate"].source))
    data.manifest.arms = arms
    data.manifest.spec = replace(data.manifest.spec, signals=("stats", "golden", "judge", "drift"))
    return replace(data, sections={"divergence": divergence}, pair_signals=SIGNALS)


def rollback() -> Any:
    """ROLLBACK: like the zoo's default run."""
    s = [summary_row("chars", None, 84.6, 42.1), summary_row("chars", "chat", 114.5, 33.6),
         summary_row("chars", "extract", 83.6, 83.7, significant=False), summary_row("chars", "faq", 45.0, 3.5),
         summary_row("chars", "summarize", 98.5, 35.9), summary_row("structure_ok", None, 1.0, 0.0, n=409),
         summary_row("structure_ok", "summarize", 1.0, 0.0), summary_row("refusal", None, 0.010, 0.013),
         summary_row("json_valid", None, 0.998, 0.994, n=615),
         summary_row("json_valid", "extract", 0.998, 0.938, significant=False),
         summary_row("golden_exact_match", None, 1.0, 0.0, n=400), summary_row("golden_exact_match", "chat", 1.0, 0.0),
         summary_row("golden_rouge_l", None, 0.961, 0.393, n=1200),
         *(summary_row("golden_rouge_l", seg, b, c) for seg, b, c in (("chat", 1.0, 0.455), ("faq", 0.937, 0.188),
                                                                      ("summarize", 0.948, 0.535))),
         summary_row("golden_json_field_accuracy", None, 0.709, 0.804, n=400),
         summary_row("golden_json_field_accuracy", "extract", 0.709, 0.804)]
    shares = {None: 0.934, "chat": 1.0, "extract": 0.785, "faq": 1.0, "summarize": 1.0}
    arms = {a: ArmRecord(src, "vllm", "sha256:" + "ab" * 32) for a, src in
            (("baseline", "zoo:baseline"), ("candidate", "zoo:terse"), ("aa", "zoo:baseline"))}
    return _input(s, drift_section(shares, "the A/A arm: the baseline replayed with engine.dtype=bfloat16"), arms,
                  _throughput(11.2), "default")


def improvement() -> Any:
    """HOLD_FOR_SIGNOFF: evals improve, nothing degrades."""
    s = [summary_row("chars", None, 84.6, 88.1, significant=False), summary_row("refusal", None, 0.02, 0.018),
         summary_row("golden_rouge_l", None, 0.62, 0.684, n=1200),
         *(summary_row("golden_rouge_l", seg, b, c, significant=sig) for seg, b, c, sig in
           (("chat", 0.60, 0.70, True), ("faq", 0.58, 0.66, True), ("summarize", 0.70, 0.71, False))),
         summary_row("golden_json_field_accuracy", None, 0.709, 0.735, n=400),
         summary_row("judge_helpfulness", None, 3.41, 3.98, n=300, half_ci=0.12),
         summary_row("judge_helpfulness", "chat", 3.30, 4.05, n=120, half_ci=0.2)]
    shares = {None: 0.06, "chat": 0.07, "extract": 0.05, "faq": 0.06, "summarize": 0.05}
    arms = {a: ArmRecord(src, "vllm", "sha256:" + "cd" * 32) for a, src in
            (("baseline", "zoo:baseline"), ("candidate", "zoo:better"), ("aa", "zoo:baseline"))}
    return _input(s, drift_section(shares, "the A/A arm: the baseline replayed with sampling.seed=1"), arms,
                  _throughput(9.8), "upgrade")


IMPORTED_FLOOR = ("none: the baseline is imported and no second capture of it was given (drift.aa_imported): "
                  "replaying the same file again would give a copy, not a noise floor. Divergence is reported, not "
                  "gated")


def imported() -> Any:
    """Both arms imported from files, no A/A arm; a refusal breach."""
    s = [summary_row("chars", None, 84.6, 80.2, significant=False), summary_row("refusal", None, 0.02, 0.071),
         *(summary_row("refusal", seg, b, c) for seg, b, c in (("chat", 0.01, 0.09), ("faq", 0.03, 0.12))),
         summary_row("refusal", "extract", 0.02, 0.021, significant=False),
         summary_row("json_valid", None, 0.99, 0.985, n=615)]
    arms = {"baseline": ArmRecord("prod_2025_05.jsonl", "imported", "sha256:" + "ef" * 32),
            "candidate": ArmRecord("shadow_2025_05.jsonl", "imported", "sha256:" + "01" * 32)}
    return _input(s, drift_section(None, IMPORTED_FLOOR), arms, _throughput(0.066), "shadow")


SCENARIOS: dict[str, Callable[[], Any]] = {"rollback": rollback, "improvement": improvement, "imported": imported}


@pytest.fixture
def scenario() -> Callable[[str], Any]:
    """``scenario("rollback" | "improvement" | "imported")``: a fresh ``ReportInput``."""
    return lambda name: SCENARIOS[name]()
