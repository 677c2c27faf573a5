"""Reflection: a solver answers, a critic reviews, the solver revises, for a few rounds."""

from __future__ import annotations

import dataclasses

from metaagentx.mas.execution import current_execution
from metaagentx.mas.node import Context, Node, NodeResult
from metaagentx.mas.prompts import (
    CRITIC_INSTRUCTION,
    HISTORY_NOTE,
    REFINE_INSTRUCTION,
    VERDICT_REQUEST,
)
from metaagentx.mas.text import parse_verdict

PLACEHOLDERS = ("question", "response", "reflection", "history")
NO_HISTORY = "(no earlier rounds)"


def fill_template(template: str, values: dict[str, str]) -> str:
    """Replace `{question}`, `{response}`, `{reflection}`, `{history}` and nothing else, so a
    template may contain other braces (`\\boxed{}`, code) without escaping them."""
    for name in PLACEHOLDERS:
        template = template.replace("{" + name + "}", values.get(name, ""))
    return template


class ReflectionNode(Node):
    """`ReflectionNode(name, agent, critic_agent=None, num_iterations=2, *, reflection_prompt=None,
    refinement_prompt=None, include_history=False)`.

    `agent` (the solver) answers; then up to `num_iterations` rounds of: `critic_agent` reviews
    the solver's delivery and must end with "VERDICT: CORRECT" or "VERDICT: INCORRECT" (this
    is asked of it automatically); on an explicit CORRECT the loop stops early, otherwise the
    solver sees its previous delivery plus the critique and revises. Without a critic the
    solver critiques itself. The result is the solver's latest reply. `critic=` is a synonym.

    reflection_prompt: the critic's job instead of the default review instruction; may use
        `{question}` and `{response}` (the solver's latest delivery).
    refinement_prompt: the solver's job when revising; may use `{question}`, `{response}`,
        `{reflection}` (the critique's delivery) and `{history}` (the earlier rounds).
    Whatever a prompt does not place itself is delivered to the agent as usual, so it always
    sees the answer and critique it works on, exactly once; the task is always shown.
    include_history: the revising solver also sees every earlier round (its answers and their
        reviews), not only the latest one.
    """

    def __init__(
        self,
        name: str,
        agent: Node,
        critic_agent: Node | None = None,
        num_iterations: int = 2,
        *,
        critic: Node | None = None,
        reflection_prompt: str | None = None,
        refinement_prompt: str | None = None,
        include_history: bool = False,
    ) -> None:
        super().__init__(name)
        if critic_agent is not None and critic is not None:
            raise ValueError("pass critic_agent or critic, not both")
        if not isinstance(num_iterations, int) or num_iterations < 1:
            raise ValueError(f"num_iterations must be an int >= 1, got {num_iterations!r}")
        for label, prompt in (
            ("reflection_prompt", reflection_prompt),
            ("refinement_prompt", refinement_prompt),
        ):
            if prompt is not None and (not isinstance(prompt, str) or not prompt.strip()):
                raise ValueError(f"{label} must be a non-empty string or None, got {prompt!r}")
        if not isinstance(include_history, bool):
            raise TypeError(f"include_history must be True or False, got {include_history!r}")
        self.agent = agent
        self.critic = critic_agent or critic or agent
        self.num_iterations = num_iterations
        self.reflection_prompt = reflection_prompt
        self.refinement_prompt = refinement_prompt
        self.include_history = include_history

    def process(self, context: Context) -> NodeResult:
        path = context.path or self.name
        current = self.agent.process(
            context.derive(role="solver", path=f"{path}/{self.agent.name}", round=0)
        )
        verdicts: list[str | None] = []
        history: list[NodeResult] = []  # earlier rounds' answers and reviews, labelled
        for round_number in range(1, self.num_iterations + 1):
            critique = self.critic.process(self._review(context, path, round_number, current))
            verdict = parse_verdict(critique.content)
            verdicts.append(verdict)
            current_execution().record(
                {
                    "type": "verdict",
                    "node": self.name,
                    "path": path,
                    "round": round_number,
                    "critic": critique.sender,
                    "verdict": verdict,
                }
            )
            if verdict == "correct":
                break
            previous = current
            current = self.agent.process(
                self._revision(context, path, round_number, current, critique, history)
            )
            if self.include_history:
                history += [
                    _labelled(previous, f"answer of round {round_number - 1}"),
                    _labelled(critique, f"review of round {round_number}"),
                ]
        return NodeResult(
            self.name,
            current.content,
            current.delivery,
            {"rounds": len(verdicts), "verdicts": verdicts, "stopped_early": "correct" in verdicts},
        )

    def _review(
        self, context: Context, path: str, round_number: int, current: NodeResult
    ) -> Context:
        """The critic's context: the latest answer, and the default or the custom instruction."""
        template = self.reflection_prompt
        if template is None:
            instruction, shown = CRITIC_INSTRUCTION, (current,)
        else:
            values = {"question": context.question, "response": current.delivery}
            instruction = fill_template(template, values) + "\n\n" + VERDICT_REQUEST
            shown = () if "{response}" in template else (current,)
        return context.derive(
            inputs=(*context.inputs, *shown),
            instruction=instruction,
            role="critic",
            path=f"{path}/{self.critic.name}",
            round=round_number,
        )

    def _revision(
        self,
        context: Context,
        path: str,
        round_number: int,
        current: NodeResult,
        critique: NodeResult,
        history: list[NodeResult],
    ) -> Context:
        """The solver's context for revising: latest answer and critique (and earlier rounds)."""
        template = self.refinement_prompt
        if template is None:
            instruction = REFINE_INSTRUCTION + (" " + HISTORY_NOTE if history else "")
            shown = (*history, current, critique)
        else:
            values = {
                "question": context.question,
                "response": current.delivery,
                "reflection": critique.delivery,
                "history": _format_history(history),
            }
            instruction = fill_template(template, values)
            shown = (
                *(history if "{history}" not in template else ()),
                *((current,) if "{response}" not in template else ()),
                *((critique,) if "{reflection}" not in template else ()),
            )
        return context.derive(
            inputs=(*context.inputs, *shown),
            instruction=instruction,
            role="solver",
            path=f"{path}/{self.agent.name}",
            round=round_number,
        )


def _labelled(result: NodeResult, what: str) -> NodeResult:
    return dataclasses.replace(result, sender=f"{result.sender} ({what})")


def _format_history(history: list[NodeResult]) -> str:
    if not history:
        return NO_HISTORY
    return "\n\n".join(f"{r.sender}:\n{r.delivery}" for r in history)
