"""Evaluating a released checkpoint of the authors, end to end: `metaagentx eval` with the shipped
`configs/paper/authors_checkpoint_eval.yaml` (their designer prompt, their workflow dialect),
against a scripted model served over the OpenAI API that designs in their format and dialect.

The scripted model stands in for their checkpoint: its designs register tools by name, use
`utils.environments.math_env`, `import os, sys`, an ensemble vote and a paper-style
`subprocess.run(["python", "-c", code])` tool; its agents compute with the Python those tools
run in the sandbox. A correct score therefore needs every piece of the path to work."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from metaagentx.cli import app
from metaagentx.llm.base import GenerationResult
from metaagentx.llm.server import ServerThread, create_app
from metaagentx.tasks.base import Task, TestCase

CONFIG = Path(__file__).parents[1] / "configs" / "paper" / "authors_checkpoint_eval.yaml"

MATH_TOOL_DESIGN = """Problem Type: arithmetic
Workflow Pattern: math_single_agent_with_python
Reason: the arithmetic is exact in Python.
<code>
import os, sys
from workflow import AgentNode, Workflow, ToolRegistry
from utils.environments.math_env import python_execute

tool_registry = ToolRegistry()
tool_registry.register(
    "python_execute",
    python_execute,
    "Execute Python code and return its output",
    {"type": "object", "properties": {"code": {"type": "string"}}, "required": ["code"]},
)
solver = AgentNode(name="MathSolver", system_prompt="Compute with Python, then answer.",
                   tool_registry=tool_registry, max_turns=2)
workflow = Workflow(name="math_tool")
workflow.add_node(solver)
result = workflow.run(question)
print(result.content)
</code>"""

MATH_VOTE_DESIGN = """Workflow Pattern: math_self_consistency
Reason: three independent solvers and a vote.
<code>
from workflow import AgentNode, Workflow, ToolRegistry
from workflow.nodes import EnsembleNode

solvers = [AgentNode(name=f"Solver_{c}", system_prompt="Solve step by step.",
                     tool_registry=ToolRegistry(), max_turns=1) for c in "ABC"]
judge = AgentNode(name="Judge", system_prompt="Pick the right answer.", max_turns=1)
ensemble = EnsembleNode(name="Vote", agents=solvers, strategy="majority_vote",
                        consensus_agent=judge)
workflow = Workflow(name="math_vote")
workflow.add_node(ensemble)
result = workflow.run(question)
print(result.content)
</code>"""

CODE_DESIGN = """Workflow Pattern: code_single_agent_with_execution
Reason: write the program and test it.
<code>
import subprocess
from workflow import AgentNode, Workflow, ToolRegistry

def execute_code(code: str) -> str:
    done = subprocess.run(["python", "-c", code], capture_output=True, text=True, timeout=10)
    return done.stdout + done.stderr

tools = ToolRegistry()
tools.register("execute_code", execute_code, "Run Python code", {
    "type": "object", "properties": {"code": {"type": "string"}}, "required": ["code"]})
coder = AgentNode(name="Coder", system_prompt="Write and test the program.",
                  tool_registry=tools, max_turns=3)
workflow = Workflow(name="code_exec")
workflow.add_node(coder)
result = workflow.run(question)
</code>"""

CODE_TASK = "Read two integers a and b"
PROGRAM = "a, b = map(int, input().split())\nprint(a + b)"


def _text(message) -> str:
    return message["content"] if isinstance(message, dict) else str(message.content)


class ScriptedCheckpoint:
    """Designs in the authors' format; as an agent, runs Python through its tools and answers
    with what the tool printed (math) or a tested program in <solution> tags (code)."""

    def __init__(self) -> None:
        self.designs: list[str] = []
        self.agent_calls = 0

    async def agenerate(self, request) -> GenerationResult:
        messages = [_text(m) for m in request.messages]
        text = self._reply(messages)
        return GenerationResult([1], [2], [-0.1], text, "stop", role=request.role)

    def _reply(self, messages: list[str]) -> str:
        if messages[-1].startswith("Design Multi Agent System"):  # their designer's one line
            task = messages[-1]
            design = (
                CODE_DESIGN
                if CODE_TASK in task
                else (MATH_TOOL_DESIGN if "17*23" in task else MATH_VOTE_DESIGN)
            )
            self.designs.append(design)
            return design
        self.agent_calls += 1
        question = next((m for m in messages[1:] if "Compute" in m or CODE_TASK in m), "")
        last = messages[-1]
        if CODE_TASK in question:
            if "returned:" in last:  # the tool's output came back
                return f"Tested.\n<solution>\n{PROGRAM}\n</solution>"
            call = {"name": "execute_code", "parameters": {"code": "print(2 + 3)"}}
            return f"<tool_call>{json.dumps(call)}</tool_call>"
        found = re.search(r"Compute (.+?)\.", question)
        if found is None:
            return "FINAL ANSWER: \\boxed{0}"
        if "Output:" in last:  # the Python block ran; answer with what it printed
            printed = last.split("Output:")[-1].strip().split()[0]
            return f"FINAL ANSWER: \\boxed{{{printed}}}"
        if "python_execute" in messages[0] or "Solver_" in messages[0] or "Solve" in messages[0]:
            return f"```python\nprint({found.group(1)})\n```"
        return "FINAL ANSWER: \\boxed{0}"

    def close(self) -> None:
        pass


def _benchmark(path: Path) -> Path:
    tasks = [
        Task(id="m1", domain="math", prompt="Compute 17*23+4.", answer="395", source="t"),
        Task(id="m2", domain="math", prompt="Compute 1234-987.", answer="247", source="t"),
        Task(
            id="c1",
            domain="code",
            source="t",
            prompt=f"{CODE_TASK} from stdin and print a + b.",
            hidden_tests=(TestCase("stdio", "2 3\n", "5"), TestCase("stdio", "10 -4\n", "6")),
        ),
    ]
    path.write_text("".join(json.dumps(t.to_dict()) + "\n" for t in tasks))
    return path


@pytest.fixture
def served_checkpoint():
    model = ScriptedCheckpoint()
    server = ServerThread(create_app(model, "MetaAgent-X-8B", owns_batcher=False))
    try:
        yield model, server.url
    finally:
        server.stop()


def test_the_shipped_config_evaluates_a_checkpoint_that_designs_in_the_authors_dialect(
    tmp_path: Path, served_checkpoint
):
    model, url = served_checkpoint
    benchmark = _benchmark(tmp_path / "mini.jsonl")
    out = tmp_path / "run"
    result = CliRunner().invoke(
        app,
        [
            "eval",
            str(CONFIG),
            "generation.backend=openai",
            f"generation.base_url={url}",
            "generation.served_model=MetaAgent-X-8B",
            "model.device=cpu",
            f"eval.benchmarks=[{benchmark}]",
            "eval.modes=[designed]",
            f"output_dir={out}",
            "sandbox.isolation=auto",
            "sandbox.timeout_s=60",
            "sandbox.max_concurrency=4",
            "logging.progress=false",
        ],
    )
    assert result.exit_code == 0, result.output
    assert len(model.designs) == 3 and model.agent_calls >= 6
    records = [json.loads(line) for line in (out / "eval" / "eval.records.jsonl").open()]
    designs = [d for r in records for d in r["designs"]]
    assert {d["pattern"] for d in designs} == {
        "math_single_agent_with_python",
        "math_self_consistency",
        "code_single_agent_with_execution",
    }
    assert all(d["valid"] for d in designs), [d.get("reason") for d in designs]
    executions = [e for d in designs for e in d["executions"]]
    assert [e["status"] for e in executions] == ["ok"] * 3, executions
    # every answer came from Python run in the sandbox by the authors' tools, and was right
    assert all(e["correct"] for e in executions), [e.get("final_output") for e in executions]
    summary = json.loads((out / "eval" / "eval.json").read_text())
    assert summary["results"][0]["accuracy"]["mean"] == 1.0
