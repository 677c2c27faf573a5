"""What a user gets out of `train`: a model directory `eval` and transformers/PEFT load, and
`metaagentx export` of any checkpoint (adapters or merged models for lora)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from peft import PeftModel
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer
from typer.testing import CliRunner

from metaagentx.cli import app
from metaagentx.rl.trainer import train
from metaagentx.tiny import build_tiny
from rl_support import trainer_config

runner = CliRunner()


@pytest.fixture(scope="module")
def nano(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny(tmp_path_factory.mktemp("nano"), size="nano", vocab_size=700, seed=0)


def _write(config, path: Path) -> Path:
    path.write_text(config.model_dump_json())  # JSON is YAML
    return path


def _logits(model: torch.nn.Module, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).logits[0]


def test_train_exports_a_model_that_eval_and_transformers_load(nano: Path, tmp_path: Path):
    run = tmp_path / "run"
    config = trainer_config(nano, run, "rollout.mode=fixed:single_agent", "trainer.steps=2")
    train(config)
    model_dir = run / "model"
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    initial = AutoModelForCausalLM.from_pretrained(nano, dtype=torch.float32)
    ids = AutoTokenizer.from_pretrained(model_dir)("1 + 2 =")["input_ids"]
    assert not torch.allclose(_logits(model, ids), _logits(initial, ids))  # trained weights
    card = (model_dir / "README.md").read_text()
    assert "parameter_sharing" in card and "metaagentx" in card

    # the exported checkpoint equals the exported model
    again = runner.invoke(app, ["export", str(run), "--out", str(tmp_path / "again")])
    assert again.exit_code == 0, again.output
    a = load_file(str(model_dir / "model.safetensors"))
    b = load_file(str(tmp_path / "again" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    refused = runner.invoke(app, ["export", str(run), "--out", str(tmp_path / "again")])
    assert refused.exit_code != 0 and "not empty" in refused.output

    evaluated = runner.invoke(
        app,
        [
            "eval",
            str(_write(config, tmp_path / "eval.yaml")),
            f"model.path={model_dir}",
            f"output_dir={tmp_path / 'eval'}",
            "eval.benchmarks=[synthetic:arith:1]",
            "eval.modes=[single_agent]",
            "eval.limit=2",
        ],
    )
    assert evaluated.exit_code == 0, evaluated.output
    report = json.loads(next((tmp_path / "eval" / "eval").glob("*.json")).read_text())
    assert report["model"] == str(model_dir)


def test_a_lora_run_exports_adapters_peft_loads_and_merges(nano: Path, tmp_path: Path):
    run = tmp_path / "lora"
    config = trainer_config(
        nano,
        run,
        "model.parameter_sharing=lora",
        "model.lora_r=4",
        "rollout.mode=fixed:single_agent",
        "trainer.steps=1",
        "trainer.schedule=executor_only",
    )
    train(config)
    base = AutoModelForCausalLM.from_pretrained(nano, dtype=torch.float32)
    ids = list(range(5, 25))
    reference = _logits(base, ids)
    executor = PeftModel.from_pretrained(base, run / "model" / "executor")
    assert not torch.allclose(_logits(executor, ids), reference)  # the executor learnt
    fresh = AutoModelForCausalLM.from_pretrained(nano, dtype=torch.float32)
    designer = PeftModel.from_pretrained(fresh, run / "model" / "designer")
    assert torch.allclose(_logits(designer, ids), reference)  # the designer sat out

    step = run / "checkpoints" / "step-00000001"
    merged = runner.invoke(app, ["export", str(step), "--out", str(tmp_path / "m"), "--merge-lora"])
    assert merged.exit_code == 0, merged.output
    whole = AutoModelForCausalLM.from_pretrained(tmp_path / "m" / "executor", dtype=torch.float32)
    assert torch.allclose(_logits(whole, ids), _logits(executor, ids), atol=1e-5)


def test_export_refuses_what_is_not_a_run(tmp_path: Path):
    result = runner.invoke(app, ["export", str(tmp_path), "--out", str(tmp_path / "x")])
    assert result.exit_code != 0
    assert "not a run directory or checkpoint" in result.output
