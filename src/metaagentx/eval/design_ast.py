"""A static model of the workflow a design script builds, read from its AST without running it.

Design scripts are untrusted, so structure statistics must not execute them. This is a small
symbolic interpreter over the subset of Python that designs use: assignments, lists, dicts,
comprehensions and `for` loops over known iterables, helper functions that return nodes, and the
workflow library's constructors and methods (`add_node`, `add_edge`, `append`, `register`...).
Anything it cannot follow evaluates to "unknown" and is simply left out of the model.
"""

from __future__ import annotations

import ast
import contextlib
import warnings
from dataclasses import dataclass, field
from typing import Any

COMPOSITES = ("EnsembleNode", "ReflectionNode", "DebateNode", "RouterNode")
LIBRARY = frozenset({"AgentNode", "Workflow", "ToolRegistry", "Node", *COMPOSITES})
TOOL_ALIASES = {"python_execute": "python", "code_interpreter": "python"}
MAX_LOOP = 32  # iterations followed per loop or comprehension
MAX_CALL_DEPTH = 8  # nested helper-function calls followed
_UNKNOWN = object()


@dataclass(eq=False)
class NodeModel:
    """One node of the modelled workflow; identity (not equality) tells nodes apart.

    kind: agent | ensemble | reflection | debate | router | workflow | custom.
    tools: built-in or registered tool names (agents); strategy: vote | judge (ensembles);
    children: member nodes in order (for a workflow: the added nodes); back_edges/forward_edges
    and conditional (conditional `add_node`s) describe a workflow's graph.
    """

    kind: str
    name: str | None = None
    tools: set[str] = field(default_factory=set)
    strategy: str | None = None
    children: list[NodeModel] = field(default_factory=list)
    back_edges: int = 0
    forward_edges: int = 0
    conditional: int = 0
    ran: bool = False

    @property
    def composite(self) -> bool:
        return self.kind != "agent"

    @property
    def graph(self) -> bool:
        return bool(self.back_edges or self.forward_edges or self.conditional)

    def walk(self) -> list[NodeModel]:
        """This node and every node below it, each once (depth first)."""
        seen: list[NodeModel] = []
        stack = [self]
        while stack:
            node = stack.pop()
            if any(node is s for s in seen):
                continue
            seen.append(node)
            stack.extend(reversed(node.children))
        return seen


@dataclass
class _Registry:
    """A ToolRegistry value: the tool names it holds."""

    tools: set[str] = field(default_factory=set)


@dataclass
class _Function:
    node: ast.FunctionDef | ast.Lambda


@dataclass
class ScriptModel:
    """What the interpreter found: the root node (or None) and every node built."""

    root: NodeModel | None
    nodes: list[NodeModel]
    parsed: bool


def model_script(script: str) -> ScriptModel:
    """Parse `script` and model the workflow it builds; never executes it."""
    try:
        with warnings.catch_warnings():  # model-written code: its warnings are noise here
            warnings.simplefilter("ignore", SyntaxWarning)
            tree = ast.parse(script)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return ScriptModel(None, [], False)
    interpreter = _Interpreter()
    with contextlib.suppress(RecursionError):  # pathological nesting: keep what was modelled
        interpreter.block(tree.body, interpreter.globals)
    return ScriptModel(interpreter.root(), interpreter.nodes, True)


class _Return(Exception):
    def __init__(self, value: Any) -> None:
        self.value = value


class _Interpreter:
    def __init__(self) -> None:
        self.globals: dict[str, Any] = {}
        self.aliases: dict[str, str] = {}  # local name -> library class
        self.modules: set[str] = set()  # local names of the library modules
        self.agent_classes: set[str] = {"AgentNode"}
        self.custom_classes: set[str] = set()
        self.nodes: list[NodeModel] = []
        self.ran: list[NodeModel] = []
        self.depth = 0

    # ---- statements --------------------------------------------------------------------------

    def block(self, body: list[ast.stmt], env: dict[str, Any]) -> None:
        for statement in body:
            self.statement(statement, env)

    def statement(self, node: ast.stmt, env: dict[str, Any]) -> None:
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.name in LIBRARY:
                    self.aliases[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in ("workflow", "metaagentx"):
                    self.modules.add((alias.asname or alias.name).split(".")[0])
        elif isinstance(node, ast.Assign):
            value = self.expr(node.value, env)
            for target in node.targets:
                self.assign(target, value, env)
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            self.assign(node.target, self.expr(node.value, env), env)
        elif isinstance(node, ast.AugAssign):
            current = self.expr(node.target, env) if isinstance(node.target, ast.Name) else None
            value = self.expr(node.value, env)
            if isinstance(current, list) and isinstance(value, list):
                current.extend(value)
        elif isinstance(node, ast.Expr):
            self.expr(node.value, env)
        elif isinstance(node, ast.FunctionDef):
            env[node.name] = _Function(node)
            for decorator in node.decorator_list:  # @registry.register / @registry.register(...)
                target = decorator.func if isinstance(decorator, ast.Call) else decorator
                if isinstance(target, ast.Attribute) and target.attr in ("register", "tool"):
                    owner = self.expr(target.value, env)
                    if isinstance(owner, _Registry):
                        owner.tools.add(node.name)
        elif isinstance(node, ast.ClassDef):
            self.class_def(node)
        elif isinstance(node, ast.For):
            for item in self.items(node.iter, env):
                self.assign(node.target, item, env)
                self.block(node.body, env)
        elif isinstance(node, ast.If):
            test = self.expr(node.test, env)
            if test is _UNKNOWN or not isinstance(test, bool | int | str):
                self.block(node.body, env)  # unknown condition: model the main branch
            else:
                self.block(node.body if test else node.orelse, env)
        elif isinstance(node, ast.While | ast.With | ast.Try):
            self.block(node.body, env)
        elif isinstance(node, ast.Return):
            raise _Return(None if node.value is None else self.expr(node.value, env))

    def class_def(self, node: ast.ClassDef) -> None:
        bases = {self.class_name(b) for b in node.bases}
        if bases & self.agent_classes:
            self.agent_classes.add(node.name)
        elif bases & (LIBRARY | self.custom_classes):
            self.custom_classes.add(node.name)

    def assign(self, target: ast.expr, value: Any, env: dict[str, Any]) -> None:
        if isinstance(target, ast.Name):
            env[target.id] = value
        elif isinstance(target, ast.Tuple | ast.List):
            values = value if isinstance(value, list | tuple) else []
            for index, element in enumerate(target.elts):
                self.assign(element, values[index] if index < len(values) else _UNKNOWN, env)

    # ---- expressions -------------------------------------------------------------------------

    def expr(self, node: ast.expr, env: dict[str, Any]) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            if node.id in env:
                return env[node.id]
            return self.globals.get(node.id, _UNKNOWN)
        if isinstance(node, ast.List | ast.Tuple | ast.Set):
            out: list[Any] = []
            for element in node.elts:
                if isinstance(element, ast.Starred):
                    inner = self.expr(element.value, env)
                    out.extend(inner if isinstance(inner, list) else [])
                else:
                    out.append(self.expr(element, env))
            return out
        if isinstance(node, ast.Dict):
            return {
                self._key(k, env): self.expr(v, env)
                for k, v in zip(node.keys, node.values, strict=True)
                if k is not None
            }
        if isinstance(node, ast.ListComp | ast.GeneratorExp | ast.SetComp):
            return self.comprehension(node.generators, node.elt, env)
        if isinstance(node, ast.DictComp):
            values = self.comprehension(node.generators, node.value, env)
            return {index: value for index, value in enumerate(values)}
        if isinstance(node, ast.Call):
            return self.call(node, env)
        if isinstance(node, ast.Subscript):
            return self.subscript(node, env)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = self.expr(node.left, env), self.expr(node.right, env)
            if isinstance(left, list) and isinstance(right, list):
                return left + right
            if isinstance(left, int) and isinstance(right, int):
                return left + right
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
            left, right = self.expr(node.left, env), self.expr(node.right, env)
            if isinstance(left, list) and isinstance(right, int) and 0 <= right <= MAX_LOOP:
                return left * right
        if isinstance(node, ast.Lambda):
            return _Function(node)
        if isinstance(node, ast.IfExp):
            return self.expr(node.body, env)
        return _UNKNOWN

    def _key(self, node: ast.expr, env: dict[str, Any]) -> Any:
        key = self.expr(node, env)
        return key if isinstance(key, str | int) else id(node)

    def subscript(self, node: ast.Subscript, env: dict[str, Any]) -> Any:
        value = self.expr(node.value, env)
        key = self.expr(node.slice, env)
        try:
            if isinstance(value, list) and isinstance(key, int):
                return value[key]
            if isinstance(value, dict):
                return value.get(key, _UNKNOWN)
        except IndexError:
            pass
        return _UNKNOWN

    def items(self, node: ast.expr, env: dict[str, Any]) -> list[Any]:
        """The values a loop over `node` binds, when they can be known (else none)."""
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            args = [self.expr(a, env) for a in node.args]
            if node.func.id == "range" and args and all(isinstance(a, int) for a in args):
                return list(range(*args))[:MAX_LOOP]
            if node.func.id == "enumerate" and args and isinstance(args[0], list):
                return [[i, v] for i, v in enumerate(args[0][:MAX_LOOP])]
            if node.func.id == "zip" and args and all(isinstance(a, list) for a in args):
                return [list(t) for t in zip(*args, strict=False)][:MAX_LOOP]
        value = self.expr(node, env)
        if isinstance(value, dict):
            return list(value)[:MAX_LOOP]
        if isinstance(value, list | str):
            return list(value)[:MAX_LOOP]
        return []

    def comprehension(
        self, generators: list[ast.comprehension], element: ast.expr, env: dict[str, Any]
    ) -> list[Any]:
        out: list[Any] = []
        scope = dict(env)

        def expand(index: int) -> None:
            if index == len(generators):
                out.append(self.expr(element, scope))
                return
            generator = generators[index]
            for item in self.items(generator.iter, scope):
                if len(out) >= MAX_LOOP:
                    return
                self.assign(generator.target, item, scope)
                expand(index + 1)

        expand(0)
        return out

    # ---- calls -------------------------------------------------------------------------------

    def class_name(self, node: ast.expr) -> str | None:
        if isinstance(node, ast.Name):
            if node.id in self.agent_classes or node.id in self.custom_classes:
                return node.id
            return self.aliases.get(node.id)
        if isinstance(node, ast.Attribute) and node.attr in LIBRARY:
            return node.attr
        return None

    def call(self, node: ast.Call, env: dict[str, Any]) -> Any:
        name = self.class_name(node.func)
        if name is not None:
            return self.construct(name, node, env)
        if isinstance(node.func, ast.Attribute):
            return self.method(node, env)
        function = self.expr(node.func, env) if isinstance(node.func, ast.Name) else _UNKNOWN
        if isinstance(function, _Function):
            return self.invoke(function, node, env)
        if isinstance(node.func, ast.Name) and node.func.id in ("list", "tuple"):
            return self.items(node.args[0], env) if node.args else []
        for argument in [*node.args, *(k.value for k in node.keywords)]:
            self.expr(argument, env)  # nodes built inside an unknown call still count
        return _UNKNOWN

    def invoke(self, function: _Function, node: ast.Call, env: dict[str, Any]) -> Any:
        if self.depth >= MAX_CALL_DEPTH:
            return _UNKNOWN
        definition = function.node
        scope = dict(self.globals)
        params = [a.arg for a in definition.args.posonlyargs + definition.args.args]
        defaults = definition.args.defaults
        for param, default in zip(params[len(params) - len(defaults) :], defaults, strict=True):
            scope[param] = self.expr(default, env)
        for param, argument in zip(params, node.args, strict=False):
            scope[param] = self.expr(argument, env)
        for keyword in node.keywords:
            if keyword.arg is not None:
                scope[keyword.arg] = self.expr(keyword.value, env)
        self.depth += 1
        try:
            if isinstance(definition, ast.Lambda):
                return self.expr(definition.body, scope)
            self.block(definition.body, scope)
        except _Return as returned:
            return returned.value
        finally:
            self.depth -= 1
        return None

    def construct(self, name: str, node: ast.Call, env: dict[str, Any]) -> Any:
        args = [self.expr(a, env) for a in node.args]
        kwargs = {k.arg: self.expr(k.value, env) for k in node.keywords if k.arg is not None}

        def arg(position: int, *keys: str) -> Any:
            for key in keys:
                if key in kwargs:
                    return kwargs[key]
            return args[position] if position < len(args) else None

        if name == "ToolRegistry":
            return _Registry(_tool_names(arg(0, "tools")))
        if name == "Workflow":
            return self.new(NodeModel("workflow", _text(arg(0, "name"))))
        if name in self.agent_classes:
            tools = _tool_names(arg(2, "tools")) | _tool_names(kwargs.get("tool_registry"))
            return self.new(NodeModel("agent", _text(arg(0, "name")), tools=tools))
        if name == "EnsembleNode":
            judge = arg(3, "consensus_agent") or kwargs.get("judge")
            strategy = _text(arg(2, "strategy")) or "majority_vote"
            members = _nodes(arg(1, "agents"))
            judged = strategy in ("consensus", "judge") or isinstance(judge, NodeModel)
            model = NodeModel(
                "ensemble", _text(arg(0, "name")), strategy="judge" if judged else "vote"
            )
            model.children = members + _nodes([judge])
            return self.new(model)
        if name == "ReflectionNode":
            members = _nodes([arg(1, "agent"), arg(2, "critic_agent") or kwargs.get("critic")])
            return self.new(NodeModel("reflection", _text(arg(0, "name")), children=members))
        if name == "DebateNode":
            members = _nodes(arg(1, "debaters")) + _nodes([arg(2, "judge")])
            return self.new(NodeModel("debate", _text(arg(0, "name")), children=members))
        if name == "RouterNode":
            routes = arg(2, "routes")
            branches = _nodes(list(routes.values())) if isinstance(routes, dict) else []
            members = _nodes([arg(1, "router")]) + branches
            return self.new(NodeModel("router", _text(arg(0, "name")), children=members))
        return self.new(NodeModel("custom", _text(arg(0, "name"))))

    def new(self, model: NodeModel) -> NodeModel:
        self.nodes.append(model)
        return model

    def method(self, node: ast.Call, env: dict[str, Any]) -> Any:
        assert isinstance(node.func, ast.Attribute)
        owner = self.expr(node.func.value, env)
        attr = node.func.attr
        args = [self.expr(a, env) for a in node.args]
        kwargs = {k.arg: self.expr(k.value, env) for k in node.keywords if k.arg is not None}
        if isinstance(owner, NodeModel):
            if attr == "run":
                owner.ran = True
                self.ran.append(owner)
            elif owner.kind == "workflow" and attr == "add_node" and args:
                owner.children.extend(_nodes(args[:1]))
                if kwargs.get("condition") is not None or len(args) > 1:
                    owner.conditional += 1
            elif owner.kind == "workflow" and attr == "add_nodes" and args:
                owner.children.extend(_nodes(args[0]))
            elif owner.kind == "workflow" and attr == "add_edge" and len(args) >= 2:
                source, target = args[0], args[1]
                order = owner.children
                if _index(order, target) <= _index(order, source):
                    owner.back_edges += 1
                else:
                    owner.forward_edges += 1
            return owner if attr.startswith("add") else _UNKNOWN
        if isinstance(owner, _Registry):
            if attr in ("register", "register_tool", "add"):
                owner.tools |= _registered_name(args, kwargs)
            return owner if attr == "add" else _UNKNOWN
        if isinstance(owner, list):
            if attr == "append" and args:
                owner.append(args[0])
            elif attr == "extend" and args and isinstance(args[0], list):
                owner.extend(args[0])
            elif attr == "insert" and len(args) == 2 and isinstance(args[0], int):
                owner.insert(args[0], args[1])
            return None
        if isinstance(owner, dict) and attr == "values":
            return list(owner.values())
        if isinstance(owner, dict) and attr == "items":
            return [[k, v] for k, v in owner.items()]
        return _UNKNOWN

    def root(self) -> NodeModel | None:
        """The node the script runs: the last `.run()` target, else a top-level `workflow`,
        else the last workflow built, else the last node built."""
        if self.ran:
            return self.ran[-1]
        bound = self.globals.get("workflow")
        if isinstance(bound, NodeModel):
            return bound
        workflows = [n for n in self.nodes if n.kind == "workflow"]
        if workflows:
            return workflows[-1]
        return self.nodes[-1] if self.nodes else None


def _nodes(value: Any) -> list[NodeModel]:
    if isinstance(value, NodeModel):
        return [value]
    if isinstance(value, list | tuple):
        return [v for v in value if isinstance(v, NodeModel)]
    return []


def _index(order: list[NodeModel], node: Any) -> int:
    return next((i for i, n in enumerate(order) if n is node), -1)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _tool_names(value: Any) -> set[str]:
    if isinstance(value, _Registry):
        return set(value.tools)
    if isinstance(value, str):
        return {TOOL_ALIASES.get(value, value)}
    if isinstance(value, list | tuple):
        return set().union(*(_tool_names(v) for v in value)) if value else set()
    if isinstance(value, _Function) and isinstance(value.node, ast.FunctionDef):
        return {value.node.name}
    return set()


def _registered_name(args: list[Any], kwargs: dict[str, Any]) -> set[str]:
    """The tool name of `register(fn, name=...)`, `register_tool("name", fn)` or `add(...)`."""
    if isinstance(kwargs.get("name"), str):
        return {kwargs["name"]}
    return _tool_names(args[:1])
