"""The authors' `AgentNode`: one agent, played by the host's model, with their turn loop.

What it sees: its system prompt, the tools' schemas and the delivery format of the task's
domain; as user message the original question alone when it is the first agent, else the
question plus each earlier agent response's delivery. How it acts: a reply with a ```python
block runs that code (always, tools or not), a reply with a `<tool_call>` runs that tool, and
the output comes back as a user message; a reply with neither is its answer. See the package
docstring for how this differs from `metaagentx.mas.AgentNode`. Standard library only.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from metaagentx.mas.execution import Execution, current_execution, trace_text
from metaagentx.mas.pettingllms.calls import tool_scope
from metaagentx.mas.pettingllms.core import Context, Message, MessageType, WorkflowNode, path_of
from metaagentx.mas.pettingllms.flow import record_final, user_input
from metaagentx.mas.pettingllms.tools import ToolRegistry
from metaagentx.mas.pettingllms.utils.environments.math_env import python_execute
from metaagentx.mas.protocol import ExecutionLimitExceeded
from metaagentx.mas.text import (
    MAX_DELIVERY_CHARS,
    SOLUTION_TAG,
    clip,
    extract_code_blocks,
    extract_delivery,
    parse_tool_calls,
    visible_text,
)

SUMMARY_CHARS = 2000  # how much of the prompts the trace keeps
CUT_AT, CUT_HEAD, CUT_TAIL = 1200, 200, 800  # a response without a delivery: head + tail
_FINAL_ANSWER = re.compile(r"FINAL ANSWER:\s*(.*)")

DELIVERY_MATH = (
    "When you have solved it, end your reply with two things:\n"
    "1. <delivery>...</delivery> around the key steps the next agent should see.\n"
    "2. Your final answer on its own line as: FINAL ANSWER: \\boxed{your_answer}"
)
DELIVERY_CODE = (
    "When you have solved it, end your reply with two things:\n"
    "1. <delivery>...</delivery> around the key steps the next agent should see.\n"
    "2. Your complete final program inside <solution>...</solution> tags: runnable code only, "
    "no explanation."
)
FINAL_NOW_MATH = "Give your final answer now, without using any tools."
FINAL_NOW_CODE = (
    "Stop using tools and give your final response now. If your role is to provide the solution "
    "program, put it inside <solution>...</solution> tags."
)
TOOLS_INTRO = "You have access to these tools (JSON schemas):"
TOOL_CALL_FORMAT = (
    "To call a tool, write it in exactly this format:\n"
    '<tool_call>{"name": "tool_name", "arguments": {"argument_name": "value"}}</tool_call>\n'
    "Give every required argument."
)
CLOSING = "Using the original question and the analysis above, give your own solution."


@dataclass
class _Request:
    """What a reply asks to run: python code, or a tool call (`error`: why it cannot run)."""

    kind: str  # "python" or "tool"
    name: str | None
    arguments: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


class AgentNode(WorkflowNode):
    """`AgentNode(name, system_prompt, tool_registry=None, ai_client=None, max_turns=10,
    enable_conversation_logging=True, **kwargs)`.

    max_turns: tool rounds after the first reply: up to `max_turns + 1` model calls that may use
        tools, then, if the agent is still using them, one more call asking for the final
        answer without tools (so `max_turns=1` with code may make 3 calls). The host's
        Limits.max_turns caps the calls of one run: the forced final call comes earlier then.
    ai_client, enable_conversation_logging: accepted and ignored: the host's model plays every
        agent, and the host records every conversation.
    `tools=` (a registry or built-in names) is accepted when `tool_registry` is not given.
    """

    def __init__(
        self,
        name: str,
        system_prompt: str,
        tool_registry: ToolRegistry | Iterable[str] | None = None,
        ai_client: Any = None,
        max_turns: int = 10,
        enable_conversation_logging: bool = True,
        **kwargs: Any,
    ) -> None:
        tools = kwargs.pop("tools", None)
        super().__init__(name, **kwargs)
        if not isinstance(system_prompt, str):
            raise TypeError("system_prompt must be a string")
        if isinstance(max_turns, bool) or not isinstance(max_turns, int) or max_turns < 0:
            raise ValueError(f"max_turns must be an int >= 0, got {max_turns!r}")
        self.system_prompt = system_prompt
        self.tool_registry = _registry(tool_registry if tool_registry is not None else tools)
        self.max_turns = max_turns
        self.ai_client = ai_client
        self.enable_conversation_logging = enable_conversation_logging

    def full_system_prompt(self, domain: str | None, answer_format: str | None = None) -> str:
        """The system prompt the model gets: own prompt, tools, the domain's delivery format
        (and the task's own answer format when it has one)."""
        parts = [self.system_prompt.strip()]
        if len(self.tool_registry):
            schemas = json.dumps(self.tool_registry.get_tool_schemas(), indent=2)
            parts.append(f"{TOOLS_INTRO}\n{schemas}\n{TOOL_CALL_FORMAT}")
        parts.append(DELIVERY_CODE if domain == "code" else DELIVERY_MATH)
        if answer_format:
            parts.append(str(answer_format))
        return "\n\n".join(p for p in parts if p)

    def process(self, context: Context) -> Message:
        execution = current_execution()
        task = execution.runtime.task
        domain = task.get("domain")
        system = self.full_system_prompt(domain, task.get("answer_format"))
        user, inputs = user_message(context, str(task.get("question", "")))
        messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        turns: list[dict[str, Any]] = []
        event = {
            "type": "agent",
            "agent": self.name,
            "role": context.metadata.get("_role", "agent"),
            "path": path_of(context, self.name),
            "round": context.metadata.get("_round"),
            "inputs": inputs,
            "system_prompt": clip(system, SUMMARY_CHARS),
            "user_message": clip(user, SUMMARY_CHARS),
            "turns": turns,
            "started": round(time.time(), 6),
        }
        reply = ""
        try:
            execution.enter_agent(self, self.name)
            reply = self._converse(execution, messages, turns, domain)
        except ExecutionLimitExceeded as exc:  # the trace shows what it did and why it stopped
            ended = {"reply": trace_text(reply or _last(turns)), "ended": round(time.time(), 6)}
            failed = {"status": "limit_exceeded", "limit": exc.kind, "error": str(exc)}
            execution.record({**event, **failed, **ended})
            raise
        delivery = summary_of(reply)
        finished = {"reply": trace_text(reply), "delivery": delivery}
        execution.record({**event, "status": "ok", **finished, "ended": round(time.time(), 6)})
        metadata = {"agent_name": self.name, "turns": len(turns), "delivery": delivery}
        return Message(reply, MessageType.AGENT_RESPONSE, metadata, sender=self.name)

    def _converse(
        self,
        execution: Execution,
        messages: list[dict[str, Any]],
        turns: list[dict[str, Any]],
        domain: str | None,
    ) -> str:
        """The turn loop (see the class docstring); returns the final reply."""
        cap = execution.limits.max_turns
        tool_rounds = min(self.max_turns + 1, max(cap - 1, 1))
        for number in range(1, tool_rounds + 1):
            reply = self._turn(execution, messages, turns, number)
            request = requested(reply)
            if request is None or number >= cap:
                return reply
            output = self._run(execution, request)
            call = {"name": request.name, "arguments": request.arguments}
            turns[-1]["tool_calls"].append({**call, "output": trace_text(output)})
            messages.append({"role": "user", "content": output})
        final_now = FINAL_NOW_CODE if domain == "code" else FINAL_NOW_MATH
        messages.append({"role": "user", "content": final_now})
        return self._turn(execution, messages, turns, tool_rounds + 1)

    def _turn(
        self,
        execution: Execution,
        messages: list[dict[str, Any]],
        turns: list[dict[str, Any]],
        number: int,
    ) -> str:
        execution.check("max_turns", number, f"agent {self.name!r} turn {number}")
        reply = execution.llm(self.name, [dict(m) for m in messages], None)
        messages.append({"role": "assistant", "content": reply})
        turns.append({"reply": trace_text(reply), "tool_calls": []})
        return reply

    def _run(self, execution: Execution, request: _Request) -> str:
        """Run what the reply asked for; failures become text for the agent."""
        if request.error is not None:
            return (
                f"Error: {request.error}. Write a valid call, "
                '<tool_call>{"name": "tool_name", "parameters": {...}}</tool_call>, '
                "or give your final answer without tools."
            )
        registry = self.tool_registry
        if request.kind == "python":  # their agents run code through a python_execute tool
            request.name = "python_execute" if "python_execute" in registry else "python"
        with tool_scope(self.name):
            try:
                if request.kind == "python":
                    code = request.arguments["code"]
                    if request.name in registry:
                        output = registry.call_tool(request.name, {"code": code})
                    else:
                        output = python_execute(code)
                    return clip(output, execution.limits.max_tool_output_chars)
                result = registry.call_tool(str(request.name), request.arguments)
                return f"Tool '{request.name}' returned: {result}"
            except ExecutionLimitExceeded:
                raise
            except Exception as exc:  # a failing tool is feedback for the agent, not a crash
                what = "code" if request.kind == "python" else "tool"
                return f"Error executing {what}: {type(exc).__name__}: {exc}"

    def run(
        self, input_message: Any = None, initial_state: dict[str, Any] | None = None
    ) -> Message:
        """Run this agent alone on `input_message` (default: the task's question) and record its
        reply as the final output. Theirs runs agents only inside a workflow; this is for
        scripts that call an agent directly, as ours (`metaagentx.mas.AgentNode.run`) allows."""
        context = Context([user_input(input_message)], dict(initial_state or {}))
        reply = self.process(context)
        record_final(context, reply)
        return reply

    def __repr__(self) -> str:
        return f"AgentNode({self.name!r})"


def requested(reply: str) -> _Request | None:
    """What a reply asks to run: its first non-empty ```python block, else its first complete
    `<tool_call>`; None for a final reply. `<think>` reasoning never runs anything."""
    blocks = [b for b in extract_code_blocks(reply) if b.strip()]
    if blocks:
        return _Request("python", None, {"code": blocks[0]})
    visible = visible_text(reply).lower()
    if "<tool_call>" not in visible or "</tool_call>" not in visible:
        return None
    call = parse_tool_calls(reply)[0]
    return _Request("tool", call.name, call.arguments, call.error)


def user_message(context: Context, fallback: str = "") -> tuple[str, list[str]]:
    """The user message an agent gets and the senders whose responses it includes: the
    original question alone, or with every earlier agent response's delivery."""
    original = next((m for m in context.messages if m.message_type == MessageType.USER_INPUT), None)
    if original is None:  # run outside a workflow: the latest message, else the task
        latest = context.get_latest_message()
        return (latest.text if latest is not None else fallback), []
    responses = [m for m in context.messages if m.message_type == MessageType.AGENT_RESPONSE]
    question = original.text
    if not responses:
        return question, []
    parts = [f"**Original Question:**\n{question}\n", "**Previous Agents' Analysis:**\n"]
    senders = [m.sender or "Agent" for m in responses]
    for sender, message in zip(senders, responses, strict=True):
        parts.append(f"[{sender}]:\n{summary_of(message.text)}\n")
    parts.append(CLOSING)
    return "\n".join(parts), senders


def delivery_text(reply: str) -> str | None:
    """What a reply delivers: its last `<delivery>` block, else its FINAL ANSWER line, else its
    `<solution>` block; None when it has none of these."""
    delivery = extract_delivery(reply)
    if delivery:
        return delivery
    visible = visible_text(reply)
    answers = _FINAL_ANSWER.findall(visible)
    if answers and answers[-1].strip():
        return answers[-1].strip()
    solutions = [match.group(0) for match in SOLUTION_TAG.finditer(visible)]
    return solutions[-1].strip() if solutions else None


def summary_of(reply: str) -> str:
    """What later agents see of a response: its delivery (capped), else the response itself,
    cut to head and tail when long."""
    delivery = delivery_text(reply)
    if delivery is not None:
        return clip(delivery, MAX_DELIVERY_CHARS)
    text = visible_text(reply) or reply.strip()
    if len(text) > CUT_AT:
        return f"{text[:CUT_HEAD]}\n...(reasoning omitted)...\n{text[-CUT_TAIL:]}"
    return text


def _last(turns: list[dict[str, Any]]) -> str:
    return str(turns[-1]["reply"]) if turns else ""


def _registry(tools: Any) -> ToolRegistry:
    if tools is None:
        return ToolRegistry()
    if isinstance(tools, ToolRegistry):
        return tools
    if isinstance(tools, str) or (
        isinstance(tools, Iterable) and all(isinstance(t, str) for t in tools)
    ):
        return ToolRegistry(tools)  # type: ignore[arg-type]
    raise TypeError(f"tool_registry must be a ToolRegistry (from workflow), got {tools!r}")


__all__ = ["AgentNode", "delivery_text", "requested", "summary_of", "user_message"]
