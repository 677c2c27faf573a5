"""Checkpoints are atomic, verified, pruned, and restore every piece of state exactly."""

from __future__ import annotations

import logging
import random
from pathlib import Path

import numpy as np
import torch

from metaagentx.train.checkpoint import (
    list_checkpoints,
    load_checkpoint,
    load_latest_checkpoint,
    save_checkpoint,
)


def _setup(seed: int = 0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 4))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 / (1 + s))
    return model, opt, sched


def _train_step(model, opt, sched):
    x = torch.randn(3, 4)
    loss = model(x).pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    sched.step()


def _save(root: Path, step: int, model, opt, sched, keep: int = 2) -> Path:
    return save_checkpoint(
        root,
        step,
        models={"policy": model.state_dict()},
        optimizers={"policy": opt.state_dict()},
        schedulers={"policy": sched.state_dict()},
        state={"step": step, "cursor": step * 8, "schedule": {"phase": "executor"}},
        keep=keep,
    )


def test_round_trip_restores_weights_optimizer_scheduler_rng_and_state(tmp_path: Path):
    model, opt, sched = _setup()
    for _ in range(3):
        _train_step(model, opt, sched)
    random.seed(5)
    np.random.seed(5)
    path = _save(tmp_path, 3, model, opt, sched)
    _train_step(model, opt, sched)  # the step an uninterrupted run takes next
    expected_weights = {k: v.clone() for k, v in model.state_dict().items()}
    expected_lr = sched.get_last_lr()

    fresh, fresh_opt, fresh_sched = _setup(seed=99)
    random.seed(0)
    loaded = load_checkpoint(path)
    fresh.load_state_dict(loaded["models"]["policy"])
    fresh_opt.load_state_dict(loaded["optimizers"]["policy"])
    fresh_sched.load_state_dict(loaded["schedulers"]["policy"])
    assert loaded["state"] == {"step": 3, "cursor": 24, "schedule": {"phase": "executor"}}
    _train_step(fresh, fresh_opt, fresh_sched)
    for k, v in fresh.state_dict().items():
        assert torch.equal(v, expected_weights[k]), k
    assert fresh_sched.get_last_lr() == expected_lr

    draws = (random.random(), np.random.rand(), torch.rand(1).item())
    load_checkpoint(path)
    _train_step(fresh, fresh_opt, fresh_sched)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == draws


def test_keeps_the_newest_k(tmp_path: Path):
    model, opt, sched = _setup()
    for step in (1, 2, 3, 4):
        _save(tmp_path, step, model, opt, sched, keep=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-00000003", "step-00000004"]


def test_corrupt_or_partial_newest_falls_back_with_a_warning(tmp_path: Path, caplog):
    model, opt, sched = _setup()
    _save(tmp_path, 1, model, opt, sched, keep=5)
    newest = _save(tmp_path, 2, model, opt, sched, keep=5)
    weights = newest / "model-policy.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    partial = tmp_path / "step-00000003"  # a directory without a manifest
    partial.mkdir()
    (partial / "model-policy.safetensors").write_bytes(b"junk")
    (tmp_path / ".tmp-step-00000004-123").mkdir()  # an interrupted write is not a checkpoint
    with caplog.at_level(logging.WARNING):
        loaded = load_latest_checkpoint(tmp_path)
    assert loaded is not None and loaded["step"] == 1
    assert "no manifest.json" in caplog.text and "checksum mismatch" in caplog.text


def test_no_checkpoint_is_none(tmp_path: Path):
    assert load_latest_checkpoint(tmp_path / "nothing") is None
