"""Design extraction and the static check: every example passes, each reason has a case."""

from __future__ import annotations

import textwrap
import warnings
from pathlib import Path

import pytest

from metaagentx.rollout.extract import (
    REJECT_REASONS,
    RejectedDesignError,
    ScriptLimits,
    check_script,
    extract_design,
    extract_script,
    parse_pattern,
)

DESIGNS = sorted((Path(__file__).resolve().parents[1] / "examples" / "designs").glob("[!_]*.py"))
TASK = (
    "Let n be the smallest positive integer such that n^2 + 1 is divisible by 5 and n is "
    "greater than 10. Find the remainder when n^3 is divided by 7."
)
AGENT = 'solver = AgentNode(name="Solver", system_prompt="You solve problems.", max_turns=1)\n'
HEADER = "from workflow import AgentNode, Workflow\n"
RUN = "workflow = Workflow(name='w')\nworkflow.add_node(solver)\nresult = workflow.run()\n"


def reply(script: str, pattern: str = "single_agent") -> str:
    return f"Analysis: easy task.\nPattern: {pattern}\n```python\n{script}```\n"


def body(*lines: str) -> str:
    """A valid single-agent script with `lines` inserted before the run."""
    return HEADER + AGENT + "".join(line + "\n" for line in lines) + RUN


def test_examples_exist() -> None:
    assert len(DESIGNS) >= 5


@pytest.mark.parametrize("path", DESIGNS, ids=lambda p: p.stem)
def test_every_example_design_is_valid(path: Path) -> None:
    design = extract_design(reply(path.read_text(), path.stem), task_prompt=TASK)
    assert design.valid, (design.reason, design.detail)
    assert design.reason is None
    assert design.pattern == path.stem
    assert design.analysis == "easy task."
    assert "AgentNode" in design.constructs and "Workflow" in design.constructs
    assert design.require_valid() == design.script


VALID = {
    "stdlib imports": body("import math", "from collections import Counter", "import re as r"),
    "aliases": (
        "from workflow import AgentNode as Agent, Workflow as Flow\n"
        "a = Agent(name='A', system_prompt='Solve.')\nf = Flow()\nf.add_node(a)\nf.run()\n"
    ),
    "module attribute style": (
        "import workflow\nimport workflow.nodes\n"
        "a = workflow.AgentNode('A', 'Solve.')\nb = workflow.AgentNode('B', 'Check.')\n"
        "r = workflow.nodes.ReflectionNode('R', agent=a, critic_agent=b)\nr.run(question)\n"
    ),
    "agent subclass": (
        "from workflow import AgentNode, Workflow\n"
        "class Careful(AgentNode):\n"
        "    def __init__(self, name):\n"
        "        super().__init__(name, 'Be careful.')\n"
        "workflow = Workflow()\nworkflow.add_node(Careful('C'))\n"
    ),
    "workflow bound but not run (the harness runs it)": (
        f"{HEADER}{AGENT}workflow = Workflow()\nworkflow.add_node(solver)\n"
    ),
    "getattr with a plain constant": body("label = getattr(solver, 'name')"),
    "main guard": (
        f"{HEADER}{AGENT}if __name__ == '__main__':\n    Workflow().add_node(solver).run()\n"
    ),
    "library module path": (
        "from metaagentx.mas import AgentNode\n"
        "from metaagentx.mas.nodes import EnsembleNode\n"
        "e = EnsembleNode('E', [AgentNode('A', 'x'), AgentNode('B', 'y')])\ne.run()\n"
    ),
    "harmless dunder named in a prompt": body("tip = 'Define __eq__ and __lt__ if needed.'"),
    "short phrase of the task in a prompt": body("hint = 'Think about n^2 + 1 modulo 5 first.'"),
}


@pytest.mark.parametrize("script", VALID.values(), ids=list(VALID))
def test_valid_scripts(script: str) -> None:
    check = check_script(script, task_prompt=TASK)
    assert check.reason is None, check.detail


REJECTED = [
    ("no_code_block", "I would use a reflection pattern here.\nPattern: reflection"),
    ("no_code_block", "```bash\necho hi\n```"),
    ("syntax_error", reply("workflow = Workflow(\n")),
    ("syntax_error", reply("x = 1\n  y = 2\n")),
    ("forbidden_attribute", reply(body("import os", "os.system('id')"))),
    ("forbidden_import", reply(body("import ctypes"))),
    ("forbidden_import", reply(body("import importlib"))),
    ("forbidden_attribute", reply(body("import sys", "m = sys.modules"))),
    ("forbidden_name", reply(body("import os", "shell = os"))),
    ("forbidden_import", reply(body("import pathlib"))),
    ("forbidden_import", reply(body("from . import secrets"))),
    ("forbidden_import", reply(body("from metaagentx import sandbox"))),
    ("forbidden_import", reply(body("import socket, math"))),
    ("forbidden_name", reply(body("os = __import__('os')"))),
    ("forbidden_name", reply(body("g = getattr(solver.run, '__globals__')"))),
    ("forbidden_name", reply(body("g = getattr(solver, 'run' + '_x')"))),
    ("forbidden_name", reply(body("get = getattr"))),
    ("forbidden_name", reply(body("data = open('/etc/passwd').read()"))),
    ("forbidden_name", reply(body("eval('1 + 1')"))),
    ("forbidden_name", reply(body("exec('x = 1')"))),
    ("forbidden_name", reply(body("code = compile('1', 'f', 'eval')"))),
    ("forbidden_name", reply(body("env = globals()"))),
    ("forbidden_name", reply(body("line = input()"))),
    ("forbidden_name", reply(body("from operator import attrgetter"))),
    ("forbidden_name", reply(body("leak = '{0.__globals__}'.format(solver.run)"))),
    ("forbidden_name", reply(body("b = __builtins__"))),
    ("forbidden_attribute", reply(body("subs = ().__class__.__base__.__subclasses__()"))),
    ("forbidden_attribute", reply(body("g = solver.run.__globals__"))),
    ("forbidden_attribute", reply(body("d = solver.__dict__"))),
    ("forbidden_attribute", reply(body("f = (x for x in ()).gi_frame.f_back"))),
    ("no_agent", reply(HEADER + "workflow = Workflow()\nresult = workflow.run()\n")),
    ("no_run", reply(HEADER + AGENT + "flow = Workflow()\nflow.add_node(solver)\n")),
    ("too_long", reply(body("x = '" + "a" * 9000 + "'"))),
    ("retyped_task", reply(HEADER + AGENT + f"Workflow().add_node(solver).run({TASK!r})\n")),
    (
        "retyped_task",
        reply(body(f"solver.system_prompt = 'Solve: {TASK[:80]} carefully.'")),
    ),
]


@pytest.mark.parametrize(("reason", "text"), REJECTED, ids=[r for r, _ in REJECTED])
def test_rejections(reason: str, text: str) -> None:
    design = extract_design(text, task_prompt=TASK)
    assert not design.valid
    assert design.reason == reason, design.detail
    assert design.detail
    with pytest.raises(RejectedDesignError):
        design.require_valid()


def test_every_reason_has_a_case() -> None:
    covered = {reason for reason, _ in REJECTED}
    assert covered == set(REJECT_REASONS)


def test_size_limits_are_configurable() -> None:
    script = body(*(f"x{i} = {i}" for i in range(30)))
    assert check_script(script).reason is None
    assert check_script(script, limits=ScriptLimits(max_lines=20)).reason == "too_long"
    assert check_script(script, limits=ScriptLimits(max_ast_nodes=50)).reason == "too_long"
    assert check_script(script, limits=ScriptLimits(max_chars=100)).reason == "too_long"


def test_retyping_short_task_is_caught_but_skipped_without_a_task() -> None:
    script = HEADER + AGENT + "Workflow().add_node(solver).run('What is 17 * 23?')\n"
    assert check_script(script, task_prompt="What is 17 * 23?").reason == "retyped_task"
    assert check_script(script).reason is None
    assert check_script(script, task_prompt="Compute 5 + 8.").reason is None


def test_last_python_block_wins_and_think_is_ignored() -> None:
    text = textwrap.dedent(
        """\
        <think>maybe ```python
        import os
        ``` no</think>
        Analysis: two tries.
        ```python
        first = 1
        ```
        Pattern: reflection
        ```text
        not code
        ```
        ```python
        second = 2
        ```
        """
    )
    assert extract_script(text) == "second = 2\n"
    assert parse_pattern(text) == "reflection"


def test_unterminated_fence_is_taken_to_the_end() -> None:
    text = "Pattern: single_agent\n```python\n" + body()
    design = extract_design(text)
    assert design.valid, design.detail
    assert design.script == body()


def test_untagged_fence_and_code_tags_are_fallbacks() -> None:
    assert extract_script("```\nx = 1\n```") == "x = 1\n"
    paper_style = f"Pattern: Single Agent\n<code>\n{body()}</code>"
    design = extract_design(paper_style)
    assert design.valid, design.detail
    assert design.pattern == "single_agent"
    assert extract_script("```python\n\n```") is None


@pytest.mark.parametrize(
    ("line", "name"),
    [
        ("Pattern: reflection", "reflection"),
        ("**Pattern:** Ensemble-Vote", "ensemble_vote"),
        ("pattern name: `code_writer_tester`", "code_writer_tester"),
        ("## Pattern - Debate with judge", "debate_with_judge"),
        ("No declared structure.", None),
    ],
)
def test_parse_pattern(line: str, name: str | None) -> None:
    assert parse_pattern(f"Analysis: x\n{line}\n") == name


def test_pattern_is_optional_and_analysis_is_kept() -> None:
    design = extract_design(f"Analysis: Needs checking.\n```python\n{body()}```")
    assert design.valid and design.pattern is None
    assert design.analysis == "Needs checking."


def test_model_written_code_is_checked_and_modelled_without_warnings() -> None:
    """`1if` is legal Python that makes the parser warn; checking thousands of designs must not
    print thousands of warnings (or fail under -W error)."""
    from metaagentx.eval.design_ast import model_script

    script = (
        "from workflow import AgentNode, Workflow\n"
        "n = 1if True else 2\n"
        "w = Workflow()\nw.add_node(AgentNode('A', 'Solve.'))\nresult = w.run()\n"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_script(script).reason is None
        assert model_script(script).parsed
