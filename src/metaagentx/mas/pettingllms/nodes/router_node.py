"""The authors' `RouterNode` and `create_keyword_router`: a function of the context picks the
branch that handles it.

Standard library only: this runs in the sandbox.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from metaagentx.mas.execution import current_execution
from metaagentx.mas.pettingllms.core import Context, Message, WorkflowNode, path_of
from metaagentx.mas.protocol import ExecutionLimitExceeded

DEFAULT_ROUTE = "default"


class RouterNode(WorkflowNode):
    """`RouterNode(name, routes, routing_func, default_route="default", **kwargs)`.

    `routes` maps route names to nodes; `routing_func(context)` returns a route name. The
    chosen node runs on a copy of the context; `default_route` (which must be one of the
    routes) runs when the function raises or names no route. The result is the branch's
    message, with `routed_from` and `route_taken` added to its metadata.

    Differs from ours (`metaagentx.mas.nodes.RouterNode`): a plain function decides, no routing
    agent and no LLM call; the result's sender is this router (as in theirs)."""

    def __init__(
        self,
        name: str,
        routes: Mapping[str, WorkflowNode],
        routing_func: Callable[[Context], Any],
        default_route: str = DEFAULT_ROUTE,
        **kwargs: Any,
    ) -> None:
        super().__init__(name, **kwargs)
        self.routes = dict(routes)
        for route, node in self.routes.items():
            if not isinstance(node, WorkflowNode):
                raise TypeError(f"route {route!r} must map to a node (AgentNode...), not {node!r}")
        if not callable(routing_func):
            raise TypeError(f"routing_func must be a function of the context: {routing_func!r}")
        if default_route not in self.routes:
            raise ValueError(f"Default route '{default_route}' not found in routes")
        self.routing_func = routing_func
        self.default_route = default_route

    def choose(self, context: Context) -> tuple[str, str | None]:
        """(the route to take, why the default was used instead of the function's answer)."""
        try:
            route = self.routing_func(context)
        except ExecutionLimitExceeded:
            raise
        except Exception as exc:
            return self.default_route, f"routing_func raised {type(exc).__name__}: {exc}"
        if not isinstance(route, str) or route not in self.routes:
            return self.default_route, f"unknown route {route!r}"
        return route, None

    def process(self, context: Context) -> Message:
        path = path_of(context, self.name)
        route, fallback = self.choose(context)
        current_execution().record(
            {"type": "route", "node": self.name, "path": path, "route": route,
             "fallback": fallback}
        )  # fmt: skip
        result = self.routes[route](context.at(path, role="branch"))
        metadata = {**(result.metadata or {}), "routed_from": self.name, "route_taken": route}
        return Message(result.content, result.message_type, metadata, recipient=result.recipient)


def create_keyword_router(
    name: str,
    keyword_routes: Mapping[str, WorkflowNode],
    default_node: WorkflowNode,
    case_sensitive: bool = False,
) -> RouterNode:
    """A `RouterNode` taking the route of the first keyword (in the mapping's order) found in the
    latest message's text, else `default_node` (route "default")."""

    def by_keyword(context: Context) -> str:
        latest = context.get_latest_message()
        if latest is None:
            return DEFAULT_ROUTE
        text = latest.text if case_sensitive else latest.text.lower()
        for keyword in keyword_routes:
            if (keyword if case_sensitive else keyword.lower()) in text:
                return keyword
        return DEFAULT_ROUTE

    routes = {**keyword_routes, DEFAULT_ROUTE: default_node}
    return RouterNode(name, routes, by_keyword, default_route=DEFAULT_ROUTE)


__all__ = ["DEFAULT_ROUTE", "RouterNode", "create_keyword_router"]
