"""Reading a child's final message, which is untrusted: every field is checked, nothing is
believed that the host can see for itself.

The host keeps its own record of every agent turn it served. An execution's answer counts only
if a recorded agent response carries it (`carried_by_agent`): a script that computes or forges the
answer in its own code, or builds a node whose `run()` sets the final output without any agent,
earns nothing, however its final message reads.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from metaagentx.sandbox.client import ChildExit

MAX_TRACE_EVENTS = 10_000


def text_field(value: Any) -> str | None:
    """A string field of the final message, or None (other types are not coerced: a forged
    object's `__str__` never ran on the host anyway, but a number is no text either)."""
    return value if isinstance(value, str) else None


def number_field(value: Any) -> float:
    """A finite, non-negative number the child reported, else 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0.0
    number = float(value)
    return number if math.isfinite(number) and number >= 0 else 0.0


def object_field(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def trace_events(value: Any) -> list[dict[str, Any]]:
    """The workflow library's events (dicts only, bounded in number)."""
    if not isinstance(value, list):
        return []
    return [e for e in value[:MAX_TRACE_EVENTS] if isinstance(e, dict)]


def carried_by_agent(final_output: str, answer: str | None, responses: Sequence[str],
                     extract: Callable[[str], str | None] | None) -> bool:
    """Whether a recorded agent response carries the final answer.

    With an extractor (the task's answer format: a boxed answer, a program) and the `answer` it
    read from the final output, that answer must equal the one extracted from at least one
    agent response; otherwise the final output's text must appear inside an agent response. No
    response: never carried.
    """
    if not responses:
        return False
    if extract is not None and answer is not None:
        return any(extract(r) == answer for r in responses)
    text = final_output.strip()
    return any(text in r for r in responses)


def child_usage(ended: ChildExit | None, final: dict[str, Any]) -> dict[str, float]:
    """CPU seconds and peak RSS: the kernel's (wait4) when the exit was waited for; otherwise
    what the child measured of itself just before its final message (self-reported)."""
    if ended is not None:
        return {"cpu_s": ended.cpu_s, "maxrss_kb": float(ended.maxrss_kb)}
    own = object_field(final.get("rusage"))
    return {"cpu_s": number_field(own.get("cpu_s")), "maxrss_kb": number_field(own.get("maxrss_kb"))}
