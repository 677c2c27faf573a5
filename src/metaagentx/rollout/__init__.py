"""Designer prompt, script extraction, rewards and trajectories of the hierarchical rollout."""

from __future__ import annotations

from metaagentx.rollout.extract import (
    REJECT_REASONS,
    Design,
    RejectedDesignError,
    RejectReason,
    ScriptLimits,
    check_script,
    extract_design,
)
from metaagentx.rollout.prompts import designer_messages, load_examples, pattern_names
from metaagentx.rollout.rewards import (
    ExecutionReward,
    RewardConfig,
    design_reward,
    execution_reward,
)
from metaagentx.rollout.trajectory import Role, Trajectory

__all__ = [
    "REJECT_REASONS",
    "Design",
    "ExecutionReward",
    "RejectReason",
    "RejectedDesignError",
    "RewardConfig",
    "Role",
    "ScriptLimits",
    "Trajectory",
    "check_script",
    "design_reward",
    "designer_messages",
    "execution_reward",
    "extract_design",
    "load_examples",
    "pattern_names",
]
