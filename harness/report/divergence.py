"""The embedding-drift section shared by the Markdown and HTML reports: one header, rows and a summary line."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

HEADER = ["arm", "segment", "n", "mean cosine", "5th pct cosine", "below A/A floor", "95% CI"]
NOTE = ("Cosine similarity between each request's output and the baseline's (embedding model above). Divergence is "
        "not regression: an improvement diverges too. Gated as its own family: the share of requests below the A/A "
        "floor breaches when it exceeds the A/A level by more than the margin (binomial test, Holm over segments); "
        "a breach counts as divergence, so alone it gives INVESTIGATE, and with a degradation ROLLBACK.")


def rows(divergence: Mapping[str, Any]) -> list[list[Any]]:
    """One row per compared arm, overall first, then per segment."""
    out = []
    for r in divergence["rows"]:
        below = None if r["share_below"] is None else f"{r['share_below']:.1%} ({r['n_below']})"
        ci = None if r["below_ci_low"] is None else f"[{r['below_ci_low']:.1%}, {r['below_ci_high']:.1%}]"
        out.append([r["arm"], r["segment"] or "all", r["n"], r["mean_cosine"], r["p05_cosine"], below, ci])
    return out


def summary(divergence: Mapping[str, Any]) -> str:
    """The floor and the paired distribution tests in one line."""
    floor = divergence["aa_floor"]
    parts = [f"model {divergence['model']}",
             f"no A/A floor ({divergence.get('floor_source', 'no A/A arm')})" if floor is None
             else f"A/A floor = {divergence['aa_quantile']:.0%} quantile of A/A similarity = {floor:.4f}, from "
                  f"{divergence.get('floor_source', 'the A/A arm')}"]
    for arm, t in divergence["mmd_paired"].items():
        parts.append(f"paired MMD test {arm} vs baseline: p = {t['p_value']:.3g} (n = {t['n_x']}, "
                     f"{t['n_perm']} permutations)")
    return "; ".join(parts) + "."
