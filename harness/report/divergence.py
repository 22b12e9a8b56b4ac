"""The embedding-drift section shared by the Markdown and HTML reports: header, rows, a summary line and a note.

With an A/A arm the section reads the candidate's drift against the A/A floor (its own rows and its test included).
Without one there is no floor: the columns about it are left out and the note says where a floor would come from
(``floor_source``, the drift family's own words).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

HEADER = ["arm", "segment", "n", "mean cosine", "5th pct cosine", "below A/A floor", "95% CI"]
HEADER_NO_FLOOR = HEADER[:5]
NOTE = ("Cosine similarity between each request's output and the baseline's (embedding model above). Divergence is "
        "not regression: an improvement diverges too. Gated as its own family: the share of requests below the A/A "
        "floor breaches when its exact lower bound exceeds the A/A level by more than the margin (alpha split over "
        "segments); "
        "a breach counts as divergence, so alone it gives INVESTIGATE, and with a degradation ROLLBACK.")
NOTE_NO_FLOOR = ("Cosine similarity between each request's output and the baseline's (embedding model above), "
                 "reported, not gated: with no A/A arm there is no noise floor to read it against, so a low cosine "
                 "here may be ordinary sampling or serving noise. A floor comes from an A/A arm: the baseline "
                 "replayed with a perturbation (drift.aa_perturbation) or a second capture of it (drift.aa_imported).")
ARM_NAMES = {"aa": "A/A (baseline again)", "candidate": "candidate"}


def has_floor(divergence: Mapping[str, Any]) -> bool:
    """Whether the run has an A/A floor (an A/A arm)."""
    return divergence.get("aa_floor") is not None


def header(divergence: Mapping[str, Any]) -> list[str]:
    """The table header: the floor columns only when there is a floor."""
    return HEADER if has_floor(divergence) else HEADER_NO_FLOOR


def note(divergence: Mapping[str, Any]) -> str:
    """What the numbers mean, with or without a floor."""
    return NOTE if has_floor(divergence) else NOTE_NO_FLOOR


def rows(divergence: Mapping[str, Any]) -> list[list[Any]]:
    """One row per compared arm, overall first, then per segment; without a floor, the candidate's only."""
    floor = has_floor(divergence)
    out = []
    for r in divergence["rows"]:
        if not floor and r["arm"] == "aa":
            continue
        cells = [ARM_NAMES.get(r["arm"], r["arm"]), r["segment"] or "all", f"{int(r['n']):,}",
                 _cos(r["mean_cosine"]), _cos(r["p05_cosine"])]
        if floor:
            below = None if r["share_below"] is None else f"{r['share_below']:.1%} ({int(r['n_below']):,})"
            ci = None if r["below_ci_low"] is None else f"[{r['below_ci_low']:.1%}, {r['below_ci_high']:.1%}]"
            cells += [below, ci]
        out.append(cells)
    return out


def _cos(x: float | None) -> str:
    return "" if x is None else f"{x:.4f}"


def summary(divergence: Mapping[str, Any]) -> str:
    """The floor (or where one would come from) and the paired distribution tests in one line."""
    floor = divergence["aa_floor"]
    source = str(divergence.get("floor_source") or "")
    if floor is None:
        why = source.removeprefix("none: ").removesuffix(". Divergence is reported, not gated")
        why = why or "the run has no A/A arm"
        parts = [f"model {divergence['model']}", f"no A/A arm, so no floor: {why.rstrip('.')}"]
    else:
        parts = [f"model {divergence['model']}",
                 f"A/A floor = {divergence['aa_quantile']:.0%} quantile of A/A similarity = {floor:.4f}, from "
                 f"{source or 'the A/A arm'}"]
        if divergence.get("floor_degenerate"):
            parts.append(f"the A/A quantile ({divergence['aa_quantile_floor']:.6f}) was degenerate (most A/A outputs "
                         f"identical, so it would count any change), so the floor is the practical floor "
                         f"{divergence['practical_floor']:.2f}")
    for arm, t in divergence["mmd_paired"].items():
        if arm == "aa" and floor is None:
            continue
        parts.append(f"paired MMD test {ARM_NAMES.get(arm, arm)} vs baseline: p = {t['p_value']:.2g} "
                     f"(n = {t['n_x']:,}, {t['n_perm']:,} permutations)")
    return "; ".join(parts) + "."
