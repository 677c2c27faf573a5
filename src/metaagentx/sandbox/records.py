"""What one workflow execution leaves behind: its agent turns and how it ended (plain data)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Literal

ExecutionStatus = Literal[
    "ok", "design_error", "runtime_error", "timeout", "limit_exceeded", "no_agent_answer"
]
@dataclass
class AgentCall:
    """One agent turn as the trainer needs it: exact ids and log-probs of what was sampled."""

    agent: str
    messages: list[dict[str, Any]]
    prompt_ids: list[int]
    response_ids: list[int]
    logprobs: list[float]
    text: str
    finish_reason: str


@dataclass
class ExecutionResult:
    """How one execution of a design ended.

    status: the workflow library's verdict (ok | design_error | runtime_error | limit_exceeded),
        overridden by what only the host knows: "timeout", a host-side limit, a lost child,
        "no_agent_answer" (no recorded agent response carries the final answer).
    final_output / delivery: the final agent's reply and its delivery (only when status is ok);
        answer: what the caller's extractor read from final_output.
    trace: every agent turn as served by the host, with the exact sampled ids and log-probs;
        workflow_trace: the workflow library's events (agents, votes, verdicts) from the child.
    usage: host counters (calls, tokens, CPU, memory, output) plus the library's agent count.
    error_kind: the tripped limit's name, or the exception class, when not ok.
    isolation: the layers that confined the execution.
    """

    status: ExecutionStatus
    final_output: str | None
    answer: str | None
    trace: list[AgentCall]
    usage: dict[str, float]
    isolation: list[str]
    duration: float
    error: str | None = None
    error_kind: str | None = None
    delivery: str | None = None
    stdout: str = ""
    workflow_trace: list[dict[str, Any]] = field(default_factory=list)


def derive_seed(*parts: object) -> int:
    """A stable 62-bit sampling seed from (execution seed, agent, turn): Python's hash() is
    salted per process, so it would not reproduce across a resume."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 2
