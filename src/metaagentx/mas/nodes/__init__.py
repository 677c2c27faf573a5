"""Composite patterns (and `AgentNode`), what a design imports as `workflow.nodes`:
`from workflow.nodes import EnsembleNode, ReflectionNode, DebateNode`."""

from metaagentx.mas.agent import AgentNode
from metaagentx.mas.nodes.debate import DebateNode
from metaagentx.mas.nodes.ensemble import EnsembleNode
from metaagentx.mas.nodes.reflection import ReflectionNode
from metaagentx.mas.nodes.router import RouterNode

__all__ = ["AgentNode", "DebateNode", "EnsembleNode", "ReflectionNode", "RouterNode"]
