"""The vllm backend is import-guarded: on a machine without vLLM it fails with a clear error."""

from __future__ import annotations

import importlib.util

import pytest

from metaagentx.config import build_config
from metaagentx.llm import make_generator


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed here")
def test_vllm_backend_without_vllm_says_how_to_install_it(tmp_path):
    config = build_config({}, ["generation.backend=vllm", f"model.path={tmp_path}"])
    with pytest.raises(ImportError, match=r"metaagentx\[vllm\]"):
        make_generator(config.model, config.generation)


def test_vllm_backend_needs_a_model_path():
    config = build_config({}, ["generation.backend=vllm"])
    with pytest.raises(ValueError, match=r"model\.path is not set"):
        make_generator(config.model, config.generation)
