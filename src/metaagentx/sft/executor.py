"""The teacher's agent turns: read an agent request the workflow library built, write the turn.

Everything is read from the messages, as a model would: the role from the job instruction the
patterns add (`mas.prompts`), the tools and the domain from the sentences the library appends
to the system prompt, the task from the user message, the turn from the tool messages so far.
The turns are short and always the same shape, so a tiny model can learn them:

- math with the python tool: "```python\\nprint(EXPR)\\n```", then, after the tool message,
  "<delivery>\\boxed{OUTPUT}</delivery>" with OUTPUT copied from the tool's stdout;
- math without it: "<delivery>\\boxed{ANSWER}</delivery>" (an in-weights answer: the teacher
  can give it, a tiny student mostly cannot, which is why tool designs should win under RL);
- code: "<delivery>\\n```python\\nPROGRAM```\\n</delivery>"; with `run_tests`, the program plus
  a `<tool_call>` first, the delivery after the report;
- critic / verifier: "<delivery>VERDICT: CORRECT|INCORRECT\\n<its own answer></delivery>",
  recomputing with its tool first when it has one; judge: the answer; router: a `<route>` tag.

`slip` (a random generator or None) makes one copied digit wrong: the executor's copy-error
knob, the failure a tiny model makes and that voting or checking can repair.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from metaagentx.mas.prompts import (
    ANSWER_FORMATS,
    JUDGE_INSTRUCTION,
    LAST_TURN_NOTICE,
    PYTHON_TOOL_INSTRUCTION,
)
from metaagentx.mas.text import extract_boxed, extract_code, normalize_answer
from metaagentx.sft.problems import Problem, parse_problem

AgentRole = Literal["solver", "critic", "judge", "router"]

RUN_TESTS_CALL = '<tool_call>{"name": "run_tests", "arguments": {}}</tool_call>'
_TASK_HEAD = "## Task\n"
_DELIVERIES_HEAD = "\n\n## Deliveries from other agents\n"
_JOB_HEAD = "\n\n## Your job now\n"
_FROM = re.compile(r"^### From (.+)$", re.MULTILINE)
_STDOUT = re.compile(r"^status: ok \(exit code 0\)\nstdout:\n\s*(-?\d+)\s*$", re.MULTILINE)
_ROUTE_LINE = re.compile(r"^- (\S+): (.*)$", re.MULTILINE)


@dataclass
class AgentView:
    """What one agent request says: the task, the job, the tools, where the agent is."""

    question: str
    domain: str
    role: AgentRole
    instruction: str = ""
    deliveries: list[tuple[str, str]] = field(default_factory=list)
    python_tool: bool = False
    run_tests_tool: bool = False
    tool_outputs: list[str] = field(default_factory=list)  # tool messages of this agent's run
    last_turn: bool = False  # the library switched tools off for this turn

    @property
    def can_use_tools(self) -> bool:
        return not self.last_turn and not self.tool_outputs

    @property
    def candidate(self) -> str:
        """The last delivery this agent was shown (what a critic reviews), or ""."""
        return self.deliveries[-1][1] if self.deliveries else ""


def read_request(messages: list[dict[str, Any]]) -> AgentView:
    """Parse the messages `mas.AgentNode` builds: system, user, then (assistant, tool...)."""
    if len(messages) < 2 or messages[0].get("role") != "system":
        raise ValueError("an agent request starts with a system and a user message")
    system, user = str(messages[0]["content"]), str(messages[1]["content"])
    question, deliveries, instruction = _split_user_message(user)
    later = messages[2:]
    tool_outputs = [str(m["content"]) for m in later if m.get("role") == "tool"]
    if ANSWER_FORMATS["code"] in system:
        domain = "code"
    elif ANSWER_FORMATS["math"] in system:
        domain = "math"
    else:
        domain = parse_problem(question).domain
    return AgentView(
        question=question,
        domain=domain,
        role=_role(system, instruction),
        instruction=instruction,
        deliveries=deliveries,
        python_tool=PYTHON_TOOL_INSTRUCTION in system,
        run_tests_tool="- run_tests(" in system,
        tool_outputs=tool_outputs,
        last_turn=bool(later) and LAST_TURN_NOTICE in str(later[-1].get("content", "")),
    )


def _split_user_message(user: str) -> tuple[str, list[tuple[str, str]], str]:
    """(task, deliveries, instruction) of `mas.prompts.render_user_message`'s output."""
    if not user.startswith(_TASK_HEAD):
        return user, [], ""
    body, instruction = user[len(_TASK_HEAD) :], ""
    if _JOB_HEAD in body:
        body, instruction = body.rsplit(_JOB_HEAD, 1)
    question, _, delivered = body.partition(_DELIVERIES_HEAD)
    heads = list(_FROM.finditer(delivered))
    deliveries = [
        (h[1], delivered[h.end() + 1 : heads[i + 1].start() if i + 1 < len(heads) else None])
        for i, h in enumerate(heads)
    ]
    return question, [(s, t.strip()) for s, t in deliveries], instruction.strip()


def _role(system: str, instruction: str) -> AgentRole:
    if "<route>" in instruction:
        return "router"
    if instruction.startswith(JUDGE_INSTRUCTION):
        return "judge"
    if "VERDICT" in instruction or "VERDICT" in system:
        return "critic"
    return "solver"


def write_turn(view: AgentView, slip: random.Random | None = None) -> str:
    """The teacher's reply for this agent turn."""
    if view.role == "router":
        return f"<route>{_pick_route(view)}</route>"
    problem = parse_problem(view.question)
    if view.role == "critic":
        return _critic_turn(view, problem, slip)
    if view.domain == "code":
        return _code_turn(view, problem, slip, tools=view.role == "solver")
    return _math_turn(view, problem, slip, tools=view.role == "solver")


def _math_turn(view: AgentView, problem: Problem, slip: random.Random | None, tools: bool) -> str:
    if tools and view.python_tool and view.can_use_tools:
        return f"```python\nprint({_copy(_expression(problem), slip)})\n```"
    return f"<delivery>\\boxed{{{_copy(_math_value(view, problem), slip)}}}</delivery>"


def _code_turn(view: AgentView, problem: Problem, slip: random.Random | None, tools: bool) -> str:
    if tools and view.run_tests_tool and view.can_use_tools:
        return f"```python\n{_copy(problem.answer, slip)}```\n{RUN_TESTS_CALL}"
    # after the test report the teacher delivers its own program: a slip before is now fixed
    return f"<delivery>\n```python\n{_copy(problem.answer, slip)}```\n</delivery>"


def _critic_turn(view: AgentView, problem: Problem, slip: random.Random | None) -> str:
    """Recompute (with the tool when there is one), compare with the candidate, say so."""
    if view.domain == "code":
        if view.run_tests_tool and view.can_use_tools:
            return RUN_TESTS_CALL  # tests the last python block shown: the candidate
        candidate = extract_code(view.candidate) or ""
        ok = _canonical_code(candidate) == _canonical_code(problem.answer)
        own = f"```python\n{_copy(problem.answer, slip)}```"
    else:
        if view.python_tool and view.can_use_tools:
            return f"```python\nprint({_copy(_expression(problem), slip)})\n```"
        value = _copy(_math_value(view, problem), slip)
        candidate = extract_boxed(view.candidate)
        ok = candidate is not None and normalize_answer(candidate) == normalize_answer(value)
        own = f"\\boxed{{{value}}}"
    verdict = "CORRECT" if ok else "INCORRECT"
    return f"<delivery>VERDICT: {verdict}\n{own}</delivery>"


def _pick_route(view: AgentView) -> str:
    """A route that computes for math (by name or description), else the first route."""
    routes = _ROUTE_LINE.findall(view.instruction)
    if not routes:
        raise ValueError("a router request without routes")
    if view.domain == "math":
        for name, description in routes:
            if re.search(r"comput|python|arithmetic", f"{name} {description}", re.IGNORECASE):
                return name
    return routes[0][0]


def _expression(problem: Problem) -> str:
    if problem.expression is None:
        raise ValueError(f"{problem.family} has no expression to compute")
    return problem.expression


def _math_value(view: AgentView, problem: Problem) -> str:
    """The number to box: copied from this agent's tool output when it ran the tool (even if a
    slip made it wrong: copying is the skill), else the teacher's own exact answer."""
    for output in reversed(view.tool_outputs):
        if match := _STDOUT.search(output):
            return match[1]
    return problem.answer


def _copy(text: str, slip: random.Random | None) -> str:
    """`text`, or with one digit changed when `slip` is given (never a new leading zero)."""
    if slip is None:
        return text
    positions = [i for i, ch in enumerate(text) if ch.isdigit()]
    if not positions:
        return text
    i = slip.choice(positions)
    leads = (i == 0 or not text[i - 1].isdigit()) and i + 1 < len(text) and text[i + 1].isdigit()
    digits = [d for d in "0123456789" if d != text[i] and not (leads and d == "0")]
    return text[:i] + slip.choice(digits) + text[i + 1 :]


def _canonical_code(code: str) -> str:
    return "\n".join(line.rstrip() for line in code.strip().splitlines() if line.strip())


__all__ = ["RUN_TESTS_CALL", "AgentRole", "AgentView", "read_request", "write_turn"]
