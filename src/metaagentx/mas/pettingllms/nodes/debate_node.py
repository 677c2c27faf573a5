"""The authors' `DebateNode`: debaters answer, then revise over rounds seeing the whole debate so
far; a judge (by default the first debater) gives the final answer.

Standard library only: this runs in the sandbox.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

from metaagentx.mas.execution import current_execution
from metaagentx.mas.parallel import run_parallel
from metaagentx.mas.pettingllms.core import Context, Message, MessageType, WorkflowNode, path_of
from metaagentx.mas.pettingllms.flow import (
    delivery_of_message,
    fresh_context,
    question_of,
    shown,
)

REFINE_TASK = (
    "Taking the discussion above into account, give your refined answer. You may point out "
    "flaws in the other responses and improve on your own."
)
JUDGE_TASK = (
    "Pick the best of these responses, or combine them into a better answer, and give your "
    "final answer."
)


class DebateNode(WorkflowNode):
    """`DebateNode(name, debaters, judge=None, num_rounds=2, **kwargs)`.

    Round 1: every debater answers on a copy of the context (the question and what came
    before). Each later round: every debater gets the question plus every earlier round's
    responses (the whole history, as in theirs) and refines its answer. Then the `judge` gets the
    question plus the last round's responses and gives the final answer; without a judge the
    first debater judges (theirs does so too). A single debater is allowed. Debaters of a round
    run at the same time (theirs runs them one by one; each only sees earlier rounds, so the
    result is the same). A failed debater's turn shows as "[Error: ...]"; if the judge fails,
    the result is the last-round reply of the first debater that gave one.

    Differs from ours (`metaagentx.mas.nodes.DebateNode`): one debater suffices, no judge means
    the first debater judges (ours votes), later rounds see every earlier round (ours the last
    one), in a composed prompt rather than as deliveries. Differs from theirs: the question is
    the first USER_INPUT (theirs takes the latest message, an earlier agent's reply when the
    debate is not first), and round 1 also sees earlier agents' responses."""

    def __init__(
        self,
        name: str,
        debaters: Sequence[WorkflowNode],
        judge: WorkflowNode | None = None,
        num_rounds: int = 2,
        **kwargs: Any,
    ) -> None:
        super().__init__(name, **kwargs)
        self.debaters = list(debaters)
        if not self.debaters:
            raise ValueError("a debate needs at least one debater")
        for node in [*self.debaters, *([judge] if judge is not None else [])]:
            if not isinstance(node, WorkflowNode):
                raise TypeError(
                    f"debaters and the judge must be nodes (AgentNode...), not {node!r}"
                )
        if isinstance(num_rounds, bool) or not isinstance(num_rounds, int) or num_rounds < 1:
            raise ValueError(f"num_rounds must be an int >= 1, got {num_rounds!r}")
        self.judge = judge or self.debaters[0]
        self.num_rounds = num_rounds

    def process(self, context: Context) -> Message:
        path = path_of(context, self.name)
        question = question_of(context)
        history: list[list[Message]] = []
        for round_number in range(1, self.num_rounds + 1):
            if round_number == 1:
                contexts = [context.at(path, role="debater", round=1) for _ in self.debaters]
            else:
                prompt = self._round_prompt(question, history)
                contexts = [
                    fresh_context(context, prompt, path, role="debater", round=round_number)
                    for _ in self.debaters
                ]
            history.append(
                run_parallel([partial(d, c) for d, c in zip(self.debaters, contexts, strict=True)])
            )
        judge_prompt = self._judge_prompt(question, history[-1])
        verdict = self.judge(fresh_context(context, judge_prompt, path, role="judge"))
        chosen = verdict
        if verdict.message_type == MessageType.ERROR:
            chosen = next((m for m in history[-1] if m.message_type != MessageType.ERROR), None)
            if chosen is None:
                raise RuntimeError(f"the judge and every debater failed: {verdict.text}")
        current_execution().record({
            "type": "debate", "node": self.name, "path": path, "rounds": self.num_rounds,
            "judge": self.judge.name, "judge_failed": chosen is not verdict,
        })  # fmt: skip
        metadata = {
            "num_rounds": self.num_rounds,
            "num_debaters": len(self.debaters),
            "debate_history": [[m.text for m in round_] for round_ in history],
            "judge": self.judge.name,
            "delivery": delivery_of_message(chosen),
        }
        return Message(chosen.text, MessageType.AGENT_RESPONSE, metadata)

    def _round_prompt(self, question: str, history: list[list[Message]]) -> str:
        rounds = []
        for number, responses in enumerate(history, 1):
            lines = [f"=== Round {number} ==="]
            for index, (debater, message) in enumerate(
                zip(self.debaters, responses, strict=True), 1
            ):
                lines.append(f"Agent {index} ({debater.name}):\n{shown(message)}\n")
            rounds.append("\n".join(lines))
        debate = "\n".join(rounds)
        return f"Original question: {question}\n\nThe debate so far:\n\n{debate}\n\n{REFINE_TASK}"

    def _judge_prompt(self, question: str, final_round: list[Message]) -> str:
        responses = "\n\n".join(
            f"Response {index} from {debater.name}:\n{shown(message)}"
            for index, (debater, message) in enumerate(
                zip(self.debaters, final_round, strict=True), 1
            )
        )
        return (
            f"Original question: {question}\n\n"
            f"The final responses after {self.num_rounds} round(s) of debate:\n\n{responses}\n\n"
            f"{JUDGE_TASK}"
        )


__all__ = ["DebateNode"]
