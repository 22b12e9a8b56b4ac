"""The run history (``harness.report.history``, ``index.html``) and the sweep summary page, on hand-made run directories
(manifest.json, verdict.json, an empty report.html; no Parquet, no engine)."""

from __future__ import annotations

import json
import os
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from helpers import CHROMIUM, SAMPLE, chromium, console_errors

from harness.config import ArmConfig
from harness.gate import Policy
from harness.report.history import MALFORMED, NO_VERDICT, UNREADABLE, collect_runs, format_runs
from harness.report.html import CSP, VERDICT_COLORS
from harness.report.index_html import write_index
from harness.report.sweep_render import render_summary_html
from harness.spec import ArmRecord, RunSpec, handmade_manifest, write_manifest
from harness.store import RunDir

EVIL = 'evil"><img src=x onerror=alert(1)>&#?%'  # a directory name: no "/"
EVIL_REASON = 'stats/chars_mean <script>alert("r")</script> \x1b[31mred'
EVIL_SOURCE = "<iframe src=//x>"


def _check(metric: str, delta: float, status: str, segment: str | None = None) -> dict[str, Any]:
    return {"metric": metric, "family": "stats", "segment": segment, "baseline": 100.0, "candidate": 100.0 + delta,
            "delta": delta, "status": status, "role": "degradation"}


def _run(out: Path, experiment: str, run_id: str, when: str, verdict: dict[str, Any] | None,
         sources: tuple[str, str] = ("zoo/base", "zoo/terse")) -> RunDir:
    run = RunDir(out, experiment, run_id)
    spec = RunSpec(name=experiment, traffic_path=str(SAMPLE), limit=4,
                   arms={"baseline": ArmConfig(), "candidate": ArmConfig()}, signals=("stats",), policy=Policy(),)
    manifest = handmade_manifest(spec, run_id, 4)
    manifest.created_at = when
    manifest.arms = {a: ArmRecord(s, "vllm", "") for a, s in zip(("baseline", "candidate"), sources, strict=True)}
    write_manifest(run, manifest)
    if verdict is not None:
        run.write_json("verdict.json", {"schema_version": 3, "families": {"stats": "ok"}, **verdict})
        run.write_text("report.html", "")
    return run


@pytest.fixture
def reports(tmp_path: Path) -> Path:
    """Two finished runs of ``support``, an unfinished third, one run of an injection-named experiment, a run of an
    older manifest format, a malformed manifest, a ``latest`` symlink, a sweep and a cached run to skip."""
    out = tmp_path / "reports"
    _run(out, "support", "r1", "2025-01-01T10:00:00+00:00",
         {"verdict": "INVESTIGATE", "direction": "REGRESSION", "reasons": ["stats/chars_mean breached"],
          "checks": [_check("chars_mean", 40.0, "breach"), _check("refusal", 0.0, "ok"),
                     _check("chars_mean", 90.0, "breach", segment="code")]})
    _run(out, "support", "r2", "2025-01-02T10:00:00+00:00",
         {"verdict": "PASS", "direction": "NONE", "reasons": [],
          "checks": [_check("chars_mean", 3.0, "not_significant"), _check("refusal", 0.0, "ok")]})
    _run(out, "support", "r3", "2025-01-04T10:00:00+00:00", None)
    (out / "support" / "latest").symlink_to("r2")
    _run(out, EVIL, EVIL, "2025-01-03T10:00:00+00:00",
         {"verdict": "ROLLBACK", "direction": "REGRESSION", "reasons": [EVIL_REASON, "second"],
          "checks": [_check("chars_mean", 50.0, "breach")]}, sources=(EVIL_SOURCE, "cand"))
    old = out / "legacy" / "old"
    old.mkdir(parents=True)
    (old / "manifest.json").write_text(json.dumps({"manifest_version": 2, "experiment": "legacy"}))
    (old / "verdict.json").write_text(json.dumps({"verdict": "PASS"}))
    os.utime(old / "manifest.json", (1.7e9, 1.7e9))  # 2023-11-14
    broken = out / "legacy" / "broken"
    broken.mkdir()
    (broken / "manifest.json").write_text("{not json")
    os.utime(broken / "manifest.json", (1.6e9, 1.6e9))  # 2020-09-13
    (out / "sweeps" / "20250105T000000Z-ab12").mkdir(parents=True)
    (out / "sweeps" / "20250105T000000Z-ab12" / "summary.html").write_text("")
    (out / "sweeps" / "20250106T000000Z-cd34").mkdir()  # not summarized yet
    (out / "sweeps" / "20250106T000000Z-cd34" / "multirun.yaml").write_text("")
    _run(out / ".cache", "hidden", "h1", "2025-02-01T00:00:00+00:00", {"verdict": "PASS", "reasons": []})
    _run(out / "sweeps", "nested", "n1", "2025-02-01T00:00:00+00:00", {"verdict": "PASS", "reasons": []})
    return out


def test_runs_are_listed_newest_first_with_unfinished_and_unreadable_ones(reports: Path) -> None:
    runs = collect_runs(reports)
    assert [(r.experiment, r.run_id, r.verdict) for r in runs] == [
        ("support", "r3", NO_VERDICT), (EVIL, EVIL, "ROLLBACK"), ("support", "r2", "PASS"),
        ("support", "r1", "INVESTIGATE"), ("legacy", "old", UNREADABLE), ("legacy", "broken", MALFORMED)]
    r1 = runs[3]
    assert (r1.baseline, r1.candidate, r1.reason, r1.report) == ("zoo/base", "zoo/terse", "stats/chars_mean breached",
                                                                  "support/r1/report.html")
    assert [(c.metric, c.delta, c.status) for c in r1.checks] == [("chars_mean", 40.0, "breach"),
                                                                  ("refusal", 0.0, "ok")]  # overall checks only
    assert runs[1].reason == EVIL_REASON and runs[2].reason is None and runs[0].report is None
    assert runs[4].created_at.startswith("2023-11-14") and runs[4].baseline is None
    assert collect_runs(reports / "nowhere") == []


def test_format_runs_is_a_plain_table_without_control_characters(reports: Path) -> None:
    text = format_runs(collect_runs(reports))
    lines = text.splitlines()
    assert lines[0].split()[:4] == ["time", "(UTC)", "experiment", "run"] and set(lines[1]) <= {"-", " "}
    assert [line.split()[2] for line in lines[2:]] == ["support", "evil\"><img", "support", "support", "legacy",
                                                       "legacy"]
    assert "\x1b" not in text and "?[31mred" in text and "zoo/base -> zoo/terse" in text
    assert "2025-01-04 10:00" in lines[2] and NO_VERDICT in lines[2] and UNREADABLE in lines[6]
    assert format_runs([]) == "No runs found."


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.cells: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))

    def handle_data(self, data: str) -> None:
        self.cells.append(data)


def _parse(page: str) -> _Page:
    parsed = _Page()
    parsed.feed(page)
    return parsed


def test_index_escapes_untrusted_text_and_every_link_resolves(reports: Path) -> None:
    index = write_index(reports)
    assert index == reports / "index.html"
    page = index.read_text()
    parsed = _parse(page)
    assert f'<meta http-equiv="Content-Security-Policy" content="{CSP}">' in page
    assert "<script" not in page and "<img src=x" not in page and "<iframe" not in page
    assert not [(t, k) for t, attrs in parsed.tags for k, _ in attrs if k.startswith("on")]
    assert [t for t, _ in parsed.tags].count("h1") == 1
    assert "evil&quot;&gt;&lt;img src=x onerror=alert(1)&gt;&amp;#?%" in page
    assert "&lt;script&gt;alert(&quot;r&quot;)&lt;/script&gt;" in page and "&lt;iframe src=//x&gt;" in page
    assert EVIL in parsed.cells and EVIL_REASON in parsed.cells and EVIL_SOURCE in parsed.cells

    hrefs = [v for t, attrs in parsed.tags if t == "a" for k, v in attrs if k == "href"]
    assert len(hrefs) == 4  # r1, r2, the injection run, one summarized sweep
    for h in hrefs:
        assert h and not h.startswith(("/", "#")) and ":" not in h, h
        target = (index.parent / unquote(h)).resolve()
        assert target.is_file() and target.is_relative_to(reports.resolve()), h
    assert "evil%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E%26%23%3F%25/" in page
    assert [v for t, attrs in parsed.tags if t == "img" for k, v in attrs if k == "src"] == [
        v for t, attrs in parsed.tags if t == "img" for k, v in attrs if k == "src" and v.startswith("data:image/png")]

    rows = page.split('<table id="runs">')[1].split("</table>")[0].split("<tr>")[2:]
    assert [r.split("<td>")[2].split("</td>")[0] for r in rows] == ["r3", EVIL.replace("&", "&amp;").replace(
        '"', "&quot;").replace("<", "&lt;").replace(">", "&gt;"), "r2", "r1", "old", "broken"]
    assert f"background: {VERDICT_COLORS['ROLLBACK']}; color: #fff\">ROLLBACK" in rows[1]
    assert f"background: {VERDICT_COLORS['INSUFFICIENT_DATA']}; color: #fff\">{NO_VERDICT}" in rows[0]
    assert "not written" in rows[0] and "no summary" in page
    sweeps = page.split('<table id="sweeps">')[1]
    assert sweeps.index("20250106T000000Z-cd34") < sweeps.index("20250105T000000Z-ab12") and "nested" not in sweeps


def test_trend_figure_for_an_experiment_with_two_runs(reports: Path) -> None:
    page = write_index(reports).read_text()
    sections = {s.split("</h3>")[0]: s for s in page.split("<h3>")[1:]}
    assert set(sections) == {"support", "evil&quot;&gt;&lt;img src=x onerror=alert(1)&gt;&amp;#?%", "legacy"}
    support = sections["support"]
    assert '<img class="trend" src="data:image/png;base64,iVBORw0KGgo' in support  # the PNG signature
    assert "3 runs, 2 with a verdict; latest verdict: PASS" in support and "1 run, 1 with a verdict" in page
    assert "One run with a verdict: no trend yet." in sections[next(k for k in sections if k.startswith("evil"))]
    assert "No run with a verdict" in sections["legacy"] and page.count('class="trend"') == 1


def test_an_empty_output_directory_gets_an_index(tmp_path: Path) -> None:
    page = write_index(tmp_path / "reports").read_text()
    assert "No runs yet." in page and "No sweeps." in page


def test_sweep_summary_page_escapes_and_links_each_report(reports: Path, tmp_path: Path) -> None:
    from harness.report.plots import pyplot

    run = _run(reports, "sweep_x", "s1-j0", "2025-01-05T00:00:00+00:00",
               {"verdict": "PASS", "reasons": []}, sources=(EVIL_SOURCE, "c"))
    sweep_dir = reports / "sweeps" / "s1"
    sweep_dir.mkdir()
    plt = pyplot()
    fig, _ = plt.subplots()
    fig.savefig(sweep_dir / "pareto.png")
    plt.close(fig)
    from harness.spec import read_manifest

    rows = [{"job": 0, "run_id": "s1-j0", "run_dir": str(run.path), "settings": EVIL, "verdict": "PASS",
             "direction": "NONE", "families": "stats=ok", "key_deltas": "none", "generated": 4, "cached": 0,
             "output_tokens_per_s": 12.5, "requests_per_s": 1.0, "seconds_per_request": 1.0, "ttft_p50_s": None,
             "latency_p90_s": None}]
    page = render_summary_html(sweep_dir, read_manifest(run), rows, "- breached families", [0.0], [0],
                               sweep_dir / "pareto.png")
    parsed = _parse(page)
    assert "<script" not in page and "<img src=x" not in page and "<iframe" not in page
    assert f'content="{CSP}"' in page and EVIL in parsed.cells and '<img src="data:image/png;base64,' in page
    assert page.count("<tr>") == 2  # the header and the one job
    hrefs = [v for t, attrs in parsed.tags if t == "a" for k, v in attrs if k == "href"]
    assert hrefs == ["../../sweep_x/s1-j0/report.html"] and (sweep_dir / unquote(hrefs[0])).resolve().is_file()


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium: apt-get install -y chromium")
def test_index_in_headless_chromium(reports: Path, tmp_path: Path) -> None:
    index = write_index(reports)
    dom = chromium(tmp_path / "profile", "--dump-dom", index.as_uri())
    assert console_errors(dom.stderr) == []
    assert "<script" not in dom.stdout and "<img src=\"x\"" not in dom.stdout
    assert "Upgrade gate: run history" in dom.stdout and dom.stdout.count("<tr>") >= 7
    shown = 'evil"&gt;&lt;img src=x onerror=alert(1)&gt;&amp;#?%'  # text nodes serialize " unescaped
    for text in ("r1", "r2", "r3", "ROLLBACK", NO_VERDICT, UNREADABLE, shown):
        assert text in dom.stdout, text
