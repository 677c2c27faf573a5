"""Trajectory records: defaults, validation, and exact JSON/JSONL round trips."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from metaagentx.rollout.trajectory import (
    Trajectory,
    make_design_id,
    make_execution_id,
    read_jsonl,
    write_jsonl,
)

DESIGN = make_design_id("p1", 0)
EXECUTION = make_execution_id(DESIGN, 2)


def designer(**changes: Any) -> Trajectory:
    fields: dict[str, Any] = {
        "role": "designer", "problem_id": "p1", "design_id": DESIGN, "execution_id": None,
        "agent": None, "prompt_ids": [1, 2, 3], "response_ids": [4, 5],
        "old_logprobs": [-0.5, -1.25], "reward": 0.75,
    }  # fmt: skip
    return Trajectory(**{**fields, **changes})


def executor(**changes: Any) -> Trajectory:
    fields: dict[str, Any] = {
        "role": "executor", "problem_id": "p1", "design_id": DESIGN, "execution_id": EXECUTION,
        "agent": "Solver", "prompt_ids": [7, 8], "response_ids": [9, 10, 11],
        "old_logprobs": [-0.1, -0.2, -0.3], "reward": 1.0, "call_index": 3,
        "metadata": {"finish_reason": "stop", "round": 1},
    }  # fmt: skip
    return Trajectory(**{**fields, **changes})


def test_ids_and_groups() -> None:
    assert (DESIGN, EXECUTION) == ("p1/d0", "p1/d0/e2")
    d, e = designer(), executor()
    assert (d.group_id, d.sample_id) == ("p1", DESIGN)
    assert (e.group_id, e.sample_id) == (DESIGN, EXECUTION)
    no_designer = executor(design_id=None)  # single_agent mode: executions compared per problem
    assert no_designer.group_id == "p1"
    assert executor(group_id="custom").group_id == "custom"
    assert d.advantage is None


@pytest.mark.parametrize("make", [designer, executor])
def test_dict_and_json_round_trip(make: Any) -> None:
    original = make()
    original.advantage = -0.5
    data = original.to_dict()
    assert json.loads(json.dumps(data)) == data
    again = Trajectory.from_dict(data)
    assert again == original
    assert Trajectory.from_json(original.to_json()) == original
    assert again.response_ids == original.response_ids  # ids are never re-tokenised


def test_jsonl_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "rollout.jsonl"
    records = [designer(), executor(), executor(agent="Critic", call_index=4)]
    assert write_jsonl(path, records) == 3
    assert read_jsonl(path) == records
    path.write_text(path.read_text() + '{"role": "designer"}\n')
    with pytest.raises(ValueError, match=":4:"):
        read_jsonl(path)


def test_numpy_values_are_coerced_to_plain_json() -> None:
    t = executor(
        prompt_ids=np.array([7, 8]), response_ids=np.array([9, 10, 11]),
        old_logprobs=np.array([-0.1, -0.2, -0.3], dtype=np.float32), reward=np.float64(1.0),
    )  # fmt: skip
    assert t.prompt_ids == [7, 8] and type(t.prompt_ids[0]) is int
    json.dumps(t.to_dict())


@pytest.mark.parametrize(
    ("make", "changes", "message"),
    [
        (designer, {"old_logprobs": [-0.5]}, "old_logprobs for 2 response ids"),
        (designer, {"response_ids": [], "old_logprobs": []}, "response_ids is empty"),
        (designer, {"prompt_ids": []}, "prompt_ids is empty"),
        (designer, {"agent": "Solver"}, "no execution_id and no agent"),
        (designer, {"execution_id": EXECUTION}, "no execution_id and no agent"),
        (designer, {"design_id": None}, "needs a design_id"),
        (designer, {"role": "critic"}, "role must be one of"),
        (designer, {"problem_id": ""}, "problem_id"),
        (designer, {"old_logprobs": [-0.5, float("nan")]}, "finite"),
        (designer, {"reward": float("inf")}, "reward must be finite"),
        (designer, {"advantage": float("nan")}, "advantage"),
        (executor, {"execution_id": None}, "needs an execution_id and an agent"),
        (executor, {"agent": ""}, "needs an execution_id and an agent"),
        (executor, {"call_index": -1}, "call_index"),
        (executor, {"metadata": []}, "metadata"),
        (executor, {"response_ids": [9, -1, 11]}, "non-negative"),
        (executor, {"response_ids": [9, True, 11]}, "non-negative"),
        (executor, {"response_ids": [9, 1.5, 11]}, "integer token ids"),
    ],
)
def test_validation(make: Any, changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make(**changes)


def test_from_dict_rejects_unknown_and_missing_fields() -> None:
    data = designer().to_dict()
    with pytest.raises(ValueError, match="unknown trajectory fields"):
        Trajectory.from_dict({**data, "logprobs": []})
    del data["reward"]
    with pytest.raises(TypeError):
        Trajectory.from_dict(data)


def test_validate_catches_later_mutation() -> None:
    t = executor()
    t.response_ids.append(12)
    with pytest.raises(ValueError, match="old_logprobs"):
        t.validate()
