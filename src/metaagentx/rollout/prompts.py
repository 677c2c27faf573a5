"""The designer's prompt: the workflow library's API, the rules, the output format, examples.

The API section is generated from the `mas` classes' signatures and docstrings, so the prompt
cannot drift from the library the script runs against. The same strings feed SFT data and RL
rollouts, so a design learned on one is valid on the other. `compact=True` keeps only each
docstring's opening sentences, drops keyword-only options and example comments: for small
models with short contexts (about 3.7K chars with one example, against about 9.7K). The
`minimal` style is one line of instructions and the task: for a tiny model that learns the
library and the output format from SFT data (prompt length is CPU cost in every rollout).
The `pettingllms` styles are the MetaAgent-X authors' own prompts (`pettingllms_prompt`): their
full code-generation prompt, and `pettingllms_simple`, the one their checkpoints are trained on.
"""

from __future__ import annotations

import ast
import inspect
import io
import os
import re
import tokenize
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol, get_args

from metaagentx.mas import (
    AgentNode,
    DebateNode,
    EnsembleNode,
    ReflectionNode,
    RouterNode,
    ToolRegistry,
    Workflow,
)
from metaagentx.mas import nodes as mas_nodes
from metaagentx.mas.prompts import answer_format
from metaagentx.mas.tools import BUILTIN_TOOLS
from metaagentx.rollout import pettingllms_prompt
from metaagentx.rollout.extract import ALLOWED_STDLIB, DEFAULT_LIMITS

if TYPE_CHECKING:
    from metaagentx.tasks.base import Task

API_CLASSES: tuple[type, ...] = (
    Workflow,
    AgentNode,
    ToolRegistry,
    EnsembleNode,
    ReflectionNode,
    DebateNode,
    RouterNode,
)
WORKFLOW_METHODS = ("add_node", "add_edge", "run")
COMPACT_CHARS = 60  # compact descriptions stop after the sentence that reaches this
_LIST_LINE = re.compile(r"^(- |[a-z_]+: )")  # bullets and parameter lines
_SENTENCE_END = re.compile(r"(?<=[.;])\s+(?=[A-Z`])")
DESIGNS_ENV = "METAAGENTX_DESIGNS_DIR"
DEFAULT_EXAMPLES: tuple[str, ...] = ("single_agent", "reflection")
COMPACT_EXAMPLES: tuple[str, ...] = ("single_agent",)

INTRO = (
    "You design a multi-agent system for one task: a short Python script that builds agents "
    "with the `workflow` library and runs them. The same model plays every agent."
)
PromptStyle = Literal["full", "compact", "minimal", "pettingllms", "pettingllms_simple"]
PROMPT_STYLES: tuple[str, ...] = get_args(PromptStyle)
PETTINGLLMS_STYLES: tuple[str, ...] = ("pettingllms", "pettingllms_simple")
MINIMAL_INSTRUCTION = (
    "Design a multi-agent system for the task with the `workflow` library: reply with "
    "Analysis:, Pattern: and one python script."
)
OUTPUT_FORMAT = (
    "Reply in this format and nothing after the code block:\n"
    "Analysis: <1-3 sentences: what the task needs and which structure suits it>\n"
    "Pattern: <the structure's name, e.g. {patterns}>\n"
    "```python\n<the script>\n```"
)


@dataclass(frozen=True)
class DesignExample:
    """One example design: its pattern name, when to use it (module docstring), its code."""

    name: str
    description: str
    code: str

    def as_reply(self, compact: bool = False) -> str:
        """The example written as a model reply in the output format."""
        code = _strip_comments(self.code) if compact else self.code
        summary = " ".join(self.description.split())
        return f"Analysis: {summary}\nPattern: {self.name}\n```python\n{code.strip()}\n```"


class PromptTooLongError(ValueError):
    """The messages exceed `max_chars` even without examples (the task itself is never cut)."""


def default_designs_dir() -> Path:
    """Where the example designs are: $METAAGENTX_DESIGNS_DIR, else the `metaagentx.designs`
    folder shipped with the package (`examples/designs` in a checkout links to it)."""
    candidates = []
    if os.environ.get(DESIGNS_ENV):
        candidates.append(Path(os.environ[DESIGNS_ENV]))
    package = Path(__file__).resolve().parents[1]
    candidates.append(package / "designs")
    for candidate in candidates:
        if candidate.is_dir() and any(candidate.glob("[!_]*.py")):
            return candidate
    raise FileNotFoundError(
        f"no example designs found (looked in {[str(c) for c in candidates]}); set "
        f"{DESIGNS_ENV} or pass directory="
    )


def resolve_designs_dir(value: str | Path) -> Path:
    """A designs folder given as a path, or as a dotted package name (`metaagentx.sft.designs`)
    so configs can name a package's designs without knowing where it is installed."""
    path = Path(value).expanduser()
    if path.is_dir() or not isinstance(value, str) or not re.fullmatch(r"\w+(\.\w+)+", value):
        return path
    try:
        return Path(str(resources.files(value)))
    except ModuleNotFoundError:
        return path


def load_examples(directory: str | Path | None = None) -> dict[str, DesignExample]:
    """Every `*.py` design of `directory` (a path or a package name, see `resolve_designs_dir`;
    default: `default_designs_dir()`), by pattern name; `_*.py` files (an `__init__.py` when
    shipped as a package) are skipped."""
    root = resolve_designs_dir(directory) if directory is not None else default_designs_dir()
    examples = {}
    for path in sorted(root.glob("*.py")):
        if path.name.startswith("_"):
            continue
        source = path.read_text(encoding="utf-8")
        description, code = _split_docstring(source)
        examples[path.stem] = DesignExample(path.stem, description, code)
    if not examples:
        raise FileNotFoundError(f"no *.py designs in {root}")
    return examples


def pattern_names(directory: str | Path | None = None) -> list[str]:
    """The example patterns' names (file stems), sorted."""
    return sorted(load_examples(directory))


def api_reference(compact: bool = False) -> str:
    """The library's API, generated from signatures and docstrings."""
    node_names = [c.__name__ for c in API_CLASSES if c.__module__.startswith(mas_nodes.__name__)]
    base_names = [c.__name__ for c in API_CLASSES if c.__name__ not in node_names]
    lines = [
        f"from workflow import {', '.join(sorted(base_names))}",
        f"from workflow.nodes import {', '.join(sorted(node_names))}",
    ]
    for cls in API_CLASSES:
        lines.append("")
        lines.append(f"{cls.__name__}{_signature(cls, compact)}")
        lines.extend(f"  {line}" if line else "" for line in _description(cls, compact))
        if cls is Workflow and compact:
            lines.extend(f"  .{m}{_signature(getattr(cls, m))}" for m in WORKFLOW_METHODS)
    lines.append("")
    lines.append("Built-in tools (by name in ToolRegistry([...])):")
    lines.extend(f"- {tool.description}" for tool in BUILTIN_TOOLS.values())
    return "\n".join(lines)


def rules(domain: str | None = None) -> str:
    """What a valid script must and must not do (mirrors `extract.check_script`)."""
    modules = ", ".join(sorted(ALLOWED_STDLIB))
    return "\n".join(
        [
            "Rules:",
            "- The task text is already in the variable `question` (`domain` holds its domain); "
            "`workflow.run()` gives it to the agents. Never copy the task into the script.",
            f"- Import only from `workflow`, `workflow.nodes` and these modules: {modules}. "
            "No files, eval/exec, or dunder attributes.",
            "- System prompts describe each agent's role only; the library adds the "
            f"<delivery> message protocol and the answer format ({answer_format(domain)}).",
            "- Build at least one AgentNode, add the nodes to a Workflow and end with "
            "`result = workflow.run()`.",
            f"- At most {DEFAULT_LIMITS.max_lines} lines; short scripts are better.",
        ]
    )


def designer_system_prompt(
    domain: str | None = None,
    *,
    examples: Sequence[str] | None = None,
    compact: bool = False,
    designs_dir: str | Path | None = None,
    host_tools: Sequence[tuple[str, str]] = (),
) -> str:
    """The designer's system prompt. `examples`: pattern names of few-shot designs to include
    (None: the variant's default; empty: none); `host_tools`: (name, description) of the
    configured host-side tools, which agents may be given by name."""
    names = list(_example_names(examples, compact))
    try:
        loaded = load_examples(designs_dir)
    except FileNotFoundError:
        if names:
            raise
        loaded = {}
    if examples is None:
        names = _available(names, loaded)
    unknown = [n for n in names if n not in loaded]
    if unknown:
        raise ValueError(f"unknown example designs {unknown}; known: {sorted(loaded)}")
    patterns = ", ".join(sorted(loaded) or _library_patterns())
    parts = [
        INTRO,
        "# Library\n" + api_reference(compact),
        rules(domain),
        *([host_tools_section(host_tools)] if host_tools else []),
        "# Output\n" + OUTPUT_FORMAT.format(patterns=patterns),
    ]
    for name in names:
        parts.append(f"# Example reply ({name})\n{loaded[name].as_reply(compact)}")
    return "\n\n".join(parts)


def host_tools_section(host_tools: Sequence[tuple[str, str]]) -> str:
    """What the designer is told of the host-side tools (`tools.host`): their names, what they
    do, and how an agent gets them."""
    lines = [f"- {name}" + (f": {description}" if description else "")
             for name, description in host_tools]  # fmt: skip
    example = ", ".join(repr(name) for name, _ in host_tools)
    return (
        "# Host tools\nBesides the built-ins, agents may use these tools, which run on the host:\n"
        + "\n".join(lines)
        + f"\nGive them by name: `AgentNode(..., tools=ToolRegistry([{example}]))`."
    )


def designer_user_message(task_prompt: str, domain: str | None = None) -> str:
    """The user turn: the task (the designer reads it; its script gets it as `question`)."""
    label = f" ({domain})" if domain else ""
    return f"Design a multi-agent system for this task{label}:\n\n{task_prompt}"


def designer_messages(
    task_prompt: str,
    domain: str | None = None,
    *,
    examples: Sequence[str] | None = None,
    max_chars: int | None = None,
    compact: bool = False,
    designs_dir: str | Path | None = None,
    style: PromptStyle | None = None,
    host_tools: Sequence[tuple[str, str]] = (),
) -> list[dict[str, str]]:
    """Chat messages asking for one design. With `max_chars`, examples are dropped from the
    last until the messages fit; PromptTooLongError if they do not fit even without any.
    `style` (None: compact or full by `compact`): "minimal" is MINIMAL_INSTRUCTION and the
    task, without library, rules or examples; "pettingllms" / "pettingllms_simple" are the
    authors' prompts (`examples` then name their few-shots; `designs_dir` and `host_tools`
    are not used). `host_tools`: (name, description) of the configured host-side tools."""
    if style is not None and style not in PROMPT_STYLES:
        raise ValueError(f"unknown designer prompt style {style!r}; use one of {PROMPT_STYLES}")
    if style in PETTINGLLMS_STYLES:
        return _pettingllms_messages(task_prompt, domain, style, examples, max_chars)
    user = designer_user_message(task_prompt, domain)
    if style == "minimal":
        return [
            {"role": "system", "content": MINIMAL_INSTRUCTION},
            {"role": "user", "content": user},
        ]
    compact = compact if style is None else style == "compact"
    names = list(_example_names(examples, compact))
    if examples is None and designs_dir is not None:
        names = _available(names, load_examples(designs_dir))

    def build(kept: list[str]) -> list[dict[str, str]]:
        system = designer_system_prompt(domain, examples=kept, compact=compact,
                                        designs_dir=designs_dir, host_tools=host_tools)  # fmt: skip
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]

    return _fit(build, names, max_chars)


def _pettingllms_messages(
    task_prompt: str,
    domain: str | None,
    style: str,
    examples: Sequence[str] | None,
    max_chars: int | None,
) -> list[dict[str, str]]:
    """The authors' prompt for `style` (their one line for `pettingllms_simple`, which has no
    few-shots to drop), fitted like ours."""
    simple = style == "pettingllms_simple"
    names = (
        []
        if simple
        else list(pettingllms_prompt.examples_for(domain) if examples is None else examples)
    )

    def build(kept: list[str]) -> list[dict[str, str]]:
        return pettingllms_prompt.designer_messages(task_prompt, domain, examples=kept,
                                                    simple=simple)  # fmt: skip

    return _fit(build, names, max_chars)


def _fit(
    build: Callable[[list[str]], list[dict[str, str]]], names: list[str], max_chars: int | None
) -> list[dict[str, str]]:
    """`build(names)`, dropping example names from the last until the messages fit in
    `max_chars`; PromptTooLongError when they do not fit even without any."""
    names = list(names)
    while True:
        messages = build(names)
        size = sum(len(m["content"]) for m in messages)
        if max_chars is None or size <= max_chars:
            return messages
        if not names:
            raise PromptTooLongError(f"designer prompt is {size} chars > max_chars={max_chars}")
        names.pop()


class PromptSettings(Protocol):
    """What `designer_prompt_messages` reads from the rollout's settings (`TreeSettings`)."""

    @property
    def designer_examples(self) -> tuple[str, ...] | None: ...
    @property
    def designs_dir(self) -> str | None: ...
    @property
    def prompt_style(self) -> PromptStyle: ...
    @property
    def host_tools(self) -> tuple[tuple[str, str], ...]: ...


def designer_prompt_messages(
    settings: PromptSettings, task: Task, style: PromptStyle | None = None
) -> list[dict[str, str]]:
    """The designer's messages for `task` under `settings` (what the rollout sends; SFT
    collection rebuilds them, optionally in another `style`, to store with each design)."""
    return designer_messages(
        task.prompt,
        task.domain,
        examples=settings.designer_examples,
        style=style or settings.prompt_style,
        designs_dir=settings.designs_dir,
        host_tools=settings.host_tools,
    )


def _example_names(examples: Sequence[str] | None, compact: bool) -> Sequence[str]:
    if examples is not None:
        return examples
    return COMPACT_EXAMPLES if compact else DEFAULT_EXAMPLES


def _available(names: list[str], loaded: dict[str, DesignExample]) -> list[str]:
    """Default example names present in `loaded`; for another designs folder (e.g. the
    teacher's), its own first designs in their place."""
    if not loaded or set(names) <= set(loaded):
        return names
    return [n for n in names if n in loaded] or sorted(loaded)[: len(names)]


def _library_patterns() -> list[str]:
    """Pattern names derived from the library when no example designs are available."""
    names = [c.__name__.removesuffix("Node").lower() for c in API_CLASSES]
    return ["single_agent", *(n for n in names if n not in ("workflow", "agent", "toolregistry"))]


def _signature(obj: object, compact: bool = False) -> str:
    """`(name, agents, strategy='majority_vote', *, judge=None)`: no annotations, no self;
    compact drops keyword-only parameters (synonyms and rarely needed options)."""
    signature = inspect.signature(obj)  # type: ignore[arg-type]
    params = [
        p.replace(annotation=p.empty)
        for p in signature.parameters.values()
        if p.name != "self" and not (compact and p.kind is p.KEYWORD_ONLY)
    ]
    return str(signature.replace(parameters=params, return_annotation=signature.empty))


def _description(cls: type, compact: bool) -> list[str]:
    """The docstring without its `Name(...)` restatement (the signature line shows it).
    Compact: only its opening sentences (prose before any list, about COMPACT_CHARS)."""
    paragraphs = [p.strip() for p in (inspect.getdoc(cls) or "").split("\n\n") if p.strip()]
    if paragraphs:
        span = re.compile(rf"`{cls.__name__}\([^`]*\)`")
        head = " ".join(span.sub("", paragraphs[0], count=1).split()).strip(" :.")
        if head:
            paragraphs[0] = head[0].upper() + head[1:] + ("" if head.endswith(".") else ".")
        else:
            paragraphs.pop(0)
    if not compact:
        return "\n\n".join(paragraphs).splitlines()
    prose = []
    for line in "\n".join(paragraphs).splitlines():
        if _LIST_LINE.match(line):
            break
        prose.append(line)
    kept: list[str] = []
    for sentence in _SENTENCE_END.split(" ".join(" ".join(prose).split())):
        if sentence.endswith(":") or (kept and len(" ".join(kept)) >= COMPACT_CHARS):
            break
        kept.append(sentence)
    return [" ".join(kept)] if kept else []


def _split_docstring(source: str) -> tuple[str, str]:
    """(module docstring, the code after it)."""
    module = ast.parse(source)
    first = module.body[0] if module.body else None
    if (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
        and first.end_lineno is not None
    ):
        code = "\n".join(source.splitlines()[first.end_lineno :])
        return inspect.cleandoc(first.value.value), code.strip() + "\n"
    return "", source


def _strip_comments(code: str) -> str:
    """The code without comment-only lines and blank runs (compact examples)."""
    comment_lines = {
        token.start[0]
        for token in tokenize.generate_tokens(io.StringIO(code).readline)
        if token.type == tokenize.COMMENT and token.line.strip().startswith("#")
    }
    kept = [line for n, line in enumerate(code.splitlines(), 1) if n not in comment_lines]
    out: list[str] = []
    for line in kept:
        if line.strip() or (out and out[-1].strip()):
            out.append(line)
    return "\n".join(out).strip() + "\n"


__all__ = [
    "API_CLASSES",
    "DEFAULT_EXAMPLES",
    "DESIGNS_ENV",
    "MINIMAL_INSTRUCTION",
    "PETTINGLLMS_STYLES",
    "PROMPT_STYLES",
    "DesignExample",
    "PromptSettings",
    "PromptStyle",
    "PromptTooLongError",
    "api_reference",
    "default_designs_dir",
    "designer_messages",
    "designer_prompt_messages",
    "designer_system_prompt",
    "designer_user_message",
    "load_examples",
    "pattern_names",
    "resolve_designs_dir",
    "rules",
]
