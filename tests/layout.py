"""A page's layout measured in headless Chromium: shared by the report tests on hand-made and on real runs."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

from helpers import chromium

# The layout in a real browser. The report has no script and a CSP that forbids one, so it is measured from outside:
# a test-only harness page holds the report, byte for byte and with its own strict CSP, in an <iframe srcdoc> of the
# viewport's size (--dump-dom windows are clamped to 500 px wide and lose the browser's chrome in height, an iframe
# is exactly what it is told). The harness's script (same origin: srcdoc) opens every <details> of the report,
# measures it and writes the numbers into the harness's title, which --dump-dom returns.
HARNESS = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>measuring</title>
<style>body { margin: 0; } iframe { border: 0; display: block; }</style></head><body>
<iframe id="report" width="{width}" height="{height}" srcdoc="{page}"></iframe>
<script>
const frame = document.getElementById("report");
frame.addEventListener("load", () => {
  const doc = frame.contentDocument, win = frame.contentWindow, root = doc.documentElement;
  const bottom = (sel) => {
    const e = doc.querySelector(sel);
    return e ? e.getBoundingClientRect().bottom : null;
  };
  const first = {verdict: bottom("#verdict"), scorecard: bottom("#scorecard")};  // as the page opens
  doc.querySelectorAll("details").forEach((d) => { d.open = true; });
  const wrapped = [];
  for (const el of doc.querySelectorAll("th, td, .tile .big span, .tag")) {
    const walk = doc.createTreeWalker(el, 4);  // NodeFilter.SHOW_TEXT
    for (let n = walk.nextNode(); n; n = walk.nextNode()) {
      if (!n.textContent.trim()) continue;
      const range = doc.createRange();
      range.selectNodeContents(n);
      const tops = new Set([...range.getClientRects()].filter((r) => r.width > 0).map((r) => Math.round(r.top)));
      if (tops.size > 1) wrapped.push(n.textContent.slice(0, 80));
    }
  }
  const scrolled = [...doc.querySelectorAll(".scroll")].filter((s) => s.scrollWidth > s.clientWidth).length;
  const overflowing = [...doc.querySelectorAll(".tile, .banner, .changed, #reasons")]
    .filter((e) => e.scrollWidth > e.clientWidth + 1).map((e) => e.textContent.slice(0, 80));
  document.title = JSON.stringify({...first,
    scrollWidth: root.scrollWidth, clientWidth: root.clientWidth, innerWidth: win.innerWidth,
    innerHeight: win.innerHeight, scripts: doc.scripts.length, tiles: doc.querySelectorAll("#scorecard .tile").length,
    wrapped, scrolled, overflowing});
});
</script></body></html>"""
VIEWPORTS = [(1280, 800), (390, 844)]


def measure(page: str, tmp_path: Path, width: int, height: int) -> dict[str, Any]:
    """Layout numbers of ``page`` shown at ``width`` x ``height`` in headless Chromium (see ``HARNESS``)."""
    harness = HARNESS.replace("{width}", str(width)).replace("{height}", str(height))
    path = tmp_path / f"measure_{width}.html"
    path.write_text(harness.replace("{page}", html.escape(page, quote=True)), encoding="utf-8")
    dom = chromium(tmp_path / "profile", f"--window-size={max(width, 800)},{height + 100}", "--dump-dom",
                   path.as_uri())
    title = re.search(r"<title>(.*?)</title>", dom.stdout, re.S)
    assert title and title.group(1) != "measuring", dom.stderr[-2000:]
    return json.loads(html.unescape(title.group(1)))


def assert_layout(m: dict[str, Any], width: int, height: int) -> None:
    assert m["innerWidth"] == width and m["innerHeight"] == height  # the viewport asked for, not a clamped one
    assert m["scripts"] == 0  # the report itself, unchanged
    assert m["scrollWidth"] <= m["clientWidth"] <= m["innerWidth"], m  # the page never scrolls sideways
    assert m["wrapped"] == [], m["wrapped"]  # no table cell, headline or flag broken over two lines
    assert m["overflowing"] == [], m["overflowing"]  # nor sticking out of its tile, banner or pair
    assert m["verdict"] is not None and m["scorecard"] is not None and m["tiles"] >= 1
    assert m["verdict"] <= m["scorecard"] <= height, m  # verdict and scorecard inside the first screen
