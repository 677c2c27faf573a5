"""Test support for the workflow library: an in-process runtime with scripted replies."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from metaagentx.mas import Limits, Message, Runtime

Reply = Callable[[str, list[Message]], str]


class ScriptedRuntime(Runtime):
    """A Runtime whose LLM replies come from `reply(agent, messages)` and whose host tools are
    plain functions of the arguments; it records every call (with start/end times)."""

    def __init__(
        self,
        reply: Reply,
        question: str = "What is 6 * 7?",
        domain: str = "math",
        tools: dict[str, Callable[[dict[str, Any]], str]] | None = None,
        limits: Limits | None = None,
        delay: float = 0.0,
    ) -> None:
        self._task = {"question": question, "domain": domain}
        self._reply = reply
        self._tools = tools or {}
        self.delay = delay
        if limits is not None:
            self.limits = limits
        self.calls: list[dict[str, Any]] = []
        self.tool_calls: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    @property
    def task(self) -> dict[str, Any]:
        return self._task

    def llm(self, agent: str, messages: list[Message], max_tokens: int | None = None) -> str:
        start = time.perf_counter()
        if self.delay:
            time.sleep(self.delay)
        text = self._reply(agent, messages)
        with self._lock:
            self.calls.append(
                {
                    "agent": agent,
                    "messages": messages,
                    "max_tokens": max_tokens,
                    "start": start,
                    "end": time.perf_counter(),
                }
            )
        return text

    def tool(self, agent: str, name: str, arguments: dict[str, Any]) -> str:
        with self._lock:
            self.tool_calls.append({"agent": agent, "name": name, "arguments": arguments})
        return self._tools[name](arguments)

    def agents_called(self) -> list[str]:
        return [c["agent"] for c in self.calls]

    def calls_of(self, agent: str) -> list[dict[str, Any]]:
        return [c for c in self.calls if c["agent"] == agent]


def user_message(call: dict[str, Any]) -> str:
    """The user message (task + deliveries + instruction) an LLM call was given."""
    return next(m["content"] for m in call["messages"] if m["role"] == "user")


def by_agent(replies: dict[str, str | list[str]], default: str = "") -> Reply:
    """Reply from a table agent -> text (or a list consumed one call at a time)."""
    lock = threading.Lock()
    queues = {k: list(v) if isinstance(v, list) else v for k, v in replies.items()}

    def reply(agent: str, messages: list[Message]) -> str:
        with lock:
            entry = queues.get(agent, default)
            if isinstance(entry, list):
                return entry.pop(0) if len(entry) > 1 else entry[0]
            return entry

    return reply


def answer(value: str, note: str = "") -> str:
    """A well-formed math reply: some reasoning, a delivery and a boxed answer."""
    return (
        f"Reasoning {note}.\n<delivery>{note} so \\boxed{{{value}}}</delivery>\n\\boxed{{{value}}}"
    )
