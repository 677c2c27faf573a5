"""Design-structure analysis: every shipped example design and crafted scripts classify as
expected from their AST alone (never executed); distributions and comparisons are exact."""

from __future__ import annotations

from pathlib import Path

import pytest

import metaagentx
from metaagentx.eval.analysis import (
    PATTERNS,
    classify_script,
    compare_designs,
    comparison_markdown,
    distribution_markdown,
    pattern_distribution,
    rows_from_records,
    structure_summary,
)

PACKAGE = Path(metaagentx.__file__).parent

# file -> (pattern, agents, tools, depth)
SHIPPED = {
    "designs/single_agent.py": ("single", 1, (), 0),
    "designs/single_agent_python.py": ("single+tool", 1, ("python",), 0),
    "designs/ensemble_vote.py": ("ensemble_vote", 3, (), 1),
    "designs/ensemble_judge.py": ("ensemble_judge", 4, (), 1),
    "designs/reflection.py": ("reflection", 2, (), 1),
    "designs/debate.py": ("debate", 4, (), 1),
    "designs/router.py": ("router", 5, ("python",), 2),
    "designs/code_writer_tester.py": ("code+tester", 2, ("run_tests",), 1),
    "designs/verify_loop.py": ("loop/graph", 2, (), 1),
    "sft/designs/single.py": ("single", 1, (), 0),
    "sft/designs/tool.py": ("single+tool", 1, ("python",), 0),
    "sft/designs/code_test.py": ("single+tool", 1, ("run_tests",), 0),
    "sft/designs/reflect.py": ("reflection", 2, ("python",), 1),
    "sft/designs/vote3.py": ("ensemble_vote", 3, ("python",), 1),
}


def test_every_shipped_design_is_in_the_table():
    shipped = {
        str(p.relative_to(PACKAGE))
        for folder in ("designs", "sft/designs")
        for p in (PACKAGE / folder).glob("*.py")
        if p.name != "__init__.py"
    }
    assert shipped == set(SHIPPED)


@pytest.mark.parametrize(("path", "expected"), sorted(SHIPPED.items()))
def test_shipped_designs(path, expected):
    structure = classify_script((PACKAGE / path).read_text())
    assert (structure.pattern, structure.agents, structure.tools, structure.depth) == expected
    assert structure.parsed and structure.pattern in PATTERNS


HEAD = "from workflow import AgentNode, Workflow, ToolRegistry\n"
NODES = "from workflow.nodes import EnsembleNode, ReflectionNode, DebateNode, RouterNode\n"
CRAFTED = {
    "comprehension ensemble of five": (
        HEAD + NODES + "solvers = [AgentNode(f'S{i}', 'x', tools=['python_execute']) "
        "for i in range(5)]\nw = Workflow()\nw.add_node(EnsembleNode('E', solvers))\nw.run()\n",
        ("ensemble_vote", 5, ("python",), 1),
    ),
    "helper function in a loop, judge keyword": (
        HEAD + NODES + "def make(i, tools=None):\n    return AgentNode(f'S{i}', 'x', tools=tools)\n"
        "team = []\nfor i in range(4):\n    team.append(make(i, ['python']))\n"
        "judge = make(9)\nw = Workflow()\n"
        "w.add_node(EnsembleNode('E', team, judge=judge))\nresult = w.run()\n",
        ("ensemble_judge", 5, ("python",), 1),
    ),
    "plain sequence": (
        HEAD + "a = AgentNode('A', 'x')\nb = AgentNode('B', 'y')\n"
        "w = Workflow()\nw.add_node(a)\nw.add_node(b)\nw.run()\n",
        ("pipeline", 2, (), 1),
    ),
    "conditional node": (
        HEAD + "a = AgentNode('A', 'x')\nb = AgentNode('B', 'y')\nw = Workflow()\n"
        "w.add_node(a).add_node(b, condition=lambda s: s.verdict != 'correct')\nw.run()\n",
        ("loop/graph", 2, (), 1),
    ),
    "writer and tester in a loop": (
        HEAD + "w = Workflow()\nwriter = AgentNode('W', 'code')\n"
        "tester = AgentNode('T', 'test', tools=ToolRegistry(['run_tests']))\n"
        "w.add_nodes([writer, tester])\nw.add_edge(tester, writer, max_times=2)\nw.run()\n",
        ("code+tester", 2, ("run_tests",), 1),
    ),
    "nested reflections in an ensemble, aliased imports": (
        "from workflow import AgentNode as A, Workflow as W\n"
        "from workflow.nodes import EnsembleNode as E, ReflectionNode as R\n"
        "pairs = [R(f'R{i}', A(f'S{i}', 's'), A(f'C{i}', 'c'), 2) for i in range(3)]\n"
        "workflow = W()\nworkflow.add_node(E('Vote', pairs, 'majority_vote'))\n",
        ("ensemble_vote", 6, (), 2),
    ),
    "own tools registered two ways": (
        HEAD + "tools = ToolRegistry()\n@tools.register\ndef lookup(x):\n    return x\n"
        "tools.register_tool('python_execute', lookup)\n"
        "a = AgentNode('A', 'x', tools=tools)\nw = Workflow()\nw.add_node(a)\nw.run()\n",
        ("single+tool", 1, ("lookup", "python"), 0),
    ),
    "debate without judge, router over dict": (
        HEAD + NODES + "d = DebateNode('D', [AgentNode('X', 'x'), AgentNode('Y', 'y')])\n"
        "routes = {'easy': AgentNode('E', 'e'), 'hard': d}\n"
        "r = RouterNode('R', AgentNode('Pick', 'p'), routes)\nw = Workflow()\nw.add_node(r)\n"
        "w.run()\n",
        ("router", 4, (), 2),
    ),
    "custom node class": (
        "from workflow import AgentNode, Node, Workflow\nclass Mine(Node):\n"
        "    def process(self, context):\n        return None\n"
        "w = Workflow()\nw.add_node(Mine('m'))\nw.run()\n",
        ("other", 0, (), 1),
    ),
    "agent subclass counts as an agent": (
        "from workflow import AgentNode, Workflow\nclass Solver(AgentNode):\n    pass\n"
        "w = Workflow()\nw.add_node(Solver('s', 'x', tools=['python']))\nw.run()\n",
        ("single+tool", 1, ("python",), 0),
    ),
    "no workflow library at all": ("print('hello')\n", ("other", 0, (), 0)),
    "syntax error": ("def broken(:\n", ("other", 0, (), 0)),
}


@pytest.mark.parametrize(("name", "case"), sorted(CRAFTED.items()))
def test_crafted_scripts(name, case):
    script, expected = case
    structure = classify_script(script)
    assert (structure.pattern, structure.agents, structure.tools, structure.depth) == expected


def test_analysis_never_executes_the_script(tmp_path: Path):
    marker = tmp_path / "ran"
    script = (
        HEAD + f"open({str(marker)!r}, 'w').write('x')\n"
        "import os\nos.system('touch ' + " + repr(str(marker)) + ")\n"
        "a = AgentNode('A', 'x')\nw = Workflow()\nw.add_node(a)\nw.run()\n"
    )
    assert classify_script(script).pattern == "single"
    assert not marker.exists()
    assert classify_script("x = 1\n" + "(" * 300 + ")" * 300).pattern == "other"
    assert classify_script(None).parsed is False


def _record(pid, domain, difficulty, designs):
    return {
        "problem_id": pid,
        "domain": domain,
        "difficulty": difficulty,
        "designs": [
            {
                "valid": script is not None,
                "pattern": "declared",
                "script": script,
                "reward": reward,
                "executions": [{"correct": c} for c in correct],
            }
            for script, reward, correct in designs
        ],
    }


SINGLE = (PACKAGE / "designs/single_agent.py").read_text()
REFLECT = (PACKAGE / "designs/reflection.py").read_text()


def test_distributions_summary_and_comparison():
    before = rows_from_records(
        [
            _record("p1", "math", 1.0, [(SINGLE, 1.0, [True]), (SINGLE, 0.0, [False])]),
            _record("p2", "code", 3.0, [(None, 0.0, []), (SINGLE, 0.5, [True, False])]),
        ]
    )
    after = rows_from_records(
        [
            _record("p1", "math", 1.0, [(SINGLE, 1.0, [True]), (REFLECT, 1.0, [True])]),
            _record("p2", "code", 3.0, [(REFLECT, 1.0, [True, True]), (REFLECT, 0.0, [False])]),
        ]
    )
    assert [r.pattern for r in before] == ["single", "single", "invalid", "single"]
    assert [r.difficulty for r in before] == ["1", "1", "3", "3"]
    assert pattern_distribution(before) == {"all": {"single": 0.75, "invalid": 0.25}}
    assert pattern_distribution(after, "domain") == {
        "code": {"reflection": 1.0},
        "math": {"single": 0.5, "reflection": 0.5},
    }
    assert pattern_distribution(after, "difficulty")["3"] == {"reflection": 1.0}
    with pytest.raises(ValueError):
        pattern_distribution(after, "colour")
    summary = structure_summary(before)
    assert summary["valid_frac"] == 0.75 and summary["mean_agents"] == 1.0
    assert summary["accuracy/single"] == pytest.approx((1 + 0 + 0.5) / 3)
    comparison = compare_designs(before, after)
    assert comparison["delta"]["valid_frac"] == pytest.approx(0.25)
    assert comparison["delta"]["mean_agents"] == pytest.approx(0.75)  # 1 -> 1.75
    assert comparison["delta"]["patterns/reflection"] == pytest.approx(0.75)
    assert comparison["after_distribution"]["code"] == {"reflection": 1.0}
    assert "| valid_frac | 0.750 | 1.000 | +0.250 |" in comparison_markdown(comparison)
    table = distribution_markdown(pattern_distribution(before, "domain"), "domain")
    assert table.splitlines()[0] == "| domain | single | invalid |"
    assert "| code | 50% | 50% |" in table


def test_rows_take_difficulty_from_a_lookup_when_records_lack_it():
    record = _record("p9", "math", None, [(SINGLE, 1.0, [True])])
    del record["difficulty"]
    assert rows_from_records([record], {"p9": 4.0})[0].difficulty == "4"
    assert rows_from_records([record])[0].difficulty == "unknown"
