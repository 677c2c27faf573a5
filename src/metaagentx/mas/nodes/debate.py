"""Debate: debaters answer, read each other's answers and revise for rounds; a judge decides."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from metaagentx.mas.execution import current_execution
from metaagentx.mas.node import Context, Node, NodeResult
from metaagentx.mas.parallel import run_parallel
from metaagentx.mas.prompts import DEBATE_INSTRUCTION, JUDGE_INSTRUCTION
from metaagentx.mas.voting import vote


class DebateNode(Node):
    """`DebateNode(name, debaters, judge=None, num_rounds=2)`.

    Round 1: every debater answers the task (all at the same time). Each later round: every
    debater sees all debaters' deliveries from the previous round (its own included) and
    gives a revised answer. Then the `judge` sees the last round's deliveries and gives the
    final answer; without a judge, a majority vote over the last round decides.
    """

    def __init__(
        self, name: str, debaters: Sequence[Node], judge: Node | None = None, num_rounds: int = 2
    ) -> None:
        super().__init__(name)
        if len(debaters) < 2:
            raise ValueError("a debate needs at least two debaters")
        if not isinstance(num_rounds, int) or num_rounds < 1:
            raise ValueError(f"num_rounds must be an int >= 1, got {num_rounds!r}")
        self.debaters = list(debaters)
        self.judge = judge
        self.num_rounds = num_rounds

    def process(self, context: Context) -> NodeResult:
        path = context.path or self.name
        answers: list[NodeResult] = []
        for round_number in range(1, self.num_rounds + 1):
            if round_number == 1:
                ctx = context.derive(role="debater", round=1)
            else:
                ctx = context.derive(
                    inputs=(*context.inputs, *answers),
                    instruction=DEBATE_INSTRUCTION,
                    role="debater",
                    round=round_number,
                )
            answers = run_parallel(
                [partial(d.process, ctx.derive(path=f"{path}/{d.name}")) for d in self.debaters]
            )
        meta = {"rounds": self.num_rounds, "debaters": [d.name for d in self.debaters]}
        if self.judge is not None:
            final = self.judge.process(
                context.derive(
                    inputs=(*context.inputs, *answers),
                    instruction=JUDGE_INSTRUCTION,
                    role="judge",
                    path=f"{path}/{self.judge.name}",
                )
            )
            return NodeResult(self.name, final.content, final.delivery, meta)
        outcome = vote(answers, context.domain)
        current_execution().record(
            {"type": "vote", "node": self.name, "path": path, **outcome.to_dict(answers)}
        )
        winner = answers[outcome.winner if outcome.winner is not None else 0]
        return NodeResult(
            self.name, winner.content, winner.delivery, {**meta, "winner": winner.sender}
        )
