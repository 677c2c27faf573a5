"""The authors' `EnsembleNode`: several agents answer, then a vote or a judge picks the answer.

Standard library only: this runs in the sandbox.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
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
from metaagentx.mas.protocol import current_runtime
from metaagentx.mas.text import extract_boxed, normalize_answer

STRATEGIES = ("majority_vote", "weighted_vote", "consensus")
JUDGE_TASK = (
    "Go through each solution and verify its reasoning and its arithmetic. Then state the right "
    "answer: the best solution's, or your own correction if none of them is right."
)
JUDGE_FORMAT = {
    "math": "Put your final answer in \\boxed{}.",
    "code": "End with the complete final program.",
}


@dataclass
class Ballot:
    """One member's reply and how it votes: `answer` is its normalised last `\\boxed{}`
    (None: it boxed nothing, so it does not vote)."""

    agent: str
    reply: Message
    weight: float
    answer: str | None


def ballots_of(agents: Sequence[WorkflowNode], replies: Sequence[Message],
               weights: Sequence[float]) -> list[Ballot]:  # fmt: skip
    """The members that answered (an ERROR reply is left out, as in theirs)."""
    ballots = []
    for agent, reply, weight in zip(agents, replies, weights, strict=True):
        if reply.message_type == MessageType.ERROR:
            continue
        boxed = extract_boxed(reply.text)
        answer = None if boxed is None else normalize_answer(boxed)
        ballots.append(Ballot(agent.name, reply, float(weight), answer))
    return ballots


def tally(ballots: Sequence[Ballot], weighted: bool) -> dict[str, float]:
    """Answer -> votes (summed weights when `weighted`), in order of first appearance."""
    counts: dict[str, float] = {}
    for ballot in ballots:
        if ballot.answer is not None:
            counts[ballot.answer] = counts.get(ballot.answer, 0.0) + (
                ballot.weight if weighted else 1.0
            )
    return counts


def plurality(ballots: Sequence[Ballot], counts: dict[str, float], weighted: bool) -> Ballot:
    """The first ballot holding the top answer (ties: the answer seen first). When nobody boxed
    an answer: the first ballot, or with weights the heaviest one (first among equals)."""
    if not counts:
        return max(ballots, key=lambda b: b.weight) if weighted else ballots[0]
    best = max(counts, key=lambda a: counts[a])  # max keeps the first of equal maxima
    return next(b for b in ballots if b.answer == best)


class EnsembleNode(WorkflowNode):
    """`EnsembleNode(name, agents, strategy="majority_vote", consensus_agent=None, weights=None,
    **kwargs)`.

    Every agent answers on its own copy of the context (what came before, not each other), all
    at the same time (up to Limits.max_parallel; theirs runs them one by one, with the same
    result). Members whose run fails are left out. Then, by `strategy`:
    - "majority_vote": the most common normalised `\\boxed{}` answer wins and the result is the
      first reply holding it. With a `consensus_agent`, a split vote goes to that judge; a
      unanimous one is accepted.
    - "weighted_vote": the same with one weight per agent (`weights`); never a judge.
    - "consensus": the `consensus_agent` always sees the question and every reply, and decides.
    The result is the winning member's reply, or the judge's (an agent's reply either way).

    Differs from ours (`metaagentx.mas.nodes.EnsembleNode`): as in theirs, only replies with a
    `\\boxed{}` answer vote, whatever the domain, so one without it neither breaks unanimity nor
    counts; nobody boxed anything -> the first reply (weighted: the heaviest) and no judge. The
    judge gets a composed prompt (question + full replies) instead of deliveries. If the judge
    fails, the vote's pick stands (theirs returns the error's content as the answer).
    """

    def __init__(
        self,
        name: str,
        agents: Sequence[WorkflowNode],
        strategy: str = "majority_vote",
        consensus_agent: WorkflowNode | None = None,
        weights: Sequence[float] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name, **kwargs)
        self.agents = list(agents)
        if not self.agents:
            raise ValueError("an ensemble needs at least one agent")
        for agent in [*self.agents, *([consensus_agent] if consensus_agent is not None else [])]:
            if not isinstance(agent, WorkflowNode):
                raise TypeError(f"ensemble members must be nodes (AgentNode...), not {agent!r}")
        if strategy not in STRATEGIES:
            raise ValueError(f"Unknown ensemble strategy: {strategy!r}; use one of {STRATEGIES}")
        self.strategy = strategy
        self.consensus_agent = consensus_agent
        self.weights = [float(w) for w in weights] if weights else [1.0] * len(self.agents)
        if len(self.weights) != len(self.agents):
            raise ValueError("Number of weights must match number of agents")
        if strategy == "consensus" and consensus_agent is None:
            raise ValueError("consensus strategy requires a consensus_agent")

    def process(self, context: Context) -> Message:
        path = path_of(context, self.name)
        replies = run_parallel(
            [partial(agent, context.at(path, role="member")) for agent in self.agents]
        )
        ballots = ballots_of(self.agents, replies, self.weights)
        if not ballots:
            raise RuntimeError(f"All agents failed ({len(self.agents)} members)")
        weighted = self.strategy == "weighted_vote"
        counts = tally(ballots, weighted)
        pick = plurality(ballots, counts, weighted)
        judged = None
        if self.strategy == "consensus":
            judged = "consensus"
        elif (
            self.strategy == "majority_vote"
            and self.consensus_agent is not None
            and len(counts) > 1
        ):
            judged = "split_vote"
        chosen, winner = pick.reply, pick.agent
        if judged is not None:
            verdict = self._judge(context, path, ballots)
            if verdict.message_type != MessageType.ERROR:
                chosen, winner = verdict, verdict.sender or self._judge_name()
        current_execution().record({
            "type": "vote", "node": self.name, "path": path, "strategy": self.strategy,
            "answers": [[b.agent, b.answer] for b in ballots], "tally": counts,
            "unanimous": len(counts) == 1, "judged": judged, "winner": winner,
            "judge_failed": judged is not None and chosen is pick.reply,
        })  # fmt: skip
        metadata = {
            "strategy": self.strategy,
            "num_agents": len(self.agents),
            "all_responses": [b.reply.text for b in ballots],
            "winner": winner,
            "delivery": delivery_of_message(chosen),
        }
        return Message(chosen.text, MessageType.AGENT_RESPONSE, metadata)

    def _judge_name(self) -> str:
        return self.consensus_agent.name if self.consensus_agent is not None else self.name

    def _judge(self, context: Context, path: str, ballots: Sequence[Ballot]) -> Message:
        """The consensus agent's decision on the question and every member's reply."""
        assert self.consensus_agent is not None
        solutions = "\n\n".join(
            f"--- Solution {i} ({b.agent}) ---\n{shown(b.reply)}" for i, b in enumerate(ballots, 1)
        )
        domain = current_runtime().task.get("domain")
        prompt = (
            f"**Question:**\n{question_of(context)}\n\n"
            f"**Solutions to review:**\n\n{solutions}\n\n{JUDGE_TASK} "
            + JUDGE_FORMAT.get(str(domain), JUDGE_FORMAT["math"])
        )
        return self.consensus_agent(fresh_context(context, prompt, path, role="judge"))


__all__ = ["STRATEGIES", "Ballot", "EnsembleNode", "ballots_of", "plurality", "tally"]
