"""Report figures: one function per figure, each writes a PNG and returns its path."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa

from harness.gate import Check

ARM_COLORS = {"baseline": "#4C72B0", "candidate": "#DD8452"}


def pyplot():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def length_distributions(signals: Path, path: Path) -> Path:
    """Histogram of output length in characters, baseline vs candidate, per segment, from the ``signals`` Parquet
    file (only its ``chars`` rows are read)."""
    import numpy as np
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    plt = pyplot()
    rows = pq.read_table(signals, columns=["arm", "segment", "value"], filters=[("metric", "=", "chars")])
    rows = rows.filter(pc.is_valid(rows["value"]))
    segments = sorted(s for s in pc.unique(rows["segment"]).to_pylist() if s is not None)
    fig, axes = plt.subplots(1, max(1, len(segments)), figsize=(3.2 * max(1, len(segments)), 2.8), squeeze=False)
    for ax, seg in zip(axes[0], segments, strict=False):
        in_seg = rows.filter(pc.equal(rows["segment"], seg))
        vals = {arm: in_seg.filter(pc.equal(in_seg["arm"], arm))["value"].to_numpy() for arm in ARM_COLORS}
        hi = max((float(v.max()) for v in vals.values() if len(v)), default=1.0) or 1.0
        bins = np.linspace(0.0, hi, 31)
        for arm, v in vals.items():
            ax.hist(v, bins=bins, alpha=0.55, label=arm, color=ARM_COLORS[arm])
        ax.set_title(seg, fontsize=9)
        ax.set_xlabel("chars", fontsize=8)
    axes[0][0].set_ylabel("requests", fontsize=8)
    axes[0][0].legend(fontsize=7)
    fig.suptitle("Output length, baseline vs candidate", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def signal_deltas(checks: Sequence[Check], path: Path) -> Path:
    """Each gated metric's change with its 95% CI, in the units its threshold uses."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 0.45 * max(3, len(checks)) + 0.8))
    for i, c in enumerate(checks):
        scale = 1.0
        if c.threshold.startswith("rel") and c.baseline:
            scale = 1.0 / abs(c.baseline)
        color = {"breach": "#C44E52", "not_significant": "#CCB974", "inconclusive": "#DD8452",
                 "improved": "#4C72B0"}.get(c.status, "#55A868")
        ax.errorbar(c.delta * scale, i, xerr=[[max(c.delta - c.ci_low, 0.0) * scale],
                                                  [max(c.ci_high - c.delta, 0.0) * scale]],
                    fmt="o", color=color, capsize=3)
        limit = float(c.threshold.split()[1])
        ax.plot([-limit, limit], [i, i], "|", color="grey", markersize=10)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(range(len(checks)), [f"{c.metric} ({c.threshold})" for c in checks], fontsize=8)
    ax.set_xlabel("candidate - baseline (rates: points; means: relative)  | = threshold", fontsize=8)
    ax.set_title("Signal deltas with 95% CI (red = breach)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def similarity_histogram(drift: pa.Table, floor: float | None, path: Path) -> Path:
    """Old-vs-new output similarity per request, with the A/A similarity and its floor for reference."""
    plt = pyplot()
    rows = drift.to_pylist()
    fig, ax = plt.subplots(figsize=(6.4, 3.0))
    bins = [i / 50 for i in range(51)]
    for arm, color, label in (("aa", "#8C8C8C", "A/A (baseline vs itself, perturbed)"),
                              ("candidate", ARM_COLORS["candidate"], "candidate vs baseline")):
        vals = [min(max(r["cosine"], 0.0), 1.0) for r in rows if r["arm"] == arm]
        if vals:
            ax.hist(vals, bins=bins, alpha=0.6, color=color, label=f"{label} (n={len(vals)})")
    if floor is not None:
        ax.axvspan(floor, 1.0, color="#8C8C8C", alpha=0.15, label=f"A/A band (>= floor {floor:.3f})")
    ax.set_yscale("log")
    ax.set_xlabel("cosine similarity to the baseline's output", fontsize=8)
    ax.set_ylabel("requests (log)", fontsize=8)
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title("Embedding drift per request", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
