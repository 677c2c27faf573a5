"""AdamW + warmup/cosine + clipping, and per-owner optimizers with per-role learning rates."""

from __future__ import annotations

import math

import pytest
import torch
from transformers import get_cosine_schedule_with_warmup

from metaagentx.rl.schedule import Schedule
from metaagentx.train.optim import (
    OptimConfig,
    RoleOptimizers,
    TrainOptimizer,
    updates_per_owner,
    warmup_cosine,
)


def test_warmup_cosine_by_hand():
    f = [warmup_cosine(s, warmup_steps=4, total_steps=12) for s in range(14)]
    assert f[:4] == [0.25, 0.5, 0.75, 1.0]  # the first update already moves
    assert f[4] == 1.0
    assert f[8] == pytest.approx(0.5)  # half way through the cosine
    assert f[6] == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    assert f[12] == pytest.approx(0.0) and f[13] == pytest.approx(0.0)  # held at the floor
    assert warmup_cosine(8, 4, 12, min_lr_ratio=0.1) == pytest.approx(0.1 + 0.9 * 0.5)
    assert [warmup_cosine(s, 0, None) for s in (0, 5, 100)] == [1.0, 1.0, 1.0]
    assert warmup_cosine(1, 2, None) == 1.0


def test_cosine_part_matches_transformers():
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0)
    hf = get_cosine_schedule_with_warmup(opt, num_warmup_steps=3, num_training_steps=10)
    for step in range(3, 11):
        assert warmup_cosine(step, 3, 10) == pytest.approx(hf.lr_lambdas[0](step), abs=1e-12)


def _quadratic(opt: TrainOptimizer, p: torch.nn.Parameter) -> dict[str, float]:
    (p.square().sum()).backward()
    return opt.step()


def test_train_optimizer_lr_sequence_and_clipping():
    p = torch.nn.Parameter(torch.tensor([3.0, 4.0]))
    cfg = OptimConfig(lr=0.1, warmup_steps=2, total_steps=6, max_grad_norm=1.0)
    opt = TrainOptimizer([p], cfg)
    first = _quadratic(opt, p)
    assert first["lr"] == pytest.approx(0.05)  # 0.1 * 1/2
    assert first["grad_norm"] == pytest.approx(10.0)  # |2p| before clipping
    assert p.grad is None  # zeroed after the step
    lrs = [first["lr"]] + [_quadratic(opt, p)["lr"] for _ in range(3)]
    assert lrs == pytest.approx([0.1 * warmup_cosine(s, 2, 6) for s in range(4)])
    assert opt.steps == 4


def test_no_clipping_reports_norm_and_nonfinite_grad_skips():
    p = torch.nn.Parameter(torch.tensor([3.0, 4.0]))
    opt = TrainOptimizer([p], OptimConfig(lr=0.1, max_grad_norm=None))
    assert _quadratic(opt, p)["grad_norm"] == pytest.approx(10.0)
    before = p.detach().clone()
    p.grad = torch.tensor([float("nan"), 1.0])
    out = opt.step()
    assert out["skipped"] == 1.0 and torch.equal(p, before) and opt.steps == 1
    assert p.grad is None


def test_set_peak_lr_keeps_position():
    p = torch.nn.Parameter(torch.ones(1))
    opt = TrainOptimizer([p], OptimConfig(lr=1.0, warmup_steps=4))
    _quadratic(opt, p)
    assert opt.lr == pytest.approx(0.5)  # next update is step 1: 2/4
    opt.set_peak_lr(0.2)
    assert opt.lr == pytest.approx(0.1)


def _owners(shared: bool):
    a = torch.nn.Parameter(torch.ones(2))
    b = torch.nn.Parameter(torch.ones(2))
    if shared:
        return {"policy": (frozenset({"designer", "executor"}), [a, b])}, a, b
    return (
        {"designer": (frozenset({"designer"}), [a]), "executor": (frozenset({"executor"}), [b])},
        a,
        b,
    )


def test_role_optimizers_step_only_active_owners_with_their_lr():
    owners, a, b = _owners(shared=False)
    opts = RoleOptimizers(owners, {"designer": 0.5, "executor": 0.1}, OptimConfig(lr=1.0))
    (a.sum() + b.sum()).backward()
    a_before = a.detach().clone()
    out = opts.step({"executor"})
    assert set(out) == {"executor"} and out["executor"]["lr"] == pytest.approx(0.1)
    assert torch.equal(a, a_before)  # the frozen owner did not move
    assert not torch.equal(b, torch.ones(2))
    assert opts.optimizers["designer"].steps == 0 and opts.optimizers["executor"].steps == 1
    state = opts.schedule_state()  # what a checkpoint keeps beside DCP's moments
    assert set(state) == {"designer", "executor"}
    restored = RoleOptimizers(owners, {"designer": 0.5, "executor": 0.1}, OptimConfig(lr=1.0))
    restored.load_schedule_state(state)
    assert [o.steps for o in restored.optimizers.values()] == [0, 1]
    with pytest.raises(ValueError, match="owners"):
        restored.load_schedule_state({"policy": state["designer"]})


def test_shared_owner_takes_the_active_roles_lr_and_refuses_a_conflict():
    owners, a, _ = _owners(shared=True)
    opts = RoleOptimizers(owners, {"designer": 0.5, "executor": 0.1}, OptimConfig(lr=1.0))
    a.sum().backward()
    assert opts.step({"designer"})["policy"]["lr"] == pytest.approx(0.5)
    a.sum().backward()
    assert opts.step({"executor"})["policy"]["lr"] == pytest.approx(0.1)
    with pytest.raises(ValueError, match="different learning rates"):
        opts.step({"designer", "executor"})
    same = RoleOptimizers(owners, {"designer": 0.1, "executor": 0.1}, OptimConfig(lr=1.0))
    assert same.step({"designer", "executor"})["policy"]["lr"] == pytest.approx(0.1)


def test_updates_per_owner_counts_a_stagewise_run():
    sched = Schedule(mode="stagewise", phase_length=3)
    roles = {"designer": frozenset({"designer"}), "executor": frozenset({"executor"})}
    steps = (sched.active_roles(s) for s in range(10))
    assert updates_per_owner(roles, steps) == {"designer": 4, "executor": 6}
    shared = {"policy": frozenset({"designer", "executor"})}
    assert updates_per_owner(shared, (sched.active_roles(s) for s in range(10)), 2) == {
        "policy": 20
    }

