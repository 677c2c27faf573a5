"""Which workflow API a design script is written against, and the imports it gets.

Two dialects share the module name `workflow`:
- `metaagentx`: this package (`metaagentx.mas`), the API our designer prompt teaches.
- `pettingllms`: the MetaAgent-X authors' API (`metaagentx.mas.pettingllms`), in which their
  released checkpoint and cold-start data write: `Message`/`Context` message passing,
  `ToolRegistry.register(name, func, description, parameters)`, `utils.environments.math_env`,
  `import os, sys`, and `subprocess.run(["python", "-c", code])` mapped onto the sandboxed
  `python` tool.

A setting (`sandbox.dialect`) picks one by name; `auto` reads the script (`detect_dialect`): a
script that uses anything only the authors' API has is theirs, every other script is ours (the
two agree on everything else a script can say, up to semantics documented in
`metaagentx.mas.pettingllms`). The script's imports are redirected per dialect by an
`__import__` in its own builtins (`script_builtins`), so the two never share `sys.modules`
names and our own designs are untouched. Standard library only: this runs in the sandbox.
"""

from __future__ import annotations

import ast
import builtins
import importlib
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any, Literal

Dialect = Literal["metaagentx", "pettingllms"]
DialectSetting = Literal["auto", "metaagentx", "pettingllms"]
DIALECTS: tuple[Dialect, ...] = ("metaagentx", "pettingllms")

_OURS = "metaagentx.mas"
_THEIRS = "metaagentx.mas.pettingllms"

# Module names a script may import -> the module that answers them, per dialect.
MODULES: dict[Dialect, dict[str, str]] = {
    "metaagentx": {"workflow": _OURS, "workflow.nodes": f"{_OURS}.nodes"},
    "pettingllms": {
        "workflow": _THEIRS,
        "workflow.core": f"{_THEIRS}.core",
        "workflow.workflow": f"{_THEIRS}.flow",
        "workflow.graph": f"{_THEIRS}.graph",
        "workflow.compat": _THEIRS,
        "workflow.nodes": f"{_THEIRS}.nodes",
        **{
            f"workflow.nodes.{kind}_node": f"{_THEIRS}.nodes.{kind}_node"
            for kind in ("agent", "ensemble", "debate", "reflection", "router")
        },
        "utils": f"{_THEIRS}.utils",
        "utils.environments": f"{_THEIRS}.utils.environments",
        "utils.environments.math_env": f"{_THEIRS}.utils.environments.math_env",
        "utils.environments.search_env": f"{_THEIRS}.utils.environments.search_env",
        "subprocess": f"{_THEIRS}.subprocess_shim",
    },
}
# Modules the authors' runtime makes available to every script without an import.
PRELOADED: dict[Dialect, tuple[str, ...]] = {"metaagentx": (), "pettingllms": ("os", "sys")}

# What only the authors' API has: names imported from `workflow`, keywords and modules.
THEIR_NAMES = frozenset(
    {
        "Message", "MessageType", "Context", "WorkflowNode", "ConditionalWorkflow",
        "LoopWorkflow", "AgentGraph", "Edge", "create_simple_chain", "create_keyword_router",
    }
)  # fmt: skip
THEIR_KEYWORDS = frozenset(
    {"ai_client", "enable_conversation_logging", "routing_func", "default_route", "initial_state"}
)
# Modules only their dialect answers (derived from MODULES); `import os, sys` is no sign: their
# prompt asks for it, but a script of ours may do it too.
THEIR_MODULES = frozenset(MODULES["pettingllms"]) - frozenset(MODULES["metaagentx"])


def detect_dialect(script: str | ast.Module) -> Dialect:
    """`pettingllms` when the script (its source, or its parsed tree) uses something only the
    authors' API has (see the module docstring), else `metaagentx`. A script that does not parse
    is ours (the check rejects it)."""
    if isinstance(script, ast.Module):
        tree = script
    else:
        try:
            tree = ast.parse(script)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return "metaagentx"
    for node in ast.walk(tree):
        if _theirs(node):
            return "pettingllms"
    return "metaagentx"


def _theirs(node: ast.AST) -> bool:
    if isinstance(node, ast.Import):
        return any(_their_module(alias.name) for alias in node.names)
    if isinstance(node, ast.ImportFrom):
        module = node.module or ""
        if _their_module(module):
            return True
        return module.startswith("workflow") and any(a.name in THEIR_NAMES for a in node.names)
    if isinstance(node, ast.keyword):
        return node.arg in THEIR_KEYWORDS
    if isinstance(node, ast.Call):
        return _their_call(node)
    return False


def _their_call(call: ast.Call) -> bool:
    """`registry.register("name", func, ...)` (their name-first order) or
    `ReflectionNode(name, agent, 3)` (their third positional is num_iterations)."""
    func, args = call.func, call.args
    if isinstance(func, ast.Attribute) and func.attr == "register":
        return bool(args) and isinstance(args[0], ast.Constant) and isinstance(args[0].value, str)
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if name == "ReflectionNode" and len(args) >= 3:
        return isinstance(args[2], ast.Constant) and isinstance(args[2].value, int)
    return False


def _their_module(name: str) -> bool:
    return any(name == m or name.startswith(m + ".") for m in THEIR_MODULES)


def resolve_dialect(setting: str | None, script: str | ast.Module) -> Dialect:
    """The dialect a script (source or parsed tree) runs in: the setting when it names one, else
    `detect_dialect`."""
    if setting in (None, "auto"):
        return detect_dialect(script)
    if setting not in DIALECTS:
        raise ValueError(
            f"unknown workflow dialect {setting!r}; choose auto, {', '.join(DIALECTS)}"
        )
    return setting  # type: ignore[return-value]


def script_builtins(dialect: Dialect) -> dict[str, Any]:
    """The builtins a script of `dialect` runs with: the real ones, with an `__import__` that
    answers the dialect's module names (`MODULES`) from this package and leaves the rest alone."""
    namespace = dict(vars(builtins))
    namespace["__import__"] = _importer(MODULES[dialect], builtins.__import__)
    return namespace


def preloaded_modules(dialect: Dialect) -> dict[str, ModuleType]:
    """Modules the dialect's runtime puts in a script's globals (the authors' `import os, sys`)."""
    return {name: importlib.import_module(name) for name in PRELOADED[dialect]}


def node_types(dialect: Dialect) -> tuple[type, ...]:
    """The node classes of `dialect`: a script's unrun top-level `workflow` of one is run."""
    module = "metaagentx.mas.node" if dialect == "metaagentx" else f"{_THEIRS}.core"
    name = "Node" if dialect == "metaagentx" else "WorkflowNode"
    return (getattr(importlib.import_module(module), name),)


def _importer(table: Mapping[str, str], real: Callable[..., ModuleType]) -> Callable[..., Any]:
    def dialect_import(
        name: str,
        globals: Mapping[str, Any] | None = None,
        locals: Mapping[str, Any] | None = None,
        fromlist: tuple[str, ...] | list[str] | None = (),
        level: int = 0,
    ) -> ModuleType:
        top = name.split(".")[0]
        if level or (name not in table and top not in table):
            return real(name, globals, locals, fromlist, level)
        if name not in table:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        module = importlib.import_module(table[name])
        if fromlist:
            return module
        return importlib.import_module(table[top])  # `import a.b` binds `a`; a has attribute b

    return dialect_import


__all__ = [
    "DIALECTS",
    "Dialect",
    "DialectSetting",
    "detect_dialect",
    "node_types",
    "preloaded_modules",
    "resolve_dialect",
    "script_builtins",
]
