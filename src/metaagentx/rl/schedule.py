"""Which roles learn at each RL step: Stagewise Co-evolution and its ablations.

The paper alternates phases of K steps that update only the executor, then only the designer
(K of about 30 is stable; K=1 collapses). `simultaneous`, `designer_only` and `executor_only`
are the ablations. Which roles are active is a pure function of the step; the `Schedule` also
keeps the current step so the position is saved in, and restored from, a checkpoint, and a
resume that silently changed the phase is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from metaagentx.rollout.roles import DESIGNER, EXECUTOR, ROLES

ScheduleMode = Literal["stagewise", "simultaneous", "designer_only", "executor_only"]
MODES: tuple[str, ...] = ("stagewise", "simultaneous", "designer_only", "executor_only")


@dataclass(frozen=True)
class Phase:
    """A run of consecutive steps [start, end) with the same active roles (for shaded plots)."""

    start: int
    end: int
    roles: frozenset[str]


@dataclass
class Schedule:
    """Stage schedule with per-role learning rates and a checkpointable position (`step`)."""

    mode: ScheduleMode = "stagewise"
    phase_length: int = 30
    first_role: str = EXECUTOR
    learning_rates: Mapping[str, float] = field(
        default_factory=lambda: {DESIGNER: 1e-6, EXECUTOR: 1e-6}
    )
    step: int = 0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown schedule mode {self.mode!r}; choose one of {MODES}")
        if self.phase_length < 1:
            raise ValueError(f"phase_length must be >= 1, got {self.phase_length}")
        if self.first_role not in ROLES:
            raise ValueError(f"first_role must be one of {ROLES}, got {self.first_role!r}")
        missing = set(ROLES) - set(self.learning_rates)
        if missing:
            raise ValueError(f"learning_rates lacks roles {sorted(missing)}")
        if self.step < 0:
            raise ValueError("step must be >= 0")
        self.learning_rates = dict(self.learning_rates)

    def active_roles(self, step: int | None = None) -> frozenset[str]:
        """The roles updated at `step` (default: the current position)."""
        step = self.step if step is None else step
        if step < 0:
            raise ValueError("step must be >= 0")
        if self.mode == "simultaneous":
            return frozenset(ROLES)
        if self.mode == "designer_only":
            return frozenset({DESIGNER})
        if self.mode == "executor_only":
            return frozenset({EXECUTOR})
        second = DESIGNER if self.first_role == EXECUTOR else EXECUTOR
        return frozenset({self.first_role if self.phase(step) % 2 == 0 else second})

    def phase(self, step: int | None = None) -> int:
        """Index of the phase containing `step` (always 0 outside `stagewise`)."""
        step = self.step if step is None else step
        return step // self.phase_length if self.mode == "stagewise" else 0

    def learning_rate(self, role: str) -> float:
        """Peak learning rate of `role`."""
        return self.learning_rates[role]

    def active_learning_rates(self, step: int | None = None) -> dict[str, float]:
        """Learning rate of each role active at `step`."""
        return {role: self.learning_rates[role] for role in sorted(self.active_roles(step))}

    def advance(self) -> int:
        """Move to the next step and return it."""
        self.step += 1
        return self.step

    def phase_boundaries(self, steps: int) -> list[Phase]:
        """Maximal runs of equal active roles over steps [0, steps)."""
        phases: list[Phase] = []
        for s in range(steps):
            roles = self.active_roles(s)
            if phases and phases[-1].roles == roles:
                phases[-1] = Phase(phases[-1].start, s + 1, roles)
            else:
                phases.append(Phase(s, s + 1, roles))
        return phases

    def _identity(self) -> dict[str, Any]:
        return {"mode": self.mode, "phase_length": self.phase_length, "first_role": self.first_role}

    def state_dict(self) -> dict[str, Any]:
        """JSON-able position plus the settings that decide the phase sequence."""
        return {**self._identity(), "step": self.step}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore the position; refuse a state whose phase sequence differs from this one's."""
        saved = {k: state[k] for k in self._identity()}
        if saved != self._identity():
            raise ValueError(
                f"checkpointed schedule {saved} differs from the configured {self._identity()}; "
                "resuming would change which role trains at which step"
            )
        step = int(state["step"])
        if step < 0:
            raise ValueError("step must be >= 0")
        self.step = step
