"""`metaagentx eval` with the openai backend against a real `metaagentx serve-model` process
(HTTP on 127.0.0.1): the evaluation path a served model (vLLM, a teacher API) takes."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from metaagentx.cli import app
from metaagentx.eval.evaluate import load_results


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(tiny_model_dir: Path) -> Iterator[str]:
    port = _free_port()
    command = [sys.executable, "-m", "metaagentx", "serve-model", "--model", str(tiny_model_dir)]
    proc = subprocess.Popen(
        [*command, "--port", str(port), "--device", "cpu"],
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


def test_eval_through_the_openai_backend(served: str, tmp_path: Path):
    config = tmp_path / "served.yaml"
    config.write_text(
        "generation:\n  backend: openai\n"
        "rollout:\n  compact_prompt: true\n  designer_max_new_tokens: 24\n"
        "  executor_max_new_tokens: 12\nlogging:\n  progress: false\n"
    )
    out = tmp_path / "run"
    result = CliRunner().invoke(
        app,
        [
            "eval",
            str(config),
            f"generation.base_url={served}",
            f"output_dir={out}",
            "eval.benchmarks=[synthetic:arith:2]",
            "eval.limit=3",
            "eval.modes=[single_agent, designed]",
            "eval.samples=2",
            "--label",
            "served",
        ],
    )
    assert result.exit_code == 0, result.output
    payload = load_results(out / "eval" / "served.json")
    assert payload["backend"] == "openai" and payload["model"] == served
    single, designed = payload["results"]
    assert single["problems"] == designed["problems"] == 3
    assert all(len(p["outcomes"]) == 2 for p in single["per_problem"] + designed["per_problem"])
    assert single["rollout"]["executions/ok"] == 6  # every execution ran through the server
    assert designed["rollout"]["designs/generated"] == 6
    records = (out / "eval" / "served.records.jsonl").read_text().splitlines()
    assert len(records) == 6
