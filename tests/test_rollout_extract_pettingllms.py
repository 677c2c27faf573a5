"""The MetaAgent-X authors' designer format and dialect: extraction, the dialect-aware static
check (os/sys allowlist, subprocess), and their designer prompt as a prompt style."""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Sequence

import pytest

from metaagentx.config import build_config
from metaagentx.llm.base import GenerationRequest, GenerationResult
from metaagentx.rollout.extract import check_script, extract_design, extract_script, parse_pattern
from metaagentx.rollout.factory import tree_settings
from metaagentx.rollout.pettingllms_prompt import (
    CODE_EXAMPLES,
    MATH_EXAMPLES,
    SYSTEM_PROMPT,
    USER_PREFIX,
    PettingExample,
)
from metaagentx.rollout.prompts import PromptTooLongError, designer_messages
from metaagentx.rollout.rewards import ExecutionReward
from metaagentx.rollout.script_check import PETTINGLLMS_CLASSES, SAFE_MODULE_USES, SUBPROCESS_FIX
from metaagentx.rollout.tree import (
    DesignNode,
    ExecutionNode,
    RolloutEngine,
    TreeSettings,
    designer_prompt_messages,
)
from metaagentx.tasks.base import Task, TestCase

TASK = (
    "Let n be the smallest positive integer such that n^2 + 1 is divisible by 5 and n is "
    "greater than 10. Find the remainder when n^3 is divided by 7."
)
SCRIPT = (
    "from workflow import AgentNode, Workflow, ToolRegistry\n"
    "solver = AgentNode(name='Solver', system_prompt='Solve it.', "
    "tool_registry=ToolRegistry(), max_turns=1)\n"
    "workflow = Workflow(name='w')\n"
    "workflow.add_node(solver)\n"
    "result = workflow.run(question)\n"
    "print(result.content)\n"
)
ALL_EXAMPLES = [*MATH_EXAMPLES.values(), *CODE_EXAMPLES.values()]


def their_reply(script: str, pattern: str = "math_ensemble_vote - three solvers") -> str:
    """A reply in the output format their prompt asks for."""
    return (
        "Problem Type: MATH\n\n"
        "Problem Analysis: A modular arithmetic search.\nSmall cases suffice.\n\n"
        f"Workflow Pattern: {pattern}\n\n"
        "Agent Design: three solvers and a judge\n\n"
        "Workflow Flow: solvers vote, the judge settles a split\n\n"
        f"<code>\n```python\n{script}```\n</code>\n"
    )


# --- extraction of their format -------------------------------------------------------------


def test_their_template_reply_is_extracted() -> None:
    design = extract_design(their_reply(SCRIPT), task_prompt=TASK)
    assert design.valid, design.detail
    assert design.script == SCRIPT
    assert design.pattern == "math_ensemble_vote"
    assert design.analysis == "A modular arithmetic search.\nSmall cases suffice."


def test_paper_reply_with_reason_and_unfenced_code_tags() -> None:
    text = (
        "This is a counting problem with linear constraints.\n"
        "Workflow Pattern: math_ensemble_judge\n"
        "Reason: The constraints can be approached algebraically or by cases.\n"
        f"<code>\n{SCRIPT}</code>"
    )
    design = extract_design(text, task_prompt=TASK)
    assert design.valid, design.detail
    assert design.script == SCRIPT
    assert design.pattern == "math_ensemble_judge"
    assert design.analysis == "The constraints can be approached algebraically or by cases."


def test_labels_run_together_and_code_on_the_tag_line() -> None:
    """As the paper's appendix prints it: labels on one line, code right after `<code>`."""
    text = (
        "Workflow Pattern:math_ensemble_judge Reason:Multiple perspectives help.\n"
        f"<code> {SCRIPT}</code>"
    )
    design = extract_design(text)
    assert design.valid, design.detail
    assert design.script == SCRIPT
    assert (design.pattern, design.analysis) == (
        "math_ensemble_judge",
        "Multiple perspectives help.",
    )


def test_pattern_and_analysis_inside_thinking_are_used_when_the_prose_has_none() -> None:
    """Their older prompt asks for the analysis inside `<think>`."""
    text = (
        "<think>\nProblem Type: MATH\nProblem Analysis: Needs a check of cases.\n"
        "Workflow Pattern: math_single_agent (easy)\n</think>\n"
        f"<code>\n```python\n{SCRIPT}```\n</code>"
    )
    design = extract_design(text)
    assert design.valid and design.script == SCRIPT
    assert (design.pattern, design.analysis) == ("math_single_agent", "Needs a check of cases.")


def test_our_format_keeps_its_analysis_beside_labels_in_thinking() -> None:
    text = (
        "<think>Reason: maybe a debate.\nPattern: debate</think>\n"
        f"Analysis: One solver suffices.\nPattern: single_agent\n```python\n{SCRIPT}```"
    )
    design = extract_design(text)
    assert (design.pattern, design.analysis) == ("single_agent", "One solver suffices.")


def test_visible_pattern_wins_over_thinking() -> None:
    text = (
        "<think>Workflow Pattern: math_single_agent</think>\n"
        f"Workflow Pattern: math_self_consistency\n<code>\n{SCRIPT}</code>"
    )
    assert extract_design(text).pattern == "math_self_consistency"


@pytest.mark.parametrize(
    ("line", "name"),
    [
        ("Workflow Pattern: math_ensemble_judge", "math_ensemble_judge"),
        ("Workflow Pattern: **math_ensemble_vote** - moderate difficulty", "math_ensemble_vote"),
        (
            "Workflow Pattern: math_solver_critic_reflection (needs checking)",
            "math_solver_critic_reflection",
        ),
        ("Workflow Pattern: [math_single_agent] because it is easy", "math_single_agent"),
        ("Workflow Pattern: math_ensemble_verify \u2014 most thorough", "math_ensemble_verify"),
        ("**Workflow Pattern**: Math Ensemble with Judge", "math_ensemble_with_judge"),
        ("Workflow Pattern: math_self_consistency. Three runs vote.", "math_self_consistency"),
        ("3. **Workflow Pattern Selection**: Which pattern suits it?", None),
    ],
)
def test_their_pattern_lines(line: str, name: str | None) -> None:
    assert parse_pattern(f"Problem Type: MATH\n{line}\n") == name


def test_code_tag_block_against_fences_elsewhere() -> None:
    # a fenced snippet in the analysis does not beat the script in <code> tags
    snippet = "Reason: try `x` first:\n```python\nprint(1)\n```\n"
    assert extract_script(f"{snippet}<code>\n{SCRIPT}</code>") == SCRIPT
    # a script fenced after an earlier <code> draft is the later one: it wins
    draft = "<code>\nx = 1\ny = 2\n</code>\nBetter:\n"
    assert extract_script(f"{draft}```python\n{SCRIPT}```") == SCRIPT
    # inline <code> in prose does not steal a fenced script
    inline = "Analysis: call <code>workflow.run</code> once.\nPattern: single_agent\n"
    assert extract_script(f"{inline}```python\n{SCRIPT}```") == SCRIPT
    # an unterminated <code> block (reply cut off) runs to the end
    assert extract_script(f"Workflow Pattern: x\n<code>\n```python\n{SCRIPT}") == SCRIPT


# --- the dialect-aware check ----------------------------------------------------------------


@pytest.mark.parametrize("example", ALL_EXAMPLES, ids=lambda e: e.name)
@pytest.mark.parametrize("dialect", ["auto", "pettingllms"])
def test_their_few_shot_scripts_pass(example: PettingExample, dialect: str) -> None:
    check = check_script(example.code, task_prompt=TASK, dialect=dialect)
    assert check.reason is None, check.detail
    assert {"AgentNode", "Workflow", "ToolRegistry"} <= set(check.constructs)


@pytest.mark.parametrize("example", ALL_EXAMPLES, ids=lambda e: e.name)
def test_their_few_shots_as_replies_are_valid_designs(example: PettingExample) -> None:
    design = extract_design(their_reply(example.code, example.name), task_prompt=TASK)
    assert design.valid, design.detail
    assert design.pattern == example.name and design.script == example.code


SAFE_USES = [
    "import os, sys",
    "import os.path",
    "from os import path, getenv",
    "from sys import stdout as out",
    "here = os.path.dirname(os.path.abspath('x'))",
    "key = os.getenv('SERPER_KEY') or os.environ.get('KEY', '')",
    "ok = 'HOME' in os.environ and os.environ['HOME'] != ''",
    "cwd, sep, nl = os.getcwd(), os.sep, os.linesep",
    "sys.setrecursionlimit(10000)",
    "major = sys.version_info.major if sys.maxsize > 2**32 else sys.version",
    "sys.stdout.write('x')\nsys.stderr.flush()",
    "args, paths = list(sys.argv), list(sys.path)",
    "print('done', file=sys.stderr)",
    "if False:\n    sys.exit(1)",
]


@pytest.mark.parametrize("dialect", ["metaagentx", "pettingllms"])
@pytest.mark.parametrize("use", SAFE_USES)
def test_harmless_os_and_sys_uses_pass_in_both_dialects(use: str, dialect: str) -> None:
    check = check_script(f"import os, sys\n{use}\n{SCRIPT}", dialect=dialect)
    assert check.reason is None, check.detail
    assert check.dialect == dialect


ALLOWED = "allowed"  # the detail lists the allowed uses and the dialect's code tool
READ_ONLY = "read-only"  # the detail says os/sys are read-only
UNSAFE_USES = [
    ("forbidden_attribute", "os.system('id')", ALLOWED),
    ("forbidden_attribute", "pipe = os.popen('id')", ALLOWED),
    ("forbidden_attribute", "os.execv('/bin/sh', ['sh'])", ALLOWED),
    ("forbidden_attribute", "pid = os.fork()", ALLOWED),
    ("forbidden_attribute", "os.write(1, b'x')", ALLOWED),
    ("forbidden_attribute", "fd = os.open('/etc/passwd', 0)", ALLOWED),
    ("forbidden_attribute", "mods = sys.modules", ALLOWED),
    ("forbidden_attribute", "frame = sys._getframe()", ALLOWED),
    ("forbidden_attribute", "os.path.os.system('id')", ALLOWED),  # os.path's own `os`
    ("forbidden_attribute", "sys.stdout.buffer.write(b'x')", ALLOWED),
    ("forbidden_attribute", "sys.path.insert(0, '/tmp')", ALLOWED),
    ("forbidden_attribute", "v = sys.version_info.__class__", ALLOWED),
    ("forbidden_attribute", "os.environ.update(HOME='/')", ALLOWED),
    ("forbidden_attribute", "import os as o\no.kill(1, 9)", ALLOWED),
    ("forbidden_attribute", "os.environ['PYTHONPATH'] = '/tmp'", READ_ONLY),
    ("forbidden_attribute", "del os.environ['HOME']", READ_ONLY),
    ("forbidden_attribute", "sys.stdout = None", READ_ONLY),
    ("forbidden_name", "os = None", READ_ONLY),
    ("forbidden_name", "shell = os", ALLOWED),
    ("forbidden_name", "modules = [sys][0]", ALLOWED),
    ("forbidden_name", "from os import path as p\nq = p", ALLOWED),
    ("forbidden_import", "from os import system", ALLOWED),
    ("forbidden_import", "from sys import modules", ALLOWED),
    ("forbidden_import", "from os import *", ALLOWED),
]


@pytest.mark.parametrize("dialect", ["metaagentx", "pettingllms"])
@pytest.mark.parametrize(("reason", "use", "fix"), UNSAFE_USES, ids=[u for _, u, _ in UNSAFE_USES])
def test_other_os_and_sys_uses_are_rejected_with_the_fix(
    reason: str, use: str, fix: str, dialect: str
) -> None:
    check = check_script(f"import os, sys\n{use}\n{SCRIPT}", dialect=dialect)
    assert check.reason == reason, check.detail
    if fix == READ_ONLY:
        assert "read-only" in check.detail
    else:
        tool = "ToolRegistry(['python'])" if dialect == "metaagentx" else "python_execute"
        assert "only os.path.<function>" in check.detail and tool in check.detail


def test_the_allowlist_holds_no_process_file_or_module_table_access() -> None:
    dangerous = {
        "system",
        "popen",
        "fork",
        "kill",
        "modules",
        "_getframe",
        "open",
        "putenv",
        "unsetenv",
        "remove",
        "unlink",
        "chdir",
        "execv",
        "execve",
        "spawnv",
        "dup2",
    }
    assert not {use.rsplit(".", 1)[-1] for use in SAFE_MODULE_USES} & dangerous
    writes = {use for use in SAFE_MODULE_USES if use.endswith(".write")}
    assert writes == {"sys.stdout.write", "sys.stderr.write"}


SUBPROCESS_DESIGN = (
    "import subprocess\n"
    "def execute_code(code: str) -> str:\n"
    "    done = subprocess.run(['python', '-c', code], capture_output=True, text=True, "
    "timeout=10)\n"
    "    return done.stdout or done.stderr\n"
    "tools = ToolRegistry()\n"
    "tools.register('execute_code', execute_code, 'Run Python code.', {'type': 'object'})\n"
    + SCRIPT
)


@pytest.mark.parametrize("dialect", ["auto", "pettingllms"])
def test_subprocess_is_theirs(dialect: str) -> None:
    check = check_script(SUBPROCESS_DESIGN, dialect=dialect)
    assert check.reason is None, check.detail
    assert check.dialect == "pettingllms"


@pytest.mark.parametrize("statement", ["import subprocess", "from subprocess import run"])
def test_subprocess_in_our_dialect_names_the_python_tool(statement: str) -> None:
    check = check_script(f"{statement}\n{SCRIPT}", dialect="metaagentx")
    assert check.reason == "forbidden_import"
    assert SUBPROCESS_FIX in check.detail
    assert SUBPROCESS_FIX == "use ToolRegistry(['python']) instead of subprocess"


def test_forbidden_import_lists_what_may_be_imported() -> None:
    ours = check_script(f"import socket\n{SCRIPT}", dialect="metaagentx")
    assert ours.reason == "forbidden_import"
    assert all(word in ours.detail for word in ("import only", "workflow.nodes", "math", "json"))
    assert "utils.environments.math_env" not in ours.detail
    theirs = check_script(f"import socket\n{SCRIPT}", dialect="pettingllms")
    assert "utils.environments.math_env" in theirs.detail and "subprocess" in theirs.detail


def test_their_modules_are_imports_only_in_their_dialect() -> None:
    script = "from utils.environments.math_env import MathEnvironment\n" + SCRIPT
    assert check_script(script, dialect="pettingllms").reason is None
    assert check_script(script, dialect="auto").dialect == "pettingllms"
    assert check_script(script, dialect="metaagentx").reason == "forbidden_import"
    # and our library's own package path is not theirs
    ours = "from metaagentx.mas import AgentNode\n" + SCRIPT
    assert check_script(ours, dialect="pettingllms").reason == "forbidden_import"


def test_constructs_name_their_classes() -> None:
    script = (
        "from workflow import AgentNode, Workflow, ConditionalWorkflow, LoopWorkflow, AgentGraph\n"
        "from workflow import Message, MessageType, Context, Edge, create_simple_chain\n"
        "from workflow.nodes import RouterNode, DebateNode\n"
        "a = AgentNode('A', 'Solve.')\n"
        "b = AgentNode('B', 'Check.')\n"
        "graph = AgentGraph('g', max_steps=4)\n"
        "edge = Edge('A', 'B', None)\n"
        "loop = LoopWorkflow('loop', max_iterations=2)\n"
        "gate = ConditionalWorkflow('gate')\n"
        "debate = DebateNode('d', [a, b])\n"
        "start = Message(question, MessageType.USER_INPUT)\n"
        "context = Context([start], {}, {})\n"
        "workflow = Workflow('w')\n"
        "workflow.add_node(debate)\n"
        "result = workflow.run(question)\n"
    )
    check = check_script(script, dialect="auto")
    assert check.reason is None, check.detail
    assert check.dialect == "pettingllms"
    assert set(check.constructs) == {
        "AgentGraph", "AgentNode", "ConditionalWorkflow", "Context", "DebateNode", "Edge",
        "LoopWorkflow", "Message", "Workflow",
    }  # fmt: skip


def test_their_class_names_exist_in_their_package() -> None:
    if importlib.util.find_spec("metaagentx.mas.pettingllms") is None:
        pytest.skip("metaagentx.mas.pettingllms is not importable")
    try:
        package = importlib.import_module("metaagentx.mas.pettingllms")
    except ImportError as exc:  # being written: its absence is not this module's failure
        pytest.skip(f"metaagentx.mas.pettingllms does not import yet: {exc}")
    missing = sorted(name for name in PETTINGLLMS_CLASSES if not hasattr(package, name))
    assert not missing


@pytest.mark.parametrize(
    ("reason", "text", "fix"),
    [
        ("no_code_block", "Workflow Pattern: math_single_agent\nReason: easy", "```python"),
        ("syntax_error", "<code>\nworkflow = Workflow(\n</code>", "valid Python"),
        ("too_long", f"<code>\n{SCRIPT}x = '{'a' * 9000}'\n</code>", "shorten"),
        (
            "no_agent",
            "<code>\nfrom workflow import Workflow\nWorkflow().run(question)\n</code>",
            "build at least one AgentNode",
        ),
        (
            "no_run",
            "<code>\nfrom workflow import AgentNode\na = AgentNode('A', 'x')\n</code>",
            "workflow.run(",
        ),
        ("retyped_task", f"<code>\n{SCRIPT}q = {TASK!r}\n</code>", "variable `question`"),
        (
            "forbidden_name",
            f"<code>\n{SCRIPT}data = open('/etc/passwd').read()\n</code>",
            "pass data between agents",
        ),
        ("forbidden_name", f"<code>\n{SCRIPT}eval('1')\n</code>", "code tool"),
        (
            "forbidden_name",
            f"<code>\n{SCRIPT}f = getattr(solver, 'r' + 'un')\n</code>",
            "constant public name",
        ),
        (
            "forbidden_attribute",
            f"<code>\n{SCRIPT}g = solver.run.__globals__\n</code>",
            "public attributes",
        ),
    ],
)
def test_every_rejection_names_a_fix(reason: str, text: str, fix: str) -> None:
    design = extract_design(text, task_prompt=TASK)
    assert design.reason == reason, design.detail
    assert fix in design.detail, design.detail


# --- threading the setting ------------------------------------------------------------------


def test_config_sets_the_dialect_and_the_prompt_style() -> None:
    config = build_config(
        {}, ["sandbox.dialect=metaagentx", "rollout.designer_prompt=pettingllms_simple"]
    )
    settings = tree_settings(config)
    assert (settings.dialect, settings.prompt_style) == ("metaagentx", "pettingllms_simple")
    assert tree_settings(build_config()).dialect == "auto"
    with pytest.raises(ValueError, match="dialect"):
        TreeSettings(dialect="klingon")  # type: ignore[arg-type]


class _OneReply:
    """A designer that always answers `text`."""

    def __init__(self, text: str) -> None:
        self.text = text

    async def agenerate(self, request: GenerationRequest) -> GenerationResult:
        return GenerationResult([1], [2, 3], [-0.1, -0.2], self.text, "stop", role="designer")


class _RecordedExecutions:
    """Executions that only record which designs would run."""

    def __init__(self) -> None:
        self.ran: list[str] = []

    def prepare(self, tasks: Sequence[Task]) -> None:
        pass

    async def execute(
        self, task: Task, design: DesignNode, n: int, step: int, settings: TreeSettings
    ) -> ExecutionNode:
        self.ran.append(design.design_id)
        return ExecutionNode(f"{design.design_id}-{n}", None, ExecutionReward(0.0, reason="cut"))


@pytest.mark.parametrize(("dialect", "valid"), [("auto", True), ("metaagentx", False)])
def test_the_engine_checks_designs_in_the_configured_dialect(dialect: str, valid: bool) -> None:
    settings = TreeSettings(num_designs=1, num_executions=1, dialect=dialect)  # type: ignore[arg-type]
    executions = _RecordedExecutions()
    reply = f"Workflow Pattern: code_single_agent\n<code>\n{SUBPROCESS_DESIGN}</code>"
    engine = RolloutEngine(
        _OneReply(reply),
        None,  # type: ignore[arg-type]  # executions are recorded, not run
        settings,
        None,  # type: ignore[arg-type]
        executions=executions,
    )
    tree = asyncio.run(engine.rollout([Task("t1", "math", "What is 6 * 7?", answer="42")]))
    (design,) = tree.designs()
    assert design.design.valid is valid
    assert design.design.pattern == "code_single_agent"
    assert executions.ran == ([design.design_id] if valid else [])
    if valid:
        assert design.design.dialect == "pettingllms"
    else:
        assert design.design.reason == "forbidden_import"
        assert SUBPROCESS_FIX in design.design.detail


# --- their designer prompt as a prompt style --------------------------------------------------


@pytest.mark.parametrize(("domain", "examples"), [("math", MATH_EXAMPLES), ("code", CODE_EXAMPLES)])
def test_pettingllms_style_renders_their_prompt(
    domain: str, examples: dict[str, PettingExample]
) -> None:
    settings = TreeSettings(designer_prompt="pettingllms")
    tests = (TestCase("stdio", "1\n", "1\n"),) if domain == "code" else ()
    task = Task("t1", domain, TASK, answer="3", public_tests=tests)  # type: ignore[arg-type]
    system, user = designer_prompt_messages(settings, task)
    assert (system["role"], user["role"]) == ("system", "user")
    assert system["content"] == SYSTEM_PROMPT
    text = user["content"]
    assert f"- **Specific Question**: {TASK}\n" in text  # the task, once, where they put it
    assert text.count(TASK) == 1
    for line in (
        "Workflow Pattern: [Selected pattern and why]",
        "<code>\n```python\n...\n```\n</code>",
        f"Problem Type: {domain.upper()}",
        "Problem Analysis: [",
    ):
        assert line in text
    assert "\\boxed{}" in text if domain == "math" else "stdin" in text
    for example in examples.values():
        assert example.code in text and f"**{example.name}**" in text
        assert "workflow.run(question)" in example.code and TASK not in example.code
    assert "{" + "examples}" not in text and "{{" not in text  # the template was filled


def test_pettingllms_simple_is_their_training_prompt() -> None:
    messages = designer_messages(TASK, "math", style="pettingllms_simple")
    assert messages == [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": USER_PREFIX + TASK},
    ]
    assert USER_PREFIX == "Design Multi Agent System for the Question: "


def test_pettingllms_examples_selection_and_budget() -> None:
    chosen = designer_messages(TASK, "math", style="pettingllms", examples=["math_single_agent"])
    text = chosen[1]["content"]
    assert MATH_EXAMPLES["math_single_agent"].code in text
    assert MATH_EXAMPLES["math_ensemble_vote"].code not in text
    with pytest.raises(ValueError, match="unknown pettingllms example"):
        designer_messages(TASK, "math", style="pettingllms", examples=["single_agent"])
    bare = designer_messages(TASK, "math", style="pettingllms", examples=[])
    size = sum(len(m["content"]) for m in bare)
    fitted = designer_messages(TASK, "math", style="pettingllms", max_chars=size)
    assert fitted == bare
    with pytest.raises(PromptTooLongError):
        designer_messages(TASK, "math", style="pettingllms", max_chars=size - 1)
