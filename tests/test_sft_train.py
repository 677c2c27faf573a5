"""SFT training: ids and loss mask exactly as generation sees them, a short run on the nano
model that lowers its loss, checkpoints, resumes exactly, evaluates and saves a loadable model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer

from metaagentx.config import Config, build_config
from metaagentx.llm.chat import render_prompt_ids
from metaagentx.llm.hf import HFGenerator
from metaagentx.sft.collect import collect
from metaagentx.sft.data import EpochSampler, encode_record, load_dataset
from metaagentx.sft.train import SFTTrainer
from metaagentx.tiny import build_tiny
from metaagentx.train.checkpoint import CheckpointError, list_checkpoints
from metaagentx.train.logger import read_metrics
from metaagentx.train.packing import pack_micro_batches


@pytest.fixture(scope="module")
def nano(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny(tmp_path_factory.mktemp("nano"), size="nano", vocab_size=700)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sft-data")
    config = build_config(
        {},
        [
            f"output_dir={out}",
            "rollout.designer_prompt=minimal",
            "rollout.designs_dir=metaagentx.sft.designs",
            "rollout.num_designs=2",
            "rollout.num_executions=1",
            "sft.collect_problems=16",
            "logging.progress=false",
        ],
    )
    return collect(config).path


def sft_config(out: Path, nano: Path, data: Path, *overrides: str) -> Config:
    return build_config(
        {},
        [
            f"output_dir={out}",
            f"model.path={nano}",
            "model.device=cpu",
            f"sft.data={data}",
            "sft.batch_size=8",
            "sft.lr=3e-3",
            "sft.warmup_steps=2",
            "sft.log_every=1",
            "sft.micro_batch_tokens=1024",
            "sft.torch_threads=1",
            "sft.eval_modes=[sampled, greedy]",
            "data.val=[synthetic:arith:1]",
            "data.val_size=2",
            "rollout.designer_prompt=minimal",
            "rollout.designs_dir=metaagentx.sft.designs",
            "rollout.designer_max_new_tokens=48",
            "rollout.executor_max_new_tokens=24",
            "generation.torch_threads=1",
            "logging.tensorboard=false",
            "logging.progress=false",
            *overrides,
        ],
    )


def test_ids_are_the_generation_prompt_plus_completion_plus_end_of_turn(nano: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(nano)
    messages = [
        {"role": "system", "content": "Compute with Python."},
        {"role": "user", "content": "Compute 12*34."},
        {"role": "assistant", "content": "```python\nprint(12*34)\n```"},
        {"role": "tool", "content": "408"},
    ]
    record = {
        "role": "executor",
        "messages": messages,
        "completion": "<delivery>\\boxed{408}</delivery>",
    }
    example = encode_record(tokenizer, record)
    prompt = render_prompt_ids(tokenizer, messages)
    completion = tokenizer(record["completion"], add_special_tokens=False)["input_ids"]
    assert example.ids == prompt + completion + [tokenizer.eos_token_id]
    assert example.mask == [0] * len(prompt) + [1] * (len(completion) + 1)
    assert tokenizer.decode(example.ids[len(prompt) :]) == record["completion"] + "<|im_end|>"
    # packed: a target is trained only when it is a completion token of the same sequence
    batch = pack_micro_batches([example.ids, example.ids], [example.mask, example.mask], 10_000)[0]
    trained = batch.targets[batch.loss_mask].tolist()
    assert trained == 2 * [*completion, tokenizer.eos_token_id]
    with pytest.raises(ValueError, match="role"):
        encode_record(tokenizer, {**record, "role": "critic"})


def test_an_agents_earlier_turn_is_trained_inside_its_later_turn(
    tmp_path: Path, nano: Path
) -> None:
    tokenizer = AutoTokenizer.from_pretrained(nano)
    first = [
        {"role": "system", "content": "Compute with Python."},
        {"role": "user", "content": "Compute 12*34."},
    ]
    code = "```python\nprint(12*34)\n```"
    turn1 = {"role": "executor", "messages": first, "completion": code}
    later = [*first, {"role": "assistant", "content": code}, {"role": "tool", "content": "408"}]
    turn2 = {
        "role": "executor",
        "messages": later,
        "completion": "<delivery>\\boxed{408}</delivery>",
    }
    other = {"role": "executor", "messages": [first[1]], "completion": code}  # other prompt
    path = tmp_path / "turns.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in (turn1, turn2, other)))

    merged = load_dataset(path, tokenizer, max_tokens=10_000)
    separate = load_dataset(path, tokenizer, max_tokens=10_000, merge_turns=False)
    assert merged.skipped == {"merged": 1} and len(merged.examples) == 2
    assert len(separate.examples) == 3 and not separate.skipped

    # the same (context, target) pairs are trained, in fewer tokens
    def pairs(examples):
        return sorted(
            (tuple(e.ids[: t + 1]), e.ids[t + 1])
            for e in examples
            for t in range(len(e.ids) - 1)
            if e.mask[t + 1]
        )

    assert pairs(merged.examples) == pairs(separate.examples)
    assert sum(len(e.ids) for e in merged.examples) < sum(len(e.ids) for e in separate.examples)
    assert merged.examples[0].trained_turns == (2,)


def test_dataset_counts_bad_and_long_lines(tmp_path: Path, nano: Path, data: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(nano)
    path = tmp_path / "d.jsonl"
    path.write_text(data.read_text() + "{not json\n" + '{"role": "designer"}\n')
    dataset = load_dataset(path, tokenizer, max_tokens=10_000)
    assert {k: v for k, v in dataset.skipped.items() if k != "merged"} == {
        "bad_json": 1,
        "malformed": 1,
    }
    assert set(dataset.roles()) == {"designer", "executor"}
    assert load_dataset(data, tokenizer, max_tokens=40).skipped["too_long"] > 0
    sampler = EpochSampler(5, seed=0)
    first = sampler.next_batch(3) + sampler.next_batch(3)
    assert sorted(first[:5]) == list(range(5))  # one epoch covers every example once


def test_short_run_learns_checkpoints_resumes_and_saves(
    tmp_path: Path, nano: Path, data: Path
) -> None:
    whole = SFTTrainer(sft_config(tmp_path / "whole", nano, data, "sft.steps=24"))
    final = whole.train()
    losses = [m["loss"] for m in read_metrics(tmp_path / "whole" / "metrics.jsonl")]
    assert len(losses) == 24
    assert sum(losses[-4:]) / 4 < 0.7 * sum(losses[:4]) / 4
    assert 0.0 <= final["val/greedy/designs/valid"] <= 1.0
    assert "val/greedy/accuracy/arith/L1" in final and "val/sampled/accuracy/all" in final

    split = tmp_path / "split"
    first = SFTTrainer(sft_config(split, nano, data, "sft.steps=24"))
    for _ in range(12):  # then a crash: the run stops after its step-12 checkpoint
        first.run_step()
        if first.step % 6 == 0:
            first.save()
    assert [p.name for p in list_checkpoints(split / "checkpoints")] == [
        "step-00000006",
        "step-00000012",
    ]
    first.run_step()  # lost work: the resumed run redoes step 13 from the checkpoint
    resumed = SFTTrainer(sft_config(split, nano, data, "sft.steps=24", "sft.resume=true"))
    resumed.train()
    assert resumed.step == 24
    for (name, a), b in zip(
        whole.policy.model_for("executor").state_dict().items(),
        resumed.policy.model_for("executor").state_dict().values(),
        strict=True,
    ):
        assert torch.allclose(a, b, atol=1e-6), name

    generator = HFGenerator.from_pretrained(split / "model", device="cpu")
    saved = generator.model.state_dict()
    for name, tensor in resumed.policy.model_for("executor").state_dict().items():
        assert torch.equal(saved[name], tensor), name


def test_a_fresh_start_over_an_earlier_runs_checkpoints_is_refused(
    tmp_path: Path, nano: Path, data: Path
) -> None:
    out = tmp_path / "run"
    first = SFTTrainer(sft_config(out, nano, data, "sft.steps=4"))
    for _ in range(2):
        first.run_step()
    first.save()
    config_before = (out / "config.yaml").read_text() if (out / "config.yaml").exists() else None
    with pytest.raises(CheckpointError, match=r"step-00000002.*sft\.resume=true"):
        SFTTrainer(sft_config(out, nano, data, "sft.steps=8", "sft.lr=0.5"))
    # nothing of the earlier run was touched: its checkpoint and config are as they were
    assert [p.name for p in list_checkpoints(out / "checkpoints")] == ["step-00000002"]
    after = (out / "config.yaml").read_text() if (out / "config.yaml").exists() else None
    assert after == config_before
    resumed = SFTTrainer(sft_config(out, nano, data, "sft.steps=3", "sft.resume=true"))
    resumed.train()
    assert resumed.step == 3
