"""The workflow library design scripts are written against (standard library only).

A design builds agents and patterns and runs them; every agent turn goes through the active
`Runtime` (see `protocol`). Design scripts import it as `workflow` (`harness.run_design`
redirects their imports per dialect, see `dialects`; `install_aliases()` does the same for code
run outside the harness):

    from workflow import AgentNode, Workflow, ToolRegistry
    from workflow.nodes import EnsembleNode, ReflectionNode, DebateNode, RouterNode

Inside a script the task is already available as `question` (also `task`, `domain`).
"""

from __future__ import annotations

import sys
from typing import Any

from metaagentx.mas import nodes
from metaagentx.mas.agent import AgentNode
from metaagentx.mas.execution import Execution, current_execution, execution_of, start_execution
from metaagentx.mas.harness import DesignOutcome, run_design, script_globals
from metaagentx.mas.limits import Limits
from metaagentx.mas.node import Context, Node, NodeResult
from metaagentx.mas.nodes import DebateNode, EnsembleNode, ReflectionNode, RouterNode
from metaagentx.mas.prompts import build_system_prompt
from metaagentx.mas.protocol import (
    ExecutionLimitExceeded,
    Message,
    Runtime,
    current_runtime,
    use_runtime,
)
from metaagentx.mas.text import delivery_of, extract_answer, extract_delivery
from metaagentx.mas.tools import Tool, ToolRegistry
from metaagentx.mas.workflow import Workflow, WorkflowState

ALIASES = ("workflow", "workflow.nodes")


def install_aliases() -> None:
    """Register `workflow` and `workflow.nodes` in sys.modules as this package and its
    `nodes` module, so paper-style imports resolve here (idempotent)."""
    sys.modules["workflow"] = sys.modules[__name__]
    sys.modules["workflow.nodes"] = nodes


def __getattr__(name: str) -> Any:
    """`task`, `question` and `domain` of the running execution (`from workflow import
    question` works too)."""
    if name == "task":
        return current_runtime().task
    if name in ("question", "domain"):
        return current_runtime().task.get(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AgentNode",
    "Context",
    "DebateNode",
    "DesignOutcome",
    "EnsembleNode",
    "Execution",
    "ExecutionLimitExceeded",
    "Limits",
    "Message",
    "Node",
    "NodeResult",
    "ReflectionNode",
    "RouterNode",
    "Runtime",
    "Tool",
    "ToolRegistry",
    "Workflow",
    "WorkflowState",
    "build_system_prompt",
    "current_execution",
    "current_runtime",
    "delivery_of",
    "execution_of",
    "extract_answer",
    "extract_delivery",
    "install_aliases",
    "run_design",
    "script_globals",
    "start_execution",
    "use_runtime",
]
