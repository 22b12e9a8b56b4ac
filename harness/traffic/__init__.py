"""Captured traffic: the Parquet schema, the `Request` record, streamed validation and reading, importers."""

from typing import Any

from harness.traffic.reader import Traffic, TrafficBatch, load_traffic, open_traffic, traffic_fingerprint
from harness.traffic.schema import (
    TRAFFIC_SCHEMA,
    Issue,
    Message,
    Request,
    TrafficError,
    requests_to_table,
    validate_row,
    write_traffic,
)

__all__ = [
    "TRAFFIC_SCHEMA",
    "Issue",
    "Message",
    "Request",
    "Traffic",
    "TrafficBatch",
    "TrafficError",
    "import_openai_jsonl",
    "load_traffic",
    "open_traffic",
    "requests_to_table",
    "traffic_fingerprint",
    "validate_row",
    "write_traffic",
]


def __getattr__(name: str) -> Any:
    # Imported on first use, so `python -m harness.traffic.openai_import` does not find its module already loaded.
    if name == "import_openai_jsonl":
        from harness.traffic.openai_import import import_openai_jsonl

        return import_openai_jsonl
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
