"""Untrusted text in report.md stays inert (pure logic)."""

from __future__ import annotations

import re
from typing import Any

from helpers import report_input

from harness.gate import Policy, decide, metric_checks
from harness.report.markdown import cell, fence, render, render_ticket


def test_fence_outlasts_backticks_in_text() -> None:
    text = "before ```` not closed\n```\n<script>alert(1)</script>"
    block = fence(text, 10_000)
    first = block.splitlines()[0]
    assert first == "`````text" and block.endswith("\n`````") and text in block


def test_fence_cuts_long_text() -> None:
    assert "[90 more chars]" in fence("x" * 100, 10)


def test_cell_escapes_table_and_html() -> None:
    out = cell("a|b\n<img src=x onerror=alert(1)>")
    assert "\n" not in out and "\\|" in out
    assert re.search(r"(?<!\\)[<>|]", out) is None  # every <, > and | is backslash-escaped


def test_render_keeps_outputs_inside_fences() -> None:
    evil = "</pre><script>alert('x')</script>\n| fake | row |"
    md = render(report_input(pairs=[{"request_id": "q<1>", "segment": "s", "chars_delta": 3, "baseline_output": evil,
                                     "candidate_output": "ok"}], prompts={"q<1>": "hi"}), [])
    lines = md.splitlines()
    i = lines.index("</pre><script>alert('x')</script>")
    assert lines[i - 1].startswith("```") and lines[i + 2].startswith("```")
    assert "q\\<1\\>" in md


def test_redact_hides_prompts_and_outputs() -> None:
    md = render(report_input(pairs=[{"request_id": "q1", "segment": "s", "chars_delta": 3,
                                     "baseline_output": "secret answer", "candidate_output": "other secret"}],
                             prompts={"q1": "customer email alice@example.com"}, redact=True), [])
    assert "secret" not in md and "alice@example.com" not in md and "sha256:" in md


def test_ticket_summary_is_short_and_names_reasons_and_files() -> None:
    rows = [{"metric": m, "family": "stats", "segment": None, "n": 500, "baseline": 0.5, "candidate": 0.1,
                 "delta": -0.4, "ci_low": -0.45, "ci_high": -0.35, "rel_delta": -0.8, "higher_is_better": True,
                 "test": "mcnemar", "p_lower": 1e-9, "p_higher": 1.0, "p_two": 2e-9, "sd_diff": 0.5,
                 "role": "degradation", "advisory": False, "margin_absolute": 0.05, "margin_relative": None}
                for m in ("a", "b", "c", "d", "e", "f", "g")]
    v = decide(metric_checks(rows, Policy()))
    text = render_ticket(report_input(name="exp", run_id="r1", verdict=v, sources=("old", "new")),
                         ["report.html", "verdict.json"])
    assert text.startswith("**Model upgrade gate: INVESTIGATE** (REGRESSION")  # one family: counted once
    assert text.count("\n- ") == 6 and "... and 2 more in report.html" in text
    assert "Attached: report.html, verdict.json" in text and len(text) < 1500


def test_top_is_verdict_scorecard_and_grouped_reasons_with_the_full_list_after(scenario: Any) -> None:
    md = render(scenario("rollback"), [])
    top = md[:md.index("## Signals")]
    assert top.startswith("# Upgrade gate default: **ROLLBACK** (REGRESSION)")
    assert "| family | status | headline | delta (95% CI) | segments |" in top
    assert "| drift | breached | share\\_below\\_aa\\_floor: 5.0% -\\> 93.4% | +88.4 pts \\[+87.2, +89.4\\] | " \
           "4 of 4 segments breached |" in top
    reasons = [line for line in top.splitlines() if line.startswith("- ")]
    assert len(reasons) == 6 and reasons[-1] == "- ... and 1 more: all reasons at the end of this report"
    assert "- stats/chars fell by 50% overall (84.6 -\\> 42.1) and in 3 of 4 segments (chat, faq, summarize), " \
           "by 64-92%: breach" in reasons
    full = md[md.index("## All reasons"):md.index("## Files")]
    assert full.count("\n- ") == 19


def test_sections_that_do_not_apply_say_why(scenario: Any) -> None:
    md = render(scenario("imported"), [])
    throughput = md[md.index("## Throughput"):md.index("## Figures")]
    assert "imported outputs: no throughput" in throughput and "requests/s" not in throughput
    drift = md[md.index("## Divergence"):md.index("## Throughput")]
    assert "below A/A floor" not in drift and "no A/A arm, so no floor" in drift
    assert "| drift | not gated | no A/A floor, so drift is reported only |" in md


def test_pairs_are_deduplicated_and_labelled(scenario: Any) -> None:
    md = render(scenario("rollback"), [])
    assert md.count("#### req-000066") == 1 and "#### req-000101" not in md
    assert "Same prompt and outputs, not shown again: req-000101." in md
    assert "Flags: length -24 chars (-44%), refusal, low cosine 0.12" in md
