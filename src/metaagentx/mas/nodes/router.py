"""Router: a routing agent reads the task and picks which branch handles it."""

from __future__ import annotations

from collections.abc import Mapping

from metaagentx.mas.execution import current_execution
from metaagentx.mas.node import Context, Node, NodeResult
from metaagentx.mas.prompts import router_instruction
from metaagentx.mas.text import parse_route

DESCRIPTION_CHARS = 160


class RouterNode(Node):
    """`RouterNode(name, router, routes, descriptions=None, default=None)`.

    `routes` maps a branch name to a node (an agent, a pattern or a workflow). The `router`
    agent is shown the branch names with their `descriptions` (default: the start of each
    branch agent's system prompt) and asked to reply `<route>NAME</route>`. The chosen branch
    then runs on the task, seeing the router's delivery. When the reply names no branch,
    `default` (or the first route) runs. The result is the branch's result.
    """

    def __init__(
        self,
        name: str,
        router: Node,
        routes: Mapping[str, Node],
        descriptions: Mapping[str, str] | None = None,
        default: str | None = None,
    ) -> None:
        super().__init__(name)
        if not routes:
            raise ValueError("a router needs at least one route")
        if default is not None and default not in routes:
            raise ValueError(f"default route {default!r} is not one of {list(routes)}")
        self.router = router
        self.routes = dict(routes)
        self.descriptions = dict(descriptions or {})
        self.default = default or next(iter(self.routes))

    def _describe(self, name: str) -> str:
        if name in self.descriptions:
            return self.descriptions[name]
        prompt = " ".join(str(getattr(self.routes[name], "system_prompt", "")).split())
        return prompt[:DESCRIPTION_CHARS] or name

    def process(self, context: Context) -> NodeResult:
        path = context.path or self.name
        names = list(self.routes)
        decision = self.router.process(
            context.derive(
                instruction=router_instruction([(n, self._describe(n)) for n in names]),
                role="router",
                path=f"{path}/{self.router.name}",
            )
        )
        picked = parse_route(decision.content, names)
        choice = picked or self.default
        current_execution().record(
            {
                "type": "route",
                "node": self.name,
                "path": path,
                "route": choice,
                "fallback": picked is None,
            }
        )
        branch_node = self.routes[choice]
        branch = branch_node.process(
            context.derive(
                inputs=(*context.inputs, decision), role="branch", path=f"{path}/{branch_node.name}"
            )
        )
        return NodeResult(
            self.name,
            branch.content,
            branch.delivery,
            {"route": choice, "fallback": picked is None},
        )
