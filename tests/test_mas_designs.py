"""Every example design and a paper-style script run end to end through the harness."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mas_support import ScriptedRuntime, answer, by_agent, user_message
from metaagentx.mas import AgentNode, DebateNode, install_aliases, run_design, use_runtime
from metaagentx.mas.text import extract_answer

ROOT = Path(__file__).resolve().parents[1]
DESIGNS = sorted((ROOT / "examples" / "designs").glob("[!_]*.py"))
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "mas"
PROGRAM = "a, b = map(int, input().split())\nprint(a + b)"


def design_reply(domain: str):
    """A plausible model: routes to "compute", runs python/run_tests once when it has them,
    approves as critic, and otherwise answers in the domain's format."""

    def reply(agent: str, messages: list) -> str:
        system, user, last = (
            messages[0]["content"],
            user_message({"messages": messages}),
            messages[-1],
        )
        if "<route>NAME</route>" in user:
            return "Arithmetic heavy. <route>compute</route>"
        if last["role"] == "tool":
            return "Tool output checked. VERDICT: CORRECT\n" + final(domain)
        if "run_tests(code)" in system:
            return '<tool_call>{"name": "run_tests", "arguments": {}}</tool_call>'
        if "run Python" in system:
            return "```python\nprint(6 * 7)\n```"
        if "VERDICT: CORRECT" in user:
            return "Re-derived every step. VERDICT: CORRECT"
        return final(domain)

    return reply


def final(domain: str) -> str:
    if domain == "code":
        return f"Sum the pair.\n<delivery>\n```python\n{PROGRAM}\n```\n</delivery>"
    return "6 * 7 = 42.\n<delivery>6 * 7 = 42, so \\boxed{42}</delivery>\n\\boxed{42}"


def tools() -> dict:
    return {"python": lambda args: "42\n", "run_tests": lambda args: "public tests: 2/2 passed"}


EXPECTED_AGENTS = {
    "single_agent": {"Solver"},
    "single_agent_python": {"ComputingSolver"},
    "ensemble_vote": {"ForwardSolver", "BackwardSolver", "CaseAnalyzer"},
    "ensemble_judge": {"AlgebraicSolver", "ConstructiveSolver", "SkepticalSolver", "Judge"},
    "reflection": {"Solver", "Verifier"},
    "debate": {"Debater1", "Debater2", "Debater3", "Judge"},
    "code_writer_tester": {"CodeWriter", "Tester"},
    "router": {"Router", "ComputingSolver"},
    "verify_loop": {"Solver", "Verifier"},
}


def test_every_pattern_has_an_example() -> None:
    assert {p.stem for p in DESIGNS} == set(EXPECTED_AGENTS)
    for path in DESIGNS:
        assert 20 <= len(path.read_text().splitlines()) <= 60, path.name


@pytest.mark.parametrize("path", DESIGNS, ids=lambda p: p.stem)
def test_example_design_runs_end_to_end(path: Path) -> None:
    domain = "code" if path.stem.startswith("code") else "math"
    rt = ScriptedRuntime(design_reply(domain), domain=domain, tools=tools())
    outcome = run_design(path.read_text(), rt, filename=str(path))
    assert outcome.status == "ok", outcome.error
    expected = PROGRAM if domain == "code" else "42"
    assert extract_answer(outcome.final_output or "", domain) == expected
    ran = {e["agent"] for e in outcome.trace if e["type"] == "agent"}
    assert ran == EXPECTED_AGENTS[path.stem]
    assert outcome.final_output in outcome.stdout  # the scripts print their result
    json.loads(json.dumps(outcome.to_dict()))  # the whole outcome crosses a JSON pipe
    assert outcome.usage["llm_calls"] == len(rt.calls)


def test_tool_designs_really_use_their_tools() -> None:
    for stem, tool in [
        ("single_agent_python", "python"),
        ("code_writer_tester", "run_tests"),
        ("router", "python"),
    ]:
        domain = "code" if stem.startswith("code") else "math"
        rt = ScriptedRuntime(design_reply(domain), domain=domain, tools=tools())
        run_design((ROOT / "examples" / "designs" / f"{stem}.py").read_text(), rt)
        assert [c["name"] for c in rt.tool_calls] == [tool], stem
    assert rt.tool_calls[0]["arguments"] == {"code": "print(6 * 7)"}


def test_paper_style_script_runs_unchanged() -> None:
    rt = ScriptedRuntime(
        by_agent(
            {
                "Solver_A": answer("42", "a"),
                "Solver_B": answer("41", "b"),
                "MathJudge": answer("42", "judge"),
                "Verifier": "Final verdict: CORRECT",
            }
        )
    )
    outcome = run_design((FIXTURES / "paper_style_ensemble.py").read_text(), rt)
    assert outcome.status == "ok", outcome.error
    # the split vote goes to the judge, who is then also the solver of the reflection
    assert rt.agents_called()[2:] == ["MathJudge", "MathJudge", "Verifier"]
    assert "FINAL ANSWER:" in outcome.stdout and "judge" in (outcome.final_output or "")


def test_install_aliases_gives_paper_imports_and_the_task() -> None:
    install_aliases()
    import workflow
    import workflow.nodes

    assert workflow.AgentNode is AgentNode and workflow.nodes.DebateNode is DebateNode
    with use_runtime(ScriptedRuntime(lambda a, m: "", question="Q?")):
        from workflow import question

        assert question == "Q?" and workflow.domain == "math"


def test_harness_injects_the_task_and_collects_the_result() -> None:
    rt = ScriptedRuntime(by_agent({"A": answer("7")}), question="What is 3 + 4?")
    script = (
        "assert question == task['question'] == 'What is 3 + 4?' and domain == 'math'\n"
        "from workflow import AgentNode, Workflow\n"
        "workflow = Workflow().add_node(AgentNode(name='A', system_prompt='x', max_turns=1))\n"
    )
    outcome = run_design(script, rt)  # never calls run(): the harness runs `workflow`
    assert outcome.status == "ok" and extract_answer(outcome.final_output or "", "math") == "7"
    assert outcome.delivery == "so \\boxed{7}"
    assert user_message(rt.calls[0]) == "What is 3 + 4?"


@pytest.mark.parametrize(
    ("script", "status", "kind"),
    [
        ("def broken(:\n", "design_error", "SyntaxError"),
        ("x = 1\n", "design_error", "ValueError"),
        (
            "from workflow import AgentNode\nAgentNode(name='A', system_prompt='x', max_turns=0)\n",
            "design_error",
            "ValueError",
        ),
        (
            "from workflow import AgentNode\nAgentNode(name='A', system_prompt='x').run()\n1 / 0\n",
            "runtime_error",
            "ZeroDivisionError",
        ),
    ],
)
def test_harness_classifies_failures(script: str, status: str, kind: str) -> None:
    outcome = run_design(script, ScriptedRuntime(by_agent({}, default=answer("1"))))
    assert (outcome.status, outcome.error_kind) == (status, kind)
    assert outcome.error


def test_mas_imports_only_the_standard_library() -> None:
    code = (
        "import sys; before = set(sys.modules)\n"
        "import metaagentx.mas as m; m.install_aliases()\n"
        "new = {n.split('.')[0] for n in set(sys.modules) - before}\n"
        "extra = sorted(new - set(sys.stdlib_module_names)"
        " - {'metaagentx', 'workflow'})\n"
        "print(','.join(extra))"
    )
    env_path = str(ROOT / "src")
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": env_path},
    )
    assert out.stdout.strip() == ""


def test_a_runtime_with_set_final_output_is_told_the_final_output() -> None:
    class RecordingRuntime(ScriptedRuntime):
        recorded: list[str]

        def set_final_output(self, output: str) -> None:
            self.recorded.append(output)

    rt = RecordingRuntime(by_agent({"A": answer("7")}))
    rt.recorded = []
    with use_runtime(rt):
        result = AgentNode("A", "x", max_turns=1).run()
    assert rt.recorded == [result.content]
