"""Held-out checks of an SFT model through the real rollout engine and sandbox.

Two numbers decide whether RL can start (shared notes: gate RL on SFT quality): design validity
(a sampled design passes the static check AND its execution runs to a final answer, status ok)
and end-to-end accuracy on `data.val` tasks, one design and one execution per task, sampled at
temperature 1 (what RL explores with) and greedy. Both are broken down by domain and by
synthetic family/level.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from dataclasses import replace

from transformers import PreTrainedTokenizerBase

from metaagentx.config import Config
from metaagentx.rollout.environment import grading_environment
from metaagentx.rollout.factory import tree_settings, validation_tasks
from metaagentx.rollout.roles import ROLES
from metaagentx.rollout.tree import RolloutEngine, RolloutTree
from metaagentx.tasks.base import Task
from metaagentx.train.generation import role_router
from metaagentx.train.policy import Policy


def summarize(tree: RolloutTree) -> dict[str, float]:
    """Validity, accuracy (all, by domain, by family/level) and pattern shares of a tree."""
    designs = [(p.task, d) for p in tree.problems for d in p.designs]
    out: dict[str, float] = {}
    generated = [(t, d) for t, d in designs if d.generation is not None]
    if generated:
        static = [d.design.valid for _, d in generated]
        runs = [
            d.design.valid and any(e.status == "ok" for e in d.executions) for _, d in generated
        ]
        out["designs/static_valid"] = sum(static) / len(static)
        out["designs/valid"] = sum(runs) / len(runs)
        for pattern, n in Counter(d.design.pattern or "invalid" for _, d in generated).items():
            out[f"patterns/{pattern}"] = n / len(generated)
    groups: dict[str, list[float]] = defaultdict(list)
    for task, design in designs:
        score = float(bool(design.executions) and design.executions[0].correct)
        for key in ("all", task.domain, _family_level(task)):
            groups[key].append(score)
    for key, values in groups.items():
        out[f"accuracy/{key}"] = sum(values) / len(values)
    return out


def _family_level(task: Task) -> str:
    family = task.metadata.get("family") or task.source or "other"
    level = task.metadata.get("level")
    return f"{family}/L{level}" if level is not None else str(family)


def evaluate_policy(
    policy: Policy,
    tokenizer: PreTrainedTokenizerBase,
    config: Config,
    tasks: list[Task] | None = None,
    step: int = 0,
) -> dict[str, float]:
    """`sft.eval_modes` (sampled and/or greedy) on held-out tasks: `{mode}/{metric}` values."""
    tasks = tasks if tasks is not None else validation_tasks(config)
    if not tasks:
        return {}
    base = replace(tree_settings(config, "designed"), num_designs=1, num_executions=1)
    was_training = [m.training for m in policy.modules_for(ROLES)]
    policy.train(False)
    router = role_router(policy, tokenizer, config)
    environment = grading_environment(config)
    environment.start()
    runner = environment.runner(router)
    out: dict[str, float] = {}

    async def run_modes() -> None:  # one event loop: the runner is bound to it
        for mode in config.sft.eval_modes:
            temperature = 1.0 if mode == "sampled" else 0.0
            settings = replace(
                base,
                designer_temperature=temperature,
                executor_temperature=temperature,
                seed=base.seed + 1,
            )
            tree = await RolloutEngine(router, runner, settings, environment).rollout(tasks, step)
            out.update({f"{mode}/{k}": v for k, v in summarize(tree).items()})

    try:
        asyncio.run(run_modes())
    finally:
        runner.close()
        environment.close()
        router.close()
        for model, mode in zip(policy.modules_for(ROLES), was_training, strict=True):
            model.train(mode)
    return out


__all__ = ["evaluate_policy", "summarize"]
