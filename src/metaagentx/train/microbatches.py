"""Gradient accumulation over packed micro-batches, in step across ranks.

Every FSDP forward and backward is a collective: all ranks must run the same number of them,
on the same model, with the same adapter active. Ranks hold different trajectories, so each
owner's micro-batch count is agreed with an all-reduce (max), and a rank with fewer runs
padding micro-batches whose loss it multiplies by zero. Owners are visited in the policy's
fixed order, and an owner none of the ranks trains is skipped by all of them.

The loss of a real micro-batch is scaled by the world size, because FSDP averages gradients
over ranks while the loss is already normalised by the global token count (so N ranks compute
the update of one process on the same data).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass

import torch
from torch import nn

from metaagentx.train.attention import packed_attention
from metaagentx.train.distributed import World
from metaagentx.train.packing import PackedBatch, TokenValues, pack_sequences, plan_micro_batches
from metaagentx.train.policy import Policy

_PADDING = pack_sequences([[0, 0]], [[0, 1]])  # two tokens, one trained target


@dataclass(frozen=True)
class MicroBatch:
    """One packed forward: whose weights run it, its rows, and how much its loss counts."""

    owner: str
    role: str  # a role the owner serves (in lora/separate: the only one)
    model: nn.Module
    batch: PackedBatch  # on the model's device; `indices` are the caller's sequence indices
    scale: float  # multiply the loss by this before backward (0 for padding)

    @property
    def padding(self) -> bool:
        return self.scale == 0.0

    def align(self, per_token: Sequence[TokenValues] | Mapping[int, TokenValues]) -> torch.Tensor:
        """`PackedBatch.align` of the caller's per-token values (zeros for padding)."""
        if self.padding:
            return torch.zeros(self.batch.input_ids.shape, device=self.batch.input_ids.device)
        return self.batch.align(per_token)

    def broadcast(self, per_sequence: Sequence[float] | Mapping[int, float]) -> torch.Tensor:
        """`PackedBatch.broadcast` of the caller's per-sequence values (zeros for padding)."""
        if self.padding:
            return torch.zeros(self.batch.input_ids.shape, device=self.batch.input_ids.device)
        return self.batch.broadcast(per_sequence)


def owner_members(policy: Policy, roles: Sequence[str]) -> dict[str, list[int]]:
    """Owner -> indices of the sequences its weights train, in the policy's owner order."""
    out: dict[str, list[int]] = {name: [] for name in Policy.owner_roles(policy.sharing)}
    for i, role in enumerate(roles):
        out[policy.owner_of(role)].append(i)
    return out


def lockstep_micro_batches(
    policy: Policy,
    world: World,
    roles: Sequence[str],
    ids: Sequence[Sequence[int]],
    masks: Sequence[Sequence[int]],
    max_tokens: int,
) -> Iterator[MicroBatch]:
    """Micro-batches of every owner, inside its role's `activate` and packed attention.

    Sequence i runs through the weights of `roles[i]`. The caller computes the loss of each
    yielded micro-batch (and backwards `loss * scale`), or reads log-probs under no_grad and
    ignores padding.
    """
    members = owner_members(policy, roles)
    planned = {
        owner: [
            [idx[j] for j in group]
            for group in plan_micro_batches([len(ids[i]) for i in idx], max_tokens)
        ]
        for owner, idx in members.items()
    }
    counts = world.max([len(planned[o]) for o in members])
    served = Policy.owner_roles(policy.sharing)
    for (owner, idx), count in zip(members.items(), counts, strict=True):
        if count == 0:
            continue
        role = roles[idx[0]] if idx else sorted(served[owner])[0]
        with ExitStack() as stack:
            model = stack.enter_context(policy.activate(role))
            stack.enter_context(packed_attention(model))
            device = next(model.parameters()).device
            groups = planned[owner]
            for k in range(count):
                if k < len(groups):
                    packed = pack_sequences(ids, masks, sorted(groups[k]))
                    yield MicroBatch(owner, role, model, packed.to(device), float(world.size))
                else:
                    yield MicroBatch(owner, role, model, _PADDING.to(device), 0.0)
