"""The canary run's report: ``report.md`` (a table of windows, the last reasons, the traffic-layer actions) and
``timeline.png`` (each gated signal per window: the delta, its always-valid confidence sequence and margin, the
rollback moment). Text in it is the harness's own (metric names, numbers); no prompt or output is shown."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

MAX_PANELS = 6


def _md(text: str) -> str:
    """Escape what would break a Markdown table cell or inject markup."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace("\n", " ")


def panels(window_rows: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
    """The overall checks to plot: every one that breached, then the smallest always-valid p, ``MAX_PANELS`` in all."""
    overall = [r for r in window_rows if r["segment"] is None]
    breached = sorted({(r["family"], r["metric"]) for r in overall if r["status"] == "breach"})
    best: dict[tuple[str, str], float] = {}
    for r in overall:
        key = (r["family"], r["metric"])
        best[key] = min(best.get(key, 1.0), r["p_running"])
    rest = [k for k, _ in sorted(best.items(), key=lambda kv: (kv[1], kv[0])) if k not in breached]
    return (breached + rest)[:MAX_PANELS]


def timeline(decisions: Sequence[dict[str, Any]], window_rows: Sequence[dict[str, Any]], path: Path) -> Path:
    """One panel per gated signal: canary - control per window, the confidence-sequence band, the margin, and a
    vertical line where the decision became ROLLBACK (or PROMOTE)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = panels(window_rows) or [("none", "none")]
    fig, axes = plt.subplots(len(keys), 1, figsize=(7.5, 1.9 * len(keys)), sharex=True, squeeze=False)
    stop = next(((d["window"], d["decision"]) for d in decisions if d["decision"] in ("ROLLBACK", "PROMOTE")), None)
    for ax, (family, metric) in zip(axes[:, 0], keys, strict=True):
        rows = [r for r in window_rows if r["segment"] is None and (r["family"], r["metric"]) == (family, metric)]
        w = [r["window"] for r in rows]
        d = [r["delta"] for r in rows]
        hw = [min(r["half_width"], 1e9) for r in rows]
        ax.fill_between(w, [a - b for a, b in zip(d, hw, strict=True)], [a + b for a, b in zip(d, hw, strict=True)],
                        color="#4C72B0", alpha=0.2, label="95% confidence sequence")
        ax.plot(w, d, "o-", color="#4C72B0", ms=3, label="canary - control")
        for r in rows:
            if r["status"] == "breach":
                ax.plot(r["window"], r["delta"], "o", color="#C44E52", ms=6)
        if rows:
            ax.axhline(rows[-1]["margin"], color="grey", ls="--", lw=0.8)
            ax.axhline(-rows[-1]["margin"], color="grey", ls="--", lw=0.8, label="margin")
            lo = min(a - min(b, abs(a) + 3 * rows[-1]["margin"] + 1e-9) for a, b in zip(d, hw, strict=True))
            hi = max(a + min(b, abs(a) + 3 * rows[-1]["margin"] + 1e-9) for a, b in zip(d, hw, strict=True))
            ax.set_ylim(min(lo, -rows[-1]["margin"]) * 1.1, max(hi, rows[-1]["margin"]) * 1.1)
        ax.axhline(0, color="black", lw=0.5)
        if stop is not None:
            ax.axvline(stop[0], color="#C44E52" if stop[1] == "ROLLBACK" else "#55A868", lw=1.5)
        ax.set_title(f"{family}/{metric}", fontsize=9, loc="left")
        ax.tick_params(labelsize=8)
    axes[0, 0].legend(fontsize=7, loc="upper left")
    axes[-1, 0].set_xlabel("window" + (f" ({stop[1]} at window {stop[0]})" if stop else ""))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(run_path: Path, name: str, decisions: Sequence[dict[str, Any]],
                 window_rows: Sequence[dict[str, Any]]) -> Path:
    """Write ``report.md`` and ``timeline.png`` in the run directory; returns the report's path."""
    timeline(decisions, window_rows, run_path / "timeline.png")
    last = decisions[-1]
    lines = [f"# Canary {_md(name)}: {last['decision']} at window {last['window']}", "",
             "![timeline](timeline.png)", "",
             "| window | end (UTC) | decision | control | canary | quarantined | unmatched | breached families "
             "| actions |",
             "|---|---|---|---|---|---|---|---|---|"]
    for d in decisions:
        fams = [f for f, s in json.loads(d["families"]).items() if s == "breached"]
        acts = ", ".join(_action(a) for a in json.loads(d["actions"]))
        lines.append(f"| {d['window']} | {d['end']:%H:%M:%S} | {d['decision']} | {d['n_control']} | {d['n_canary']} "
                     f"| {d.get('bad_records', 0)} | {d.get('unmatched', 0)} "
                     f"| {_md(', '.join(fams)) or '-'} | {_md(acts) or '-'} |")
    lines += ["", f"## Reasons at window {last['window']}", ""]
    lines += [f"- {_md(r)}" for r in json.loads(last["reasons"])] or ["- no breach"]
    lines += ["", "Log records the canary could not use are counted per window (cumulative) and kept, with the reason, "
              "in `quarantine.jsonl`; above `max_bad_share` a window is INVESTIGATE, never CONTINUE or PROMOTE."]
    (run_path / "report.md").write_text("\n".join(lines) + "\n")
    return run_path / "report.md"


def _action(a: dict[str, Any]) -> str:
    if a.get("action") == "haproxy_set_weight":
        if "error" in a:
            return f"HAProxy FAILED: {a['error']}"
        return f"HAProxy {a['server']} weight {a['weight_before']} -> {a['weight_read_back']} (read back)"
    if a.get("action") == "webhook":
        return "webhook delivered" if a.get("delivered") else "webhook queued for retry"
    return str(a.get("action"))
