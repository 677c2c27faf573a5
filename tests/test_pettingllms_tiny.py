"""Scripts in the authors' dialect, every class, node and tool form, run unchanged through
`metaagentx run` in the real sandbox with the tiny model playing every agent.

The tiny model writes noise, so these assert what must hold whatever it says: the script runs to
its end (status ok, a final output an agent wrote), it made agent calls, and nothing in the
authors' API is missing here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from metaagentx.cli import app

GRAPH_AND_FLOWS = """\
import os, sys
from workflow import (AgentNode, AgentGraph, ConditionalWorkflow, Context, LoopWorkflow, Message,
                      MessageType, Workflow, create_simple_chain)

a = AgentNode("Planner", "Plan the solution.", max_turns=1, ai_client=None)
b = AgentNode("Solver", "Solve it.", max_turns=1, enable_conversation_logging=False)
c = AgentNode("Checker", "Check it.", max_turns=1, temperature_hint=0.3)
graph = AgentGraph("graph", max_steps=6)
graph.add_node("plan", a)
graph.add_node("solve", b)
graph.add_node("check", c)
graph.set_entry_point("plan")
graph.add_edge("plan", "solve")
graph.add_conditional_edges("solve", lambda ctx: "check")
graph.set_finish_point("check")
first = graph.run(question, initial_state={"attempt": 1})
chain = create_simple_chain(("again", AgentNode("Again", "Answer again.", max_turns=1)))
conditional = ConditionalWorkflow("conditional")
conditional.add_node(AgentNode("Maybe", "Answer.", max_turns=1), lambda ctx: True)
loop = LoopWorkflow("loop", max_iterations=2)
loop.add_node(AgentNode("Looper", "Improve the answer.", max_turns=1))
loop.set_loop_condition(lambda ctx: len(ctx.get_messages_by_type(MessageType.AGENT_RESPONSE)) < 2)
context = Context()
context.add_message(Message(question, MessageType.USER_INPUT, sender="user"))
conditional.run_with_context(context)
loop.run(question)
workflow = Workflow(name="outer")
workflow.add_nodes([chain, conditional])
result = workflow.run(question)
print(os.path.basename("x/y"), sys.version_info[0], result.to_dict()["message_type"])
"""

PATTERNS = """\
from workflow import AgentNode, Workflow, ToolRegistry
from workflow.nodes import (DebateNode, EnsembleNode, ReflectionNode, RouterNode,
                            create_keyword_router)

def agent(name):
    return AgentNode(name=name, system_prompt="Solve step by step.", tool_registry=ToolRegistry(),
                     max_turns=1)

vote = EnsembleNode("Vote", [agent("A"), agent("B")], strategy="majority_vote",
                    consensus_agent=agent("Judge"))
weighted = EnsembleNode("Weighted", [agent("C"), agent("D")], strategy="weighted_vote",
                        weights=[2.0, 1.0])
consensus = EnsembleNode("Consensus", [agent("E")], strategy="consensus",
                         consensus_agent=agent("Judge2"))
debate = DebateNode("Debate", [agent("Pro"), agent("Con")], judge=agent("Moderator"), num_rounds=1)
reflection = ReflectionNode("Reflect", agent("Writer"), 1, critic_agent=agent("Critic"))
router = RouterNode("Router", {"easy": agent("Easy"), "default": agent("Hard")},
                    routing_func=lambda ctx: "easy", default_route="default")
keywords = create_keyword_router("Keywords", {"compute": agent("Computer")}, agent("Fallback"))
workflow = Workflow(name="patterns")
workflow.add_nodes([vote, weighted, consensus, debate, reflection, router, keywords])
result = workflow.run(question)
"""

TOOLS = """\
import subprocess
from workflow import AgentNode, Workflow, ToolRegistry
from utils.environments.math_env import MathEnvironment, get_math_environment, python_execute
from utils.environments.search_env import SearchEnvironment

def execute_code(code: str) -> str:
    done = subprocess.run(["python", "-c", code], capture_output=True, text=True, timeout=10)
    return done.stdout if done.returncode == 0 else "Error: " + done.stderr

assert MathEnvironment(timeout=5).execute("print(6*7)").strip().endswith("42")
assert "42" in get_math_environment(5).execute("print(42)")
assert "search is not configured" in SearchEnvironment().search("metaagent")
tools = ToolRegistry()
tools.register("python_execute", python_execute, "Execute Python code and return its output",
               {"type": "object", "properties": {"code": {"type": "string"}}, "required": ["code"]})
tools.register("execute_code", execute_code, "Run a program")
assert tools.get_tool("python_execute") is not None and len(tools.get_tool_schemas()) == 2
assert "42" in tools.call_tool("execute_code", {"code": "print(42)"})
solver = AgentNode(name="ToolSolver", system_prompt="Use the tools.", tool_registry=tools,
                   max_turns=2)
workflow = Workflow(name="tools")
workflow.add_node(solver)
result = workflow.run(question)
"""


@pytest.mark.parametrize("script", [GRAPH_AND_FLOWS, PATTERNS, TOOLS],
                         ids=["graph_and_flows", "patterns", "tools"])
def test_an_authors_script_runs_unchanged_with_the_tiny_model(
    tmp_path: Path, tiny_model_dir: Path, script: str
):
    path = tmp_path / "design.py"
    path.write_text(script)
    result = CliRunner().invoke(app, [
        "run", "--model", str(tiny_model_dir), "--script", str(path), "--question",
        "Compute 6*7.", "--answer", "42", "--max-new-tokens", "12", "--json",
        "--device", "cpu", "--timeout-s", "120",
    ])
    payload = json.loads(result.stdout)
    assert payload["status"] == "ok", payload
    assert payload["usage"]["llm_calls"] >= 1
    assert payload["grade"] is not None  # graded: the output came from an agent's reply
