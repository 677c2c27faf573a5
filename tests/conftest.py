"""Shared fixtures: one tiny model built per test session (offline, a few seconds)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from server_support import free_port


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
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "metaagentx",
            "serve-model",
            "--model",
            str(tiny_model_dir),
            "--port",
            str(port),
            "--device",
            "cpu",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"serve-model exited: {proc.stdout.read().decode()}")
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("serve-model did not come up in 90 s")
            time.sleep(0.3)
        yield base + "/v1"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
