"""A probe run tested against the reference snapshot: the tests of ``stats.py`` per prompt, the combined decision,
the segments that changed and the prompts that moved most (``check.json``; ``report.py`` words it)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from harness.analysis.paired import holm
from harness.watch import stats
from harness.watch.probe import Probe
from harness.watch.sample import GREEDY, SAMPLE

TOP_MOVED = 5
PREVIEW = 160


@dataclass(frozen=True)
class CheckSettings:
    """Typed ``watch.test`` (harness.config.WatchTestConfig)."""

    alpha: float = 0.01
    schedule_checks: int = 1
    kernel: str = "hamming"
    n_perm: int = 2000
    max_error_share: float = 0.05
    min_prompts: int = 10
    seed: int = 0

    @property
    def alpha_check(self) -> float:
        """The per-check budget: alpha spread evenly over the planned schedule of checks (Bonferroni)."""
        return self.alpha / max(self.schedule_checks, 1)


def _outputs(rows: Sequence[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    out: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in sorted(rows, key=lambda r: (r["probe_id"], r["pass"], r["index"])):
        if not r["error"]:
            out[(r["probe_id"], r["pass"])].append(r)
    return out


def _error_share(rows: Sequence[dict[str, Any]]) -> float:
    return sum(1 for r in rows if r["error"]) / max(len(rows), 1)


def _score(text: str, checks: Sequence[tuple[str, str]]) -> float | None:
    from harness.golden.metrics import get_metric

    values = [v for m, t in checks if (v := get_metric(m).score(text, t)) is not None]
    return float(np.mean(values)) if values else None


def _preview(text: str) -> str:
    return text if len(text) <= PREVIEW else text[:PREVIEW] + "..."


def compare(probes: Sequence[Probe], ref_rows: Sequence[dict[str, Any]], new_rows: Sequence[dict[str, Any]],
            t: CheckSettings) -> dict[str, Any]:
    """Test one probe run against the reference; returns the check's record (``check.json`` minus run metadata)."""
    ref, new = _outputs(ref_rows), _outputs(new_rows)
    kernel = stats.KERNELS[t.kernel]
    n_tests = 3 + int(any(p.checks for p in probes))
    n_perm = stats.needed_permutations(t.alpha_check / n_tests, t.n_perm)
    rng = np.random.default_rng(t.seed)
    sampled = [p for p in probes if len(ref[(p.probe_id, SAMPLE)]) >= 2 and len(new[(p.probe_id, SAMPLE)]) >= 2]
    greedy = [p for p in probes if len(ref[(p.probe_id, GREEDY)]) >= 2 and len(new[(p.probe_id, GREEDY)]) >= 2]
    texts = {(p.probe_id, k): [r["output_text"] for r in ref[(p.probe_id, k)] + new[(p.probe_id, k)]]
             for p in probes for k in (SAMPLE, GREEDY)}
    n_x = {(p.probe_id, k): len(ref[(p.probe_id, k)]) for p in probes for k in (SAMPLE, GREEDY)}
    tests: dict[str, stats.PermTest] = {}
    if sampled:
        tests["sampled_mmd"] = stats.mmd_test("sampled_mmd", [kernel(texts[(p.probe_id, SAMPLE)]) for p in sampled],
                                              [n_x[(p.probe_id, SAMPLE)] for p in sampled], n_perm, rng)
    if greedy:
        tests["greedy_exact"] = stats.mmd_test(
            "greedy_exact", [stats.exact_gram(texts[(p.probe_id, GREEDY)]) for p in greedy],
            [n_x[(p.probe_id, GREEDY)] for p in greedy], n_perm, rng)
        lengths = [np.array([float(r["output_tokens"] or 0) for r in ref[(p.probe_id, GREEDY)] +
                             new[(p.probe_id, GREEDY)]]) for p in greedy]
        tests["greedy_length"] = stats.mean_diff_test("greedy_length", lengths,
                                                      [n_x[(p.probe_id, GREEDY)] for p in greedy], n_perm, rng)
    golden, golden_delta = _golden(probes, ref, new, n_perm, rng)
    if golden is not None:
        tests["golden_delta"] = golden
    p_values = {k: v.p_value() for k, v in tests.items()}
    usable = len(sampled)
    not_comparable = []
    for side, rows in (("reference", ref_rows), ("new", new_rows)):
        if _error_share(rows) > t.max_error_share:
            not_comparable.append(f"{side} run: {_error_share(rows):.1%} of requests failed (> "
                                  f"{t.max_error_share:.0%}, watch.test.max_error_share)")
    if usable < t.min_prompts:
        not_comparable.append(f"{usable} prompts with >= 2 samples in both runs (< {t.min_prompts}, "
                              "watch.test.min_prompts)")
    decision = stats.decide(p_values, t.alpha_check, not_comparable)
    moved = _moved(tests, sampled, greedy, ref, new) if tests else []
    segments = _segments(tests, sampled, greedy, decision)
    return {"decision": decision.decision, "reasons": list(decision.reasons), "alpha": t.alpha,
            "schedule_checks": t.schedule_checks, "alpha_check": decision.alpha_check,
            "alpha_test": decision.alpha_test, "n_perm": n_perm, "kernel": t.kernel,
            "tests": {k: {"p_value": p_values[k], "statistic": v.observed, "prompts": int(v.per_prompt.shape[0]),
                          "rejected": k in decision.rejected} for k, v in tests.items()},
            "golden_delta": golden_delta, "changed_segments": segments, "moved": moved,
            "prompts": len(probes), "prompts_compared": usable,
            "error_share": {"reference": _error_share(ref_rows), "new": _error_share(new_rows)},
            "greedy_identical": _identical_share(greedy, ref, new),
            "mean_tokens": _mean_tokens(ref_rows, new_rows), "test_settings": asdict(t)}


def _golden(probes: Sequence[Probe], ref: dict[tuple[str, str], list[dict[str, Any]]],
            new: dict[tuple[str, str], list[dict[str, Any]]], n_perm: int,
            rng: np.random.Generator) -> tuple[stats.PermTest | None, dict[str, Any] | None]:
    values, n_x, deltas = [], [], []
    for p in probes:
        if not p.checks:
            continue
        xs = [x for k in (SAMPLE, GREEDY) for r in ref[(p.probe_id, k)]
              if (x := _score(r["output_text"], p.checks)) is not None]
        ys = [y for k in (SAMPLE, GREEDY) for r in new[(p.probe_id, k)]
              if (y := _score(r["output_text"], p.checks)) is not None]
        if xs and ys:
            values.append(np.array(xs + ys))
            n_x.append(len(xs))
            deltas.append((float(np.mean(xs)), float(np.mean(ys))))
    if not values:
        return None, None
    test = stats.mean_diff_test("golden_delta", values, n_x, n_perm, rng)
    ref_mean, new_mean = float(np.mean([d[0] for d in deltas])), float(np.mean([d[1] for d in deltas]))
    return test, {"prompts": len(values), "reference": ref_mean, "new": new_mean, "delta": new_mean - ref_mean}


def _identical_share(greedy: Sequence[Probe], ref: dict[tuple[str, str], list[dict[str, Any]]],
                     new: dict[tuple[str, str], list[dict[str, Any]]]) -> float | None:
    same = [ref[(p.probe_id, GREEDY)][0]["output_text"] == new[(p.probe_id, GREEDY)][0]["output_text"]
            for p in greedy]
    return sum(same) / len(same) if same else None


def _mean_tokens(ref_rows: Sequence[dict[str, Any]], new_rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for side, rows in (("reference", ref_rows), ("new", new_rows)):
        for kind in (SAMPLE, GREEDY):
            vals = [r["output_tokens"] for r in rows if r["pass"] == kind and not r["error"] and r["output_tokens"]]
            out[f"{side}_{kind}"] = float(np.mean(vals)) if vals else None
    return out


def _moved(tests: dict[str, stats.PermTest], sampled: Sequence[Probe], greedy: Sequence[Probe],
           ref: dict[tuple[str, str], list[dict[str, Any]]],
           new: dict[tuple[str, str], list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The prompts whose completions moved most: largest per-prompt MMD z-score of the samples (greedy changes
    break ties), with the reference's and the new run's first greedy (else sampled) output."""
    z = dict(zip([p.probe_id for p in sampled], tests["sampled_mmd"].z_scores(), strict=True)) \
        if "sampled_mmd" in tests else {}
    gz = dict(zip([p.probe_id for p in greedy], tests["greedy_exact"].z_scores(), strict=True)) \
        if "greedy_exact" in tests else {}
    by_id = {p.probe_id: p for p in [*sampled, *greedy]}
    ranked = sorted(by_id, key=lambda i: (z.get(i, 0.0), gz.get(i, 0.0)), reverse=True)[:TOP_MOVED]
    out = []
    for pid in ranked:
        p = by_id[pid]
        kind = GREEDY if ref[(pid, GREEDY)] and new[(pid, GREEDY)] else SAMPLE
        prompt = p.prompt if p.prompt is not None else (p.messages or [{"content": ""}])[-1]["content"]
        out.append({"probe_id": pid, "segment": p.segment, "request_id": p.request_id, "z_sampled": z.get(pid),
                    "z_greedy": gz.get(pid), "prompt": _preview(prompt), "shown": kind,
                    "reference": _preview(ref[(pid, kind)][0]["output_text"]) if ref[(pid, kind)] else "",
                    "new": _preview(new[(pid, kind)][0]["output_text"]) if new[(pid, kind)] else ""})
    return out


def _segments(tests: dict[str, stats.PermTest], sampled: Sequence[Probe], greedy: Sequence[Probe],
              decision: stats.Decision) -> list[dict[str, Any]]:
    """Per segment: each test restricted to its prompts (the same permutations), Bonferroni over the tests, Holm
    over segments; a segment is listed as changed only when the check is CHANGED and it is below alpha_check."""
    members = {"sampled_mmd": sampled, "greedy_exact": greedy, "greedy_length": greedy}
    per_segment: dict[str, float] = {}
    for seg in sorted({p.segment for p in [*sampled, *greedy]}):
        ps = []
        for name, probes in members.items():
            if name in tests:
                rows = np.array([i for i, p in enumerate(probes) if p.segment == seg], dtype=int)
                if rows.size:
                    ps.append(tests[name].p_value(rows))
        per_segment[seg] = min(1.0, min(ps) * len(ps)) if ps else 1.0
    adjusted = dict(zip(per_segment, holm(list(per_segment.values())), strict=True))
    return [{"segment": s, "p_value": per_segment[s], "p_holm": adjusted[s],
             "changed": decision.decision == "CHANGED" and adjusted[s] <= decision.alpha_check}
            for s in sorted(per_segment, key=lambda s: per_segment[s])]
