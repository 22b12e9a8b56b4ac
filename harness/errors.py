"""The one error type for bad input or config: every stage raises a subclass, the CLI exits 2 with its message.

The message names the file, row and field (or the config key) and says how to fix it. Anything else that
escapes is a bug: exit code 1 with the traceback.
"""

from __future__ import annotations


class BadInput(Exception):
    """Bad input or config (exit code 2). Subclasses: ``TrafficError``, ``EngineError``, ``JudgeError``, ..."""
