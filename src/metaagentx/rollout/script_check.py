"""The static check of a design script: imports, names, attributes, size, agents, a run.

It runs on the host before anything executes, so a bad design costs no sandbox time: it gets
reward 0 and one reason code that the trainer counts, with a detail that names the fix. It is
reward shaping and early rejection, NOT a security boundary: the sandbox still isolates every
script at run time. Two workflow dialects are checked (`metaagentx.mas.dialects`): ours, and the
MetaAgent-X authors' (their imports, `subprocess` mapped onto the sandboxed python tool); both
may use the harmless parts of `os` and `sys` (`SAFE_MODULE_USES`), which the authors' prompt
asks for.
"""

from __future__ import annotations

import ast
import functools
import re
import warnings
from dataclasses import dataclass
from typing import Literal, get_args

from metaagentx.mas.dialects import MODULES, Dialect, resolve_dialect

RejectReason = Literal[
    "no_code_block",  # no fenced python block (or <code> block) in the reply
    "too_long",  # over the char, line or AST-node budget
    "syntax_error",  # does not parse
    "forbidden_import",  # imports something besides the dialect's library and ALLOWED_STDLIB
    "forbidden_name",  # eval/exec/open/__import__/globals..., dunder names, escape strings
    "forbidden_attribute",  # dunder/frame attributes (`x.__globals__`), unsafe os/sys uses
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
LIBRARY_MODULES: frozenset[str] = frozenset(MODULES["metaagentx"]) | {"metaagentx.mas"}
# The authors' workflow classes (`metaagentx.mas.pettingllms`), named here so that checking a
# design never imports their package.
PETTINGLLMS_CLASSES: frozenset[str] = frozenset(
    {
        "Message", "MessageType", "Context", "WorkflowNode", "ToolRegistry", "AgentNode",
        "Workflow", "ConditionalWorkflow", "LoopWorkflow", "AgentGraph", "Edge",
        "EnsembleNode", "DebateNode", "ReflectionNode", "RouterNode",
    }
)  # fmt: skip
# `os` and `sys` may be imported in both dialects (the authors' runtime preloads them), but
# only these uses pass: paths, reading the environment and interpreter facts, writing to
# stdout/stderr. Anything else (os.system, os.popen, os.fork, sys.modules, sys._getframe,
# assignments...) is rejected.
SYSTEM_MODULES: frozenset[str] = frozenset({"os", "os.path", "sys"})
SAFE_MODULE_USES: frozenset[str] = frozenset(
    {
        *(
            f"os.path.{name}"
            for name in (
                "join", "exists", "isfile", "isdir", "basename", "dirname", "abspath",
                "splitext", "split", "normpath", "realpath", "relpath", "isabs", "expanduser",
                "getsize", "commonpath", "sep",
            )
        ),
        "os.environ", "os.environ.get", "os.environ.keys", "os.environ.items",
        "os.environ.values", "os.environ.copy", "os.getenv", "os.getcwd", "os.linesep",
        "os.sep", "os.pathsep", "os.curdir", "os.pardir", "os.name", "os.cpu_count",
        "sys.version", "sys.version_info", "sys.maxsize", "sys.maxunicode", "sys.float_info",
        "sys.int_info", "sys.platform", "sys.byteorder", "sys.setrecursionlimit",
        "sys.getrecursionlimit", "sys.set_int_max_str_digits", "sys.get_int_max_str_digits",
        "sys.getsizeof", "sys.stdout", "sys.stderr", "sys.stdout.write", "sys.stdout.flush",
        "sys.stderr.write", "sys.stderr.flush", "sys.exit", "sys.argv", "sys.path",
    }
)  # fmt: skip
# Plain-data values whose public fields may be read (`sys.version_info.major`).
SAFE_DATA: frozenset[str] = frozenset({"sys.version_info", "sys.float_info", "sys.int_info"})
SAFE_USES_SUMMARY = (
    "os.path.<function>, os.environ/os.getenv reads, os.getcwd, os.sep/os.linesep, "
    "sys.version*, sys.maxsize, sys.setrecursionlimit, sys.stdout/sys.stderr .write/.flush, "
    "sys.exit, reading sys.argv/sys.path"
)
SUBPROCESS_FIX = "use ToolRegistry(['python']) instead of subprocess"
CODE_TOOL_FIX: dict[Dialect, str] = {
    "metaagentx": "give an agent ToolRegistry(['python']) to run code",
    "pettingllms": "register a python_execute tool (utils.environments.math_env) to run code",
}
RUN_FIX: dict[Dialect, str] = {
    "metaagentx": "end with `result = workflow.run()` (or bind a top-level `workflow`)",
    "pettingllms": "end with `result = workflow.run(question)` (or bind a top-level `workflow`)",
}

# Builtins a design never needs and that reach outside the workflow (files, code objects,
# namespaces, stdin, which in the sandbox is the RPC pipe), each with what to do instead.
NAME_FIXES: dict[str, str] = {
    "__import__": "use an import statement",
    "eval": "write the code directly, or give an agent a code tool",
    "exec": "write the code directly, or give an agent a code tool",
    "compile": "write the code directly, or give an agent a code tool",
    "open": "files are not available: pass data between agents and tools",
    "globals": "refer to variables by name",
    "locals": "refer to variables by name",
    "vars": "refer to variables by name",
    "input": "the task is already in the variable `question`",
    "breakpoint": "remove it: designs run unattended",
    "help": "remove it: designs run unattended",
    "memoryview": "use bytes or str",
    "__builtins__": "call builtins by their names",
    "attrgetter": "read attributes directly (obj.name)",
    "methodcaller": "call methods directly (obj.method())",
}
FORBIDDEN_NAMES: frozenset[str] = frozenset(NAME_FIXES)
ATTRIBUTE_FUNCTIONS = frozenset({"getattr", "setattr", "delattr", "hasattr"})
ALLOWED_DUNDERS = frozenset({"__init__", "__name__", "__main__", "__doc__"})
DUNDER_FIX = "dunder names are not allowed: use public names and attributes"
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
_SHORTEN = "shorten the script (fewer agents, shorter system prompts)"


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
class ScriptCheck:
    """The static verdict on one script (reason None: valid), and the dialect it was
    checked as."""

    reason: RejectReason | None
    detail: str = ""
    constructs: tuple[str, ...] = ()
    dialect: Dialect = "metaagentx"


def check_script(
    script: str,
    *,
    task_prompt: str | None = None,
    limits: ScriptLimits = DEFAULT_LIMITS,
    dialect: str = "auto",
) -> ScriptCheck:
    """Check a script statically; the first failed rule gives the reason.

    `dialect` ("auto", "metaagentx" or "pettingllms", as `sandbox.dialect`) is resolved with
    `resolve_dialect`, as the sandbox does: it picks the modules the script may import."""
    unparsed = resolve_dialect(dialect, "")  # what a script that does not parse counts as
    size = _size_failure(script, limits)
    if size is not None:  # never parsed: too big
        return ScriptCheck("too_long", size, dialect=unparsed)
    try:
        with warnings.catch_warnings():  # model-written code: its warnings are noise here
            warnings.simplefilter("ignore", SyntaxWarning)
            tree = ast.parse(script)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        detail = f"{type(exc).__name__}: {exc}: fix the script so that it is valid Python 3"
        return ScriptCheck("syntax_error", detail, dialect=unparsed)
    resolved = resolve_dialect(dialect, tree)
    nodes = sum(1 for _ in ast.walk(tree))
    if nodes > limits.max_ast_nodes:
        detail = f"{nodes} AST nodes > {limits.max_ast_nodes}: {_SHORTEN}"
        return ScriptCheck("too_long", detail, dialect=resolved)
    visitor = _Checker(resolved)
    try:
        visitor.visit(tree)
    except RecursionError:
        return ScriptCheck("too_long", f"nested too deeply: {_SHORTEN}", dialect=resolved)
    if visitor.failure is not None:
        return ScriptCheck(*visitor.failure, dialect=resolved)
    constructs = tuple(sorted(visitor.constructs))
    if not visitor.builds_agent:
        detail = "no AgentNode(...) is constructed: build at least one AgentNode"
        return ScriptCheck("no_agent", detail, constructs, resolved)
    if not (visitor.calls_run or _binds_workflow(tree)):
        detail = f"no workflow is run: {RUN_FIX[resolved]}"
        return ScriptCheck("no_run", detail, constructs, resolved)
    if task_prompt:
        copied = _retyped(tree, task_prompt, limits)
        if copied is not None:
            detail = f"literal copies the task: {copied!r}: use the variable `question` instead"
            return ScriptCheck("retyped_task", detail, constructs, resolved)
    return ScriptCheck(None, "", constructs, resolved)


def _size_failure(script: str, limits: ScriptLimits) -> str | None:
    if len(script) > limits.max_chars:
        return f"{len(script)} chars > {limits.max_chars}: {_SHORTEN}"
    lines = len(script.splitlines())
    if lines > limits.max_lines:
        return f"{lines} lines > {limits.max_lines}: {_SHORTEN}"
    return None


class _Checker(ast.NodeVisitor):
    """Walks the tree once: imports, names, attributes, os/sys uses, agents built, runs."""

    def __init__(self, dialect: Dialect = "metaagentx") -> None:
        self.dialect = dialect
        self.failure: tuple[RejectReason, str] | None = None
        self.aliases: dict[str, str] = {}  # local name -> library class name
        # local name -> the os/sys path it stands for; `os`/`sys` always (the authors'
        # runtime preloads them, and a name shadowing them is checked the same way)
        self.modules: dict[str, str] = {"os": "os", "sys": "sys"}
        self.agent_classes: set[str] = {AGENT_CLASS}
        self.constructs: set[str] = set()
        self.builds_agent = False
        self.calls_run = False

    def _fail(self, reason: RejectReason, detail: str) -> None:
        if self.failure is None:
            self.failure = (reason, detail)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name in SYSTEM_MODULES:
                local = alias.asname or alias.name.split(".")[0]
                self.modules[local] = alias.name if alias.asname else local
            elif not _allowed_module(alias.name, self.dialect):
                self._fail(
                    "forbidden_import",
                    _import_fix(f"import {alias.name}", alias.name, self.dialect),
                )

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        if node.level:
            statement = f"from {'.' * node.level}{module} import ..."
            self._fail("forbidden_import", f"{statement}: {_allowed_imports(self.dialect)}")
            return
        if module in SYSTEM_MODULES:
            self._import_from_system(module, node.names)
            return
        if not _allowed_module(module, self.dialect):
            statement = f"from {module} import ..."
            self._fail("forbidden_import", _import_fix(statement, module, self.dialect))
            return
        for alias in node.names:
            self._check_name(alias.name)
            self._check_name(alias.asname or "")
            if _library_module(module, self.dialect) and alias.name != "*":
                self.aliases[alias.asname or alias.name] = alias.name

    def _import_from_system(self, module: str, names: list[ast.alias]) -> None:
        """`from os import path` / `from sys import stdout`: each name must be a safe use
        (or `os.path`); the local name then stands for it."""
        for alias in names:
            path = f"{module}.{alias.name}"
            if path == "os.path" or _safe_use(path):
                self.modules[alias.asname or alias.name] = path
            else:
                self._fail(
                    "forbidden_import",
                    f"from {module} import {alias.name}: {_system_fix(self.dialect)}",
                )

    def visit_Name(self, node: ast.Name) -> None:
        if node.id in ATTRIBUTE_FUNCTIONS:
            self._fail(
                "forbidden_name",
                f"{node.id} used other than as a call: call "
                f"{node.id}(obj, 'name') with a constant public name",
            )
        if node.id in self.modules:
            self._check_system_use(self.modules[node.id], node.ctx)
        self._check_name(node.id)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        path = self._system_path(node)
        if path is not None:  # os.x.y / sys.x: checked whole (its parts are its prefixes)
            self._check_system_use(path, node.ctx)
            return
        if _is_dunder(node.attr) or node.attr in FORBIDDEN_ATTRIBUTES:
            self._fail(
                "forbidden_attribute",
                f".{node.attr}: dunder and frame attributes "
                "are not allowed: use the object's public attributes",
            )
        elif node.attr in FORBIDDEN_NAMES:
            self._fail("forbidden_name", f".{node.attr}: {NAME_FIXES[node.attr]}")
        self.generic_visit(node)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        target = node.value
        path = self._system_path(target) if isinstance(target, ast.Attribute) else None
        if path is None and isinstance(target, ast.Name):
            path = self.modules.get(target.id)
        if path is not None and not isinstance(node.ctx, ast.Load):
            self._fail(
                "forbidden_attribute",
                f"writing to {path}: {path} is read-only in a design; keep values in variables",
            )
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str):
            for dunder in _DUNDER.findall(node.value):
                if dunder in ESCAPE_DUNDERS:
                    self._fail(
                        "forbidden_name",
                        f"string names {dunder}: do not name "
                        "dunder attributes; use the object's public attributes",
                    )

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
                self._fail(
                    "forbidden_name",
                    f"{func.id} with a computed or private "
                    "attribute: pass a constant public name, or use obj.name",
                )
            for child in [*node.args, *node.keywords]:
                self.visit(child)
            return
        name = self._class_name(func)
        if name in self.agent_classes:
            self.builds_agent = True
        if name is not None and name[:1].isupper() and name in _construct_classes():
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
        if name in FORBIDDEN_NAMES:
            self._fail("forbidden_name", f"{name}: {NAME_FIXES[name]}")
        elif _is_dunder(name):
            self._fail("forbidden_name", f"{name}: {DUNDER_FIX}")

    def _system_path(self, node: ast.Attribute) -> str | None:
        """`os.path.join` for an attribute chain on a name bound to os/sys, else None."""
        attributes: list[str] = []
        expr: ast.expr = node
        while isinstance(expr, ast.Attribute):
            attributes.append(expr.attr)
            expr = expr.value
        if isinstance(expr, ast.Name) and expr.id in self.modules:
            return ".".join([self.modules[expr.id], *reversed(attributes)])
        return None

    def _check_system_use(self, path: str, context: ast.expr_context) -> None:
        """`path` (os.x.y, or a module itself used bare) must be read, and a safe use."""
        reason: RejectReason = "forbidden_name" if path in SYSTEM_MODULES else "forbidden_attribute"
        if not isinstance(context, ast.Load):
            detail = f"assigning to {path}: os and sys are read-only in a design; use variables"
            self._fail(reason, detail)
        elif not _safe_use(path):
            what = (
                f"{path} used other than as {path}.<attribute>" if path in SYSTEM_MODULES else path
            )
            self._fail(reason, f"{what}: {_system_fix(self.dialect)}")


def _is_dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__") and name not in ALLOWED_DUNDERS


def _safe_use(path: str) -> bool:
    """An allowed os/sys use: a SAFE_MODULE_USES path, or a public field of SAFE_DATA."""
    if path in SAFE_MODULE_USES:
        return True
    parent, _, leaf = path.rpartition(".")
    return parent in SAFE_DATA and not leaf.startswith("_")


def _system_fix(dialect: Dialect) -> str:
    return f"only {SAFE_USES_SUMMARY} are allowed; {CODE_TOOL_FIX[dialect]}"


def _library_module(module: str, dialect: Dialect) -> bool:
    """A module whose names are workflow classes (aliases of them are tracked)."""
    if dialect == "metaagentx":
        return module in LIBRARY_MODULES or module.startswith("metaagentx.mas.")
    return module in MODULES[dialect] and module.split(".")[0] == "workflow"


def _allowed_module(module: str, dialect: Dialect) -> bool:
    """Standard library, limited os/sys, and the dialect's own modules."""
    if module.split(".")[0] in ALLOWED_STDLIB or module in SYSTEM_MODULES:
        return True
    return _library_module(module, dialect) or module in MODULES[dialect]


def _allowed_imports(dialect: Dialect) -> str:
    """What a script of `dialect` may import, as the fix for a forbidden import."""
    library = ", ".join(sorted(MODULES[dialect]))
    stdlib = ", ".join(sorted(ALLOWED_STDLIB))
    return f"import only {library}, os, sys (limited uses) and {stdlib}"


def _import_fix(statement: str, module: str, dialect: Dialect) -> str:
    if module.split(".")[0] == "subprocess":
        return f"{statement}: {SUBPROCESS_FIX}"
    return f"{statement}: {_allowed_imports(dialect)}"


@functools.cache
def _library_classes() -> frozenset[str]:
    from metaagentx import mas

    return frozenset(n for n in mas.__all__ if n[:1].isupper())


@functools.cache
def _construct_classes() -> frozenset[str]:
    """Workflow classes counted in `constructs`: ours and the authors'."""
    return _library_classes() | PETTINGLLMS_CLASSES


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
    "FORBIDDEN_ATTRIBUTES",
    "FORBIDDEN_NAMES",
    "PETTINGLLMS_CLASSES",
    "REJECT_REASONS",
    "SAFE_MODULE_USES",
    "SUBPROCESS_FIX",
    "RejectReason",
    "ScriptCheck",
    "ScriptLimits",
    "check_script",
]
