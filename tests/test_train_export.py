"""Exporting a policy: the folder loads with plain transformers/peft and carries the trained
weights (not the initial ones) for every sharing mode, the card says what was run, a refused or
interrupted export leaves `out` alone, and pushing checks the folder before touching the hub."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from huggingface_hub import HfApi
from peft import PeftModel
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from metaagentx.train import export as export_module
from metaagentx.train.export import ExportCard, check_export_dir, export_policy, push_to_hub
from metaagentx.train.policy import LoraSettings, Policy

TEXT = "Compute 4821*37.\n```python\nprint(4821*37)\n```"
RUN_CONFIG = {"train": {"lr": 0.001, "steps": 3}, "model": {"parameter_sharing": "shared"}}
METRICS = {"accuracy/all": 0.625, "reward/designer": 0.5}


def _load(path: Path) -> torch.nn.Module:
    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()


def _perturb(params, seed: int, scale: float = 0.02) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in params:
            p.add_(torch.randn(p.shape, generator=gen) * scale)


@torch.no_grad()
def _logits(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    return model(input_ids=ids).logits


def _card(base: Path | str, sharing: str, **kw) -> ExportCard:
    return ExportCard(str(base), sharing, RUN_CONFIG, METRICS, **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path):
    return AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="module")
def ids(tokenizer) -> torch.Tensor:
    return tokenizer(TEXT, return_tensors="pt").input_ids


def test_shared_export_loads_with_the_trained_weights(tiny_model_dir, tokenizer, ids, tmp_path):
    model = _load(tiny_model_dir)
    _perturb(model.parameters(), seed=1)
    policy = Policy.build(model, "shared")
    out = export_policy(policy, tokenizer, tmp_path / "out", card=_card(tiny_model_dir, "shared"))

    assert out == tmp_path / "out"
    assert (out / "model.safetensors").is_file() and (out / "config.json").is_file()
    assert not (out / "pytorch_model.bin").exists()
    loaded = _load(out)
    expected = _logits(model, ids)
    torch.testing.assert_close(_logits(loaded, ids), expected, atol=1e-6, rtol=0)
    assert not torch.allclose(_logits(_load(tiny_model_dir), ids), expected, atol=1e-3)

    again = AutoTokenizer.from_pretrained(out)
    assert again.decode(again(TEXT).input_ids) == TEXT
    assert again(TEXT).input_ids == tokenizer(TEXT).input_ids
    generation = json.loads((out / "generation_config.json").read_text())
    assert tokenizer.eos_token_id in _as_list(generation["eos_token_id"])
    assert generation["pad_token_id"] == tokenizer.pad_token_id
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary left behind


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def test_card_holds_config_metrics_and_hub_metadata(tiny_model_dir, tokenizer, tmp_path):
    policy = Policy.build(_load(tiny_model_dir), "shared")
    card = _card(tiny_model_dir, "shared", description="Quickstart run.", steps=3)
    out = export_policy(policy, tokenizer, tmp_path / "out", card=card)
    readme = (out / "README.md").read_text()
    assert "lr: 0.001" in readme and "parameter_sharing: shared" in readme
    assert "| accuracy/all | 0.625 |" in readme and "| reward/designer | 0.5 |" in readme
    assert "Quickstart run." in readme and "training steps: 3" in readme
    assert f"`{tiny_model_dir}`" in readme
    head = readme.split("---")[1]
    for tag in ("metaagentx", "reinforcement-learning", "multi-agent"):
        assert tag in head
    assert "library_name: transformers" in head
    assert "base_model" not in head  # a local path is not a hub id
    assert check_export_dir(out) == out


def test_separate_writes_one_full_model_per_role(tiny_model_dir, tokenizer, ids, tmp_path):
    executor = _load(tiny_model_dir)
    designer = _load(tiny_model_dir)
    _perturb(designer.parameters(), seed=2)
    policy = Policy.build(executor, "separate", designer_model=designer)
    out = export_policy(policy, tokenizer, tmp_path / "out", card=_card(tiny_model_dir, "separate"))

    assert sorted(p.name for p in out.iterdir()) == ["README.md", "designer", "executor"]
    weights = {r: load_file(out / r / "model.safetensors") for r in ("designer", "executor")}
    assert weights["designer"].keys() == weights["executor"].keys()
    assert any(
        not torch.equal(weights["designer"][k], weights["executor"][k]) for k in weights["designer"]
    )
    for role, live in (("designer", designer), ("executor", executor)):
        torch.testing.assert_close(
            _logits(_load(out / role), ids), _logits(live, ids), atol=1e-6, rtol=0
        )
        assert AutoTokenizer.from_pretrained(out / role).decode(ids[0]) == TEXT
        assert (out / role / "generation_config.json").is_file()
    readme = (out / "README.md").read_text()
    assert "`designer/`: the designer" in readme and "`executor/`: the executor" in readme


@pytest.fixture()
def lora_policy(tiny_model_dir: Path) -> Policy:
    """A lora policy whose two adapters were moved away from zero, differently."""
    policy = Policy.build(_load(tiny_model_dir), "lora", lora=LoraSettings(r=4, alpha=8))
    for seed, (_, params) in enumerate(policy.owners().values(), start=10):
        _perturb(params, seed=seed, scale=0.05)
    policy.train(False)
    return policy


def _role_logits(policy: Policy, ids: torch.Tensor) -> dict[str, torch.Tensor]:
    out = {}
    for role in ("designer", "executor"):
        with policy.activate(role) as model:
            out[role] = _logits(model, ids)
    assert not torch.allclose(out["designer"], out["executor"], atol=1e-4)
    return out


def test_lora_adapters_load_with_peft(tiny_model_dir, tokenizer, ids, tmp_path, lora_policy):
    expected = _role_logits(lora_policy, ids)
    card = _card(tiny_model_dir, "lora")
    out = export_policy(lora_policy, tokenizer, tmp_path / "out", card=card)

    assert sorted(p.name for p in out.iterdir()) == ["README.md", "designer", "executor"]
    per_adapter = len(lora_policy.owners()["designer"][1])
    for role in ("designer", "executor"):
        config = json.loads((out / role / "adapter_config.json").read_text())
        assert config["base_model_name_or_path"] == str(tiny_model_dir)
        assert len(load_file(out / role / "adapter_model.safetensors")) == per_adapter
        assert not (out / role / "model.safetensors").exists()
        loaded = PeftModel.from_pretrained(_load(tiny_model_dir), out / role).eval()
        torch.testing.assert_close(_logits(loaded, ids), expected[role], atol=1e-6, rtol=0)
        assert AutoTokenizer.from_pretrained(out / role).decode(ids[0]) == TEXT
    assert "library_name: peft" in (out / "README.md").read_text()
    assert lora_policy.model_for("designer").active_adapter == "executor"  # left as it was


def test_merged_lora_loads_with_transformers(tiny_model_dir, tokenizer, ids, tmp_path, lora_policy):
    expected = _role_logits(lora_policy, ids)
    peft_model = lora_policy.model_for("designer")
    before = {k: v.clone() for k, v in peft_model.state_dict().items()}
    card = _card(tiny_model_dir, "lora")
    out = export_policy(lora_policy, tokenizer, tmp_path / "out", card=card, merge_lora=True)

    for role in ("designer", "executor"):
        assert not (out / role / "adapter_config.json").exists()
        keys = load_file(out / role / "model.safetensors").keys()
        assert not any("lora" in k or "base_layer" in k for k in keys)
        torch.testing.assert_close(
            _logits(_load(out / role), ids), expected[role], atol=1e-5, rtol=0
        )
    after = peft_model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    torch.testing.assert_close(_role_logits(lora_policy, ids), expected, atol=0, rtol=0)
    assert "library_name: transformers" in (out / "README.md").read_text()


def test_refuses_a_non_empty_target_unless_overwrite(tiny_model_dir, tokenizer, tmp_path):
    policy = Policy.build(_load(tiny_model_dir), "shared")
    card = _card(tiny_model_dir, "shared")
    out = tmp_path / "out"
    out.mkdir()
    export_policy(policy, tokenizer, out, card=card)  # an empty dir is fine
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match=r"not empty; pass --overwrite \(overwrite=True\)"):
        export_policy(policy, tokenizer, out, card=card)
    assert (out / "notes.txt").read_text() == "keep me"

    export_policy(policy, tokenizer, out, card=card, overwrite=True)
    assert not (out / "notes.txt").exists() and (out / "config.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_card_and_policy_must_agree(tiny_model_dir, tokenizer, tmp_path):
    policy = Policy.build(_load(tiny_model_dir), "shared")
    with pytest.raises(ValueError, match="parameter_sharing='lora'"):
        export_policy(policy, tokenizer, tmp_path / "a", card=_card(tiny_model_dir, "lora"))
    with pytest.raises(ValueError, match="merge_lora=True needs a lora policy"):
        card = _card(tiny_model_dir, "shared")
        export_policy(policy, tokenizer, tmp_path / "b", card=card, merge_lora=True)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("existing", [False, True])
def test_interrupted_export_leaves_no_partial_output(
    tiny_model_dir, tokenizer, tmp_path, monkeypatch, existing
):
    policy = Policy.build(_load(tiny_model_dir), "separate")
    out = tmp_path / "out"
    if existing:
        out.mkdir()
        (out / "old.txt").write_text("previous export")
    real = export_module._save_full
    calls = []

    def crash_on_second_role(*args, **kwargs):
        calls.append(args)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(export_module, "_save_full", crash_on_second_role)
    with pytest.raises(RuntimeError, match="disk full"):
        export_policy(
            policy, tokenizer, out, card=_card(tiny_model_dir, "separate"), overwrite=True
        )
    assert len(calls) == 2  # the first role's model was written before the crash
    if existing:
        assert sorted(p.name for p in out.iterdir()) == ["old.txt"]
        assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    else:
        assert list(tmp_path.iterdir()) == []


@pytest.fixture()
def hub_calls(monkeypatch) -> list[tuple[str, dict]]:
    calls: list[tuple[str, dict]] = []

    def create_repo(self, repo_id, **kwargs):
        calls.append(("create_repo", {"repo_id": repo_id, **kwargs}))
        return f"https://huggingface.co/{repo_id}"

    def upload_folder(self, **kwargs):
        calls.append(("upload_folder", kwargs))
        return "https://huggingface.co/me/policy/commit/abc123"

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    return calls


def test_push_to_hub_creates_the_repo_then_uploads(tiny_model_dir, tokenizer, tmp_path, hub_calls):
    policy = Policy.build(_load(tiny_model_dir), "shared")
    out = export_policy(policy, tokenizer, tmp_path / "out", card=_card(tiny_model_dir, "shared"))
    ref = push_to_hub(out, "me/policy", token="hf_secret", private=True, commit_message="v1")

    assert ref == "https://huggingface.co/me/policy/commit/abc123"
    assert [name for name, _ in hub_calls] == ["create_repo", "upload_folder"]
    create, upload = hub_calls[0][1], hub_calls[1][1]
    assert create["repo_id"] == "me/policy" and create["private"] is True
    assert create["token"] == "hf_secret" and create["exist_ok"] is True
    assert upload["repo_id"] == "me/policy" and Path(upload["folder_path"]) == out
    assert upload["token"] == "hf_secret" and upload["commit_message"] == "v1"


def test_push_to_hub_refuses_a_folder_that_is_not_an_export(tiny_model_dir, tmp_path, hub_calls):
    with pytest.raises(ValueError, match="not an exported model dir"):
        push_to_hub(tiny_model_dir, "me/policy")  # a model dir, but no metaagentx card
    (tmp_path / "README.md").write_text("---\ntags:\n- metaagentx\n---\nhello\n")
    with pytest.raises(ValueError, match="no model in"):
        push_to_hub(tmp_path, "me/policy")
    with pytest.raises(ValueError, match="not an exported model dir"):
        push_to_hub(tmp_path / "missing", "me/policy")
    assert hub_calls == []


def test_card_from_a_run_config(tiny_model_dir):
    from metaagentx.config import load_config

    config = load_config(overrides=[f"model.path={tiny_model_dir}", "model.parameter_sharing=lora"])
    card = ExportCard.from_config(config, {"accuracy/all": 0.5}, steps=7)
    assert card.base_model == str(tiny_model_dir) and card.parameter_sharing == "lora"
    assert card.run_config["model"]["lora_r"] == config.model.lora_r and card.steps == 7
