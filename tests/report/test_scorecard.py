"""The top of the report, units, the segment grid, the changed pairs and sections that do not apply (pure logic, on
the hand-made situations of ``conftest.py``)."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest

from harness.report.common import IMPORTED_NOTE, throughput_rows
from harness.report.html import render_html
from harness.report.pairs import select
from harness.report.scorecard import grouped_reasons, tiles
from harness.report.units import PCT, RELATIVE, SCALE, Units, num

CHARS_LINE = ("stats/chars fell by 50% overall (84.6 -> 42.1) and in 3 of 4 segments (chat, faq, summarize), "
              "by 64-92%: breach")


def _between(page: str, start: str, end: str) -> str:
    return page[page.index(start):page.index(end, page.index(start))]


def test_units_write_points_percent_and_scale_points() -> None:
    assert PCT.delta(0.123) == "+12.3 pts" and PCT.value(0.914) == "91.4%"
    assert PCT.ci(-0.535, -0.468) == "[-53.5, -46.8]" and SCALE.delta(0.571) == "+0.57 scale pts"
    assert RELATIVE.delta(-0.502) == "-50%" and RELATIVE.delta(0.041) == "+4.1%"
    assert PCT.delta(-0.00001) == "0.0 pts"  # no sign on what shows as zero
    assert [num(x) for x in (84.63, 114.2, 3.531, 0.04123, 30303.0)] == ["84.6", "114", "3.53", "0.0412", "30,303"]


def test_rollback_reasons_are_grouped_and_few(scenario: Any) -> None:
    data = scenario("rollback")
    lines = grouped_reasons(data.verdict, Units(data.tables["summary"].to_pylist()))
    assert len(data.verdict.reasons) == 19 and len(lines) == 6
    assert CHARS_LINE in lines
    assert {line.split("/")[0] for line in lines[:3]} == {"stats", "golden", "drift"}  # each breached family leads
    assert lines[-1].startswith("golden/golden_json_field_accuracy rose") and lines[-1].endswith(": improved")

    page = render_html(data, [])
    top = _between(page, '<section id="reasons">', "<details>")
    assert top.count("<li>") == 6 and "... and 1 more in the full list below." in top  # 5 reasons, then a pointer
    assert html.escape(CHARS_LINE) in top
    full = _between(page, "<details><summary>All 19 reasons", "</details>")
    assert full.count("<li>") == 19  # the gate's own list, one per metric and segment, folded
    assert page.index('id="verdict"') < page.index('id="scorecard"') < page.index('id="reasons"')


@pytest.mark.parametrize(("name", "expected"), [
    ("rollback", {"stats": ("breached", "structure_ok", "3 of 4 segments breached"),
                  "golden": ("breached", "golden_exact_match", "3 of 4 segments breached"),
                  "drift": ("breached", "share_below_aa_floor", "4 of 4 segments breached")}),
    ("improvement", {"stats": ("ok", "chars", "no per-segment checks"),
                     "golden": ("improved", "golden_rouge_l", "2 of 3 segments improved"),
                     "judge": ("improved", "judge_helpfulness", "1 of 1 segment improved"),
                     "drift": ("ok", "share_below_aa_floor", "no segment breached (of 4)")}),
    ("imported", {"stats": ("breached", "refusal", "2 of 3 segments breached"), "drift": ("not gated", None, "")}),
])
def test_scorecard_has_one_tile_per_family(name: str, expected: dict[str, tuple[str, str | None, str]],
                                           scenario: Any) -> None:
    from harness.report.scorecard import tile_segments

    data = scenario(name)
    notes = {"drift": "no A/A floor, so drift is reported only"} if name == "imported" else {}
    got = {t.family: (t.status, t.headline.metric if t.headline else None, tile_segments(t) if t.headline else "")
           for t in tiles(data.verdict, data.manifest.spec.signals, notes)}
    assert got == expected


def test_tile_headline_is_the_breach_furthest_past_its_margin(scenario: Any) -> None:
    page = render_html(scenario("rollback"), [])
    card = _between(page, '<section class="cards" id="scorecard"', "</section>")
    assert card.count('<div class="tile breached">') == 3
    assert '<div class="big"><span class="n">+88.4</span> <span class="u">pts</span></div>' in card
    assert "95% CI [+87.2, +89.4]" in card
    assert "golden_<wbr>exact_<wbr>match" in card  # long names may wrap at their underscores only


def test_tables_scroll_in_their_own_box_and_cells_never_wrap(scenario: Any) -> None:
    page = render_html(scenario("rollback"), [])
    cells = re.search(r"\bth, td \{[^}]*\}", page)
    assert cells and "white-space: nowrap" in cells.group(0) and "anywhere" not in cells.group(0)
    assert ".scroll { overflow-x: auto;" in page
    assert page.count("<table>") == page.count('<div class="scroll"><table>') > 5


def test_segment_grid_is_coloured_by_status(scenario: Any) -> None:
    page = render_html(scenario("rollback"), [])
    grid = _between(page, "<h2>Segments</h2>", "</table>")
    assert '<td class="breach">45.0 -&gt; 3.5<br><span class="d">-41.5 chars (-92%); breach</span></td>' in grid
    assert '<td class="improved">70.9% -&gt; 80.4%<br><span class="d">+9.5 pts; improved</span></td>' in grid
    assert '<td class="warn">99.8% -&gt; 93.8%<br><span class="d">-6.0 pts; inconclusive</span></td>' in grid
    assert "<td>83.6 -&gt; 83.7<br>" in grid  # ok: plain
    assert "<th>all</th><th>chat</th><th>extract</th><th>faq</th><th>summarize</th>" in grid


def test_changed_pairs_are_deduplicated_labelled_and_grouped_by_segment(scenario: Any) -> None:
    page = render_html(scenario("rollback"), [])
    pairs = page[page.index("<h2>Most changed pairs</h2>"):]
    assert pairs.count("<h4>req-000066</h4>") == 1 and "<h4>req-000101</h4>" not in pairs  # same id, same content
    assert "Same prompt and outputs, not shown again: req-000101." in pairs
    heads = re.findall(r'<h3 class="segment">Segment (\w+)</h3>', pairs)
    assert heads == ["chat", "summarize", "extract", "faq"]  # each segment once, in the order of the largest changes
    for tag in ('<span class="tag worse">refusal</span>', '<span class="tag worse">invalid JSON</span>',
                '<span class="tag worse">list lost</span>', '<span class="tag worse">low cosine 0.51</span>',
                '<span class="tag info">length -82 chars (-72%)</span>'):
        assert tag in pairs


def test_picking_shows_each_kind_of_flag_before_more_of_the_same(scenario: Any) -> None:
    data = scenario("rollback")
    rows = data.tables["changed_pairs"].to_pylist()
    picked = select(rows, 3, data.pair_signals, data.divergence["aa_floor"], data.prompt)
    assert [p.request_id for p in picked] == ["req-000066", "req-000005", "req-001391"]
    four = select(rows, 4, data.pair_signals, data.divergence["aa_floor"], data.prompt)
    assert "req-000042" in [p.request_id for p in four]  # the refusal, though smaller in length than req-000077


def test_imported_run_has_no_rates_and_no_aa_section(scenario: Any) -> None:
    data = scenario("imported")
    page = render_html(data, [])
    throughput = _between(page, "<h2>Throughput", "<h2>Figures")
    assert f"baseline, candidate: {IMPORTED_NOTE}." in throughput and "<table>" not in throughput
    assert "30,303" not in page and "requests/s" not in page  # 2,000 requests in 0.066 s of reading a file
    drift = _between(page, "<h2>Divergence", "<h2>Throughput")
    assert "below A/A floor" not in drift and "A/A (baseline again)" not in drift and "A/A floor =" not in drift
    assert "no A/A arm, so no floor: the baseline is imported and no second capture" in drift
    assert "drift.aa_imported" in drift and "reported, not gated" in drift
    assert '<div class="tile not-gated"><div class="fam">drift <span class="st">not gated</span></div>' in page


def test_throughput_keeps_replayed_arms_and_says_why_not_imported_ones() -> None:
    rows = [{"arm": "baseline", "batches": 8, "requests": 2000, "cached": 0, "prompt_tokens": 82_528,
             "output_tokens": 48_207, "seconds": 11.23, "requests_per_s": 178.03, "output_tokens_per_s": 4291.1},
            {"arm": "candidate", "batches": 8, "requests": 2000, "cached": 0, "prompt_tokens": 1, "output_tokens": 1,
             "seconds": 0.066, "requests_per_s": 30_303.0, "output_tokens_per_s": 15.0},
            {"arm": "aa", "batches": 8, "requests": 0, "cached": 2000, "prompt_tokens": 0, "output_tokens": 0,
             "seconds": 0.0, "requests_per_s": None, "output_tokens_per_s": None}]
    assert throughput_rows(rows, ["candidate"]) == [
        ["baseline", "8", "2,000", "0", "82,528", "48,207", "11.2", "178", "4,291"],
        ["aa", "8", "0", "2,000", "0", "0", "0.00", "all from cache", ""]]


def test_write_report_reads_the_pairs_signals_from_the_run(scenario: Any, tmp_path: Any) -> None:
    """``write_report`` labels the pairs from ``signals.parquet`` and ``drift.parquet`` when none are given."""
    from dataclasses import replace

    import pyarrow as pa

    from harness.report import write_report
    from harness.store import RunDir

    data = replace(scenario("rollback"), pair_signals={})
    run = RunDir.at(tmp_path / "run")
    rows = [{"request_id": rid, "arm": arm, "segment": seg, "metric": m, "value": v}
            for rid, seg in (("req-000042", "faq"), ("req-000005", "summarize"))
            for arm, refusal, lines in (("baseline", 0.0, 1.0), ("candidate", 1.0 if rid == "req-000042" else 0.0, 0.0))
            for m, v in (("chars", 40.0), ("refusal", refusal), ("structure_ok", lines))]
    run.write_table("signals", pa.Table.from_pylist(rows))
    run.write_table("drift", pa.Table.from_pylist([{"request_id": "req-000042", "segment": "faq", "arm": "candidate",
                                                    "cosine": 0.12}]))
    write_report(run, data)
    page = (tmp_path / "run" / "report.html").read_text()
    assert '<span class="tag worse">refusal</span>' in page and '<span class="tag worse">list lost</span>' in page
    assert '<span class="tag worse">low cosine 0.12</span>' in page and "<script" not in page
    md = (tmp_path / "run" / "report.md").read_text()
    assert "Flags: length -24 chars (-44%), refusal, list lost, low cosine 0.12" in md
