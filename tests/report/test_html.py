"""report.html: untrusted text stays inert (pure logic), and a real headless Chromium agrees."""

from __future__ import annotations

import base64
import html
import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from helpers import CHROMIUM, chromium, console_errors, report_input
from layout import VIEWPORTS, assert_layout, measure

from harness.gate import Policy, Threshold, Verdict, decide, metric_checks
from harness.report.html import CSP, VERDICT_COLORS, redacted, render_html, word_diff

REPO = Path(__file__).resolve().parents[2]
SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
LINK = '<a href="javascript:alert(1)">x</a>'
BREAKOUT = "</pre></td></tr></table><h1>owned</h1>"
LONG = "<b>" + "x" * 19_993 + "</b>"  # 20,000 chars, no spaces
DANGEROUS = [SCRIPT, IMG, LINK, BREAKOUT, LONG]
DUP = "dup" + SCRIPT
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg"
                       "==")  # 1x1 pixel


def _row(metric: str, segment: str | None, base: float, cand: float, ci: tuple[float, float]) -> dict[str, Any]:
    return {"metric": metric, "segment": segment, "family": "stats", "kind": "mean", "higher_is_better": None,
            "description": SCRIPT, "n": 40, "n_changed": 30, "baseline": base, "candidate": cand,
            "delta": cand - base, "ci_low": ci[0], "ci_high": ci[1], "rel_delta": (cand - base) / base,
            "test": "wilcoxon", "p_lower": 1.0, "p_higher": 1.0, "p_two": 1e-4 if ci[0] > 0 else 0.5, "sd_diff": 1.0,
            "role": "degradation", "advisory": False, "margin_absolute": None, "margin_relative": None}


def _report(tmp_path: Path, *, max_chars: int = 50_000, redact: bool = False) -> str:
    """A report from hand-made data with every injection string in an untrusted field."""
    summary = [_row("chars_mean", None, 120.0, 180.0, (40.0, 80.0)), _row("words_mean", None, 20.0, 20.5, (-1, 2)),
               _row("chars_mean", SCRIPT, 100.0, 190.0, (30.0, 150.0)), _row("chars_mean", "faq", 130.0, 170.0, (1, 9))]
    policy = Policy(thresholds={"chars_mean": Threshold(relative=0.2), "words_mean": Threshold(relative=0.2)})
    verdict = decide(metric_checks(summary, policy))
    figure = tmp_path / "signal_deltas.png"
    figure.write_bytes(PNG)
    pairs = [{"request_id": IMG, "segment": BREAKOUT, "chars_delta": 12,
              "baseline_output": f"{LINK} the cat sat", "candidate_output": f"{SCRIPT} the dog sat"},
             {"request_id": DUP, "segment": BREAKOUT, "chars_delta": 12,  # same prompt and outputs: named, not shown
              "baseline_output": f"{LINK} the cat sat", "candidate_output": f"{SCRIPT} the dog sat"},
             {"request_id": "long-1", "segment": SCRIPT, "chars_delta": 19_990,
              "baseline_output": "short", "candidate_output": LONG}]
    data = report_input(name=SCRIPT, run_id=IMG, verdict=verdict, summary=summary, text=BREAKOUT,
                        throughput=[{"arm": "baseline", "batches": 2, "requests": 40, "prompt_tokens": 900,
                                     "output_tokens": 4000, "seconds": 2.0, "requests_per_s": 20.0,
                                     "output_tokens_per_s": 2000.0}],
                        pairs=pairs, prompts={IMG: BREAKOUT + "\n" + LINK, DUP: BREAKOUT + "\n" + LINK, "long-1": LONG},
                        sources=(LINK, IMG),
                        max_chars=max_chars, redact=redact)
    return render_html(data, [figure])


class _Elements(HTMLParser):
    """Every start tag with its attributes, and the text of each ``<h1>``."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.h1: list[str] = []
        self._in_h1 = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))
        self._in_h1 = self._in_h1 or tag == "h1"
        if tag == "h1":
            self.h1.append("")

    def handle_endtag(self, tag: str) -> None:
        self._in_h1 = self._in_h1 and tag != "h1"

    def handle_data(self, data: str) -> None:
        if self._in_h1:
            self.h1[-1] += data


def _assert_inert(page: str) -> None:
    """No script, no event handler, no javascript: URL, no element but the report's own single h1."""
    parsed = _Elements()
    parsed.feed(page)
    assert not [t for t, _ in parsed.tags if t == "script"]
    assert not [(t, k) for t, attrs in parsed.tags for k, _ in attrs if k.lower().startswith("on")]
    assert not [v for _, attrs in parsed.tags for _, v in attrs if v and "javascript:" in v.lower()]
    assert len(parsed.h1) == 1 and parsed.h1[0].startswith("Upgrade gate") and "owned" not in parsed.h1[0]


def test_untrusted_text_is_escaped(tmp_path: Path) -> None:
    page = _report(tmp_path)
    assert f"Same prompt and outputs, not shown again: {html.escape(DUP, quote=True)}." in page
    for evil in DANGEROUS:
        assert evil not in page
        assert html.escape(evil, quote=True) in page
    _assert_inert(page)
    assert f'<meta http-equiv="Content-Security-Policy" content="{CSP}">' in page
    assert not re.search(r"(src|href)=\"(?!data:image/png;base64,)", page)  # nothing loaded from outside


def test_texts_are_cut_with_a_marker(tmp_path: Path) -> None:
    page = _report(tmp_path, max_chars=100)
    assert "x" * 101 not in page and "[19900 more chars]" in page


def test_redact_hides_prompts_and_outputs(tmp_path: Path) -> None:
    page = _report(tmp_path, redact=True)
    for text in ["the cat sat", "the dog sat", "xxxxxxxxxx", html.escape(BREAKOUT + "\n" + LINK, quote=True)]:
        assert text not in page
    assert redacted(LONG) in page and f"({len(LONG)} chars)" in page
    assert "<del>" not in page and "<ins>" not in page
    _assert_inert(page)


def test_figures_are_embedded_as_data_uris(tmp_path: Path) -> None:
    page = _report(tmp_path)
    data = base64.b64encode(PNG).decode()
    assert f'<img src="data:image/png;base64,{data}" alt="signal deltas">' in page


def test_word_diff_marks_changed_words_and_escapes() -> None:
    left, right = word_diff("the <cat> sat", "the dog sat")
    assert left == "the <del>&lt;cat&gt;</del> sat" and right == "the <ins>dog</ins> sat"


@pytest.mark.parametrize("verdict", sorted(VERDICT_COLORS))
def test_banner_colour_follows_verdict(verdict: str) -> None:
    page = render_html(report_input(verdict=Verdict(verdict, "NONE", (), ())), [])
    assert f"background: {VERDICT_COLORS[verdict]}" in page and f"Upgrade gate e: {verdict}" in page


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium: apt-get install -y chromium")
def test_report_in_headlesschromium(tmp_path: Path) -> None:
    page_path = tmp_path / "report.html"
    page_path.write_text(_report(tmp_path), encoding="utf-8")
    pre_css = re.search(r"\bpre \{[^}]*\}", page_path.read_text())
    assert pre_css and "overflow-wrap: anywhere" in pre_css.group(0) and "pre-wrap" in pre_css.group(0)
    assert '<meta name="viewport"' in page_path.read_text()

    dom = chromium(tmp_path / "profile", "--dump-dom", page_path.as_uri())
    assert "<h1>owned</h1>" not in dom.stdout and "<script" not in dom.stdout
    _assert_inert(dom.stdout)
    assert "Upgrade gate" in dom.stdout and "INVESTIGATE" in dom.stdout and "chars_mean: 120 -&gt; 180" in dom.stdout

    shot = tmp_path / "shot.png"
    taken = chromium(tmp_path / "profile", f"--screenshot={shot}", "--window-size=1280,2000", page_path.as_uri())
    assert shot.stat().st_size > 0 and shot.read_bytes().startswith(b"\x89PNG")
    assert console_errors(dom.stderr) == [] and console_errors(taken.stderr) == []
    if os.environ.get("SAVE_SCREENSHOT") == "1":
        shutil.copyfile(shot, REPO / "docs" / "report_screenshot_test.png")


SCENARIO_VERDICTS = {"rollback": "ROLLBACK", "improvement": "HOLD_FOR_SIGNOFF", "imported": "INVESTIGATE"}
JUDGE_PAIRWISE = [{"segment": None, "n": 300, "wins": 171, "ties": 60, "losses": 51, "inconsistent": 18,
                   "unscored": 0, "inconsistency_rate": 0.06}]
browser = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium: apt-get install -y chromium")


@pytest.mark.browser
@browser
@pytest.mark.parametrize("name", sorted(SCENARIO_VERDICTS))
def test_layout_in_headless_chromium(name: str, scenario: Any, tmp_path: Path) -> None:
    data = scenario(name)
    page = render_html(data, [], JUDGE_PAIRWISE if name == "improvement" else None)
    assert f"Upgrade gate {data.manifest.experiment}: {SCENARIO_VERDICTS[name]}" in page
    for width, height in VIEWPORTS:
        m = measure(page, tmp_path, width, height)
        assert_layout(m, width, height)
        if width < 500:
            assert m["scrolled"] >= 1  # on a phone the wide tables scroll inside their own box
    real = tmp_path / "report.html"
    real.write_text(page, encoding="utf-8")
    shot = tmp_path / f"{name}.png"
    taken = chromium(tmp_path / "profile", f"--screenshot={shot}", "--window-size=1280,800", "--hide-scrollbars",
                     real.as_uri())
    assert shot.read_bytes().startswith(b"\x89PNG") and console_errors(taken.stderr) == []
    if os.environ.get("SAVE_SCREENSHOT") == "1":
        (REPO / "docs" / "report").mkdir(exist_ok=True)
        shutil.copyfile(shot, REPO / "docs" / "report" / f"{name}_1280x800.png")


@pytest.mark.browser
@browser
def test_hostile_report_layout_holds_on_a_phone(tmp_path: Path) -> None:
    """The injection report (20,000-character line, markup in every field) does not widen the page either."""
    m = measure(_report(tmp_path), tmp_path, 390, 844)
    assert m["scrollWidth"] <= m["innerWidth"] and m["wrapped"] == [] and m["overflowing"] == [], m
