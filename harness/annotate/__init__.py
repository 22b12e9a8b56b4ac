"""The labelling kit: people label a run's pairs blind, and the labels come back as data (docs/annotate.md).

    python -m harness annotate RUN [--n 40] [--seed S] [--judge NAME] [--out PAGE]   write the labelling page
    python -m harness annotate RUN --labels FILE [FILE ...]                        check labels, agreement
    python -m harness annotate RUN --labels FILE --golden GOLDEN.parquet           promote requests to golden

``sample.py`` draws the pairs (changed first, stratified by segment and by the signals that picked them, random
order, random sides), ``page.py`` + ``kit.js`` write the self-contained page, ``labels.py`` reads the label file it
downloads (the long format of ``judge.annotations``) and measures agreement, ``promote.py`` writes golden items.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.errors import BadInput
from harness.signals.judge_prompts import Criterion, Rubric, validate_rubric


def rubric_for(run_path: Path, judge: str | None) -> Rubric | None:
    """The rubric to label with: ``configs/judge/<judge>.yaml``'s when ``judge`` is given, else the run's judge's
    (when it has one), else None (the pairwise choice only).

    Raises:
        BadInput: no such judge config, or its rubric is not usable.
    """
    from omegaconf import OmegaConf

    from harness import CONFIG_DIR
    from harness.config import RubricConfig

    if judge is not None:
        path = CONFIG_DIR / "judge" / f"{judge}.yaml"
        if not path.is_file():
            names = sorted(p.stem for p in (CONFIG_DIR / "judge").glob("*.yaml"))
            raise BadInput(f"--judge {judge}: no {path}. Fix: one of {', '.join(names)}.")
        raw = OmegaConf.select(OmegaConf.load(path), "rubric")
        source = str(path)
    else:
        from harness.spec import read_manifest
        from harness.store import RunDir

        settings = read_manifest(RunDir.at(run_path)).spec.settings.get("judge")
        if settings is None or not getattr(settings, "enabled", False):
            return None
        raw, source = OmegaConf.structured(settings.rubric), "the run's judge.rubric"
    cfg: Any = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(RubricConfig), raw))
    rubric = Rubric(cfg.name, tuple(Criterion(c.name, c.description, c.scale_min, c.scale_max, c.higher_is_better)
                                    for c in cfg.criteria))
    validate_rubric(rubric, source)
    return rubric


def scales(rubric: Rubric | None) -> dict[str, tuple[int, int]]:
    """criterion -> (scale_min, scale_max)."""
    return {c.name: (c.scale_min, c.scale_max) for c in rubric.criteria} if rubric else {}


def write_annotation_page(run_path: Path, n: int, seed: int, judge: str | None, out: Path | None) -> Path:
    """Draw the sample and write the page (default ``RUN/annotate/annotate-<sample>.html``); returns its path."""
    from harness.annotate.page import write_page
    from harness.annotate.sample import sample_run

    sample = sample_run(run_path, n, seed)
    rubric = rubric_for(run_path, judge)
    return write_page(sample, rubric, out or run_path / "annotate" / f"annotate-{sample.sample_id}.html")


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def check_labels(run_path: Path, files: Sequence[Path], judge: str | None, golden: Path | None) -> list[str]:
    """Read and check label files against the run; lines saying what they hold and how they agree (between
    annotators, and with the run's judge when it has one); with ``golden``, promote their golden rows there.

    Raises:
        BadInput: a bad label file (every bad row named), or a promotion that cannot be written.
    """
    from harness.annotate.labels import agreement_table, read_labels
    from harness.store import RunDir, connect

    run = RunDir.at(run_path)
    con = connect(run)
    try:
        known = {str(r[0]) for r in con.sql("SELECT DISTINCT request_id FROM generations").fetchall()}
    finally:
        con.close()
    rubric = rubric_for(run_path, judge)
    sc = scales(rubric)
    all_labels = [read_labels(f, sc or None, known) for f in files]
    lines = [f"{lb.path}: {len(lb.scores)} scores, {len(lb.preferences)} preferences, {len(lb.golden)} golden; "
             f"annotator(s) {', '.join(lb.annotators) or '-'}; sample(s) {', '.join(lb.samples) or '-'}"
             for lb in all_labels]
    pairs = [(a, b) for i, a in enumerate(all_labels) for b in all_labels[i + 1:]]
    for a, b in pairs:
        for row in agreement_table(a, b, sc):
            lines.append(f"agreement {a.path.name} vs {b.path.name}, {row['criterion']}: n {row['n']}, exact "
                         f"{_fmt(row['exact'])}, kappa {_fmt(row['kappa'])}, weighted kappa "
                         f"{_fmt(row['weighted_kappa'])}")
    if run.table_path("judge_pairwise").exists():
        judged = {r["request_id"]: r["preference"] for r in run.read_table("judge_pairwise").to_pylist()}
        for lb in all_labels:
            row = agreement_table(lb, judged, {})[-1]
            lines.append(f"agreement {lb.path.name} vs the run's judge, preference: n {row['n']}, exact "
                         f"{_fmt(row['exact'])}, kappa {_fmt(row['kappa'])}")
    if run.table_path("judge_scores").exists() and rubric is not None:
        from harness.signals.agreement import agreement_rows

        scores = run.read_table("judge_scores").to_pylist()
        for lb in all_labels:
            for r in agreement_rows(scores, lb.scores, rubric, bar=0.6, min_n=1):
                lines.append(f"agreement {lb.path.name} vs the run's judge, {r['criterion']}: n {r['n']}, exact "
                             f"{_fmt(r['exact'])}, weighted kappa {_fmt(r['weighted_kappa'])}")
    if golden is not None:
        from harness.annotate.promote import promote

        if len(all_labels) != 1:
            raise BadInput("--golden promotes from one label file at a time. Fix: give one --labels FILE.")
        path, added = promote(run_path, all_labels[0], golden)
        lines.append(f"golden: {added} item(s) added to {path} (python -m harness golden check {path})")
    return lines
