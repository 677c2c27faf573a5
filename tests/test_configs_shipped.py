"""Every shipped config loads and says what its name promises."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from metaagentx.ablate import load_ablation
from metaagentx.config import ConfigError, load_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize(
    "path", sorted(CONFIGS.rglob("*.yaml")), ids=lambda p: str(p.relative_to(CONFIGS))
)
def test_config_loads(path: Path):
    if "arms" in (yaml.safe_load(path.read_text()) or {}):
        load_ablation(path)  # an ablation file: its pipeline and every arm's config build
    else:
        load_config(path)


@pytest.mark.parametrize("name", ["quickstart", "miniature"])
def test_ablations_run_the_papers_arms_with_three_seeds(name: str):
    ablation = load_ablation(CONFIGS / "ablations" / f"{name}.yaml")
    arms = ablation.arm_configs
    assert ablation.spec.seeds == [0, 1, 2] and ablation.spec.swap == [ablation.spec.baseline]
    base = arms[ablation.spec.baseline]
    assert (base.trainer.schedule, base.trainer.phase_steps) == ("stagewise", 10)
    assert arms["stagewise_k1"].trainer.phase_steps == 1
    schedules = {c.trainer.schedule for c in arms.values()}
    assert schedules == {"stagewise", "simultaneous", "designer_only", "executor_only"}
    assert {c.model.parameter_sharing for c in arms.values()} == {"shared", "separate", "lora"}
    m8 = arms["m8_n1"].rollout  # the same executions per problem as the baseline
    assert m8.num_designs * m8.num_executions == (
        base.rollout.num_designs * base.rollout.num_executions
    )


def test_paper_and_ablation_settings():
    paper = load_config(CONFIGS / "paper" / "qwen3_8b.yaml")
    assert (paper.rollout.num_designs, paper.rollout.num_executions, paper.trainer.phase_steps) == (
        4,
        4,
        30,
    )
    assert paper.trainer.schedule == "stagewise" and paper.trainer.first_role == "executor"
    assert paper.model.parameter_sharing == "shared" and paper.model.path == "models/Qwen3-8B"
    expected = {
        "simultaneous": ("trainer", "schedule", "simultaneous"),
        "designer_only": ("trainer", "schedule", "designer_only"),
        "executor_only": ("trainer", "schedule", "executor_only"),
        "k1": ("trainer", "phase_steps", 1),
        "k10": ("trainer", "phase_steps", 10),
        "lora": ("model", "parameter_sharing", "lora"),
        "separate": ("model", "parameter_sharing", "separate"),
    }
    for name, (section, key, value) in expected.items():
        config = load_config(CONFIGS / "ablations" / f"{name}.yaml")
        assert getattr(getattr(config, section), key) == value, name
        assert config.rollout.num_designs == 4  # everything else comes from the shared base
    m8 = load_config(CONFIGS / "ablations" / "m8_n1.yaml")
    assert (m8.rollout.num_designs, m8.rollout.num_executions) == (8, 1)


def test_base_cycles_and_unknown_keys_in_a_base_fail_clearly(tmp_path: Path):
    (tmp_path / "a.yaml").write_text("base: b.yaml\nseed: 1\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\n")
    with pytest.raises(ConfigError, match="includes itself"):
        load_config(tmp_path / "a.yaml")
    (tmp_path / "c.yaml").write_text("base: d.yaml\n")
    (tmp_path / "d.yaml").write_text("trainer: {stepz: 3}\n")
    with pytest.raises(ConfigError, match=r"'trainer\.stepz'"):
        load_config(tmp_path / "c.yaml")
    (tmp_path / "e.yaml").write_text("base: missing.yaml\n")
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "e.yaml")


@pytest.mark.parametrize("name", ["qwen3_4b", "qwen3_8b"])
def test_paper_configs_shard_over_8_ranks_with_a_problem_each(name: str):
    config = load_config(CONFIGS / "paper" / f"{name}.yaml")
    d = config.distributed
    assert d.fsdp == "on" and d.num_trainers == 8
    assert config.trainer.batch_problems % d.num_trainers == 0
    assert config.trainer.batch_problems >= d.num_trainers
    assert config.trainer.logprob_chunk_tokens is not None
    assert config.sft.logprob_chunk_tokens is not None
    # fp32 masters, bf16 compute and bf16 generation copy (hence the bf16 export)
    assert d.param_dtype == "bfloat16" and config.model.dtype == "float32"


def test_one_gpu_lora_config_is_unsharded():
    config = load_config(CONFIGS / "paper" / "qwen3_8b_lora_1gpu.yaml")
    assert config.distributed.num_trainers == 1 and config.distributed.fsdp == "off"
    assert config.model.parameter_sharing == "lora"
    assert config.model.dtype == "bfloat16"


def test_lora_ablation_freezes_a_bf16_base():
    config = load_config(CONFIGS / "ablations" / "lora.yaml")
    assert config.model.parameter_sharing == "lora" and config.model.dtype == "bfloat16"
