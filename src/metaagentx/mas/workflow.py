"""Workflow: nodes run in order, with optional conditions, jumps and bounded loops."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from metaagentx.mas.execution import current_execution
from metaagentx.mas.node import Context, Node, NodeResult
from metaagentx.mas.text import Verdict, parse_verdict


@dataclass
class WorkflowState:
    """What conditions see: the task, the last result, and the latest result of each node."""

    question: str
    last: NodeResult | None = None
    outputs: dict[str, NodeResult] = field(default_factory=dict)
    steps: int = 0

    @property
    def verdict(self) -> Verdict | None:
        """The last result's explicit "VERDICT: CORRECT/INCORRECT", or None."""
        return None if self.last is None else parse_verdict(self.last.content)


Condition = Callable[[WorkflowState], bool]


@dataclass
class _Edge:
    source: Node
    target: Node
    condition: Condition | None
    max_times: int


class Workflow(Node):
    """`Workflow(name="workflow")`: a sequence of nodes, optionally a graph with loops.

    - `add_node(node, condition=None, depends_on=None)`: nodes run in the order added.
      `condition(state) -> bool` is checked just before the node; False skips it.
      `depends_on` lists the nodes whose deliveries this node sees; by default it sees the
      latest delivery of every node that already ran (the paper's shared context).
    - `add_edge(source, target, condition=None, max_times=3)`: after `source` runs, jump to
      `target` (earlier = a loop, later = a skip) when `condition(state)` holds; the first
      matching edge wins, and an edge is taken at most `max_times` times per run, after which
      execution falls through to the next node in order. `state.verdict` reads the last
      reply's "VERDICT: CORRECT/INCORRECT", e.g. `condition=lambda s: s.verdict != "correct"`.
    - `run(question)` runs it on the injected task, records the final output and returns the
      last node's result (`result.content` holds the final answer).
    The whole run is also capped by Limits.max_steps node runs. A Workflow is itself a node,
    so it can be nested in another workflow or used as a pattern member.
    """

    def __init__(self, name: str = "workflow") -> None:
        super().__init__(name)
        self.nodes: list[Node] = []
        self._conditions: dict[int, Condition] = {}
        self._depends: dict[int, list[Node]] = {}
        self._edges: list[_Edge] = []

    def add_node(
        self,
        node: Node,
        condition: Condition | None = None,
        depends_on: Sequence[Node] | None = None,
    ) -> Workflow:
        """Append `node` (see the class doc); returns the workflow for chaining."""
        if not isinstance(node, Node):
            raise TypeError(f"add_node needs a node (AgentNode, EnsembleNode, ...), not {node!r}")
        if any(n is node for n in self.nodes):
            raise ValueError(f"{node!r} was already added; use add_edge to run it again")
        for needed in depends_on or ():
            if not any(n is needed for n in self.nodes):
                raise ValueError(f"depends_on: {needed!r} must be added to the workflow first")
        self.nodes.append(node)
        index = len(self.nodes) - 1
        if condition is not None:
            self._conditions[index] = condition
        if depends_on is not None:
            self._depends[index] = list(depends_on)
        return self

    def add_nodes(self, nodes: Iterable[Node]) -> Workflow:
        """Append several nodes in order."""
        for node in nodes:
            self.add_node(node)
        return self

    def add_edge(
        self,
        source: Node,
        target: Node,
        condition: Condition | None = None,
        max_times: int = 3,
    ) -> Workflow:
        """After `source` runs, go to `target` when `condition` holds (at most `max_times`)."""
        for node in (source, target):
            if not any(n is node for n in self.nodes):
                raise ValueError(f"{node!r} is not in this workflow; add_node it first")
        if not isinstance(max_times, int) or max_times < 1:
            raise ValueError(f"max_times must be an int >= 1, got {max_times!r}")
        self._edges.append(_Edge(source, target, condition, max_times))
        return self

    def _index(self, node: Node) -> int:
        return next(i for i, n in enumerate(self.nodes) if n is node)

    def process(self, context: Context) -> NodeResult:
        if not self.nodes:
            raise ValueError(f"workflow {self.name!r} has no nodes")
        execution = current_execution()
        path = context.path or self.name
        state = WorkflowState(question=context.question)
        latest: dict[int, NodeResult] = {}  # insertion order = order of last completion
        taken = [0] * len(self._edges)
        index = 0
        while index < len(self.nodes):
            node = self.nodes[index]
            condition = self._conditions.get(index)
            if condition is not None and not condition(state):
                index += 1
                continue
            state.steps += 1
            execution.check("max_steps", state.steps, f"workflow {self.name!r} step {state.steps}")
            wanted = self._depends.get(index)
            seen = (
                list(latest.values())
                if wanted is None
                else [latest[self._index(n)] for n in wanted if self._index(n) in latest]
            )
            result = node.process(
                context.derive(
                    inputs=(*context.inputs, *seen), role="step", path=f"{path}/{node.name}"
                )
            )
            latest.pop(index, None)
            latest[index] = result
            state.last, state.outputs[node.name] = result, result
            index = self._next(index, state, taken, path)
        if state.last is None:
            raise ValueError(f"workflow {self.name!r} ran no node: every condition was false")
        last = state.last
        return NodeResult(
            self.name, last.content, last.delivery, {"last_node": last.sender, "steps": state.steps}
        )

    def _next(self, index: int, state: WorkflowState, taken: list[int], path: str) -> int:
        node = self.nodes[index]
        for number, edge in enumerate(self._edges):
            if edge.source is not node or taken[number] >= edge.max_times:
                continue
            if edge.condition is None or edge.condition(state):
                taken[number] += 1
                current_execution().record(
                    {
                        "type": "edge",
                        "path": path,
                        "source": node.name,
                        "target": edge.target.name,
                        "times": taken[number],
                    }
                )
                return self._index(edge.target)
        return index + 1
