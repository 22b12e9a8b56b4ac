"""The labelling kit's sample: which pairs a person labels, in which order, and which output is shown as A.

Population: every request of a run that both arms answered (``pairs.sql``). Changed pairs come first: they are
put in strata by segment and by each signal that picked them (the report's pair labels, ``harness.report.pairs``:
a 0/1 signal that flipped, a cosine below the A/A floor, a judge score that moved; ``changed`` when none did), and
the strata are drawn round-robin, so every segment and every kind of change is represented before any of them
gets a second item. Unchanged pairs (identical outputs: a control, the right answer is a tie) fill what is left
of ``n``, round-robin by segment. The drawn items are shown in a random order and each one's outputs in a random
position (A or B); both come from ``seed``, which is recorded in the page and in every label row.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import BadInput
from harness.report.pairs import Values, labels
from harness.spec import ARMS, read_manifest
from harness.store import RunDir, connect
from harness.traffic import Request, load_traffic

SQL = Path(__file__).with_name("pairs.sql")
MAX_CHARS = 20_000  # a text longer than this is cut in the page, with a marker


@dataclass(frozen=True)
class Item:
    """One pair to label. ``left_arm`` is the blinding: the arm whose output is shown as A."""

    key: str  # "i001": its place in the page's order
    request_id: str
    segment: str
    prompt: str
    baseline_output: str
    candidate_output: str
    left_arm: str
    stratum: str  # "changed / <segment> / <signal>" or "unchanged / <segment>"
    picked_by: tuple[str, ...]

    @property
    def shown(self) -> tuple[str, str]:
        """The outputs as shown: (A, B)."""
        if self.left_arm == "baseline":
            return self.baseline_output, self.candidate_output
        return self.candidate_output, self.baseline_output


@dataclass(frozen=True)
class Sample:
    """What one labelling page shows; ``sample_id`` is a hash of the run, the seed and the items."""

    run: str  # "<experiment>/<run_id>"
    seed: int
    sample_id: str
    items: tuple[Item, ...]
    changed: int  # pairs in the population that changed
    unchanged: int


def _round_robin(strata: Mapping[str, Sequence[dict[str, Any]]], taken: dict[str, str], n: int) -> None:
    """Take one untaken row from each stratum in turn (sorted keys) until ``n`` rows are taken or none is left."""
    queues = {k: list(v) for k, v in sorted(strata.items())}
    while len(taken) < n and any(queues.values()):
        for key, queue in queues.items():
            while queue and queue[0]["request_id"] in taken:
                queue.pop(0)
            if queue and len(taken) < n:
                taken[queue.pop(0)["request_id"]] = key


def picking_signals(row: Mapping[str, Any], values: Values, floor: float | None) -> tuple[str, ...]:
    """The kinds of the report's non-informational labels of a changed pair (``refusal``, ``cosine``, ...)."""
    found = labels(row, values.get(str(row["request_id"]), {}), floor)
    return tuple(dict.fromkeys(lb.kind for lb in found if lb.tone != "info"))


def draw(rows: Sequence[dict[str, Any]], values: Values, floor: float | None, n: int,
         seed: int) -> list[tuple[dict[str, Any], str, tuple[str, ...], str]]:
    """The stratified draw (pure): (row, stratum, picking signals, left arm) per item, in presentation order.

    ``rows`` are ``pairs.sql`` rows; ``values`` the per-request signal values (``load_pair_signals``).
    """
    rng = random.Random(seed)
    ordered = sorted(rows, key=lambda r: str(r["request_id"]))
    rng.shuffle(ordered)  # within a stratum, a random order
    picked = {str(r["request_id"]): picking_signals(r, values, floor) for r in ordered if r["changed"]}
    changed: dict[str, list[dict[str, Any]]] = {}
    unchanged: dict[str, list[dict[str, Any]]] = {}
    for r in ordered:
        rid, seg = str(r["request_id"]), str(r["segment"])
        if r["changed"]:
            for signal in picked[rid] or ("changed",):
                changed.setdefault(f"changed / {seg} / {signal}", []).append(r)
        else:
            unchanged.setdefault(f"unchanged / {seg}", []).append(r)
    taken: dict[str, str] = {}
    _round_robin(changed, taken, n)
    _round_robin(unchanged, taken, n)
    by_id = {str(r["request_id"]): r for r in ordered}
    chosen = sorted(taken)
    rng.shuffle(chosen)
    return [(by_id[rid], taken[rid], picked.get(rid, ()), ARMS[rng.random() < 0.5]) for rid in chosen]


def _request(r: Request | None) -> str:
    """The request as a person reads it (as the judge sees it: ``judge_pass.request_text``); "" when unknown."""
    from harness.signals.judge_pass import request_text

    return request_text(r) if r is not None else ""


def _cut(text: str) -> str:
    return text if len(text) <= MAX_CHARS else text[:MAX_CHARS] + f"\n[... cut: {len(text):,} characters in all]"


def sample_run(run_path: Path, n: int, seed: int) -> Sample:
    """Draw the labelling sample of the run at ``run_path`` (see the module docstring).

    Raises:
        BadInput: not a run directory, or no request that both arms answered.
    """
    from harness.report.pairs import load_pair_signals

    if not (run_path / "manifest.json").exists():
        raise BadInput(f"{run_path} has no manifest.json: not a run directory. "
                       "Fix: pass reports/<experiment>/<run_id> (or .../latest).")
    if n < 1:
        raise BadInput(f"--n {n}: the sample needs at least one pair. Fix: e.g. --n 40.")
    run = RunDir.at(run_path)
    manifest = read_manifest(run)
    con = connect(run)
    try:
        rows = con.sql(SQL.read_text()).to_arrow_table().to_pylist()
    finally:
        con.close()
    if not rows:
        raise BadInput(f"{run_path}: no request that both the baseline and the candidate answered: nothing to label.")
    values = load_pair_signals(run, [str(r["request_id"]) for r in rows if r["changed"]])
    verdict = run.path / "verdict.json"
    divergence = run.read_json("verdict.json").get("divergence") if verdict.exists() else None
    floor = divergence.get("aa_floor") if divergence else None
    drawn = draw(rows, values, floor, n, seed)
    wanted = {str(r["request_id"]) for r, *_ in drawn}
    requests = {r.request_id: r for r in load_traffic(manifest.traffic.path, limit=manifest.traffic.limit)
                if r.request_id in wanted}
    items = tuple(Item(f"i{i + 1:03d}", str(r["request_id"]), str(r["segment"]),
                       _cut(_request(requests.get(str(r["request_id"])))), _cut(r["baseline_output"] or ""),
                       _cut(r["candidate_output"] or ""), left, stratum, signals)
                  for i, (r, stratum, signals, left) in enumerate(drawn))
    name = f"{manifest.experiment}/{manifest.run_id}"
    digest = hashlib.sha256(repr((name, seed, [(it.request_id, it.left_arm) for it in items])).encode())
    n_changed = sum(1 for r in rows if r["changed"])
    return Sample(name, seed, digest.hexdigest()[:12], items, n_changed, len(rows) - n_changed)
