"""Typed settings for the sandbox; `metaagentx.config` nests this model as `sandbox:`.

Self-contained on purpose (pydantic + stdlib only) so `metaagentx.config` can import it without pulling the
runner. Limits for workflow executions and for the tighter nested program child live side by side.
"""

from __future__ import annotations

import shutil
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from metaagentx.mas.dialects import DialectSetting
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

    isolation: IsolationMode = Field(
        "auto",
        description="strict: refuse to start when any layer is missing (bubblewrap included); auto: every layer that works here, the rest reported; process: rlimits + process group (+ uid drop as root) only; unsafe: auto without the hidden filesystem (never for training or eval).",
    )
    bwrap_path: str = Field(
        default_factory=_default_bwrap,
        description="The bubblewrap binary (default: found on PATH).",
    )
    seccomp: bool = Field(
        True,
        description="Load the seccomp filter in executions: no sockets but AF_UNIX, no ptrace, mount, new namespaces, bpf or io_uring.",
    )
    timeout_s: float = Field(
        60.0,
        description="Wall-clock limit of one workflow execution; past it its process group is killed.",
    )
    memory_mb: int = Field(
        1024,
        description="Address-space limit of one execution, in MiB.",
    )
    max_output_bytes: int = Field(
        1 << 20,
        description="The execution's stdout + stderr kept, in bytes.",
    )
    max_message_bytes: int = Field(
        4 << 20,
        description="Largest JSON line on the execution's RPC pipe, in bytes.",
    )
    max_llm_calls: int = Field(
        64,
        description="Host-side cap on agent calls per execution (the workflow library enforces its own, finer limits).",
    )
    max_new_tokens: int = Field(
        1024,
        description="Cap on any agent turn's max_tokens.",
    )
    max_tool_calls: int = Field(
        64,
        description="Host-side cap on tool calls per execution.",
    )
    max_pending_requests: int = Field(
        default=32, ge=1,
        description="Requests (agent turns + tool calls) one execution may have in flight; more is a flood and ends the execution.",
    )
    nproc: int = Field(
        64,
        description="Tasks (processes + threads) per execution.",
    )
    nofile: int = Field(
        64,
        description="Open files per execution.",
    )
    file_size_mb: int = Field(
        64,
        description="Largest file an execution may write, in MiB.",
    )
    scratch_mb: int = Field(
        64,
        description="Size of the private tmpfs at /tmp, the only writable place, in MiB.",
    )
    max_concurrency: int = Field(
        32,
        description="Executions running at once.",
    )
    limits: Limits = Field(
        default_factory=Limits,
        description="The workflow library's own per-execution limits (agents, turns, calls...), sent to the child.",
    )
    dialect: DialectSetting = Field(
        "auto",
        description="The workflow API design scripts are written in: metaagentx (ours), pettingllms (the MetaAgent-X authors' workflow library, their released checkpoint's and data's dialect), or auto (theirs when a script uses anything only their API has; see metaagentx.mas.dialects).",
    )
    pool_size: int = Field(
        default=2, ge=0, le=64,
        description="Idle, already-confined children kept per distinct limit set (an execution then skips fork and confinement, ~5 ms of CPU); 0 forks on demand. It refills while no execution runs, so a pool as large as a rollout's concurrent executions starts them all at once (~5 MB each).",
    )
    tool_timeout_s: float = Field(
        5.0,
        description="Wall-clock limit of one nested run (the python tool, a program under test).",
    )
    tool_memory_mb: int = Field(
        512,
        description="Address-space limit of one nested run, in MiB.",
    )
    tool_max_output_bytes: int = Field(
        16 << 10,
        description="Text of a nested run returned to the agent, in bytes.",
    )
    tool_nproc: int = Field(
        16,
        description="Tasks (processes + threads) per nested run.",
    )
    unprivileged_uid: int = Field(
        65534,
        description="The uid a root host drops executions to (nobody).",
    )
    unprivileged_gid: int = Field(
        65534,
        description="The gid a root host drops executions to (nogroup).",
    )
    expose_modules: tuple[str, ...] = Field(
        ("metaagentx.mas", "metaagentx.sandbox", "workflow"),
        description="Packages executions may import from the host installation (the workflow library).",
    )
    preimport: tuple[str, ...] = Field(
        default=(
            "metaagentx.mas",
            "metaagentx.mas.pettingllms",
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
        ),
        description="Modules loaded once in the fork server; keep it small: every loaded page makes each fork slower (sympy alone adds ~15 ms per fork).",
    )
