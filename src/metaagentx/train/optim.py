"""AdamW with linear warmup + cosine decay and gradient clipping, shared by RL and SFT.

`TrainOptimizer` bundles what one optimizer step needs (clip, step, LR schedule, zero grads)
so the RL update and SFT call the same four lines. `RoleOptimizers` keeps one `TrainOptimizer`
per *parameter owner*: with shared parameters both roles own one model (one optimizer whose
peak LR is the active role's), with LoRA adapters or separate models each role owns its own
parameters and only the active roles' optimizers step. So a frozen role's weights, moments and
LR-schedule position stay untouched through the other role's phase.

The schedule counts optimizer steps, not trainer steps: a role that first learns at step 30 of
a stagewise run still gets its warmup on its first updates.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch.optim.lr_scheduler import LambdaLR

from metaagentx.train.fsdp import full_tensor


@dataclass(frozen=True)
class OptimConfig:
    """AdamW and LR-schedule settings; `total_steps=None` keeps the peak LR after warmup."""

    lr: float = 1e-6
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    warmup_steps: int = 0
    total_steps: int | None = None
    min_lr_ratio: float = 0.0  # cosine floor as a fraction of the peak LR
    max_grad_norm: float | None = 1.0  # None: no clipping (the norm is still reported)

    def __post_init__(self) -> None:
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {self.warmup_steps}")
        if self.total_steps is not None and self.total_steps < self.warmup_steps:
            raise ValueError("total_steps must be >= warmup_steps")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ValueError(f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        if self.max_grad_norm is not None and self.max_grad_norm <= 0:
            raise ValueError(f"max_grad_norm must be > 0 or None, got {self.max_grad_norm}")


def warmup_cosine(
    step: int, warmup_steps: int, total_steps: int | None, min_lr_ratio: float = 0.0
) -> float:
    """LR multiplier for optimizer update number `step` (0-based).

    Warmup: (step + 1) / warmup_steps, so the first update already moves (transformers' schedule
    gives 0 there and wastes it) and update warmup_steps - 1 runs at the peak. Then cosine from
    1 at `warmup_steps` to `min_lr_ratio` at `total_steps` (held there after); constant 1 when
    `total_steps` is None.
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if total_steps is None:
        return 1.0
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


class _Factor:
    """Picklable LR lambda (LambdaLR saves a callable object's attributes in its state)."""

    def __init__(self, warmup_steps: int, total_steps: int | None, min_lr_ratio: float) -> None:
        self.warmup_steps = warmup_steps
        self.total_steps = total_steps
        self.min_lr_ratio = min_lr_ratio

    def __call__(self, step: int) -> float:
        return warmup_cosine(step, self.warmup_steps, self.total_steps, self.min_lr_ratio)


class TrainOptimizer:
    """AdamW + warmup/cosine LambdaLR + gradient clipping over one set of parameters.

    Use: `loss.backward()` (any number of micro-batches) then `metrics = opt.step()`.
    """

    def __init__(self, params: Iterable[torch.nn.Parameter], config: OptimConfig) -> None:
        self.config = config
        self.params: list[torch.nn.Parameter] = _unique(params)
        if not self.params:
            raise ValueError("no parameters to optimize")
        self.optimizer = torch.optim.AdamW(
            self.params,
            lr=config.lr,
            betas=config.betas,
            eps=config.eps,
            weight_decay=config.weight_decay,
        )
        self.scheduler = LambdaLR(
            self.optimizer,
            _Factor(config.warmup_steps, config.total_steps, config.min_lr_ratio),
        )
        self.skipped_steps = 0

    @property
    def lr(self) -> float:
        """The LR the next `step()` uses."""
        return float(self.optimizer.param_groups[0]["lr"])

    @property
    def steps(self) -> int:
        """Optimizer updates taken so far (the LR schedule's position)."""
        return int(self.scheduler.last_epoch)

    def set_peak_lr(self, lr: float) -> None:
        """Change the peak LR (e.g. to the active role's) keeping the schedule position."""
        if lr <= 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        self.scheduler.base_lrs = [lr for _ in self.optimizer.param_groups]
        factor = self.scheduler.lr_lambdas[0](self.steps)
        for group in self.optimizer.param_groups:
            group["lr"] = lr * factor

    def clip_grad_norm(self) -> float:
        """Clip gradients to `max_grad_norm` (if set); returns the norm before clipping."""
        grads = [p for p in self.params if p.grad is not None]
        if not grads:
            return 0.0
        max_norm = self.config.max_grad_norm or float("inf")
        # under FSDP the grads are sharded DTensors and so is the norm (summed over ranks)
        return float(full_tensor(torch.nn.utils.clip_grad_norm_(grads, max_norm)))

    def step(self) -> dict[str, float]:
        """Clip, update, advance the LR schedule and zero the grads.

        A non-finite gradient norm skips the update (weights and moments untouched) but still
        zeroes the grads; the schedule does not advance, so skipped steps are not counted.
        """
        lr = self.lr
        norm = self.clip_grad_norm()
        skipped = not math.isfinite(norm)
        if skipped:
            self.skipped_steps += 1
        else:
            self.optimizer.step()
            self.scheduler.step()
        self.zero_grad()
        return {"lr": lr, "grad_norm": norm, "skipped": float(skipped)}

    def zero_grad(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)


class RoleOptimizers:
    """One `TrainOptimizer` per parameter owner; per-role peak learning rates.

    `owners` maps an owner name to (the roles it serves, its parameters), as given by
    `Policy.owners()`. `config.lr` is replaced by the roles' `learning_rates`. `total_steps`
    (optional, per owner) sets each owner's cosine horizon: the number of optimizer updates it
    will take (see `updates_per_owner`).
    """

    def __init__(
        self,
        owners: Mapping[str, tuple[frozenset[str], Sequence[torch.nn.Parameter]]],
        learning_rates: Mapping[str, float],
        config: OptimConfig,
        total_steps: Mapping[str, int | None] | None = None,
    ) -> None:
        self.roles: dict[str, frozenset[str]] = {}
        self.optimizers: dict[str, TrainOptimizer] = {}
        self.learning_rates = dict(learning_rates)
        for name, (roles, params) in owners.items():
            missing = set(roles) - set(self.learning_rates)
            if missing:
                raise ValueError(f"no learning rate for roles {sorted(missing)}")
            horizon = (total_steps or {}).get(name, config.total_steps)
            lrs = {self.learning_rates[r] for r in roles}
            owner_config = replace(config, lr=max(lrs), total_steps=horizon)
            self.roles[name] = frozenset(roles)
            self.optimizers[name] = TrainOptimizer(params, owner_config)

    def owners_for(self, roles: Iterable[str]) -> list[str]:
        """Owners whose parameters any of `roles` trains, in a fixed order."""
        wanted = set(roles)
        return [name for name, served in self.roles.items() if served & wanted]

    def peak_lr(self, owner: str, active_roles: Iterable[str]) -> float:
        """The peak LR of `owner` for this step: its active roles must agree on one value."""
        lrs = {self.learning_rates[r] for r in self.roles[owner] & set(active_roles)}
        if len(lrs) != 1:
            raise ValueError(
                f"owner {owner!r} trains roles with different learning rates {sorted(lrs)} in "
                "one step; with shared parameters use equal designer/executor LRs when both "
                "roles learn at once"
            )
        return lrs.pop()

    def step(self, active_roles: Iterable[str]) -> dict[str, dict[str, float]]:
        """Step the optimizers of the active roles' owners (others untouched); metrics per owner."""
        active = set(active_roles)
        out = {}
        for name in self.owners_for(active):
            opt = self.optimizers[name]
            opt.set_peak_lr(self.peak_lr(name, active))
            out[name] = opt.step()
        return out

    def zero_grad(self) -> None:
        for opt in self.optimizers.values():
            opt.zero_grad()

    def schedule_state(self) -> dict[str, dict[str, Any]]:
        """Owner -> LR-schedule position and skipped-step count (what DCP does not carry)."""
        return {
            name: {"scheduler": opt.scheduler.state_dict(), "skipped_steps": opt.skipped_steps}
            for name, opt in self.optimizers.items()
        }

    def load_schedule_state(self, state: Mapping[str, Mapping[str, Any]]) -> None:
        if set(state) != set(self.optimizers):
            raise ValueError(f"optimizer owners {sorted(state)} != {sorted(self.optimizers)}")
        for name, opt in self.optimizers.items():
            opt.scheduler.load_state_dict(state[name]["scheduler"])
            opt.skipped_steps = int(state[name]["skipped_steps"])


def updates_per_owner(
    owners: Mapping[str, frozenset[str]],
    active_roles_by_step: Iterable[frozenset[str]],
    updates_per_step: int = 1,
) -> dict[str, int]:
    """How many optimizer updates each owner takes over a run, for the cosine horizon.

    `active_roles_by_step` is e.g. `(schedule.active_roles(s) for s in range(steps))`.
    """
    counts = dict.fromkeys(owners, 0)
    for active in active_roles_by_step:
        for name, roles in owners.items():
            if roles & active:
                counts[name] += updates_per_step
    return counts


def _unique(params: Iterable[torch.nn.Parameter]) -> list[torch.nn.Parameter]:
    seen: set[int] = set()
    out = []
    for p in params:
        if id(p) not in seen:  # tied weights appear once
            seen.add(id(p))
            out.append(p)
    return out
