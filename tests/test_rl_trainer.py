"""The RL loop: stagewise phases train only the active role, and a killed run resumes exactly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from metaagentx.rl.trainer import Trainer
from metaagentx.tiny import build_tiny
from metaagentx.train.checkpoint import CheckpointError
from metaagentx.train.logger import read_metrics
from rl_support import trainer_config


@pytest.fixture(scope="module")
def nano_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny(tmp_path_factory.mktemp("nano"), size="nano", vocab_size=700, seed=0)


def _snapshot(trainer: Trainer) -> dict[str, list[torch.Tensor]]:
    return {
        role: [p.detach().clone() for p in trainer.policy.parameters_for([role])]
        for role in ("designer", "executor")
    }


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize(
    ("size", "sharing", "mode", "steps"),
    [
        ("tiny", "separate", "fixed:single_agent", 6),  # the 128x2 model, 6 steps, K=2
        ("nano", "separate", "designed", 4),
        ("nano", "lora", "fixed:single_agent", 3),
    ],
)
def test_stagewise_trains_only_the_active_role(
    nano_dir: Path,
    tiny_model_dir: Path,
    tmp_path: Path,
    size: str,
    sharing: str,
    mode: str,
    steps: int,
):
    first = "executor" if mode.startswith("fixed") else "designer"
    config = trainer_config(
        tiny_model_dir if size == "tiny" else nano_dir,
        tmp_path / "run",
        f"model.parameter_sharing={sharing}",
        f"rollout.mode={mode}",
        f"trainer.first_role={first}",
        f"trainer.steps={steps}",
    )
    trainer = Trainer(config)
    try:
        for step in range(steps):
            before = _snapshot(trainer)
            metrics = trainer.run_step()
            after = _snapshot(trainer)
            active = (
                "executor" if (step // 2) % 2 == (0 if first == "executor" else 1) else "designer"
            )
            frozen = "designer" if active == "executor" else "executor"
            assert (
                metrics[f"schedule/{active}_active"] == 1.0
                and metrics[f"schedule/{frozen}_active"] == 0.0
            )
            assert _same(before[frozen], after[frozen]), f"step {step}: the frozen {frozen} changed"
            trained = metrics.get(f"update/trajectories/{active}", 0.0)
            assert _same(before[active], after[active]) == (trained == 0), f"step {step}: {active}"
            if mode == "designed" and active == "designer":  # every design is a trajectory
                assert trained == 2 * 2, f"step {step}: problems x M designer trajectories"
    finally:
        trainer.close()


def test_shared_model_learns_and_writes_metrics_samples_and_checkpoints(
    nano_dir: Path, tmp_path: Path
):
    config = trainer_config(
        nano_dir,
        tmp_path / "run",
        "rollout.mode=fixed:single_agent",
        "trainer.steps=2",
        "trainer.val_every=2",
        "trainer.save_every=1",
        "logging.tensorboard=true",
    )
    trainer = Trainer(config)
    try:
        before = _snapshot(trainer)["executor"]
        last = trainer.train()
        assert not _same(before, _snapshot(trainer)["executor"])
    finally:
        trainer.close()
    run = tmp_path / "run"
    records = read_metrics(run / "metrics.jsonl")
    assert [r["step"] for r in records] == [1, 2]
    assert "val/accuracy/math" in records[-1] and "actor/loss" in records[0]
    assert last["executions/total"] == 4
    _assert_verl_step_metrics(records[0])
    _assert_sample_advantages(run / "samples" / "step-000000.jsonl")
    assert sorted(p.name for p in (run / "samples").iterdir()) == [
        "step-000000.jsonl",
        "step-000001.jsonl",
    ]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        "step-00000001",
        "step-00000002",
    ]
    assert (run / "config.yaml").is_file()
    events = list((run / "tensorboard").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0

    # a fresh start into the same directory is refused before it touches anything
    config_text, metrics_text = (
        (run / "config.yaml").read_text(),
        (run / "metrics.jsonl").read_text(),
    )
    # the message names the newest checkpoint and the fix, in whatever order
    with pytest.raises(CheckpointError, match=r"(?=.*step-00000002)(?=.*trainer\.resume=true)"):
        Trainer(config)
    assert (run / "config.yaml").read_text() == config_text
    assert (run / "metrics.jsonl").read_text() == metrics_text
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        "step-00000001",
        "step-00000002",
    ]


def _assert_verl_step_metrics(m: dict) -> None:
    """An executor-phase step of fixed:single_agent logs verl's names (and none of the old)."""
    assert not [k for k in m if k.startswith("time/") or k in ("update/loss", "update/pg_loss")]
    for key in (
        "actor/pg_loss",
        "actor/ppo_kl",
        "actor/entropy",
        "actor/grad_norm",
        "actor/lr/policy",
        "perf/update_tokens_per_s",
        "timing_s/gen_designs",
        "timing_s/gen_executions",
        "timing_s/update_actor",
        "perf/cpu_memory_used_gb",
    ):
        assert m[key] >= 0, key
    assert m["timing_s/step"] >= m["timing_s/update_actor"] > 0
    assert 0 < m["response_length/executor/mean"] <= m["response_length/executor/max"] <= 8
    assert 0 <= m["response_length/executor/clip_ratio"] <= 1
    assert "response_length/designer/mean" not in m  # fixed design: the designer generated none
    total = m["tokens/executor"] + m["update/tokens"]
    assert m["perf/total_num_tokens"] == total
    assert m["perf/throughput"] == pytest.approx(total / m["timing_s/step"])


def _assert_sample_advantages(path: Path) -> None:
    """Executor phase: every generated turn shows its execution's advantage; designs none."""
    records = [json.loads(line) for line in path.read_text().splitlines()]
    for design in (d for r in records for d in r["designs"]):
        assert design["advantage"] is None
        by_execution = []
        for execution in design["executions"]:
            values = {t["advantage"] for t in execution["turns"] if t["tokens"]}
            if not values:  # it generated nothing (cut before its first turn)
                continue
            assert len(values) == 1 and isinstance(next(iter(values)), float)
            by_execution.append((execution["reward"], values.pop()))
        rewards = [r for r, _ in by_execution]
        if len(set(rewards)) > 1:  # the better execution of a design has the larger advantage
            assert max(by_execution)[1] > min(by_execution)[1]
        else:
            assert all(a == 0.0 for _, a in by_execution)


def _final_weights(run: Path) -> dict[str, torch.Tensor]:
    """The weights `train` exported at the end of the run."""
    return load_file(str(run / "model" / "model.safetensors"))


def _train_cmd(config_path: Path, *extra: str, ranks: int = 1) -> list[str]:
    launcher = [sys.executable]
    if ranks > 1:
        launcher += ["-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={ranks}"]
    return [*launcher, "-m", "metaagentx", "train", str(config_path), *extra]


@pytest.mark.parametrize("ranks", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_kill_9_then_resume_is_bit_identical(nano_dir: Path, tmp_path: Path, ranks: int):
    """One process, or 2 torchrun ranks (FSDP2 over gloo): killed after its second
    checkpoint and resumed, the run ends with the weights of an uninterrupted one."""

    def write_config(name: str) -> Path:
        config = trainer_config(
            nano_dir,
            tmp_path / name,
            "rollout.mode=fixed:single_agent",
            "trainer.steps=4",
            "trainer.save_every=1",
            "trainer.keep_checkpoints=10",
        )
        path = tmp_path / f"{name}.yaml"
        path.write_text(config.model_dump_json())  # JSON is YAML
        return path

    whole = subprocess.run(
        _train_cmd(write_config("whole"), ranks=ranks),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert whole.returncode == 0, whole.stdout + whole.stderr

    broken = write_config("broken")
    proc = subprocess.Popen(
        _train_cmd(broken, ranks=ranks),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    marker = tmp_path / "broken" / "checkpoints" / "step-00000002"
    deadline = time.monotonic() + 300
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists(), "the run never reached its second checkpoint"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert not (tmp_path / "broken" / "checkpoints" / "step-00000004").exists()

    resumed = subprocess.run(
        _train_cmd(broken, "trainer.resume=true", ranks=ranks),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "resumed from" in resumed.stdout
    a, b = _final_weights(tmp_path / "whole"), _final_weights(tmp_path / "broken")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    steps = [r["step"] for r in read_metrics(tmp_path / "broken" / "metrics.jsonl")]
    assert steps == [1, 2, 3, 4]
