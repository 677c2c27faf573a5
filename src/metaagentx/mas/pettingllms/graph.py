"""The authors' graph workflows: `AgentGraph`, `Edge`, `create_simple_chain`.

Named nodes joined by edges (optionally conditional) or by a routing function, run from an
entry point until a finish point, a node with nowhere to go, or `max_steps`. Loops are allowed;
every node run also counts against the execution's Limits.max_steps. Standard library only:
this runs in the sandbox.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from metaagentx.mas.pettingllms.core import Context, Message, MessageType, WorkflowNode
from metaagentx.mas.pettingllms.flow import Condition, FlowNode
from metaagentx.mas.protocol import ExecutionLimitExceeded

END = "__end__"  # a routing function returning this (or None, or an unknown name) ends the run
DEFAULT_MAX_STEPS = 50
RoutingFunc = Callable[[Context], Any]


@dataclass
class Edge:
    """`Edge(source, target, condition=None)`: after `source`, go to `target` when
    `condition(context)` holds (always when None)."""

    source: str
    target: str
    condition: Condition | None = None

    def should_follow(self, context: Context) -> bool:
        """Whether this edge is taken now."""
        return self.condition is None or bool(self.condition(context))


class AgentGraph(FlowNode):
    """`AgentGraph(name="agent_graph", max_steps=50)`: `add_node(name, node)`,
    `add_edge(source, target, condition=None)`, `add_conditional_edges(source, routing_func)`,
    `set_entry_point(name)`, `set_finish_point(name)`, `run(input_message, initial_state=None)`.

    From the entry point, each step runs one node on the shared context. The run ends with that
    node's message when it is an ERROR, when the node is a finish point, or when it has nowhere to
    go; otherwise the next node is the routing function's answer for it (a node name; `END`,
    None or an unknown name end the run, as in theirs) or the target of its first edge whose
    condition holds. After `max_steps` node runs it ends with the latest message. Differs from
    ours (`metaagentx.mas.Workflow.add_edge` there takes nodes and `max_times`): nodes are
    named, a routing function may pick the next node, and it is a node itself (theirs is not).
    A condition or routing function that raises counts as "no way out" here (theirs lets an
    edge condition's exception fail the run). Both an entry point and a finish point are
    required, as in theirs."""

    def __init__(
        self, name: str = "agent_graph", max_steps: int = DEFAULT_MAX_STEPS, **kwargs: Any
    ) -> None:
        super().__init__(name, **kwargs)
        if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
            raise ValueError(f"max_steps must be an int >= 1, got {max_steps!r}")
        self.max_steps = max_steps
        self.nodes: dict[str, WorkflowNode] = {}
        self.edges: list[Edge] = []
        self.routers: dict[str, RoutingFunc] = {}
        self.entry_point: str | None = None
        self.finish_points: list[str] = []

    def add_node(self, name: str, node: WorkflowNode) -> AgentGraph:
        """Add (or replace) the node called `name`."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"a graph node needs a non-empty name, got {name!r}")
        if not isinstance(node, WorkflowNode):
            raise TypeError(f"add_node needs a node (AgentNode, EnsembleNode, ...), not {node!r}")
        self.nodes[name] = node
        return self

    def _known(self, name: str, what: str) -> None:
        if name not in self.nodes:
            raise ValueError(f"{what} node '{name}' not found; add_node it first")

    def add_edge(self, source: str, target: str, condition: Condition | None = None) -> AgentGraph:
        """After `source`, go to `target` (when `condition(context)` holds)."""
        self._known(source, "Source")
        self._known(target, "Target")
        if condition is not None and not callable(condition):
            raise TypeError(f"an edge condition must be a function of the context: {condition!r}")
        self.edges.append(Edge(source, target, condition))
        return self

    def add_conditional_edges(
        self,
        source: str,
        routing_func: RoutingFunc,
        path_map: Mapping[Any, str] | None = None,
    ) -> AgentGraph:
        """After `source`, go to the node `routing_func(context)` names (it overrides the
        source's edges). `path_map` (optional) translates the function's answers to node names."""
        self._known(source, "Source")
        if not callable(routing_func):
            raise TypeError(f"routing_func must be a function of the context: {routing_func!r}")
        if path_map is None:
            self.routers[source] = routing_func
        else:
            table = dict(path_map)
            self.routers[source] = lambda context: table.get(routing_func(context), END)
        return self

    def set_entry_point(self, node_name: str) -> AgentGraph:
        """The node the run starts at."""
        self._known(node_name, "Entry point")
        self.entry_point = node_name
        return self

    def set_finish_point(self, node_name: str) -> AgentGraph:
        """A node after which the run ends (there may be several)."""
        self._known(node_name, "Finish point")
        if node_name not in self.finish_points:
            self.finish_points.append(node_name)
        return self

    def process(self, context: Context) -> Message:
        if self.entry_point is None:
            raise ValueError("Entry point not set. Call set_entry_point() first.")
        if not self.finish_points:
            raise ValueError("No finish points set. Call set_finish_point() at least once.")
        current = self.entry_point
        for step in range(1, self.max_steps + 1):
            result = self.run_step(context, self.nodes[current], step)
            if result.message_type == MessageType.ERROR or current in self.finish_points:
                return result
            target = self._next(current, context)
            if target is None:
                return result
            self.note(context, {"type": "edge", "source": current, "target": target, "step": step})
            current = target
        self.note(context, {"type": "max_steps", "steps": self.max_steps, "at": current})
        return context.get_latest_message() or result

    def _next(self, current: str, context: Context) -> str | None:
        """The node after `current`, or None to end the run."""
        router = self.routers.get(current)
        if router is not None:
            try:
                target = router(context)
            except ExecutionLimitExceeded:
                raise
            except Exception as exc:
                self.note(context, {"type": "route_error", "source": current,
                                    "error": f"{type(exc).__name__}: {exc}"})  # fmt: skip
                return None
            if target is None or target == END:
                return None
            if not isinstance(target, str) or target not in self.nodes:
                self.note(context, {"type": "unknown_route", "source": current,
                                    "target": repr(target)})  # fmt: skip
                return None
            return target
        for edge in self.edges:
            if edge.source == current and self._follows(edge, context):
                return edge.target
        return None

    def _follows(self, edge: Edge, context: Context) -> bool:
        try:
            return edge.should_follow(context)
        except ExecutionLimitExceeded:
            raise
        except Exception as exc:
            self.note(context, {"type": "condition_error", "source": edge.source,
                                "target": edge.target, "error": f"{type(exc).__name__}: {exc}"})  # fmt: skip
            return False


def create_simple_chain(*nodes: tuple[str, WorkflowNode]) -> AgentGraph:
    """An `AgentGraph` running `(name, node)` pairs one after the other, first to last."""
    graph = AgentGraph()
    for index, (name, node) in enumerate(nodes):
        graph.add_node(name, node)
        if index:
            graph.add_edge(nodes[index - 1][0], name)
    if nodes:
        graph.set_entry_point(nodes[0][0])
        graph.set_finish_point(nodes[-1][0])
    return graph


__all__ = ["END", "AgentGraph", "Edge", "create_simple_chain"]
