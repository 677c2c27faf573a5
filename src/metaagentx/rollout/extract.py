"""Pull the design script out of the designer's reply and check it statically.

The check runs on the host before anything executes, so a bad design costs no sandbox time:
it gets reward 0 and one reason code that the trainer counts. It is reward shaping and early
rejection, NOT a security boundary: the sandbox still isolates every script at run time, and
a determined script can get past an `ast` check (the sandbox is what stops it).

A rejected design must never be executed: `Design.require_valid()` is the only way the
rollout should obtain a script to run, and it raises `RejectedDesignError` for those.
"""

from __future__ import annotations

import ast
import functools
import re
import warnings
from dataclasses import dataclass, field
from typing import Literal, get_args

from metaagentx.mas.text import visible_text

RejectReason = Literal[
    "no_code_block",  # no fenced python block (or <code> block) in the reply
    "too_long",  # over the char, line or AST-node budget
    "syntax_error",  # does not parse
    "forbidden_import",  # imports something besides the workflow library and ALLOWED_STDLIB
    "forbidden_name",  # eval/exec/open/__import__/globals..., dunder names, escape strings
    "forbidden_attribute",  # dunder or frame attributes such as `x.__globals__`, `g.gi_frame`
    "no_agent",  # never constructs an AgentNode
    "no_run",  # never runs a workflow (`.run(...)`) nor defines a top-level `workflow`
    "retyped_task",  # copies the task text into a literal instead of using `question`
]
REJECT_REASONS: tuple[str, ...] = get_args(RejectReason)

ALLOWED_STDLIB: frozenset[str] = frozenset(
    {
        "math", "re", "json", "itertools", "functools", "collections", "fractions", "decimal",
        "statistics", "string", "random", "typing", "dataclasses", "textwrap", "heapq",
        "bisect", "operator",
    }
)  # fmt: skip
LIBRARY_MODULES: frozenset[str] = frozenset({"workflow", "workflow.nodes", "metaagentx.mas"})

# Builtins a design never needs and that reach outside the workflow (files, code objects,
# namespaces, stdin, which in the sandbox is the RPC pipe).
FORBIDDEN_NAMES: frozenset[str] = frozenset(
    {
        "__import__", "eval", "exec", "open", "compile", "globals", "locals", "vars",
        "input", "breakpoint", "help", "memoryview", "__builtins__", "attrgetter",
        "methodcaller",
    }
)  # fmt: skip
ATTRIBUTE_FUNCTIONS = frozenset({"getattr", "setattr", "delattr", "hasattr"})
ALLOWED_DUNDERS = frozenset({"__init__", "__name__", "__main__", "__doc__"})
# Dunders that lead to code objects, namespaces or the class graph; a string naming one is
# how attribute checks get dodged (getattr, attrgetter, "{0.__globals__}".format). Other
# dunders in strings are fine: a code agent may be told to "define __eq__".
ESCAPE_DUNDERS = frozenset(
    {
        "__globals__", "__builtins__", "__subclasses__", "__class__", "__base__", "__bases__",
        "__mro__", "__code__", "__closure__", "__dict__", "__import__", "__getattribute__",
        "__func__", "__self__", "__module__", "__loader__", "__spec__", "__reduce__",
        "__reduce_ex__", "__getattr__", "__setattr__", "__delattr__", "__init_subclass__",
        "__traceback__",
    }
)  # fmt: skip
# Frame and code-object attributes: the non-dunder road to other modules' globals.
FORBIDDEN_ATTRIBUTES: frozenset[str] = frozenset(
    {
        "f_globals", "f_locals", "f_builtins", "f_back", "f_code", "gi_frame", "gi_code",
        "cr_frame", "cr_code", "ag_frame", "ag_code", "tb_frame", "tb_next",
    }
)  # fmt: skip
AGENT_CLASS = "AgentNode"
_DUNDER = re.compile(r"__\w+__")
_PATTERN_LINE = re.compile(
    r"^[\s>#*_`-]*pattern(?:\s+name)?[*_`]*\s*[:=-]\s*(?P<name>.+?)\s*$",
    re.IGNORECASE | re.MULTILINE,
)
_ANALYSIS_PREFIX = re.compile(r"^[\s#*_`]*analysis[*_`]*\s*[:-]\s*", re.IGNORECASE)
_CODE_TAG = re.compile(r"<code>\s*\n?(.*?)(?:</code>|\Z)", re.DOTALL | re.IGNORECASE)
_PYTHON_TAGS = {"python", "py", "python3", "py3"}
ANALYSIS_CHARS = 2000


class RejectedDesignError(ValueError):
    """Raised when a caller asks for the script of a design that failed the static check."""


@dataclass(frozen=True)
class ScriptLimits:
    """Size budgets and the re-typing heuristic's thresholds.

    A literal counts as a re-typed task when its longest run shared with the task text (both
    whitespace-collapsed, case-folded) is at least `retype_min_chars` long and covers
    `retype_fraction` of the task or `retype_abs_chars` characters, or when it contains the
    whole task text (tasks of at least 8 characters).
    """

    max_chars: int = 8000
    max_lines: int = 200
    max_ast_nodes: int = 4000
    retype_min_chars: int = 32
    retype_fraction: float = 0.5
    retype_abs_chars: int = 200


DEFAULT_LIMITS = ScriptLimits()


@dataclass(frozen=True)
class Design:
    """One designer reply, parsed and checked.

    script: the extracted code (kept for logging even when invalid; None without a block).
    pattern: the declared pattern name (lower snake case), or None when none is declared.
    analysis: the prose before the code (the `<think>` part dropped), clipped.
    valid / reason / detail: the static verdict; `reason` is one of REJECT_REASONS.
    constructs: the workflow-library classes the script instantiates (for structure stats).
    """

    script: str | None
    pattern: str | None
    analysis: str
    valid: bool
    reason: RejectReason | None = None
    detail: str = ""
    constructs: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.valid != (self.reason is None):
            raise ValueError(f"a design is valid exactly when it has no reason: {self.reason}")

    def require_valid(self) -> str:
        """The script to execute; raises RejectedDesignError for a rejected design."""
        if not self.valid or self.script is None:
            raise RejectedDesignError(f"design rejected ({self.reason}): {self.detail}")
        return self.script


def extract_design(
    text: str, *, task_prompt: str | None = None, limits: ScriptLimits = DEFAULT_LIMITS
) -> Design:
    """Parse a designer reply: script, pattern, analysis, and the static verdict.

    `task_prompt` enables the `retyped_task` check (without it that check is skipped)."""
    visible = visible_text(text)
    found = _last_code_block(visible)
    pattern = parse_pattern(visible if found is None else visible[: found[1]])
    analysis = _analysis(visible if found is None else visible[: found[1]])
    if found is None:
        return Design(None, pattern, analysis, False, "no_code_block", "no ```python block")
    script = found[0]
    check = check_script(script, task_prompt=task_prompt, limits=limits)
    return Design(
        script, pattern, analysis, check.reason is None, check.reason, check.detail,
        check.constructs,
    )  # fmt: skip


def extract_script(text: str) -> str | None:
    """The last fenced python block of the visible reply (an unterminated final fence runs to
    the end; untagged blocks and `<code>` tags are fallbacks), or None."""
    found = _last_code_block(visible_text(text))
    return None if found is None else found[0]


def parse_pattern(text: str) -> str | None:
    """The last `Pattern: name` line, as lower snake case (markdown decoration ignored)."""
    matches = _PATTERN_LINE.findall(text)
    if not matches:
        return None
    name = re.sub(r"[^a-z0-9]+", "_", matches[-1].lower()).strip("_")
    return name[:64] or None


@dataclass(frozen=True)
class ScriptCheck:
    """The static verdict on one script (reason None: valid)."""

    reason: RejectReason | None
    detail: str = ""
    constructs: tuple[str, ...] = ()


def check_script(
    script: str, *, task_prompt: str | None = None, limits: ScriptLimits = DEFAULT_LIMITS
) -> ScriptCheck:
    """Check a script statically; the first failed rule gives the reason."""
    if len(script) > limits.max_chars:
        return ScriptCheck("too_long", f"{len(script)} chars > {limits.max_chars}")
    lines = len(script.splitlines())
    if lines > limits.max_lines:
        return ScriptCheck("too_long", f"{lines} lines > {limits.max_lines}")
    try:
        with warnings.catch_warnings():  # model-written code: its warnings are noise here
            warnings.simplefilter("ignore", SyntaxWarning)
            tree = ast.parse(script)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        return ScriptCheck("syntax_error", f"{type(exc).__name__}: {exc}")
    nodes = sum(1 for _ in ast.walk(tree))
    if nodes > limits.max_ast_nodes:
        return ScriptCheck("too_long", f"{nodes} AST nodes > {limits.max_ast_nodes}")
    visitor = _Checker()
    try:
        visitor.visit(tree)
    except RecursionError:
        return ScriptCheck("too_long", "nested too deeply")
    if visitor.failure is not None:
        return ScriptCheck(*visitor.failure)
    constructs = tuple(sorted(visitor.constructs))
    if not visitor.builds_agent:
        return ScriptCheck("no_agent", "no AgentNode(...) is constructed", constructs)
    if not (visitor.calls_run or _binds_workflow(tree)):
        return ScriptCheck("no_run", "call workflow.run() (or define `workflow`)", constructs)
    if task_prompt:
        copied = _retyped(tree, task_prompt, limits)
        if copied is not None:
            return ScriptCheck("retyped_task", f"literal copies the task: {copied!r}", constructs)
    return ScriptCheck(None, "", constructs)


def _last_code_block(text: str) -> tuple[str, int] | None:
    """(body, start offset) of the block to run: the last python-tagged fence, else the last
    untagged fence (other languages are ignored), else the last `<code>` tag."""
    blocks: list[tuple[str, str, int]] = []  # (tag, body, start)
    offset, opened, tag, start, body = 0, "", "", 0, []
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        if not opened:
            fence = re.match(r"(`{3,})\s*([\w+-]*)", stripped)
            if fence:
                opened, tag, start, body = fence.group(1), fence.group(2).lower(), offset, []
        elif stripped.startswith(opened) and not stripped.strip("`"):
            blocks.append((tag, "".join(body), start))
            opened = ""
        else:
            body.append(line)
        offset += len(line)
    if opened:  # cut off mid-block (max_tokens): keep what there is
        blocks.append((tag, "".join(body), start))
    for wanted in (_PYTHON_TAGS, {""}):
        for block_tag, block, block_start in reversed(blocks):
            if block_tag in wanted and block.strip():
                return block.strip("\n") + "\n", block_start
    tags = [(m.group(1), m.start()) for m in _CODE_TAG.finditer(text) if m.group(1).strip()]
    if tags:
        return tags[-1][0].strip("\n") + "\n", tags[-1][1]
    return None


def _analysis(prose: str) -> str:
    kept = [line for line in prose.splitlines() if not _PATTERN_LINE.match(line)]
    text = _ANALYSIS_PREFIX.sub("", "\n".join(kept).strip())
    return text[:ANALYSIS_CHARS]


class _Checker(ast.NodeVisitor):
    """Walks the tree once: imports, names, attributes, agents built, runs."""

    def __init__(self) -> None:
        self.failure: tuple[RejectReason, str] | None = None
        self.aliases: dict[str, str] = {}  # local name -> library class name
        self.agent_classes: set[str] = {AGENT_CLASS}
        self.constructs: set[str] = set()
        self.builds_agent = False
        self.calls_run = False

    def _fail(self, reason: RejectReason, detail: str) -> None:
        if self.failure is None:
            self.failure = (reason, detail)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if not _allowed_module(alias.name):
                self._fail("forbidden_import", f"import {alias.name}")

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        if node.level or not _allowed_module(module):
            self._fail("forbidden_import", f"from {'.' * node.level}{module} import ...")
            return
        for alias in node.names:
            self._check_name(alias.name)
            self._check_name(alias.asname or "")
            if _is_library(module) and alias.name != "*":
                self.aliases[alias.asname or alias.name] = alias.name

    def visit_Name(self, node: ast.Name) -> None:
        if node.id in ATTRIBUTE_FUNCTIONS:
            self._fail("forbidden_name", f"{node.id} used other than as a call")
        self._check_name(node.id)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if _is_dunder(node.attr) or node.attr in FORBIDDEN_ATTRIBUTES:
            self._fail("forbidden_attribute", f".{node.attr}")
        elif node.attr in FORBIDDEN_NAMES:
            self._fail("forbidden_name", f".{node.attr}")
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str):
            for dunder in _DUNDER.findall(node.value):
                if dunder in ESCAPE_DUNDERS:
                    self._fail("forbidden_name", f"string names {dunder}")

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for base in node.bases:
            if self._class_name(base) in self.agent_classes:
                self.agent_classes.add(node.name)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Name) and func.id in ATTRIBUTE_FUNCTIONS:
            attribute = node.args[1] if len(node.args) > 1 else None
            if not (
                isinstance(attribute, ast.Constant)
                and isinstance(attribute.value, str)
                and not attribute.value.startswith("_")
            ):
                self._fail("forbidden_name", f"{func.id} with a computed or private attribute")
            for child in [*node.args, *node.keywords]:
                self.visit(child)
            return
        name = self._class_name(func)
        if name in self.agent_classes:
            self.builds_agent = True
        if name is not None and name[:1].isupper() and name in _library_classes():
            self.constructs.add(name)
        if isinstance(func, ast.Attribute) and func.attr == "run":
            self.calls_run = True
        self.generic_visit(node)

    def _class_name(self, expr: ast.expr) -> str | None:
        if isinstance(expr, ast.Name):
            if expr.id in self.agent_classes:
                return expr.id
            return self.aliases.get(expr.id, expr.id)
        if isinstance(expr, ast.Attribute):
            return expr.attr
        return None

    def _check_name(self, name: str) -> None:
        if name in FORBIDDEN_NAMES or _is_dunder(name):
            self._fail("forbidden_name", name)


def _is_dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__") and name not in ALLOWED_DUNDERS


def _is_library(module: str) -> bool:
    return module in LIBRARY_MODULES or module.startswith("metaagentx.mas.")


def _allowed_module(module: str) -> bool:
    return _is_library(module) or module.split(".")[0] in ALLOWED_STDLIB


@functools.cache
def _library_classes() -> frozenset[str]:
    from metaagentx import mas

    return frozenset(n for n in mas.__all__ if n[:1].isupper())


def _binds_workflow(tree: ast.Module) -> bool:
    """A top-level `workflow = ...`: the harness runs a node bound to that name."""
    for statement in tree.body:
        targets: list[ast.expr] = []
        if isinstance(statement, ast.Assign):
            targets = list(statement.targets)
        elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
            targets = [statement.target]
        if any(isinstance(t, ast.Name) and t.id == "workflow" for t in targets):
            return True
    return False


def _normalise(text: str) -> str:
    return " ".join(text.split()).casefold()


def _literals(tree: ast.Module) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.append(node.value)
        elif isinstance(node, ast.JoinedStr):
            found.append(
                " ".join(
                    v.value
                    for v in node.values
                    if isinstance(v, ast.Constant) and isinstance(v.value, str)
                )
            )
    return found


def _retyped(tree: ast.Module, task_prompt: str, limits: ScriptLimits) -> str | None:
    """The first literal that re-types the task (see ScriptLimits), or None.

    "Shares a run of `needed` characters" is tested with the set of the task's windows of
    that length: linear in the sizes, unlike a longest-common-substring search."""
    task = _normalise(task_prompt)
    if not task:
        return None
    needed = max(
        limits.retype_min_chars,
        min(int(limits.retype_fraction * len(task)), limits.retype_abs_chars),
    )
    windows = {task[i : i + needed] for i in range(len(task) - needed + 1)}
    for literal in _literals(tree):
        text = _normalise(literal)
        if len(task) >= 8 and task in text:
            return literal[:80]
        for i in range(len(text) - needed + 1):
            if text[i : i + needed] in windows:
                return text[i : i + needed][:80]
    return None


__all__ = [
    "ALLOWED_STDLIB",
    "DEFAULT_LIMITS",
    "REJECT_REASONS",
    "Design",
    "RejectReason",
    "RejectedDesignError",
    "ScriptCheck",
    "ScriptLimits",
    "check_script",
    "extract_design",
    "extract_script",
    "parse_pattern",
]
