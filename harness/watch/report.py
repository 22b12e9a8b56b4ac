"""A check in words: ``check.md`` beside ``check.json``, the console summary, the webhook payload, and the note on
how much sampling budget a given power needs (from the measured table, docs/bench/watch.json, when present)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness import PACKAGE_DIR

BENCH_RECORD = PACKAGE_DIR.parent / "docs" / "bench" / "watch.json"


def _plain(text: Any) -> str:
    """Untrusted text (prompts, completions) for Markdown: one line, no control characters, no HTML, no fences."""
    s = "".join(c if c.isprintable() else " " for c in str(text))
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("`", "'").replace("|", "\\|")


def budget_note(record: dict[str, Any], bench: Path = BENCH_RECORD) -> list[str]:
    """Cost of this check and the samples per prompt the measured changes needed for 90% power."""
    run = record.get("run") or {}
    s = run.get("sampling") or {}
    lines = [f"This check sent {run.get('requests')} requests ({record.get('prompts')} prompts x ({s.get('k')} "
             f"samples + {s.get('greedy')} greedy)), {run.get('prompt_tokens')} prompt and "
             f"{run.get('output_tokens')} output tokens, in {run.get('engine_s')} s."]
    if bench.is_file():
        try:
            table = json.loads(bench.read_text()).get("smallest_k_90") or {}
        except (OSError, json.JSONDecodeError):
            table = {}
        if table:
            parts = [f"{change}: k = {k}" if k else f"{change}: not reached" for change, k in table.items()]
            lines.append("Samples per prompt that detected each measured change in >= 90% of checks (real:smollm2, "
                         f"36 prompts; docs/watch.md): {'; '.join(parts)}. Power grows with prompts x k; fewer "
                         "samples than these miss changes of that size more often.")
    else:
        lines.append("The measured power per change and samples per prompt: docs/watch.md.")
    return lines


def console_lines(record: dict[str, Any], run_path: Path, code: int) -> list[str]:
    out = [f"watch: {record['decision']} (exit code {code})", f"check:  {run_path / 'check.md'}"]
    out += [f"  - {_plain(r)}" for r in record.get("reasons", [])]
    changed = [s["segment"] for s in record.get("changed_segments", []) if s.get("changed")]
    if changed:
        out.append(f"  changed segments: {', '.join(_plain(s) for s in changed)}")
    out += [f"  warning: {_plain(w)}" for w in record.get("warnings", [])]
    return out


def write_markdown(record: dict[str, Any], path: Path) -> Path:
    """``check.md``: the decision, the tests, the segments, the prompts that moved most, the budget note."""
    lines = [f"# Watch {_plain(record.get('name', ''))}: {record['decision']}", "",
             f"Run `{_plain(record.get('run_id'))}` against the reference `{_plain(record.get('reference'))}`.", ""]
    lines += [f"- {_plain(r)}" for r in record.get("reasons", [])]
    lines += [f"- warning: {_plain(w)}" for w in record.get("warnings", [])]
    if "tests" in record:
        lines += ["", f"Per-check false-CHANGED budget {record['alpha_check']:.3g} (alpha {record['alpha']} over "
                  f"{record['schedule_checks']} planned checks), {record['alpha_test']:.3g} per test; "
                  f"{record['n_perm']} within-prompt permutations; kernel {record['kernel']}.", "",
                  "| test | prompts | statistic | p | rejected |", "|---|---|---|---|---|"]
        lines += [f"| {k} | {v['prompts']} | {v['statistic']:.4g} | {v['p_value']:.3g} | {v['rejected']} |"
                  for k, v in record["tests"].items()]
        g = record.get("golden_delta")
        if g:
            lines += ["", f"Golden references ({g['prompts']} prompts): mean score {g['reference']:.3f} -> "
                      f"{g['new']:.3f} ({g['delta']:+.3f})."]
        if record.get("greedy_identical") is not None:
            lines += [f"Greedy outputs identical to the reference's: {record['greedy_identical']:.0%} of prompts."]
        lines += ["", "| segment | p (tests combined) | p (Holm) | changed |", "|---|---|---|---|"]
        lines += [f"| {_plain(s['segment'])} | {s['p_value']:.3g} | {s['p_holm']:.3g} | {s['changed']} |"
                  for s in record.get("changed_segments", [])]
        lines += ["", "## Prompts whose completions moved most", ""]
        for m in record.get("moved", []):
            lines += [f"- `{m['probe_id']}` ({_plain(m['segment'])}, z = {m['z_sampled'] or 0:.1f}): "
                      f"{_plain(m['prompt'])}", f"  - reference ({m['shown']}): {_plain(m['reference'])}",
                      f"  - new ({m['shown']}): {_plain(m['new'])}"]
    lines += ["", "## Sampling budget", "", *budget_note(record)]
    path.write_text("\n".join(lines) + "\n")
    return path


def webhook_payload(record: dict[str, Any]) -> dict[str, Any]:
    """What the signed webhook POSTs on CHANGED (no prompt or completion text: ids and numbers only)."""
    return {"event": "watch_changed", "watch": record.get("name"), "decision": record["decision"],
            "run_id": record.get("run_id"), "reference": record.get("reference"),
            "target": (record.get("run") or {}).get("target"),
            "tests": {k: v["p_value"] for k, v in record.get("tests", {}).items()},
            "changed_segments": [s["segment"] for s in record.get("changed_segments", []) if s.get("changed")],
            "moved_prompts": [m["probe_id"] for m in record.get("moved", [])], "window": record.get("run_id")}
