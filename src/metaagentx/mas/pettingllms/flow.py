"""The authors' sequential workflows: `Workflow`, `ConditionalWorkflow`, `LoopWorkflow`.

A workflow runs its nodes in order on one shared `Context`: every node's message is appended to
it, so each later agent sees the question plus every earlier agent response. The result is the
context's latest message. The per-run step limit, the trace and the final output are ours
(`metaagentx.mas.execution`). Also here: the helpers the authors' patterns share (placing a
member in the trace, a fresh context for a composed prompt, how a reply is shown to another
agent, recording the final output). Standard library only: this runs in the sandbox.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from metaagentx.mas.execution import current_execution
from metaagentx.mas.pettingllms.core import Context, Message, MessageType, WorkflowNode, path_of
from metaagentx.mas.protocol import ExecutionLimitExceeded, current_runtime
from metaagentx.mas.text import delivery_of

Condition = Callable[[Context], Any]
SHOWN_CHARS = 10000  # a reply longer than this is shown to other agents by its delivery


# ---- helpers shared by the authors' patterns ---------------------------------------------------
def delivery_of_message(message: Message) -> str:
    """What a message delivers: the `delivery` its agent recorded, else the domain's fallback."""
    delivery = (message.metadata or {}).get("delivery")
    if isinstance(delivery, str):
        return delivery
    return delivery_of(message.text, current_runtime().task.get("domain"))


def shown(message: Message) -> str:
    """How a reply is embedded in another agent's prompt: whole, or by its delivery when long."""
    if message.message_type == MessageType.ERROR:
        return f"[Error: {message.text}]"
    text = message.text.strip()
    return text if len(text) <= SHOWN_CHARS else delivery_of_message(message)


def question_of(context: Context) -> str:
    """The task a pattern works on: the first USER_INPUT, else the latest message's text."""
    if context.question:
        return context.question
    latest = context.get_latest_message()
    return latest.text if latest is not None else str(current_runtime().task.get("question", ""))


def fresh_context(
    context: Context, prompt: str, path: str, role: str, round: int | None = None
) -> Context:
    """A context holding only `prompt` as its USER_INPUT (the authors' patterns hand judges,
    critics and later debate rounds a composed prompt), placed at `path` for the trace."""
    base = Context([Message(prompt, MessageType.USER_INPUT)], context.state, dict(context.metadata))
    return base.at(path, role=role, round=round)


def final_reply(context: Context, result: Message | None) -> Message | None:
    """The message holding a run's final output: `result` when it is an agent response, else the
    latest agent response in the context (an ERROR is never the answer)."""
    if result is not None and result.message_type == MessageType.AGENT_RESPONSE:
        return result
    return next(
        (m for m in reversed(context.messages) if m.message_type == MessageType.AGENT_RESPONSE),
        None,
    )


def record_final(context: Context, result: Message | None) -> None:
    """Record the run's final output: the text an agent wrote, never one made up here."""
    reply = final_reply(context, result)
    if reply is not None:
        current_execution().set_final(reply.text, delivery_of_message(reply))


def user_input(input_message: Any) -> Message:
    """What a run starts from: `input_message` (text or a Message; None: the injected question)
    as a USER_INPUT message."""
    if input_message is None:
        return Message(str(current_runtime().task.get("question", "")), MessageType.USER_INPUT)
    if isinstance(input_message, Message):
        if input_message.message_type == MessageType.USER_INPUT:
            return input_message
        return Message(input_message.content, MessageType.USER_INPUT,
                       dict(input_message.metadata or {}), input_message.sender)  # fmt: skip
    return Message(input_message, MessageType.USER_INPUT)


def _decide(condition: Condition, context: Context) -> tuple[bool, str | None]:
    """A script's condition on `context`: (holds, why it failed). Raising counts as False, as
    in theirs; a tripped execution limit still ends the run."""
    try:
        return bool(condition(context)), None
    except ExecutionLimitExceeded:
        raise
    except Exception as exc:
        return False, f"{type(exc).__name__}: {exc}"


# ---- runnable nodes -----------------------------------------------------------------------------
class FlowNode(WorkflowNode):
    """A node a script runs from the top: `run(input_message, initial_state=None)` and
    `run_with_context(context)` (shared by the workflows and `AgentGraph`).

    Differs from ours (`metaagentx.mas.Node.run`): the input is any text or a `Message`, the
    state can be seeded, and the result is the authors' `Message`; the final output recorded is
    the last agent response, so an ERROR ending a run still credits the answer before it."""

    def run(
        self, input_message: Any = None, initial_state: dict[str, Any] | None = None
    ) -> Message:
        """Run on `input_message` (default: the injected question) as the first USER_INPUT,
        with `initial_state` copied into the state and `state["workflow"]` set to this node."""
        state = dict(initial_state or {})
        state["workflow"] = self
        return self.run_with_context(Context([user_input(input_message)], state))

    def run_with_context(self, context: Context) -> Message:
        """Run on an existing context (messages are appended to it); records the final output."""
        result = self.process(context)
        record_final(context, result)
        return result

    def run_step(
        self, context: Context, node: WorkflowNode, step: int, round: int | None = None
    ) -> Message:
        """Run `node` as step `step` of this run (counted against Limits.max_steps) on a copy of
        `context` placed under this node; what it added and its result join `context`."""
        current_execution().check(
            "max_steps", step, f"{type(self).__name__} {self.name!r} step {step} ({node.name})"
        )
        child = context.at(path_of(context, self.name), role="step", round=round)
        before = len(child.messages)
        result = node(child)
        added = child.messages[before:]
        for message in added:
            context.add_message(message)
        if not any(m is result for m in added):
            context.add_message(result)
        return result

    def note(self, context: Context, event: dict[str, Any]) -> None:
        """Add a control-flow event (skip, loop, edge...) of this node to the trace."""
        current_execution().record(
            {"node": self.name, "path": path_of(context, self.name), **event}
        )


class Workflow(FlowNode):
    """`Workflow(name="workflow", **kwargs)`: `add_node(node)`, `add_nodes(nodes)`, `run(...)`.

    Nodes run in order on one shared context; a node returning an ERROR message stops the run
    and is its result (as in theirs), else the result is the latest message. Differs from ours
    (`metaagentx.mas.Workflow`): no edges or `depends_on` (every agent sees every earlier
    response), node failures are ERROR messages, and it nests as a node (theirs cannot).
    Extra keywords (`ai_client`, `tokenizer`, ...) are accepted and kept in `config`."""

    def __init__(self, name: str = "workflow", **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self.nodes: list[WorkflowNode] = []
        self.conditions: list[Condition | None] = []

    def add_node(self, node: WorkflowNode) -> Workflow:
        """Append `node`; returns the workflow for chaining."""
        return self._append(node, None)

    def add_nodes(self, nodes: Iterable[WorkflowNode]) -> Workflow:
        """Append several nodes in order."""
        for node in nodes:
            self.add_node(node)
        return self

    def _append(self, node: WorkflowNode, condition: Condition | None) -> Workflow:
        if not isinstance(node, WorkflowNode):
            raise TypeError(f"add_node needs a node (AgentNode, EnsembleNode, ...), not {node!r}")
        if condition is not None and not callable(condition):
            raise TypeError(f"a condition must be a function of the context, not {condition!r}")
        self.nodes.append(node)
        self.conditions.append(condition)
        return self

    def process(self, context: Context) -> Message:
        self._check_nodes()
        _, error = self._pass(context, 0)
        return error or self._latest(context)

    def _check_nodes(self) -> None:
        if not self.nodes:
            raise ValueError(f"workflow {self.name!r} has no nodes; add_node one first")

    def _latest(self, context: Context) -> Message:
        latest = context.get_latest_message()
        if latest is None:
            raise ValueError(f"workflow {self.name!r} ran on an empty context")
        return latest

    def _pass(
        self, context: Context, steps: int, round: int | None = None
    ) -> tuple[int, Message | None]:
        """Run every node whose condition holds, once, in order: (steps so far, the ERROR
        message that stopped the pass or None)."""
        for node, condition in zip(self.nodes, self.conditions, strict=True):
            if condition is not None:
                holds, failure = _decide(condition, context)
                if not holds:
                    self.note(context, {"type": "skip", "skipped": node.name, "error": failure})
                    continue
            steps += 1
            result = self.run_step(context, node, steps, round)
            if result.message_type == MessageType.ERROR:
                self.note(context, {"type": "stopped", "at": node.name, "reason": "error"})
                return steps, result
        return steps, None


class ConditionalWorkflow(Workflow):
    """`ConditionalWorkflow(name="conditional_workflow")`: `add_node(node, condition=None)`.

    `condition(context)` is checked just before its node; False (or raising) skips the node.
    Differs from ours (`Workflow.add_node(node, condition)` there sees a `WorkflowState`): the
    condition reads the context, and `run_with_context` honours conditions too (theirs does not).
    """

    def __init__(self, name: str = "conditional_workflow", **kwargs: Any) -> None:
        super().__init__(name, **kwargs)

    def add_node(self, node: WorkflowNode, condition: Condition | None = None) -> Workflow:
        """Append `node`, run only when `condition(context)` holds (always when None)."""
        return self._append(node, condition)


class LoopWorkflow(Workflow):
    """`LoopWorkflow(name="loop_workflow", max_iterations=10).set_loop_condition(fn)`.

    Runs all nodes, then repeats while `fn(context)` holds (checked after each pass; raising
    stops), at most `max_iterations` passes; an ERROR message stops it. Differs from ours
    (edges with `max_times` there): the whole sequence repeats, and every pass's node runs count
    against Limits.max_steps, which ends the run when exceeded."""

    def __init__(
        self, name: str = "loop_workflow", max_iterations: int = 10, **kwargs: Any
    ) -> None:
        super().__init__(name, **kwargs)
        if isinstance(max_iterations, bool) or not isinstance(max_iterations, int):
            raise TypeError(f"max_iterations must be an int, got {max_iterations!r}")
        if max_iterations < 1:
            raise ValueError(f"max_iterations must be >= 1, got {max_iterations}")
        self.max_iterations = max_iterations
        self.loop_condition: Condition | None = None

    def set_loop_condition(self, condition: Condition) -> LoopWorkflow:
        """Repeat the nodes while `condition(context)` is true."""
        if not callable(condition):
            raise TypeError(
                f"the loop condition must be a function of the context, not {condition!r}"
            )
        self.loop_condition = condition
        return self

    def process(self, context: Context) -> Message:
        if self.loop_condition is None:
            raise ValueError("Loop condition must be set before running LoopWorkflow")
        self._check_nodes()
        steps = 0
        for iteration in range(1, self.max_iterations + 1):
            steps, error = self._pass(context, steps, round=iteration)
            if error is not None:
                return error
            again, failure = _decide(self.loop_condition, context)
            self.note(context, {"type": "loop", "iteration": iteration, "again": again,
                                "error": failure})  # fmt: skip
            if not again:
                break
        return self._latest(context)


__all__ = [
    "ConditionalWorkflow",
    "FlowNode",
    "LoopWorkflow",
    "Workflow",
    "delivery_of_message",
    "final_reply",
    "fresh_context",
    "question_of",
    "record_final",
    "shown",
    "user_input",
]
