"""Weight sync: after an update, the engines that generate get the changed weights, verified.

Which weights go where follows the parameter sharing:
- `shared`: one engine; the whole model after every update;
- `separate`: one engine per role; each gets its own model when that role was updated;
- `lora`: one engine started from the frozen base (that start is the one full sync); after each
  update only the updated roles' adapters move, each as a new LoRA request.

Every rank gathers the tensors whole (a collective under FSDP); a `writer` writes them where its
engine reads and asks it to reload: every rank for colocated engines (each has its own), rank 0
alone for shared servers (the others wait at a barrier). Reloads have deadlines
(`WeightSyncTimeout` names the engine). The check that follows is cheap and catches what a
timeout cannot, a reload that "succeeded" with the wrong weights (a stale tied output layer, the
other role's adapter): the engine decodes a probe prompt greedily, the trainer scores the same
tokens, and a gap over the tolerance raises `WeightSyncMismatch`.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

from metaagentx.llm.base import GenerationRequest, GenerationResult, SamplingParams
from metaagentx.llm.chat import render_prompt_ids
from metaagentx.llm.vllm_backend import WeightSyncMismatch
from metaagentx.rollout.roles import ROLES
from metaagentx.train.distributed import World
from metaagentx.train.logprobs import largest_gap, token_logprobs
from metaagentx.train.policy import Policy
from metaagentx.train.weights import adapter_weights, full_weights, write_adapter, write_weights

PROBE = [{"role": "user", "content": "Weight sync check. What is 17 + 25?"}]


class Engine(Protocol):
    """What the sync needs of a generator: a name, generation and the two ways to reload."""

    name: str

    def generate(self, requests: list[GenerationRequest]) -> list[GenerationResult]: ...

    def reload_weights(self, folder: str | Path) -> None: ...

    def load_adapter(self, role: str, folder: str | Path, **options: Any) -> None: ...


@dataclass(frozen=True)
class SyncCheck:
    """The post-sync probe: `tokens` greedy tokens, accepted within `tolerance` nats."""

    tokens: int = 8
    tolerance: float = 0.05


class WeightSync:
    """See the module docstring. `engines` maps each role to the engine that generates it;
    `shared` says they serve every rank (servers) rather than this rank alone (colocated)."""

    def __init__(
        self,
        policy: Policy,
        tokenizer: Any,
        world: World,
        engines: Mapping[str, Engine],
        folder: str | Path,
        *,
        shared: bool,
        dtype: torch.dtype | None = None,
        check: SyncCheck | None = SyncCheck(),
    ) -> None:
        self.policy = policy
        self.world = world
        self.engines = dict(engines)
        self.folder = Path(folder)
        self.shared = shared
        self.writer = world.is_main or not shared
        self.dtype = dtype
        self.check = check
        self.probe = render_prompt_ids(tokenizer, PROBE)
        self.versions: dict[str, int] = {}
        self.last_gap: dict[str, float] = {}

    def sync(self, roles: Iterable[str]) -> dict[str, float]:
        """Send the weights of `roles` (those just updated) to their engines and check them;
        every rank calls it. Returns timing and check metrics."""
        started = time.monotonic()
        roles = [r for r in ROLES if r in set(roles)]
        owners: dict[str, str] = {}  # owner -> the first updated role it serves
        for role in roles:
            owners.setdefault(self.policy.owner_of(role), role)
        for owner, role in owners.items():
            if self.policy.sharing == "lora":
                self._sync_adapter(role)
            else:
                self._sync_model(owner, role)
        self.world.barrier()  # shared servers: nobody generates before rank 0 has synced
        metrics = {"timing_s/update_weights": time.monotonic() - started}
        if self.check is not None:
            for role in roles:
                self.last_gap[role] = self.verify(role)
                metrics[f"sync/{role}_logprob_gap"] = self.last_gap[role]
        return metrics

    def _sync_model(self, owner: str, role: str) -> None:
        state = full_weights(self.policy.model_for(role), self.dtype)
        if self.writer:
            folder = write_weights(state, self.folder / owner)
            del state
            self.engines[role].reload_weights(folder)

    def _sync_adapter(self, role: str) -> None:
        model = self.policy.model_for(role)
        state = adapter_weights(model, role)
        version = self.versions.get(role, 0) + 1
        self.versions[role] = version
        folder = self.folder / f"{role}-{version:06d}"
        if not self.writer:  # shared servers: rank 0 loads; this rank's client asks for it
            self.world.barrier()
            self.engines[role].load_adapter(role, folder, register_only=True)
            return
        self.engines[role].load_adapter(role, write_adapter(model, role, state, folder))
        if self.shared:
            self.world.barrier()
        if version > 1:
            shutil.rmtree(self.folder / f"{role}-{version - 1:06d}", ignore_errors=True)

    # ---- the check -----------------------------------------------------------------------

    def verify(self, role: str) -> float:
        """Greedy probe tokens from `role`'s engine scored by the trainer; raises
        `WeightSyncMismatch` over the tolerance. Returns the largest gap (every rank)."""
        assert self.check is not None
        decoded: tuple[list[int], list[float]] | None = None
        if self.writer:
            sampling = SamplingParams(temperature=0.0, max_new_tokens=self.check.tokens)
            request = GenerationRequest(prompt_ids=self.probe, sampling=sampling, role=role)
            result = self.engines[role].generate([request])[0]
            decoded = (result.response_ids, result.logprobs)
        if self.shared:
            decoded = self.world.broadcast(decoded)
        assert decoded is not None
        ids, engine_logprobs = decoded
        trainer_logprobs = self._score(role, ids)
        gap = largest_gap(engine_logprobs, trainer_logprobs)
        if gap > self.check.tolerance:
            raise WeightSyncMismatch(
                f"{self.engines[role].name}: after the weight sync its {role} log-probs differ "
                f"from the trainer's by {gap:.3g} nats (generation.vllm.sync_check_tolerance="
                f"{self.check.tolerance:g}): the engine is not serving the trained weights"
            )
        return gap

    def _score(self, role: str, ids: list[int]) -> list[float]:
        tokens = torch.tensor([self.probe + ids], device=self.world.device)
        with torch.no_grad(), self.policy.activate(role) as model:
            logits = model(input_ids=tokens).logits[0, len(self.probe) - 1 : -1]
            logp, _ = token_logprobs(logits, tokens[0, len(self.probe) :], temperature=0.0)
        return logp.float().cpu().tolist()
