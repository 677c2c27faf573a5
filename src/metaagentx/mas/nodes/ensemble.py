"""Ensemble: several agents solve independently (concurrently), then a vote or a judge."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from metaagentx.mas.execution import current_execution
from metaagentx.mas.node import Context, Node, NodeResult
from metaagentx.mas.parallel import run_parallel
from metaagentx.mas.prompts import JUDGE_INSTRUCTION
from metaagentx.mas.voting import vote

STRATEGIES = {
    "majority_vote": "majority_vote",
    "vote": "majority_vote",
    "weighted_vote": "weighted_vote",
    "consensus": "consensus",
    "judge": "consensus",
}


class EnsembleNode(Node):
    """`EnsembleNode(name, agents, strategy="majority_vote", consensus_agent=None, weights=None)`.

    All `agents` get the same input and run at the same time. Then, by `strategy`:
    - "majority_vote" ("vote"): the most common final answer wins (math: normalised
      `\\boxed{}`; code: the program); ties go to the answer given first. With a
      `consensus_agent`, the judge decides instead unless every member gave the same answer.
    - "weighted_vote": like majority_vote with one weight per agent (`weights`).
    - "consensus" ("judge"): the `consensus_agent` (alias `judge=`) always sees every
      member's delivery and gives the final answer.
    The result is the winning member's (or the judge's) reply.
    """

    def __init__(
        self,
        name: str,
        agents: Sequence[Node],
        strategy: str = "majority_vote",
        consensus_agent: Node | None = None,
        weights: Sequence[float] | None = None,
        *,
        judge: Node | None = None,
    ) -> None:
        super().__init__(name)
        if len(agents) < 1:
            raise ValueError("an ensemble needs at least one agent")
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {strategy!r}; use one of {sorted(STRATEGIES)}")
        if consensus_agent is not None and judge is not None:
            raise ValueError("pass consensus_agent or judge, not both")
        self.agents = list(agents)
        self.strategy = STRATEGIES[strategy]
        self.judge = judge or consensus_agent
        if self.strategy == "consensus" and self.judge is None:
            raise ValueError("the consensus strategy needs a consensus_agent (the judge)")
        if weights is not None and len(weights) != len(self.agents):
            raise ValueError("weights needs one number per agent")
        self.weights = list(weights) if weights is not None else None

    def process(self, context: Context) -> NodeResult:
        path = context.path or self.name
        results = run_parallel(
            [
                partial(agent.process, context.derive(role="member", path=f"{path}/{agent.name}"))
                for agent in self.agents
            ]
        )
        if self.strategy == "consensus":
            return self._judge(context, path, results, reason="consensus")
        weights = self.weights if self.strategy == "weighted_vote" else None
        outcome = vote(results, context.domain, weights)
        current_execution().record(
            {"type": "vote", "node": self.name, "path": path, **outcome.to_dict(results)}
        )
        if self.judge is not None and not outcome.unanimous:
            return self._judge(context, path, results, reason="split_vote")
        winner = results[outcome.winner if outcome.winner is not None else 0]
        return NodeResult(
            self.name,
            winner.content,
            winner.delivery,
            {"strategy": self.strategy, "winner": winner.sender, "tally": outcome.tally},
        )

    def _judge(
        self, context: Context, path: str, results: list[NodeResult], reason: str
    ) -> NodeResult:
        assert self.judge is not None
        verdict = self.judge.process(
            context.derive(
                inputs=(*context.inputs, *results),
                instruction=JUDGE_INSTRUCTION,
                role="judge",
                path=f"{path}/{self.judge.name}",
            )
        )
        return NodeResult(
            self.name,
            verdict.content,
            verdict.delivery,
            {"strategy": self.strategy, "judged": reason, "members": [r.sender for r in results]},
        )
