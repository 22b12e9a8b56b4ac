"""Captured traffic: the Parquet schema, the `Request` record, loading and validation, importers."""

from typing import Any

from harness.traffic.schema import (
    TRAFFIC_SCHEMA,
    Issue,
    Message,
    Request,
    TrafficError,
    load_traffic,
    requests_to_table,
    traffic_fingerprint,
    validate_row,
    write_traffic,
)

__all__ = [
    "TRAFFIC_SCHEMA",
    "Issue",
    "Message",
    "Request",
    "TrafficError",
    "import_openai_jsonl",
    "load_traffic",
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
