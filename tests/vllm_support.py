"""Helpers of the vLLM tests: a trainer-side policy on the tiny model, weight perturbation, and
pausing an engine's processes (to make a weight sync miss its deadline)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import torch

from metaagentx.llm.loading import load_model_and_tokenizer
from metaagentx.train.policy import LoraSettings, Policy


def tiny_policy(model_dir: Path, sharing: str = "shared", lora_r: int = 8) -> tuple[Policy, object]:
    model, tokenizer = load_model_and_tokenizer(str(model_dir), dtype="float32", device="cpu")
    policy = Policy.build(model, sharing, lora=LoraSettings(r=lora_r, alpha=2 * lora_r), seed=0)
    policy.train(False)
    return policy, tokenizer


def perturb(module: torch.nn.Module, scale: float, seed: int, only: str | None = None) -> None:
    """Add seeded noise to every parameter (or those whose name contains `only`)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in module.named_parameters():
            if only is None or only in name:
                noise = torch.randn(param.shape, generator=generator, dtype=param.dtype)
                param.add_(noise * scale)


@contextmanager
def paused(pids: list[int]) -> Iterator[None]:
    """SIGSTOP the processes for the block (a stuck engine), SIGCONT afterwards."""
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)


def child_pids(pid: int | None = None) -> list[int]:
    """Every live descendant of `pid` (default: this process)."""
    return [p.pid for p in psutil.Process(pid).children(recursive=True) if p.is_running()]
