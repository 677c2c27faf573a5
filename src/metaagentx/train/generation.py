"""Generators over a policy's live weights: what RL rollouts and SFT evaluations sample from."""

from __future__ import annotations

from transformers import PreTrainedTokenizerBase

from metaagentx.config import Config
from metaagentx.llm.batcher import ContinuousBatcher
from metaagentx.llm.hf import HFGenerator
from metaagentx.llm.router import RoleRouter
from metaagentx.rollout.roles import ROLES
from metaagentx.train.policy import Policy


def role_router(policy: Policy, tokenizer: PreTrainedTokenizerBase, config: Config) -> RoleRouter:
    """Continuously batched hf generators, one per distinct owner of weights (one when shared);
    in `lora` each decode step runs with its role's adapter switched in."""
    g = config.generation
    by_owner: dict[str, ContinuousBatcher] = {}
    fronts: dict[str, ContinuousBatcher] = {}
    for role in ROLES:
        owner = policy.owner_of(role)
        if owner not in by_owner:
            context = (lambda r=role: policy.activate(r)) if policy.sharing == "lora" else None
            generator = HFGenerator(
                policy.model_for(role),
                tokenizer,
                max_batch_size=g.max_batch_size,
                seed=config.seed,
                num_threads=g.torch_threads,
                context=context,
                max_prompt_tokens=g.max_prompt_tokens,
                deterministic=g.deterministic,
            )
            by_owner[owner] = ContinuousBatcher(
                generator,
                g.max_batch_size,
                g.batch_wait_ms / 1000,
                max_prompt_tokens=g.max_prompt_tokens,
            )
        fronts[role] = by_owner[owner]
    return RoleRouter(fronts)
