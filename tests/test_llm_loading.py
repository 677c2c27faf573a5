"""Model loading: a saved model loads, and every user-fixable problem is one line, at once."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import huggingface_hub.constants
import pytest
import torch
import transformers.utils.hub

from metaagentx.errors import UserError
from metaagentx.llm import loading
from metaagentx.llm.loading import (
    ModelLoadError,
    ModelSettingError,
    load_model_and_tokenizer,
    resolve_device,
)


@pytest.fixture
def network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Hosts anything tried to reach (each attempt fails at once); the Hub probe included."""
    reached: list[str] = []

    def refuse(host, *args, **kwargs):
        reached.append(str(host))
        raise OSError(f"no network in tests ({host})")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", lambda address, *a, **k: refuse(address[0]))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    return reached


@pytest.fixture
def model_copy(tiny_model_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_model_dir, tmp_path / "model"))


@pytest.mark.parametrize(
    "path", ["/nonexistent", "./runs/qs/modle", "../modle", "~/no-such-model", "runs/qs/modle"]
)
def test_a_missing_directory_fails_at_once_without_the_hub(path: str, network: list[str]):
    with pytest.raises(ModelLoadError) as info:
        load_model_and_tokenizer(path, device="cpu")
    assert str(info.value).startswith(f"model directory '{path}' does not exist")
    assert isinstance(info.value, UserError) and isinstance(info.value, OSError)
    assert network == []


def test_a_folder_without_config_is_named(tmp_path: Path, network: list[str]):
    with pytest.raises(ModelLoadError, match="is not a Hugging Face model directory"):
        load_model_and_tokenizer(tmp_path, device="cpu")
    assert network == []


def test_truncated_weights_name_the_file(model_copy: Path, network: list[str]):
    weights = model_copy / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ModelLoadError) as info:
        load_model_and_tokenizer(model_copy, device="cpu")
    message = str(info.value)
    assert message.startswith(f"cannot read the weights in '{weights}': ")
    assert message.endswith("the file is truncated or corrupt (re-export or re-download it)")
    assert "\n" not in message and network == []


def test_a_broken_tokenizer_names_the_file(model_copy: Path, network: list[str]):
    tokenizer = model_copy / "tokenizer.json"
    tokenizer.write_text(tokenizer.read_text()[:3000])
    with pytest.raises(ModelLoadError, match=r"cannot read the tokenizer in '.*tokenizer\.json'"):
        load_model_and_tokenizer(model_copy, device="cpu")
    assert network == []


@pytest.mark.parametrize(
    ("device", "built", "count", "reason"),
    [
        ("cuda", False, 0, "this torch has no CUDA support"),
        ("cuda:0", True, 0, "no CUDA GPU is visible"),
        ("cuda:2", True, 2, "this machine shows 2 CUDA GPU(s), cuda:0 to cuda:1"),
    ],
)
def test_a_missing_cuda_device_is_refused_before_any_loading(
    device: str, built: bool, count: int, reason: str, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(torch.backends.cuda, "is_built", lambda: built)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
    expected = f"device '{device}' is not available: {reason} (use --device cpu or auto)"
    with pytest.raises(ModelSettingError) as info:
        load_model_and_tokenizer("/nonexistent", device=device)  # the device fails first
    assert str(info.value) == expected


def test_unknown_or_unavailable_devices_and_dtypes(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(torch.backends.mps, "is_built", lambda: False)
    with pytest.raises(ModelSettingError, match="'mps' is not available: this torch has no MPS"):
        resolve_device("mps")
    with pytest.raises(ModelSettingError, match="unknown device 'gpu0'"):
        resolve_device("gpu0")
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ModelSettingError, match="unknown dtype 'fp8'; choose one of auto, float32"):
        load_model_and_tokenizer("/nonexistent", dtype="fp8", device="cpu")


def test_an_uncached_hub_id_offline_fails_at_once(
    tmp_path: Path, network: list[str], monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelLoadError) as info:
        load_model_and_tokenizer("acme/missing", device="cpu")
    assert str(info.value).startswith(
        "model 'acme/missing' is neither a local directory nor in the Hugging Face cache, "
        "and the Hub is unreachable (HF_HUB_OFFLINE is set)"
    )
    assert network == []


def test_an_unreachable_hub_is_tried_once(tmp_path: Path, network: list[str], monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(ModelLoadError, match=r"the Hub is unreachable \(no connection to "):
        load_model_and_tokenizer("acme/missing", device="cpu")
    assert len(network) == 1  # the probe, and no download attempt after it


def test_a_cached_hub_model_loads_offline(
    tiny_model_dir: Path, tmp_path: Path, network: list[str], monkeypatch: pytest.MonkeyPatch
):
    repo = tmp_path / "models--acme--tiny"
    shutil.copytree(tiny_model_dir, repo / "snapshots" / "abc123")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(transformers.utils.hub, "TRANSFORMERS_CACHE", str(tmp_path), raising=False)
    monkeypatch.setattr(loading, "hub_unreachable", lambda: "HF_HUB_OFFLINE is set")
    model, _ = load_model_and_tokenizer("acme/tiny", device="cpu")
    assert model.config.model_type == "qwen3" and network == []


def test_a_saved_model_loads_and_auto_keeps_its_dtype(tiny_model_dir: Path, tmp_path: Path):
    model, tokenizer = load_model_and_tokenizer(tiny_model_dir, dtype="bfloat16", device="cpu")
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    assert next(model.parameters()).dtype == torch.bfloat16
    auto, _ = load_model_and_tokenizer(tmp_path, dtype="auto", device="cpu")
    assert {p.dtype for p in auto.parameters()} == {torch.bfloat16}
    default, _ = load_model_and_tokenizer(tmp_path, device="cpu")
    assert {p.dtype for p in default.parameters()} == {torch.float32}
