"""JSON-able records of a rollout tree: one per problem, with its designs, executions and
agent turns as text. They are what a run's `samples/` files and the evaluation records hold."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from metaagentx.rollout.tree import DesignNode, ProblemNode

# why an execution without a result has none, by status
_UNREPORTED = {
    "cut": "cut by the straggler deadline",
    "host_error": "failed on the host",
    "worker_lost": "its rollout worker died",
}


def problem_record(problem: ProblemNode, step: int) -> dict[str, Any]:
    """The record of one problem of the rollout at `step`."""
    return {
        "step": step,
        "problem_id": problem.task.id,
        "domain": problem.task.domain,
        "prompt": problem.task.prompt,
        "reference": problem.task.answer,
        "designs": [design_record(d) for d in problem.designs],
    }


def design_record(design: DesignNode) -> dict[str, Any]:
    """A design with its executions and their agent turns."""
    return {
        "design_id": design.design_id,
        "pattern": design.design.pattern,
        "valid": design.design.valid,
        "reason": design.design.reason,
        "detail": design.design.detail,
        "text": design.generation.text if design.generation else None,
        "script": design.design.script,
        "reward": design.reward,
        "executions": [
            {
                "execution_id": e.execution_id,
                "status": e.status,
                "reward": e.reward.total,
                "reward_reason": e.reward.reason,
                "correct": e.correct,
                "answer": e.result.answer if e.result else None,
                "final_output": e.result.final_output if e.result else None,
                "error": e.result.error if e.result else _UNREPORTED.get(e.status, e.status),
                "duration_s": e.result.duration if e.result else None,
                "turns": [
                    {
                        "agent": c.agent,
                        "text": c.text,
                        "tokens": len(c.response_ids),
                        "finish": c.finish_reason,
                    }
                    for c in e.calls
                ],
                "workflow_trace": e.result.workflow_trace if e.result else [],
            }
            for e in design.executions
        ],
    }
