"""The authors' node types (`workflow.nodes`): agents and the patterns built from them."""

from metaagentx.mas.pettingllms.nodes.agent_node import AgentNode
from metaagentx.mas.pettingllms.nodes.debate_node import DebateNode
from metaagentx.mas.pettingllms.nodes.ensemble_node import EnsembleNode
from metaagentx.mas.pettingllms.nodes.reflection_node import ReflectionNode
from metaagentx.mas.pettingllms.nodes.router_node import RouterNode, create_keyword_router

__all__ = [
    "AgentNode",
    "DebateNode",
    "EnsembleNode",
    "ReflectionNode",
    "RouterNode",
    "create_keyword_router",
]
