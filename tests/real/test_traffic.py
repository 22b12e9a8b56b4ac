"""The real model's traffic: built from the project's own prompts, valid, with references, and the committed file
is what the builder writes."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from harness.fixtures.real.traffic import DEFAULT_REAL_SAMPLE, project_rows, shared_rows, write_real_traffic
from harness.golden.schema import load_references
from harness.traffic import load_traffic

SHARED = Path(os.environ.get("SHARED_DATA") or Path(__file__).resolve().parents[3] / "shared" / "data")


def test_segments_and_ids() -> None:
    rows = project_rows()
    segments = Counter(r["request"].segment for r in rows)
    assert segments == {"support": 60, "qa": 45, "coding": 36, "writing": 36, "borderline": 40, "unsafe": 30}
    assert len({r["request"].request_id for r in rows}) == len(rows)
    assert {r["request"].metadata["label"] for r in rows if r["request"].segment == "unsafe"} == {"unsafe"}


def test_the_committed_file_is_what_the_builder_writes(tmp_path: Path) -> None:
    write_real_traffic(tmp_path / "t.parquet")
    assert pq.read_table(tmp_path / "t.parquet").equals(pq.read_table(DEFAULT_REAL_SAMPLE)), \
        "replays/real_sample.parquet is stale. Fix: python -m harness real-traffic"


def test_it_loads_as_traffic_and_carries_its_references() -> None:
    requests = load_traffic(DEFAULT_REAL_SAMPLE)
    refs = load_references(DEFAULT_REAL_SAMPLE)
    assert len(requests) == 247
    by_segment = Counter(item.segment for item in refs.values())
    assert by_segment == {"qa": 45, "support": 35}  # qa answers; plan questions (yes/no) and order extractions
    faq = next(r for r in requests if (r.metadata or {}).get("kind") == "faq")
    assert faq.messages is not None and "help centre" in faq.messages[0].content
    assert all(r.messages and r.messages[0].role == "user" for r in requests)  # the system prompt is the arm's


@pytest.mark.skipif(not (SHARED / "mt_bench").is_dir(),
                    reason=f"needs the shared data folder {SHARED} (or $SHARED_DATA)")
def test_shared_data_adds_mt_bench_and_xstest() -> None:
    rows = shared_rows(SHARED, 1000)
    segments = Counter(r["request"].segment for r in rows)
    assert segments == {"mt_bench": 80, "xstest_safe": 250, "xstest_unsafe": 200}
    assert all(r["request"].request_id.startswith("xstest-") for r in rows if "xstest" in r["request"].segment)
