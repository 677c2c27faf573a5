"""The common shape of everything a workflow is built from: a node takes a `Context` and
returns a `NodeResult`. Agents, composite patterns and whole workflows are all nodes, so any of
them can be nested inside another.
"""

from __future__ import annotations

import abc
import dataclasses
from dataclasses import dataclass, field
from typing import Any

from metaagentx.mas.execution import current_execution
from metaagentx.mas.protocol import current_runtime


@dataclass
class NodeResult:
    """What a node produced.

    content: the full reply of the agent that produced it; the final answer is read from it
        (`\\boxed{...}` for math, the last fenced python block for code).
    delivery: what downstream agents see of it (its last `<delivery>` block; see `delivery_of`).
    sender: the name of the node that produced it.
    metadata: pattern details (votes, verdicts, chosen route...), JSON-serialisable.
    """

    sender: str
    content: str
    delivery: str
    metadata: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.content


@dataclass(frozen=True)
class Context:
    """What a node is asked to work on.

    question: the task text (injected by the harness, never re-typed by the design).
    domain: "math" or "code" (selects the answer format), or None.
    inputs: results of the nodes this one depends on; agents see their deliveries.
    instruction: what this node's role in a pattern asks of it (e.g. the critic's job).
    role / path / round: where the node runs (for the trace).
    """

    question: str
    domain: str | None = None
    inputs: tuple[NodeResult, ...] = ()
    instruction: str | None = None
    role: str = "agent"
    path: str = ""
    round: int | None = None

    def derive(self, **changes: Any) -> Context:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)


class Node(abc.ABC):
    """Base of agents, patterns and workflows: `process(context) -> NodeResult`.

    Scripts call `run(question)` on their outermost node; it builds the context from the
    injected task and records the result as the execution's final output.
    """

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"a node needs a non-empty name, got {name!r}")
        self.name = name

    @abc.abstractmethod
    def process(self, context: Context) -> NodeResult:
        """Do this node's work on `context`."""

    def __call__(self, context: Context) -> NodeResult:
        return self.process(context)

    def run(self, question: str | None = None) -> NodeResult:
        """Run on the task (or on `question`, normally the injected `question` variable) and
        record the result as the execution's final output; returns it (`result.content`)."""
        task = current_runtime().task
        text = task.get("question", "") if question is None else str(question)
        result = self.process(Context(question=text, domain=task.get("domain"), path=self.name))
        current_execution().set_final(result.content, result.delivery)
        return result

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"
