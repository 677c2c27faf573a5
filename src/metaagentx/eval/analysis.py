"""Design-structure analysis: what kind of multi-agent system each design builds.

The paper's analysis asks whether the designer adapts structure to the task (reflection for hard
math, a single agent for easy code...). A design's declared `Pattern:` line is only a claim, so
the structure is read from the script itself (statically, see `design_ast`): its pattern class,
number of agents, tools and nesting depth. Distributions group designs by domain or difficulty,
and `compare_designs` sets two sets of designs side by side (before/after RL or SFT).
All functions are pure: records in, plain dicts out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from metaagentx.eval.design_ast import NodeModel, model_script

PATTERNS: tuple[str, ...] = (
    "single",  # one agent, no tools
    "single+tool",  # one agent with tools (python, run_tests, own tools)
    "ensemble_vote",  # parallel members, majority vote
    "ensemble_judge",  # parallel members, a judge decides
    "reflection",  # solver + critic rounds
    "debate",  # debaters revise over rounds, optional judge
    "router",  # a router agent picks a branch
    "code+tester",  # several agents, one of them runs the task's tests
    "loop/graph",  # a workflow with back edges, skips or conditional nodes
    "pipeline",  # a plain sequence of several nodes
    "other",  # nothing recognisable (custom node classes, no agents, unparsable)
)
INVALID = "invalid"  # a design the static check rejected (never executed)


@dataclass(frozen=True)
class DesignStructure:
    """The structure of one design script."""

    pattern: str
    agents: int
    tools: tuple[str, ...]
    depth: int
    composites: tuple[str, ...]
    parsed: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def classify_script(script: str | None) -> DesignStructure:
    """Classify a design script from its AST (it is never executed)."""
    if not script:
        return DesignStructure("other", 0, (), 0, (), False)
    model = model_script(script)
    if model.root is None:
        agents = sum(1 for n in model.nodes if n.kind == "agent")
        return DesignStructure("other", agents, (), 0, (), model.parsed)
    root = _unwrap(model.root)
    reachable = root.walk()
    agents = [n for n in reachable if n.kind == "agent"]
    tools = tuple(sorted(set().union(*(a.tools for a in agents)))) if agents else ()
    composites = tuple(sorted({n.kind for n in _structural(root)}))
    if not agents:
        built = sum(1 for n in model.nodes if n.kind == "agent")
        return DesignStructure("other", built, (), _depth(root, []), composites, True)
    return DesignStructure(
        _pattern(root, agents), len(agents), tools, _depth(root, []), composites, True
    )


def _unwrap(node: NodeModel) -> NodeModel:
    """Skip workflows that only wrap one node (the usual `Workflow().add_node(pattern)`)."""
    seen: list[NodeModel] = []
    while (
        node.kind == "workflow"
        and len(node.children) == 1
        and not node.graph
        and not any(node is s for s in seen)
    ):
        seen.append(node)
        node = node.children[0]
    return node


def _structural(root: NodeModel) -> list[NodeModel]:
    """Composite nodes that shape the workflow (trivial wrappers excluded)."""
    return [
        n for n in root.walk() if n.composite and not (n.kind == "workflow" and _unwrap(n) is not n)
    ]


def _depth(node: NodeModel, path: list[NodeModel]) -> int:
    """Nesting of composite nodes: an agent is 0, a composite is 1 + its deepest member."""
    node = _unwrap(node)
    if node.kind == "agent" or any(node is p for p in path):
        return 0
    below = [_depth(child, [*path, node]) for child in node.children]
    return 1 + max(below, default=0)


def _pattern(root: NodeModel, agents: list[NodeModel]) -> str:
    tested = len(agents) >= 2 and any("run_tests" in a.tools for a in agents)
    if root.kind == "agent":
        return "single+tool" if root.tools else "single"
    if root.kind == "ensemble":
        return "ensemble_judge" if root.strategy == "judge" else "ensemble_vote"
    if root.kind == "reflection":
        return "code+tester" if tested else "reflection"
    if root.kind in ("debate", "router"):
        return root.kind
    if root.kind == "workflow":
        if tested:
            return "code+tester"
        if root.graph:
            return "loop/graph"
        if len(root.children) >= 2:
            return "pipeline"
    return "other"


# ---- designs from records ----------------------------------------------------------------------


@dataclass(frozen=True)
class DesignRow:
    """One design with its context: where it came from and how it did."""

    problem_id: str
    domain: str
    difficulty: str
    valid: bool
    declared: str | None
    structure: DesignStructure
    reward: float | None
    accuracy: float | None  # fraction of its executions that were correct

    @property
    def pattern(self) -> str:
        return self.structure.pattern if self.valid else INVALID


def difficulty_label(value: Any) -> str:
    """A stable group label: 2.0 -> "2", None -> "unknown"."""
    if value is None or value == "":
        return "unknown"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def rows_from_records(
    records: Iterable[Mapping[str, Any]], difficulty: Mapping[str, Any] | None = None
) -> list[DesignRow]:
    """Design rows from `RolloutTree.to_records()` records (training samples or evaluation).

    Difficulty comes from a record's own `difficulty` field, else from `difficulty[problem_id]`.
    Modes without a designer carry their fixed design as the script, so they classify too.
    """
    rows = []
    for record in records:
        pid = str(record.get("problem_id"))
        level = record.get("difficulty", (difficulty or {}).get(pid))
        for design in record.get("designs") or []:
            executions = design.get("executions") or []
            rows.append(
                DesignRow(
                    problem_id=pid,
                    domain=str(record.get("domain") or "unknown"),
                    difficulty=difficulty_label(level),
                    valid=bool(design.get("valid")),
                    declared=design.get("pattern"),
                    structure=classify_script(design.get("script")),
                    reward=design.get("reward"),
                    accuracy=(
                        sum(bool(e.get("correct")) for e in executions) / len(executions)
                        if executions
                        else None
                    ),
                )
            )
    return rows


# ---- distributions and comparisons -------------------------------------------------------------

GROUPINGS = ("domain", "difficulty")


def pattern_distribution(
    rows: Sequence[DesignRow], by: str | None = None
) -> dict[str, dict[str, float]]:
    """Fraction of designs per pattern ("invalid" included), per group (`by`: domain,
    difficulty) or over all designs (key "all")."""
    if by is not None and by not in GROUPINGS:
        raise ValueError(f"unknown grouping {by!r}; use one of {GROUPINGS}")
    groups: dict[str, list[DesignRow]] = {}
    for row in rows:
        groups.setdefault("all" if by is None else getattr(row, by), []).append(row)
    return {
        group: _fractions(Counter(r.pattern for r in members))
        for group, members in sorted(groups.items())
    }


def _fractions(counts: Counter[str]) -> dict[str, float]:
    total = sum(counts.values())
    order = {p: i for i, p in enumerate((*PATTERNS, INVALID))}
    return {
        k: counts[k] / total for k in sorted(counts, key=lambda p: (order.get(p, len(order)), p))
    }


def structure_summary(rows: Sequence[DesignRow]) -> dict[str, float]:
    """Flat summary of a set of designs: validity, mean agents and depth (valid designs),
    tool use, the pattern mix and the accuracy of each pattern's executions."""
    out: dict[str, float] = {"designs": float(len(rows))}
    if not rows:
        return out
    valid = [r for r in rows if r.valid]
    out["valid_frac"] = len(valid) / len(rows)
    if valid:
        out["mean_agents"] = sum(r.structure.agents for r in valid) / len(valid)
        out["mean_depth"] = sum(r.structure.depth for r in valid) / len(valid)
        out["tool_use_frac"] = sum(bool(r.structure.tools) for r in valid) / len(valid)
        for tool, n in sorted(Counter(t for r in valid for t in r.structure.tools).items()):
            out[f"tools/{tool}"] = n / len(valid)
    for pattern, fraction in _fractions(Counter(r.pattern for r in rows)).items():
        out[f"patterns/{pattern}"] = fraction
        scored = [r.accuracy for r in rows if r.pattern == pattern and r.accuracy is not None]
        if scored:
            out[f"accuracy/{pattern}"] = sum(scored) / len(scored)
    return out


def compare_designs(
    before: Sequence[DesignRow], after: Sequence[DesignRow], by: str | None = "domain"
) -> dict[str, Any]:
    """Two sets of designs side by side: summaries, their differences (after - before) and
    pattern distributions per group."""
    b, a = structure_summary(before), structure_summary(after)
    keys = sorted(set(b) | set(a))
    return {
        "before": b,
        "after": a,
        "delta": {k: a.get(k, 0.0) - b.get(k, 0.0) for k in keys if k != "designs"},
        "by": by,
        "before_distribution": pattern_distribution(before, by),
        "after_distribution": pattern_distribution(after, by),
    }


def distribution_markdown(distribution: Mapping[str, Mapping[str, float]], title: str) -> str:
    """A markdown table: one row per group, one column per pattern (percent)."""
    patterns = [p for p in (*PATTERNS, INVALID) if any(p in d for d in distribution.values())]
    lines = [
        f"| {title} | " + " | ".join(patterns) + " |",
        "|---|" + "---|" * len(patterns),
    ]
    for group, fractions in distribution.items():
        cells = [f"{100 * fractions.get(p, 0.0):.0f}%" for p in patterns]
        lines.append(f"| {group} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def comparison_markdown(comparison: Mapping[str, Any]) -> str:
    """A markdown table of `compare_designs`: metric, before, after, delta."""
    lines = ["| metric | before | after | delta |", "|---|---|---|---|"]
    before, after = comparison["before"], comparison["after"]
    for key, delta in comparison["delta"].items():
        lines.append(
            f"| {key} | {before.get(key, 0.0):.3f} | {after.get(key, 0.0):.3f} | {delta:+.3f} |"
        )
    return "\n".join(lines)


__all__ = [
    "GROUPINGS",
    "INVALID",
    "PATTERNS",
    "DesignRow",
    "DesignStructure",
    "classify_script",
    "compare_designs",
    "comparison_markdown",
    "difficulty_label",
    "distribution_markdown",
    "pattern_distribution",
    "rows_from_records",
    "structure_summary",
]
