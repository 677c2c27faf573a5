"""Typed settings for the sandbox; the lead's config.py nests this model as `sandbox:`.

Self-contained on purpose (pydantic + stdlib only) so config.py can import it without pulling the
runner. Limits for workflow executions and for the tighter nested program child live side by side.
"""

from __future__ import annotations

import shutil
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from metaagentx.mas.limits import Limits

IsolationMode = Literal["auto", "strict", "process", "unsafe"]


def _default_bwrap() -> str:
    return shutil.which("bwrap") or "/usr/bin/bwrap"


class SandboxSettings(BaseModel):
    """How hard the sandbox confines untrusted code, and how much it may use.

    isolation: `strict` refuses to start when any layer is missing (bubblewrap included), `auto`
    uses every layer that works here and reports the rest as missing, `process` uses rlimits +
    process group (+ a uid drop when the host is root) only, `unsafe` is `auto` with no hidden
    filesystem: reference data readable by executions; never for training/eval.

    The hidden filesystem (only the interpreter, system libraries and the workflow library
    visible) comes from bubblewrap or, without it, from the fork server's own pivot_root'ed root,
    which needs root or unprivileged user namespaces. Grading (`layers.require_hidden_filesystem`)
    runs only where one of them is active, or under `unsafe`, whose name says what it gives up:
    `process` and an `auto` that found neither mechanism are refused.
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
    # requests (LLM turns + tool calls) one execution may have in flight; a well-behaved child
    # waits for each reply in its thread, so more means a flood: the execution is ended
    max_pending_requests: int = Field(default=32, ge=1)
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
