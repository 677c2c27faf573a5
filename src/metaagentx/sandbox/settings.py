"""Typed settings for the sandbox; the lead's config.py nests this model as `sandbox:`.

Self-contained on purpose (pydantic + stdlib only) so config.py can import it without pulling the
runner. Limits for workflow executions and for the tighter nested program child live side by side.
"""

from __future__ import annotations

import shutil
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from metaagentx.mas.limits import Limits

IsolationMode = Literal["auto", "strict", "process"]


def _default_bwrap() -> str:
    return shutil.which("bwrap") or "/usr/bin/bwrap"


class SandboxSettings(BaseModel):
    """How hard the sandbox confines untrusted code, and how much it may use.

    isolation: `strict` refuses to start when any layer is missing, `auto` uses every layer that
    works here and reports the rest as missing, `process` uses rlimits + process group (+ a uid
    drop when the host is root) only.
    """

    model_config = ConfigDict(extra="forbid")

    isolation: IsolationMode = "auto"
    bwrap_path: str = Field(default_factory=_default_bwrap)
    seccomp: bool = True

    # one workflow execution
    timeout_s: float = 60.0
    memory_mb: int = 1024
    max_output_bytes: int = 1 << 20  # the child's stdout+stderr
    max_message_bytes: int = 4 << 20  # one JSON line on the RPC pipe
    max_llm_calls: int = 64  # host-side hard cap; mas enforces its own, finer limits
    max_new_tokens: int = 1024  # cap on any agent turn's max_tokens
    max_tool_calls: int = 64
    nproc: int = 64  # tasks (processes + threads) per execution
    nofile: int = 64
    file_size_mb: int = 64
    scratch_mb: int = 64  # private tmpfs mounted at /tmp, the only writable place
    max_concurrency: int = 32
    # the workflow library's own per-execution limits (agents, turns, calls...), sent to the child
    limits: Limits = Field(default_factory=Limits)
    # idle, already-confined children kept per distinct limit set: an execution then skips the
    # fork and the confinement (~5 ms of CPU); 0 forks every child on demand. The pool refills
    # while no execution runs (e.g. during a training update), so a pool as large as a rollout's
    # concurrent executions starts them all at once (~5 MB each, PSS; bench/rollout.py).
    pool_size: int = Field(default=2, ge=0, le=64)

    # the nested child for agent code (python tool) and programs under test
    tool_timeout_s: float = 5.0
    tool_memory_mb: int = 512
    tool_max_output_bytes: int = 16 << 10  # text returned to the agent
    tool_nproc: int = 16

    unprivileged_uid: int = 65534  # the uid a root host drops to (nobody)
    unprivileged_gid: int = 65534
    expose_modules: tuple[str, ...] = ("metaagentx.mas", "metaagentx.sandbox", "workflow")
    # Loaded once in the fork server. Keep it small: every loaded page makes each fork slower
    # (sympy alone adds ~15 ms per fork), so heavy libraries are imported by the code that needs them.
    preimport: tuple[str, ...] = (
        "metaagentx.mas",
        "workflow",
        "json",
        "re",
        "math",
        "cmath",
        "random",
        "statistics",
        "fractions",
        "decimal",
        "itertools",
        "functools",
        "collections",
        "heapq",
        "bisect",
        "string",
        "textwrap",
        "dataclasses",
        "typing",
        "concurrent.futures",
        "io",
        "copy",
        "operator",
        "traceback",
    )
