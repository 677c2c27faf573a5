"""One agent: a system prompt played by the shared model, with an optional tool loop."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from metaagentx.mas.execution import Execution, current_execution, trace_text
from metaagentx.mas.node import Context, Node, NodeResult
from metaagentx.mas.prompts import LAST_TURN_NOTICE, build_system_prompt, render_user_message
from metaagentx.mas.protocol import ExecutionLimitExceeded, Message
from metaagentx.mas.text import (
    clip,
    delivery_of,
    extract_code_blocks,
    extract_delivery,
    parse_tool_calls,
)
from metaagentx.mas.tools import ToolRegistry, ToolSpec, coerce_registry

SUMMARY_CHARS = 2000  # how much of the prompts the trace keeps


class AgentNode(Node):
    """An agent: `AgentNode(name, system_prompt, tools=None, max_turns=3, max_tokens=None)`.

    It sees the task plus the deliveries of the agents it depends on, and replies. Its system
    prompt is `system_prompt` plus, added automatically, the delivery protocol, the domain's
    answer format and how to use its tools; do not repeat those in `system_prompt`.
    tools: a `ToolRegistry`, or a list of built-in names / functions (`["python"]`); None or
        an empty registry means pure reasoning. `tool_registry=` is accepted as a synonym.
    max_turns: LLM turns in one run. A reply with no tool use, or with a `<delivery>` block,
        ends the run; otherwise the tool outputs are sent back as "tool" messages and the
        agent continues. The last turn runs no tools. 1 means a single reply.
    max_tokens: per-turn generation cap (default: the execution's Limits.max_tokens_per_call).
    The result's `content` is the last reply; its `delivery` is that reply's last
    `<delivery>` block (fallback: its final answer, else the reply's tail).
    """

    def __init__(
        self,
        name: str,
        system_prompt: str,
        tools: ToolRegistry | Iterable[ToolSpec] | None = None,
        max_turns: int = 3,
        max_tokens: int | None = None,
        *,
        tool_registry: ToolRegistry | None = None,
    ) -> None:
        super().__init__(name)
        if not isinstance(system_prompt, str):
            raise TypeError("system_prompt must be a string")
        if tools is not None and tool_registry is not None:
            raise ValueError("pass tools or tool_registry, not both")
        if not isinstance(max_turns, int) or max_turns < 1:
            raise ValueError(f"max_turns must be an int >= 1, got {max_turns!r}")
        if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
            raise ValueError(f"max_tokens must be a positive int or None, got {max_tokens!r}")
        self.system_prompt = system_prompt
        self.tools = coerce_registry(tools if tools is not None else tool_registry)
        self.max_turns = max_turns
        self.max_tokens = max_tokens

    def full_system_prompt(self, domain: str | None, format_override: str | None = None) -> str:
        """The system prompt the model actually gets (own prompt + protocol + tools)."""
        return build_system_prompt(
            self.system_prompt,
            domain,
            python_tool=self.tools.has_python,
            tool_lines=self.tools.describe(),
            max_turns=self.max_turns,
            format_override=format_override,
        )

    def process(self, context: Context) -> NodeResult:
        execution = current_execution()
        started = time.time()
        system = self.full_system_prompt(
            context.domain, execution.runtime.task.get("answer_format")
        )
        user = render_user_message(
            context.question, [(r.sender, r.delivery) for r in context.inputs], context.instruction
        )
        messages: list[Message] = [
            {"role": "system", "content": system},
            {"role": "user", "content": user},
        ]
        turns: list[dict[str, Any]] = []
        event = {
            "type": "agent",
            "agent": self.name,
            "role": context.role,
            "path": context.path,
            "round": context.round,
            "inputs": [r.sender for r in context.inputs],
            "system_prompt": clip(system, SUMMARY_CHARS),
            "user_message": clip(user, SUMMARY_CHARS),
            "turns": turns,
            "started": round(started, 6),
        }
        reply = ""
        try:
            execution.enter_agent(self, self.name)
            for turn in range(1, self.max_turns + 1):
                execution.check("max_turns", turn, f"agent {self.name!r} turn {turn}")
                reply = execution.llm(self.name, [dict(m) for m in messages], self.max_tokens)
                messages.append({"role": "assistant", "content": reply})
                calls: list[dict[str, Any]] = []
                turns.append({"reply": trace_text(reply), "tool_calls": calls})
                if turn < self.max_turns:
                    self._use_tools(execution, reply, messages, calls)
                if not calls:
                    break
                if turn + 1 == self.max_turns:
                    messages[-1]["content"] += "\n\n" + LAST_TURN_NOTICE
        except ExecutionLimitExceeded as exc:
            # Stopped mid-run: the trace still shows what the agent had done, and why it stopped.
            execution.record(
                {
                    **event,
                    "status": "limit_exceeded",
                    "limit": exc.kind,
                    "error": str(exc),
                    "reply": trace_text(reply),
                    "ended": round(time.time(), 6),
                }
            )
            raise
        result = NodeResult(self.name, reply, delivery_of(reply, context.domain))
        result.metadata["turns"] = len(turns)
        execution.record(
            {
                **event,
                "status": "ok",
                "reply": trace_text(reply),
                "delivery": result.delivery,
                "ended": round(time.time(), 6),
            }
        )
        return result

    def _use_tools(
        self,
        execution: Execution,
        reply: str,
        messages: list[Message],
        calls: list[dict[str, Any]],
    ) -> None:
        """Run the tools a non-final reply asks for; append their outputs as "tool" messages and
        each finished call to `calls` (left empty: the reply is final)."""
        if not len(self.tools) or extract_delivery(reply) is not None:
            return
        requests = [(c.name, c.arguments, c.error) for c in parse_tool_calls(reply)]
        if not requests and self.tools.has_python:
            blocks = extract_code_blocks(reply)
            if blocks:
                requests = [("python", {"code": blocks[-1]}, None)]
        for name, arguments, error in requests:
            output = error and f"Error: {error}"
            if output is None:
                output = self._call_tool(name or "", arguments, messages)
            messages.append({"role": "tool", "content": output})
            calls.append({"name": name, "arguments": arguments, "output": trace_text(output)})

    def _call_tool(self, name: str, arguments: dict[str, Any], messages: list[Message]) -> str:
        if name not in self.tools:
            return f"Error: unknown tool {name!r}; your tools: {self.tools.names()}"
        try:
            return self.tools.call(self.name, name, arguments, messages)
        except ExecutionLimitExceeded:
            raise
        except Exception as exc:  # a tool failure is feedback for the agent, not a crash
            return f"Error: {type(exc).__name__}: {exc}"
