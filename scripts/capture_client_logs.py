"""Serve real:smollm2 with a local vLLM OpenAI server ("production"), send requests from the real traffic sample with
the real clients (openai + the official OpenTelemetry instrumentation, LiteLLM when installed) and write their logs
(``harness.fixtures.real.client_logs``); the server is stopped by PID whatever happens.

    python scripts/capture_client_logs.py OUT_DIR [--n 24]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.fixtures.real.client_logs import serve_and_capture

if __name__ == "__main__":
    p = argparse.ArgumentParser(description="Client logs of real:smollm2 served by a local vLLM server.")
    p.add_argument("out", type=Path)
    p.add_argument("--n", type=int, default=24)
    a = p.parse_args()
    for name, path in serve_and_capture(a.out, a.n).items():
        print(f"{name}: {path}")
