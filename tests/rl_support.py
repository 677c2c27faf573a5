"""Helpers shared by the RL update and policy tests: a nano model and synthetic trajectories."""

from __future__ import annotations

import random
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM

from metaagentx.config import Config, build_config
from metaagentx.rollout.trajectory import Trajectory

VOCAB = 590  # below the nano tokenizer's size (600 requested; BPE may end a few short)


def load(model_dir: Path) -> torch.nn.Module:
    """A fresh fp32 copy of the saved nano model."""
    return AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)


def make_trajectory(rng: random.Random, role: str, index: int) -> Trajectory:
    """A designer or executor call with random ids, old log-probs near the model's (-6.4 for a
    near-uniform nano model over 600 tokens, so some ratios clip) and a random advantage."""
    prompt = [rng.randrange(VOCAB) for _ in range(rng.randint(3, 14))]
    response = [rng.randrange(VOCAB) for _ in range(rng.randint(2, 9))]
    problem = f"p{index // 4}"
    design = f"{problem}/d{index % 2}"
    ids = {"design_id": design, "execution_id": None, "agent": None}
    if role == "executor":
        ids = {"design_id": design, "execution_id": f"{design}/e{index}", "agent": "solver"}
    return Trajectory(
        role=role,  # type: ignore[arg-type]
        problem_id=problem,
        prompt_ids=prompt,
        response_ids=response,
        old_logprobs=[-6.4 + rng.uniform(-0.4, 0.4) for _ in response],
        reward=1.0,
        advantage=rng.uniform(-1.0, 1.0),
        **ids,
    )


def make_batch(n: int, seed: int = 0, roles: tuple[str, ...] = ("executor", "designer")):
    rng = random.Random(seed)
    return [make_trajectory(rng, roles[i % len(roles)], i) for i in range(n)]


def snapshot(params) -> list[torch.Tensor]:
    return [p.detach().clone() for p in params]


def same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def trainer_config(model: Path, out: Path, *extra: str) -> Config:
    """A few-second RL run of the nano model on 2 arithmetic problems per step."""
    return build_config(
        {},
        [
            f"model.path={model}",
            "model.device=cpu",
            f"output_dir={out}",
            "data.train=[synthetic:arith:2]",
            "data.val=[synthetic:arith:2]",
            "data.val_size=2",
            "rollout.num_designs=2",
            "rollout.num_executions=2",
            "rollout.designer_max_new_tokens=16",
            "rollout.executor_max_new_tokens=8",
            "rollout.compact_prompt=true",
            "trainer.batch_problems=2",
            "trainer.phase_steps=2",
            "trainer.designer_lr=0.001",
            "trainer.executor_lr=0.001",
            "trainer.entropy_coef=0.01",  # a gradient even when every reward is 0
            "generation.torch_threads=1",
            "logging.progress=false",
            "logging.tensorboard=false",
            *extra,
        ],
    )
