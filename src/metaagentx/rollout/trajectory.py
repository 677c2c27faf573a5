"""One trainable LLM call of a rollout: a design (designer) or an agent turn (executor).

It carries the exact ids the generator sampled and their log-probs (never re-tokenised), the
reward of what it belongs to (its design's mean, or its execution's reward) and, once the
trainer has computed it, its advantage. Group ids say which samples it is compared with:
designers within their problem (the M designs), executors within their design (the N
executions; within the problem when there is no designer). Plain JSON in and out (JSONL).
"""

from __future__ import annotations

import dataclasses
import json
import math
import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

Role = Literal["designer", "executor"]
ROLES: tuple[str, ...] = get_args(Role)


def make_design_id(problem_id: str, index: int) -> str:
    """The id of design `index` of a problem (unique within a rollout)."""
    return f"{problem_id}/d{index}"


def make_execution_id(design_id: str, index: int) -> str:
    """The id of execution `index` of a design."""
    return f"{design_id}/e{index}"


@dataclass
class Trajectory:
    """One LLM call to train on (validated on construction; see `validate`).

    design_id: required for designers; for executors the design they ran (None in modes
        without a designer). execution_id / agent: executors only (None for designers).
    call_index: order of this call within its execution (0 for designers).
    group_id: the advantage group; default: designer -> problem_id, executor -> design_id
        (problem_id without one).
    """

    role: Role
    problem_id: str
    design_id: str | None
    execution_id: str | None
    agent: str | None
    prompt_ids: list[int]
    response_ids: list[int]
    old_logprobs: list[float]
    reward: float
    advantage: float | None = None
    group_id: str = ""
    call_index: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.prompt_ids = _ids(self.prompt_ids, "prompt_ids")
        self.response_ids = _ids(self.response_ids, "response_ids")
        self.old_logprobs = [float(x) for x in self.old_logprobs]
        self.reward = float(self.reward)
        if self.advantage is not None:
            self.advantage = float(self.advantage)
        if not self.group_id:
            own = self.problem_id if self.role == "designer" else self.design_id
            self.group_id = own or self.problem_id
        self.validate()

    @property
    def sample_id(self) -> str:
        """The unit group statistics count once: the design (designer) or the execution
        (executor; its several agent calls share one outcome)."""
        return str(self.design_id if self.role == "designer" else self.execution_id)

    def validate(self) -> None:
        """Raise ValueError when the record cannot be trained on."""
        problems = []
        if self.role not in ROLES:
            problems.append(f"role must be one of {ROLES}, got {self.role!r}")
        if not _text(self.problem_id):
            problems.append("problem_id must be a non-empty string")
        if self.role == "designer":
            if not _text(self.design_id):
                problems.append("a designer trajectory needs a design_id")
            if self.execution_id is not None or self.agent is not None:
                problems.append("a designer trajectory has no execution_id and no agent")
        elif self.role == "executor":
            if not _text(self.execution_id) or not _text(self.agent):
                problems.append("an executor trajectory needs an execution_id and an agent")
            if self.design_id is not None and not _text(self.design_id):
                problems.append("design_id must be a non-empty string or None")
        if not self.prompt_ids:
            problems.append("prompt_ids is empty")
        if not self.response_ids:
            problems.append("response_ids is empty")
        if len(self.old_logprobs) != len(self.response_ids):
            problems.append(
                f"{len(self.old_logprobs)} old_logprobs for {len(self.response_ids)} response ids"
            )
        if not all(math.isfinite(x) for x in self.old_logprobs):
            problems.append("old_logprobs must be finite")
        if not math.isfinite(self.reward):
            problems.append(f"reward must be finite, got {self.reward}")
        if self.advantage is not None and not math.isfinite(self.advantage):
            problems.append(f"advantage must be finite or None, got {self.advantage}")
        if not _text(self.group_id):
            problems.append("group_id must be a non-empty string")
        if not isinstance(self.call_index, int) or self.call_index < 0:
            problems.append(f"call_index must be an int >= 0, got {self.call_index!r}")
        if not isinstance(self.metadata, dict):
            problems.append("metadata must be a dict")
        if problems:
            raise ValueError(f"invalid trajectory ({self.role}, {self.problem_id}): {problems}")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (lists, not tuples; metadata shallow-copied)."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["prompt_ids"], data["response_ids"] = list(self.prompt_ids), list(self.response_ids)
        data["old_logprobs"], data["metadata"] = list(self.old_logprobs), dict(self.metadata)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Trajectory:
        """Inverse of `to_dict`; unknown keys are an error (schema drift must not pass)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown trajectory fields {unknown}")
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, allow_nan=False)

    @classmethod
    def from_json(cls, line: str) -> Trajectory:
        return cls.from_dict(json.loads(line))


def write_jsonl(path: str | Path, trajectories: Iterable[Trajectory]) -> int:
    """Write one JSON object per line; returns how many were written."""
    count = 0
    with open(path, "w", encoding="utf-8") as handle:
        for trajectory in trajectories:
            handle.write(trajectory.to_json() + "\n")
            count += 1
    return count


def read_jsonl(path: str | Path) -> list[Trajectory]:
    """Read `write_jsonl`'s output; a malformed line raises ValueError naming its number."""
    trajectories = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                trajectories.append(Trajectory.from_json(line))
            except (ValueError, TypeError, KeyError) as exc:
                raise ValueError(f"{path}:{number}: {exc}") from exc
    return trajectories


def _ids(values: Sequence[int], name: str) -> list[int]:
    try:
        ids = [operator.index(v) for v in values]
    except TypeError as exc:
        raise ValueError(f"{name} must hold integer token ids: {exc}") from exc
    if any(isinstance(v, bool) or i < 0 for v, i in zip(values, ids, strict=True)):
        raise ValueError(f"{name} must hold non-negative integer token ids")
    return ids


def _text(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())


__all__ = [
    "ROLES",
    "Role",
    "Trajectory",
    "make_design_id",
    "make_execution_id",
    "read_jsonl",
    "write_jsonl",
]
