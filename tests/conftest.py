"""Shared fixtures: one tiny model built per test session (offline, a few seconds)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from server_support import serve_model


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A freshly built 128x2 tiny Qwen3 model + tokenizer saved with save_pretrained."""
    from metaagentx.tiny import build_tiny

    return build_tiny(tmp_path_factory.mktemp("tiny-model"), size="tiny", seed=0)


@pytest.fixture(scope="session")
def hf_generator(tiny_model_dir: Path):
    """The hf backend on the tiny model, CPU, fp32."""
    from metaagentx.llm.hf import HFGenerator

    return HFGenerator.from_pretrained(tiny_model_dir, device="cpu", dtype="float32")


@pytest.fixture(scope="session")
def served_model(tiny_model_dir: Path) -> Iterator[str]:
    """A real `metaagentx serve-model` process on 127.0.0.1 serving the tiny model; yields the
    OpenAI base URL (".../v1")."""
    with serve_model(tiny_model_dir) as base_url:
        yield base_url
