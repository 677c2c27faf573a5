"""`metaagentx train ... generation.backend=vllm`: two RL steps with each placement CPU allows
(an engine in its own process; a served engine over HTTP), the trajectories' log-probs equal to
the trainer's recomputation. Runs where vLLM is installed (CI's vLLM venv); skipped elsewhere."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("vllm")
pytestmark = pytest.mark.vllm

from rl_support import trainer_config  # noqa: E402

CPU_ENGINE = ["generation.vllm.enforce_eager=true", "generation.vllm.max_model_len=2048"]


def run_train(model: Path, out: Path, *extra: str, ranks: int = 1) -> list[dict]:
    config = trainer_config(model, out, "generation.backend=vllm", "trainer.steps=2",
                            "trainer.phase_steps=1", *CPU_ENGINE, *extra)
    path = out.parent / f"{out.name}.json"
    path.write_text(config.model_dump_json())  # JSON is YAML
    launcher = ["-m", "torch.distributed.run", f"--nproc-per-node={ranks}"] if ranks > 1 else []
    done = subprocess.run([sys.executable, *launcher, "-m", "metaagentx", "train", str(path)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert list((out / "model").rglob("*.safetensors"))  # the exported model
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_colocated_engines_separate_models_executor_steps(tiny_model_dir, tmp_path):
    metrics = run_train(tiny_model_dir, tmp_path / "colocated", "model.parameter_sharing=separate",
                        "rollout.mode=fixed:single_agent", "trainer.schedule=executor_only")
    assert [m["step"] for m in metrics] == [1, 2]
    for m in metrics:
        assert m["rollout/executor_logprob_gap"] < 1e-4  # the engine's ids and log-probs
        assert m["sync/executor_logprob_gap"] < 1e-4  # the synced engine serves the update
        assert m["update/trajectories/executor"] > 0 and m["executions/status/ok"] == 4


def test_served_engine_lora_designer_and_executor_steps(tiny_model_dir, tmp_path):
    metrics = run_train(tiny_model_dir, tmp_path / "server", "generation.vllm.placement=server",
                        "model.parameter_sharing=lora", "model.lora_r=8")
    by_step = {m["step"]: m for m in metrics}
    assert by_step[2]["update/trajectories/designer"] > 0
    assert by_step[1]["sync/executor_logprob_gap"] < 1e-4  # stagewise: executor first
    assert by_step[2]["rollout/designer_logprob_gap"] < 1e-4
    assert by_step[2]["sync/designer_logprob_gap"] < 1e-4
    assert (tmp_path / "server" / "logs" / "vllm-policy-0.log").is_file()


def test_two_fsdp_ranks_share_started_servers_with_lora_adapters(tiny_model_dir, tmp_path):
    """Rank 0 starts the server and loads each adapter; rank 1 asks for the same names."""
    metrics = run_train(tiny_model_dir, tmp_path / "ranks", "generation.vllm.placement=server",
                        "model.parameter_sharing=lora", "model.lora_r=8",
                        "rollout.mode=fixed:single_agent", "trainer.schedule=executor_only",
                        ranks=2)
    for m in metrics:
        assert m["executions/total"] == 4  # both ranks' shares, gathered
        assert m["rollout/executor_logprob_gap"] < 1e-4  # both ranks got the synced adapter
        assert m["sync/executor_logprob_gap"] < 1e-4
