"""Majority voting over agents' final answers (ensembles, and debates without a judge)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from metaagentx.mas.node import NodeResult
from metaagentx.mas.text import extract_answer, normalize_answer


@dataclass
class Vote:
    """The outcome of a vote.

    answers: each result's normalised answer (None: it gave none), in the results' order.
    tally: answer -> summed weight, in order of first appearance.
    winner: index of the first result holding the top answer (ties: the answer seen first);
        None when nobody answered.
    """

    answers: list[str | None]
    tally: dict[str, float]
    winner: int | None

    @property
    def unanimous(self) -> bool:
        """Every result answered, all the same."""
        return len(self.tally) == 1 and None not in self.answers

    def to_dict(self, results: Sequence[NodeResult]) -> dict[str, object]:
        return {
            "answers": [[r.sender, a] for r, a in zip(results, self.answers, strict=True)],
            "tally": self.tally,
            "winner": None if self.winner is None else results[self.winner].sender,
            "unanimous": self.unanimous,
        }


def _canonical(answer: str, domain: str | None) -> str:
    if domain == "code":  # compare programs modulo blank lines and trailing spaces
        return "\n".join(line.rstrip() for line in answer.strip().splitlines() if line.strip())
    return normalize_answer(answer)


def vote(
    results: Sequence[NodeResult], domain: str | None, weights: Sequence[float] | None = None
) -> Vote:
    """Tally the results' final answers (math: normalised `\\boxed{}`; code: the program)."""
    weights = list(weights) if weights is not None else [1.0] * len(results)
    answers: list[str | None] = []
    tally: dict[str, float] = {}
    for result, weight in zip(results, weights, strict=True):
        raw = extract_answer(result.content, domain)
        answer = None if raw is None else _canonical(raw, domain)
        answers.append(answer)
        if answer is not None:
            tally[answer] = tally.get(answer, 0.0) + weight
    if not tally:
        return Vote(answers, tally, None)
    best = max(tally, key=lambda a: tally[a])  # max keeps the first of equal maxima
    return Vote(answers, tally, answers.index(best))
