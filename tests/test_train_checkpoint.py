"""Checkpoints are atomic, verified, pruned, and restore every piece of state exactly."""

from __future__ import annotations

import logging
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.distributed.checkpoint.state_dict import (
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)

from metaagentx.train.checkpoint import (
    CheckpointError,
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


def _tensors(model, opt) -> dict:
    return {"model": get_model_state_dict(model), "optim": get_optimizer_state_dict(model, opt)}


def _save(root: Path, step: int, model, opt, sched, keep: int = 2) -> Path:
    return save_checkpoint(
        root,
        step,
        tensors=_tensors(model, opt),
        objects={"scheduler": sched.state_dict()},
        state={"step": step, "cursor": step * 8, "schedule": {"phase": "executor"}},
        keep=keep,
    )


def _load_into(path: Path, model, opt, sched) -> dict:
    tensors = _tensors(model, opt)
    loaded = load_checkpoint(path, tensors=tensors)
    set_model_state_dict(model, tensors["model"])
    set_optimizer_state_dict(model, opt, tensors["optim"])
    sched.load_state_dict(loaded["objects"]["scheduler"])
    return loaded


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
    _train_step(fresh, fresh_opt, fresh_sched)  # moments of its own, to be overwritten
    random.seed(0)
    loaded = _load_into(path, fresh, fresh_opt, fresh_sched)
    assert loaded["state"] == {"step": 3, "cursor": 24, "schedule": {"phase": "executor"}}
    _train_step(fresh, fresh_opt, fresh_sched)
    for k, v in fresh.state_dict().items():
        assert torch.equal(v, expected_weights[k]), k
    assert fresh_sched.get_last_lr() == expected_lr

    draws = (random.random(), np.random.rand(), torch.rand(1).item())
    _load_into(path, fresh, fresh_opt, fresh_sched)
    _train_step(fresh, fresh_opt, fresh_sched)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == draws


def test_keeps_the_newest_k(tmp_path: Path):
    model, opt, sched = _setup()
    for step in (1, 2, 3, 4):
        _save(tmp_path, step, model, opt, sched, keep=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-00000003", "step-00000004"]
    assert not list(tmp_path.glob(".tmp-*"))


def test_corrupt_or_partial_newest_falls_back_with_a_warning(tmp_path: Path, caplog):
    model, opt, sched = _setup()
    _save(tmp_path, 1, model, opt, sched, keep=5)
    newest = _save(tmp_path, 2, model, opt, sched, keep=5)
    shard = next((newest / "weights").glob("*.distcp"))
    data = bytearray(shard.read_bytes())
    data[-1] ^= 0xFF
    shard.write_bytes(bytes(data))
    partial = tmp_path / "step-00000003"  # a directory without a manifest
    partial.mkdir()
    (partial / "state.json").write_text("{}")
    (tmp_path / ".tmp-step-00000004").mkdir()  # an interrupted write is not a checkpoint
    with caplog.at_level(logging.WARNING):
        loaded = load_latest_checkpoint(tmp_path, tensors=_tensors(model, opt))
    assert loaded is not None and loaded["step"] == 1
    assert "no manifest.json" in caplog.text and "checksum mismatch" in caplog.text


def test_weights_of_another_model_are_a_checkpoint_error(tmp_path: Path):
    model, opt, sched = _setup()
    path = _save(tmp_path, 1, model, opt, sched)
    other = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Linear(16, 4))
    other_opt = torch.optim.AdamW(other.parameters())
    with pytest.raises(CheckpointError, match="do not fit this run"):
        load_checkpoint(path, tensors=_tensors(other, other_opt))


def test_no_checkpoint_is_none(tmp_path: Path):
    assert load_latest_checkpoint(tmp_path / "nothing", tensors={}) is None
