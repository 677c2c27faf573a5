"""Isolated execution of designer scripts and agent/test code, with JSON-over-pipe RPC to the host.

Imports are lazy so that the fork server (which imports `metaagentx.sandbox.forkserver`) loads
neither the asyncio runner nor the LLM interfaces.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "SandboxSettings": "metaagentx.sandbox.settings",
    "SandboxUnavailable": "metaagentx.sandbox.layers",
    "HiddenFilesystemMissing": "metaagentx.sandbox.layers",
    "require_hidden_filesystem": "metaagentx.sandbox.layers",
    "ProgramResult": "metaagentx.sandbox.programs",
    "run_program": "metaagentx.sandbox.programs",
    "run_test": "metaagentx.sandbox.programs",
    "Runner": "metaagentx.sandbox.runner",
    "ExecutionResult": "metaagentx.sandbox.runner",
    "AgentCall": "metaagentx.sandbox.runner",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
