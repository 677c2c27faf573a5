"""The designer prompt: generated from the library, parseable examples, size budgets."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from metaagentx.mas import Workflow
from metaagentx.mas.tools import BUILTIN_TOOLS
from metaagentx.rollout.extract import ALLOWED_STDLIB, extract_design
from metaagentx.rollout.prompts import (
    API_CLASSES,
    DEFAULT_EXAMPLES,
    DESIGNS_ENV,
    PromptTooLongError,
    api_reference,
    default_designs_dir,
    designer_messages,
    designer_system_prompt,
    load_examples,
    pattern_names,
)

DESIGNS = Path(__file__).resolve().parents[1] / "examples" / "designs"
TASK = "Find the sum of all positive divisors of 360."
COMPACT_BUDGET = 4000  # chars: the tiny model's context must fit prompt + task + design


def init_params(cls: type) -> list[inspect.Parameter]:
    return [p for p in inspect.signature(cls).parameters.values() if p.name != "self"]


@pytest.mark.parametrize("cls", API_CLASSES, ids=lambda c: c.__name__)
def test_api_reference_follows_signatures_and_docstrings(cls: type) -> None:
    full, compact = api_reference(), api_reference(compact=True)
    for param in init_params(cls):
        assert param.name in full
        if param.kind is not param.KEYWORD_ONLY:
            assert param.name in compact
    header = next(line for line in full.splitlines() if line.startswith(f"{cls.__name__}("))
    assert header.startswith(f"{cls.__name__}({init_params(cls)[0].name}")
    doc_tail = (inspect.getdoc(cls) or "").strip().splitlines()[-1].strip()
    assert doc_tail in full  # the whole docstring is there, through its last line


def test_api_reference_lists_imports_workflow_methods_and_tools() -> None:
    compact = api_reference(compact=True)
    assert "from workflow import AgentNode, ToolRegistry, Workflow" in compact
    assert "from workflow.nodes import DebateNode, EnsembleNode, ReflectionNode, RouterNode" in (
        compact
    )
    for method in ("add_node", "add_edge", "run"):
        params = [p for p in inspect.signature(getattr(Workflow, method)).parameters if p != "self"]
        assert f".{method}({params[0]}" in compact
    for tool in BUILTIN_TOOLS.values():
        assert tool.description in compact


def test_compact_is_much_shorter_and_fits_a_small_context() -> None:
    full = designer_system_prompt("math")
    compact = designer_system_prompt("math", compact=True)
    assert len(compact) < 0.6 * len(full)
    assert len(compact) < COMPACT_BUDGET
    assert "#" not in compact.split("# Example reply")[1].split("```python")[1]  # no comments


@pytest.mark.parametrize("compact", [False, True])
def test_messages_shape_rules_and_format(compact: bool) -> None:
    messages = designer_messages(TASK, "math", compact=compact)
    assert [m["role"] for m in messages] == ["system", "user"]
    system, user = messages[0]["content"], messages[1]["content"]
    assert TASK in user and TASK not in system
    assert "`question`" in system and "Never copy the task" in system
    assert "Pattern:" in system and "```python" in system
    assert "\\boxed{answer}" in system  # the domain's answer format is named
    for module in ALLOWED_STDLIB:
        assert module in system
    for name in pattern_names():
        assert name in system


def test_code_domain_names_its_answer_format() -> None:
    system = designer_messages(TASK, "code")[0]["content"]
    assert "fenced ```python block" in system and "\\boxed{answer}" not in system


@pytest.mark.parametrize("compact", [False, True])
@pytest.mark.parametrize("name", sorted(p.stem for p in DESIGNS.glob("[!_]*.py")))
def test_every_example_reply_parses_as_a_valid_design(name: str, compact: bool) -> None:
    example = load_examples()[name]
    design = extract_design(example.as_reply(compact), task_prompt=TASK)
    assert design.valid, (design.reason, design.detail)
    assert design.pattern == name
    assert design.analysis == " ".join(example.description.split())
    assert example.description and '"""' not in example.code


def test_example_selection() -> None:
    default = designer_system_prompt("math")
    assert all(f"# Example reply ({n})" in default for n in DEFAULT_EXAMPLES)
    none = designer_system_prompt("math", examples=())
    assert "# Example reply" not in none
    chosen = designer_system_prompt("math", examples=["debate"])
    assert "# Example reply (debate)" in chosen and "DebateNode(name=" in chosen
    with pytest.raises(ValueError, match="unknown example"):
        designer_system_prompt("math", examples=["no_such_pattern"])


def test_max_chars_drops_examples_then_refuses() -> None:
    def size(messages: list[dict[str, str]]) -> int:
        return sum(len(m["content"]) for m in messages)

    everything = designer_messages(TASK, "math", examples=["debate", "reflection"])
    bare = designer_messages(TASK, "math", examples=())
    fitted = designer_messages(
        TASK, "math", examples=["debate", "reflection"], max_chars=size(everything) - 1
    )
    assert "(debate)" in fitted[0]["content"] and "(reflection)" not in fitted[0]["content"]
    assert designer_messages(TASK, "math", max_chars=size(bare)) == bare
    with pytest.raises(PromptTooLongError):
        designer_messages(TASK, "math", max_chars=size(bare) - 1)


def test_pattern_names_and_loader_directory(tmp_path: Path) -> None:
    assert pattern_names() == sorted(p.stem for p in DESIGNS.glob("[!_]*.py"))
    assert default_designs_dir().resolve() == DESIGNS.resolve()
    (tmp_path / "mine.py").write_text('"""Use it always."""\n\nx = 1\n')
    (tmp_path / "__init__.py").write_text('"""Shipped as a package."""\n')
    examples = load_examples(tmp_path)
    assert list(examples) == ["mine"]
    assert examples["mine"].description == "Use it always."
    assert examples["mine"].code == "x = 1\n"
    assert pattern_names(tmp_path) == ["mine"]


def test_environment_overrides_the_designs_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "solo.py").write_text('"""Alone."""\nx = 1\n')
    monkeypatch.setenv(DESIGNS_ENV, str(tmp_path))
    assert default_designs_dir() == tmp_path
    assert pattern_names() == ["solo"]


def test_prompt_without_any_designs(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_examples(tmp_path)
    system = designer_system_prompt("math", examples=(), designs_dir=tmp_path)
    assert "e.g. single_agent, ensemble, reflection, debate, router>" in system
    with pytest.raises(FileNotFoundError):
        designer_system_prompt("math", examples=["single_agent"], designs_dir=tmp_path)


def test_configured_host_tools_reach_the_designer_prompt() -> None:
    """The designer is told which host-side tools exist (config `tools.host`) and how to give
    them to an agent; without any, the prompt is unchanged."""
    from metaagentx.config import build_config
    from metaagentx.rollout.factory import tree_settings
    from metaagentx.rollout.prompts import designer_prompt_messages, host_tools_section
    from metaagentx.tasks.base import Task

    task = Task(id="t", domain="math", prompt="Who won in 1998?", answer="x", source="t")
    search = "tools.host=[{name: search, url: 'http://127.0.0.1:9/s', description: Web search.}]"
    with_tools = designer_prompt_messages(tree_settings(build_config({}, [search])), task)
    plain = designer_prompt_messages(tree_settings(build_config({}, [])), task)
    system = with_tools[0]["content"]
    assert "# Host tools" in system and "- search: Web search." in system
    assert "ToolRegistry(['search'])" in system
    section = host_tools_section([("search", "Web search.")])
    assert plain[0]["content"] == system.replace("\n\n" + section, "")
