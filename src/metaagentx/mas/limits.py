"""Per-execution resource limits of a design script.

A design is untrusted model output: without hard caps one script could fan out to hundreds of
agents or loop forever on the host's GPUs. The host picks the limits (pass a `Limits` to
`run_design`, set a `limits` attribute on the runtime, or put a `"limits"` dict in the task);
the workflow library enforces them and raises `ExecutionLimitExceeded` with the field's name
as its `kind` (for example "max_llm_calls") when one is exceeded.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(frozen=True)
class Limits:
    """Hard caps for one execution of a design script.

    max_agents: distinct agents that may run (an agent that runs again does not count twice).
    max_turns: LLM turns within one run of one agent (its tool-use loop).
    max_llm_calls: LLM calls in the whole execution.
    max_tokens_per_call: the max_tokens passed to each LLM call (agents may ask for less).
    max_tool_calls: tool calls in the whole execution.
    max_steps: node runs within one `Workflow` run (bounds graphs with loops).
    max_parallel: threads used to run independent agents at once.
    max_tool_output_chars: longer tool outputs are cut before the agent sees them.
    """

    max_agents: int = 16
    max_turns: int = 8
    max_llm_calls: int = 64
    max_tokens_per_call: int = 4096
    max_tool_calls: int = 32
    max_steps: int = 32
    max_parallel: int = 8
    max_tool_output_chars: int = 4000

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"Limits.{f.name} must be a positive int, got {value!r}")

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Limits:
        """Build from a JSON dict (e.g. task["limits"]); unknown keys are an error, not ignored."""
        if not data:
            return cls()
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown limit(s) {unknown}; known: {sorted(known)}")
        return cls(**data)

    def to_dict(self) -> dict[str, int]:
        """JSON-serialisable form, the inverse of `from_dict`."""
        return asdict(self)
