"""The authors' `ReflectionNode`: an agent answers, a critic (or the agent itself) reviews, the
agent refines, for a few iterations, stopping early on approval or repetition.

Standard library only: this runs in the sandbox.
"""

from __future__ import annotations

from typing import Any

from metaagentx.mas.execution import current_execution
from metaagentx.mas.pettingllms.core import Context, Message, MessageType, WorkflowNode, path_of
from metaagentx.mas.pettingllms.flow import (
    delivery_of_message,
    fresh_context,
    question_of,
    shown,
)
from metaagentx.mas.text import clip, parse_verdict

REFLECTION_PROMPT = (
    "You are a rigorous reviewer. Examine the response below to the question.\n\n"
    "Original question: {question}\n\n"
    "Response to review:\n{response}\n\n"
    "Critique it: point out any errors, gaps in the reasoning or unanswered parts, judge whether "
    "it is complete and clear, and say concretely how to improve it. Be constructive but strict."
)
REFINEMENT_PROMPT = (
    "Original question: {question}\n\n"
    "Your previous response:\n{response}\n\n"
    "A reviewer's critique of it:\n{reflection}\n\n"
    "Write an improved response that fixes every issue the critique raises."
)
REFINEMENT_WITH_HISTORY = (
    "Original question: {question}\n\n"
    "=== Earlier iterations ===\n{history}\n\n"
    "=== This iteration ===\n"
    "Your latest response:\n{response}\n\n"
    "The latest critique:\n{reflection}\n\n"
    "Taking ALL the feedback so far into account, write a clearly improved response."
)
CRITIC_FAILED = "Unable to generate reflection due to error."
CRITIQUE_CHARS = 1500  # a critique embedded in a prompt keeps its head and tail
REPEAT_SIMILARITY = 0.75  # a refinement this similar to the previous response ends the loop
PLACEHOLDERS = ("question", "response", "reflection", "history")


def fill(template: str, values: dict[str, str]) -> str:
    """`template.format(**values)` as theirs does; a template with other braces (`\\boxed{}`,
    code), which would make theirs fail, gets only its known placeholders replaced."""
    try:
        return template.format(**values)
    except (KeyError, IndexError, ValueError, AttributeError):
        for name in PLACEHOLDERS:
            template = template.replace("{" + name + "}", values.get(name, ""))
        return template


def approves(critique: str) -> bool:
    """Whether a critique accepts the answer: its last "VERDICT: CORRECT/INCORRECT" (see
    `parse_verdict`), else a critique ending with the word CORRECT (not INCORRECT)."""
    verdict = parse_verdict(critique)
    if verdict is not None:
        return verdict == "correct"
    tail = critique.strip().rstrip(".!*` ").upper()
    return tail.endswith("CORRECT") and not tail.endswith("INCORRECT")


def similarity(a: str, b: str) -> float:
    """Jaccard similarity of the two texts' character trigrams (0 for empty texts)."""
    grams_a = {a[i : i + 3] for i in range(len(a) - 2)}
    grams_b = {b[i : i + 3] for i in range(len(b) - 2)}
    if not grams_a or not grams_b:
        return 0.0
    return len(grams_a & grams_b) / len(grams_a | grams_b)


class ReflectionNode(WorkflowNode):
    """`ReflectionNode(name, agent, num_iterations=2, reflection_prompt=None, critic_agent=None,
    refinement_prompt=None, include_history=False, **kwargs)` (third positional: iterations).

    `agent` answers on a copy of the context. Then, up to `num_iterations` times: the critic
    (`critic_agent`, else `agent` itself) gets `reflection_prompt` filled with `{question}` and
    `{response}`; a critique that approves (see `approves`) stops the loop; otherwise the agent
    gets `refinement_prompt` filled with `{question}`, `{response}`, `{reflection}` (with
    `include_history`, their history template with `{history}` instead, as in theirs) and
    refines. A refinement that mostly repeats the previous response (trigram similarity > 0.75)
    stops the loop, keeping the refinement only if it has a `\\boxed{}` answer. A failed
    critique reads "Unable to generate reflection due to error."; a failed refinement keeps the
    previous response. The result is the agent's latest response.

    Differs from ours (`metaagentx.mas.nodes.ReflectionNode`): third positional is
    `num_iterations`; prompts are composed text, not deliveries; no verdict is demanded of the
    critic. Differs from theirs: the first answer also sees earlier agents' responses (theirs:
    the question only); "... INCORRECT" at the end of a critique does not count as approval."""

    def __init__(
        self,
        name: str,
        agent: WorkflowNode,
        num_iterations: int = 2,
        reflection_prompt: str | None = None,
        critic_agent: WorkflowNode | None = None,
        refinement_prompt: str | None = None,
        include_history: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(name, **kwargs)
        for node in (agent, critic_agent):
            if node is not None and not isinstance(node, WorkflowNode):
                raise TypeError(
                    f"agent and critic_agent must be nodes (AgentNode...), not {node!r}"
                )
        if isinstance(num_iterations, bool) or not isinstance(num_iterations, int):
            raise TypeError(f"num_iterations must be an int, got {num_iterations!r}")
        if num_iterations < 0:
            raise ValueError(f"num_iterations must be >= 0, got {num_iterations}")
        self.agent = agent
        self.critic_agent = critic_agent if critic_agent is not None else agent
        self.num_iterations = num_iterations
        self.reflection_prompt = reflection_prompt or REFLECTION_PROMPT
        self.refinement_prompt = refinement_prompt or REFINEMENT_PROMPT
        self.include_history = bool(include_history)

    def process(self, context: Context) -> Message:
        path = path_of(context, self.name)
        question = question_of(context)
        context.set_state("original_question", question)
        current = self.agent(context.at(path, role="solver", round=0))
        if current.message_type == MessageType.ERROR:
            return current
        history: list[dict[str, Any]] = [
            {"iteration": 0, "response": current.text, "reflection": None}
        ]
        for iteration in range(1, self.num_iterations + 1):
            critique = self._reflect(context, path, question, current, iteration)
            record = {"iteration": iteration, "reflection": critique}
            if approves(critique):
                history.append({**record, "response": current.text, "early_stop": True})
                break
            refined = self._refine(context, path, question, current, critique, history, iteration)
            if similarity(current.text, refined.text) > REPEAT_SIMILARITY:
                if "\\boxed{" in refined.text:
                    current = refined
                history.append({**record, "response": current.text, "early_stop": True,
                                "reason": "repetition_detected"})  # fmt: skip
                break
            current = refined
            history.append({**record, "response": current.text})
        mode = "self-reflection" if self.critic_agent is self.agent else "critic-based"
        metadata = {
            "num_iterations": self.num_iterations,
            "mode": mode,
            "generator_agent": self.agent.name,
            "critic_agent": self.critic_agent.name,
            "history": history,
            "delivery": delivery_of_message(current),
        }
        return Message(current.text, MessageType.AGENT_RESPONSE, metadata)

    def _reflect(
        self, context: Context, path: str, question: str, current: Message, iteration: int
    ) -> str:
        """The critic's critique of `current` (a fixed notice when the critic fails)."""
        prompt = fill(self.reflection_prompt, {"question": question, "response": shown(current)})
        result = self.critic_agent(fresh_context(context, prompt, path, "critic", iteration))
        failed = result.message_type == MessageType.ERROR
        critique = CRITIC_FAILED if failed else result.text
        current_execution().record({
            "type": "verdict", "node": self.name, "path": path, "round": iteration,
            "critic": self.critic_agent.name, "approved": not failed and approves(critique),
            "failed": failed,
        })  # fmt: skip
        return critique

    def _refine(
        self,
        context: Context,
        path: str,
        question: str,
        current: Message,
        critique: str,
        history: list[dict[str, Any]],
        iteration: int,
    ) -> Message:
        """The agent's refinement of `current` (`current` itself when the agent fails)."""
        values = {
            "question": question,
            "response": shown(current),
            "reflection": clip(critique.strip(), CRITIQUE_CHARS),
        }
        if self.include_history:
            values["history"] = _format_history(history)
            prompt = fill(REFINEMENT_WITH_HISTORY, values)
        else:
            prompt = fill(self.refinement_prompt, values)
        result = self.agent(fresh_context(context, prompt, path, "solver", iteration))
        return current if result.message_type == MessageType.ERROR else result


def _format_history(history: list[dict[str, Any]]) -> str:
    lines = []
    for record in history:
        lines.append(f"--- Iteration {record['iteration']} ---")
        lines.append(f"Response: {clip(str(record['response']).strip(), CRITIQUE_CHARS * 2)}")
        if record.get("reflection"):
            lines.append(f"Critique: {clip(str(record['reflection']).strip(), CRITIQUE_CHARS)}")
        lines.append("")
    return "\n".join(lines)


__all__ = ["ReflectionNode", "approves", "fill", "similarity"]
