"""The labelling kit: the stratified, blinded draw; the page's escaping and CSP; the label file's checks; and, in
headless Chromium on the session's zoo_terse run, labels entered by key presses, downloaded, re-imported (agreement
between two annotators), un-blinded right, and a request promoted to a golden set that ``load_golden`` accepts."""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from helpers import CHROMIUM, run_harness

from harness.annotate.labels import COLUMNS, read_labels
from harness.annotate.page import CSP, render_page
from harness.annotate.sample import Item, Sample, draw
from harness.errors import BadInput
from harness.signals.judge_prompts import Criterion, Rubric


def _rows() -> list[dict[str, Any]]:
    """40 changed pairs over two segments (a few with a refusal flip) and 20 unchanged ones."""
    rows = []
    for i in range(60):
        seg = ("chat", "faq")[i % 2]
        changed = i < 40
        rows.append({"request_id": f"r{i:02d}", "segment": seg, "baseline_output": f"base {i}",
                     "candidate_output": f"cand {i}" if changed else f"base {i}", "changed": changed,
                     "chars_delta": 0})
    return rows


REFUSALS = {"r03": {"refusal": (0.0, 1.0)}, "r05": {"refusal": (0.0, 1.0)}}


def test_draw_takes_changed_pairs_first_and_every_stratum_before_a_second_item() -> None:
    drawn = draw(_rows(), REFUSALS, None, n=4, seed=1)
    strata = sorted(s for _, s, _, _ in drawn)
    # three changed strata (chat / changed, faq / changed, faq / refusal: r03 and r05 are faq) all drawn in 4 items
    assert {"changed / chat / changed", "changed / faq / changed", "changed / faq / refusal"} <= set(strata)
    assert all(r["changed"] for r, *_ in drawn)
    assert draw(_rows(), REFUSALS, None, n=4, seed=1) == drawn  # the seed fixes the draw, the order and the sides
    everything = draw(_rows(), REFUSALS, None, n=45, seed=2)
    assert sum(r["changed"] for r, *_ in everything) == 40  # all changed pairs, then unchanged ones
    assert Counter(s for _, s, _, _ in everything if s.startswith("unchanged")) == {"unchanged / chat": 3,
                                                                                    "unchanged / faq": 2}
    sides = Counter(left for *_, left in everything)
    assert 10 <= sides["baseline"] <= 35, sides  # both sides used: the blinding is random, not constant
    assert [r["request_id"] for r, *_ in everything] != sorted(r["request_id"] for r, *_ in everything)


HOSTILE = '</script><script>alert(1)</script><img src=x onerror=alert(2)>"&'


def _sample() -> Sample:
    items = tuple(Item(f"i{i:03d}", f"req-{i}{HOSTILE}", f"seg{HOSTILE}", f"prompt {HOSTILE}", f"one {HOSTILE}",
                       f"two {HOSTILE}", ("baseline", "candidate")[i % 2], f"changed / seg{HOSTILE}", ())
                  for i in range(1, 3))
    return Sample(f"exp/run{HOSTILE}", 7, "abc123", items, 2, 0)


RUBRIC = Rubric("r", (Criterion("accuracy", f"right {HOSTILE}"), Criterion("tone", "t"), Criterion("format", "f")))


def test_page_escapes_every_untrusted_text_and_has_one_script_under_a_strict_csp() -> None:
    from html.parser import HTMLParser

    page = render_page(_sample(), RUBRIC)
    tags: list[tuple[str, list[tuple[str, str | None]]]] = []
    texts: list[str] = []

    class Parser(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            tags.append((tag, attrs))

        def handle_data(self, data: str) -> None:
            texts.append(data)

    Parser().feed(page)
    assert "img" not in {t for t, _ in tags} and [t for t, _ in tags].count("script") == 2  # data block + the kit
    assert not any(k.startswith("on") for _, attrs in tags for k, _ in attrs)  # no inline handler anywhere
    assert sum(HOSTILE in t for t in texts) >= 10  # every hostile text is shown as text
    assert "default-src 'none'" in CSP and "'unsafe-inline'" not in CSP and "script-src 'sha256-" in CSP
    data = re.search(r'<script type="application/json" id="kit-data">(.*?)</script>', page, re.S)
    assert data and json.loads(data.group(1))["items"]["i001"]["left"] == "candidate"
    shown = re.sub(r"<(script|style)\b.*?</\1>", "", page, flags=re.S)  # the blinding lives in the data block only
    assert "baseline" not in shown and "candidate" not in shown


def _write(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([list(COLUMNS), *rows])
    return path


def test_bad_label_rows_are_named_with_the_fix(tmp_path: Path) -> None:
    path = _write(tmp_path / "l.csv", [
        ["r1", "baseline", "accuracy", "4", "ann", "s", "1", "i001", "A", ""],
        ["r1", "baseline", "accuracy", "3", "ann", "s", "1", "i001", "A", ""],
        ["r2", "nobody", "accuracy", "4", "ann", "s", "1", "i002", "A", ""],
        ["r3", "candidate", "accuracy", "9", "ann", "s", "1", "i003", "B", ""],
        ["r4", "", "preference", "left", "ann", "s", "1", "i004", "A", ""],
        ["r5", "", "golden", "promote", "ann", "s", "1", "i005", "", ""],
        ["zz", "candidate", "tone", "2", "ann", "s", "1", "i006", "B", ""]])
    with pytest.raises(BadInput) as e:
        read_labels(path, {"accuracy": (1, 5), "tone": (1, 5)}, known={"r1", "r2", "r3", "r4", "r5"})
    msg = str(e.value)
    for part in ("row 2: a second accuracy label", "row 3 (request_id 'r2'): arm 'nobody'",
                 "row 4 (request_id 'r3'): label 9 outside accuracy's scale 1..5",
                 "row 5 (request_id 'r4'): preference 'left'",
                 "row 6 (request_id 'r5'): golden row without an expected answer",
                 "row 7 (request_id 'zz'): request_id not in this run"):
        assert part in msg, msg
    assert "7 bad label row(s)" not in msg and "6 bad label row(s)" in msg


def _kit_data(browser: Any) -> dict[str, Any]:
    return browser.eval("JSON.parse(document.getElementById('kit-data').textContent)")


def _label_page(browser: Any, page: Path, annotator: str, keys_per_item: list[list[str]]) -> Path:
    """Open ``page`` fresh, type the annotator's name, press each item's keys then ``n``; download with ``d``."""
    browser.open(page.as_uri())
    browser.eval("localStorage.clear()")
    browser.open(page.as_uri())
    assert browser.eval("document.title").startswith("ready:")
    browser.eval("document.getElementById('annotator').select()")
    browser.eval("document.getElementById('annotator').focus()")
    browser.type_text(annotator)
    browser.eval("document.activeElement.blur()")
    for keys in keys_per_item:
        browser.press(*keys, "n")
    since = len(browser.events)
    browser.press("d")
    return browser.download(since)


@pytest.mark.vllm
@pytest.mark.e2e
@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium: apt-get install -y chromium")
def test_label_by_keys_download_reimport_agreement_and_promote(terse_run: tuple[Path, object],
                                                               tmp_path: Path) -> None:
    from devtools import Browser

    from harness.golden.schema import load_golden
    from harness.signals.agreement import load_annotations, load_preferences
    from harness.signals.judge_prompts import Criterion as C
    from harness.signals.judge_prompts import Rubric as R

    run, _ = terse_run
    page = tmp_path / "page.html"
    made = run_harness("annotate", str(run), "--n", "6", "--seed", "11", "--judge", "zoo", "--out", str(page))
    assert made.returncode == 0, made.stderr[-2000:]
    with Browser(tmp_path / "profile", tmp_path / "downloads") as browser:
        browser.open(page.as_uri())
        data = _kit_data(browser)
        order = sorted(data["items"])
        base_side = {k: "a" if data["items"][k]["left"] == "baseline" else "b" for k in order}
        # annotator 1: accuracy A=4, B=2 on every pair, prefers the baseline's output everywhere; promotes pair 1
        first = _label_page(browser, page, "ann1", [["4", "2", base_side[k], *(["g"] if i == 0 else [])]
                                                     for i, k in enumerate(order)])
        # annotator 2: prefers the baseline on the first 3 pairs, tie on the other 3; no scores
        second = _label_page(browser, page, "ann2", [[base_side[k] if i < 3 else "t"] for i, k in enumerate(order)])
        assert browser.problems() == []  # no script error, no CSP refusal, no console error
    ann1 = read_labels(first)
    assert ann1.annotators == ("ann1",) and set(ann1.preferences.values()) == {"baseline"}  # un-blinded right
    rid = {k: data["items"][k]["request_id"] for k in order}
    for k in order:  # "4" went to the output shown as A: the baseline's when it was on the left
        a_arm = data["items"][k]["left"]
        b_arm = data["items"][k]["right"]
        assert ann1.scores[(rid[k], a_arm, "accuracy")] == 4 and ann1.scores[(rid[k], b_arm, "accuracy")] == 2
    # the downloaded file is what judge.annotations reads: its score rows and its pairwise choices
    rubric = R("support-v1", tuple(C(n, "d") for n in ("accuracy", "instruction_adherence", "tone", "verbosity",
                                                         "format")))
    assert load_annotations(first, rubric) == ann1.scores
    assert load_preferences(first) == ann1.preferences

    checked = run_harness("annotate", str(run), "--judge", "zoo", "--labels", str(first), str(second))
    assert checked.returncode == 0, checked.stderr[-2000:]
    line = next(x for x in checked.stdout.splitlines() if x.startswith("agreement") and "preference" in x)
    assert "n 6, exact 0.500" in line, checked.stdout  # 3 of 6 choices the same

    golden = tmp_path / "golden.parquet"
    promoted = run_harness("annotate", str(run), "--judge", "zoo", "--labels", str(first), "--golden", str(golden))
    assert promoted.returncode == 0, promoted.stderr[-2000:]
    _, items = load_golden(golden)
    assert list(items) == [rid[order[0]]]
    outputs = {r["request_id"]: r for r in _generations(run, "baseline")}
    assert items[rid[order[0]]].expected == outputs[rid[order[0]]]["output_text"]  # the preferred one: baseline
    again = run_harness("annotate", str(run), "--labels", str(first), "--golden", str(golden))
    assert again.returncode == 2 and "already golden items" in again.stderr


def _generations(run: Path, arm: str) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    return [r for p in sorted((run / "generations" / f"arm={arm}").glob("part-*.parquet"))
            for r in pq.read_table(p).to_pylist()]
