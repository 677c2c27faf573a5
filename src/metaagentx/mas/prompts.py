"""The text the library adds around what the designer wrote.

The designer writes only each agent's role (its own system prompt); the delivery protocol, the
answer format of the domain and how to call tools are the same for every design, so they are
added here. Keeping these strings in one module keeps training data (SFT, RL) consistent.
"""

from __future__ import annotations

from collections.abc import Sequence

DELIVERY_INSTRUCTION = (
    "End your reply with <delivery>...</delivery> holding what the other agents need from you: "
    "your result and the key steps, not your whole reasoning. Only your last delivery block is "
    "passed on."
)

ANSWER_FORMATS = {
    "math": "Write your final answer as \\boxed{answer}.",
    "code": (
        "Write your final solution as one complete program in a fenced ```python block inside "
        "your delivery; the last python block of your reply is taken as your solution."
    ),
}

PYTHON_TOOL_INSTRUCTION = (
    "You can run Python: reply with one ```python block and no <delivery> block, and the block's "
    "output comes back to you; then continue. A reply with a <delivery> block is final and runs "
    "nothing."
)

TOOL_CALL_INSTRUCTION = (
    'You can call tools by writing <tool_call>{"name": "TOOL", "arguments": {...}}</tool_call> '
    "(valid JSON) in a reply with no <delivery> block; each result comes back to you, then "
    "continue. Tools:"
)

LAST_TURN_NOTICE = (
    "This is your last turn: tools are off. Give your final reply now, with its <delivery> block."
)

JUDGE_INSTRUCTION = (
    "The deliveries above are candidate solutions from different agents. Check each one, then "
    "pick the best or write a corrected one, and give the final answer."
)
VERDICT_REQUEST = "End with 'VERDICT: CORRECT' if it is right, otherwise 'VERDICT: INCORRECT' and what must change."
CRITIC_INSTRUCTION = (
    "Review the solution delivered above: check every step and the final answer. " + VERDICT_REQUEST
)
REFINE_INSTRUCTION = (
    "A reviewer found problems with your previous solution (both are delivered above). Fix them "
    "and give your corrected solution."
)
HISTORY_NOTE = (
    "The earlier rounds (answers and reviews) are delivered above too: do not repeat a mistake "
    "that was already pointed out."
)
DEBATE_INSTRUCTION = (
    "The deliveries above are the other debaters' answers (and your own) from the last round. "
    "Point out their mistakes, defend or revise your answer, and give your answer for this round."
)


def answer_format(domain: str | None, override: str | None = None) -> str:
    """The answer-format sentence of a domain ("math", "code"); `override` replaces it (a task
    may need a specific format, e.g. a function signature)."""
    if override:
        return override
    return ANSWER_FORMATS.get(domain or "", "Give your final answer clearly at the end.")


def build_system_prompt(
    system_prompt: str,
    domain: str | None,
    *,
    python_tool: bool = False,
    tool_lines: Sequence[str] = (),
    max_turns: int = 1,
    format_override: str | None = None,
) -> str:
    """An agent's full system prompt: its own role text, then the delivery protocol, the
    domain's answer format, and how to use its tools (only when it has any and more than one
    turn to use them in)."""
    parts = [system_prompt.strip(), DELIVERY_INSTRUCTION, answer_format(domain, format_override)]
    if max_turns > 1 and python_tool:
        parts.append(PYTHON_TOOL_INSTRUCTION)
    if max_turns > 1 and tool_lines:
        parts.append("\n".join([TOOL_CALL_INSTRUCTION, *(f"- {line}" for line in tool_lines)]))
    if max_turns > 1 and (python_tool or tool_lines):
        parts.append(f"You have at most {max_turns} turns.")
    return "\n\n".join(p for p in parts if p)


def render_user_message(
    question: str, deliveries: Sequence[tuple[str, str]] = (), instruction: str | None = None
) -> str:
    """The user message an agent receives: the task, the deliveries (sender, text) of the agents
    it depends on, and the instruction of its role in a pattern. A first agent with neither
    sees the bare task text."""
    if not deliveries and not instruction:
        return question
    parts = [f"## Task\n{question}"]
    if deliveries:
        blocks = "\n\n".join(f"### From {sender}\n{text}" for sender, text in deliveries)
        parts.append(f"## Deliveries from other agents\n{blocks}")
    if instruction:
        parts.append(f"## Your job now\n{instruction}")
    return "\n\n".join(parts)


def router_instruction(routes: Sequence[tuple[str, str]]) -> str:
    """What a routing agent is asked: pick one branch by name, in a `<route>` tag."""
    lines = "\n".join(f"- {name}: {description}" for name, description in routes)
    return (
        "Do not solve the task. Decide which branch should handle it and reply with "
        f"<route>NAME</route>, NAME being one of:\n{lines}"
    )
