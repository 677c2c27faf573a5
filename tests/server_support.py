"""Helpers for tests that talk to local servers."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve_model(model_dir: Path) -> Iterator[str]:
    """A real `metaagentx serve-model` process on 127.0.0.1 serving `model_dir` on the CPU;
    yields the OpenAI base URL (".../v1") once it answers /health."""
    port = free_port()
    argv = [sys.executable, "-m", "metaagentx", "serve-model", "--model", str(model_dir)]
    proc = subprocess.Popen(
        [*argv, "--port", str(port), "--device", "cpu"],
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
