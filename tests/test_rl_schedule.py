"""Stage schedules: role sequences, phases for plots, per-role LRs, checkpointed position."""

from __future__ import annotations

import json

import pytest

from metaagentx.rl.schedule import Phase, Schedule

D, E = frozenset({"designer"}), frozenset({"executor"})
BOTH = D | E


def test_stagewise_k2_executor_first():
    s = Schedule(mode="stagewise", phase_length=2)
    assert [s.active_roles(i) for i in range(8)] == [E, E, D, D, E, E, D, D]
    assert [s.phase(i) for i in range(8)] == [0, 0, 1, 1, 2, 2, 3, 3]


def test_stagewise_k30_and_phase_boundaries():
    s = Schedule(phase_length=30)
    roles = [s.active_roles(i) for i in range(120)]
    assert roles == [E] * 30 + [D] * 30 + [E] * 30 + [D] * 30
    assert s.phase_boundaries(100) == [
        Phase(0, 30, E),
        Phase(30, 60, D),
        Phase(60, 90, E),
        Phase(90, 100, D),
    ]


def test_designer_first_and_k1():
    s = Schedule(phase_length=1, first_role="designer")
    assert [s.active_roles(i) for i in range(4)] == [D, E, D, E]
    assert len(s.phase_boundaries(5)) == 5


@pytest.mark.parametrize(
    ("mode", "roles"),
    [("simultaneous", BOTH), ("designer_only", D), ("executor_only", E)],
)
def test_single_phase_modes(mode, roles):
    s = Schedule(mode=mode, phase_length=2)
    assert {s.active_roles(i) for i in range(50)} == {roles}
    assert s.phase_boundaries(50) == [Phase(0, 50, roles)]
    assert s.phase_boundaries(0) == []


def test_per_role_learning_rates():
    s = Schedule(phase_length=2, learning_rates={"designer": 1e-6, "executor": 2e-6})
    assert s.learning_rate("designer") == 1e-6
    assert s.active_learning_rates(0) == {"executor": 2e-6}
    assert s.active_learning_rates(2) == {"designer": 1e-6}
    both = Schedule(mode="simultaneous", learning_rates={"designer": 1.0, "executor": 2.0})
    assert both.active_learning_rates(7) == {"designer": 1.0, "executor": 2.0}


def test_position_round_trips_through_a_checkpoint():
    s = Schedule(phase_length=30)
    for _ in range(37):
        s.advance()
    assert s.active_roles() == D
    state = json.loads(json.dumps(s.state_dict()))  # checkpoints store it as JSON
    resumed = Schedule(phase_length=30)
    resumed.load_state_dict(state)
    assert resumed.step == 37
    assert [resumed.active_roles(resumed.step + i) for i in range(30)] == [
        s.active_roles(37 + i) for i in range(30)
    ]
    with pytest.raises(ValueError, match="differs"):
        Schedule(phase_length=10).load_state_dict(state)
    with pytest.raises(ValueError, match="differs"):
        Schedule(phase_length=30, first_role="designer").load_state_dict(state)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"mode": "alternate"},
        {"phase_length": 0},
        {"first_role": "critic"},
        {"learning_rates": {"designer": 1e-6}},
        {"step": -1},
    ],
)
def test_invalid_settings_rejected(kwargs):
    with pytest.raises(ValueError):
        Schedule(**kwargs)
